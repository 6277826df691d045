// Shared pieces of the browser suite: the Go server under test, the browser,
// and evidence on failure. Not a test file itself (node --test only runs *.test.mjs).
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

const here = dirname(fileURLToPath(import.meta.url))
const repoRoot = resolve(here, '../..')
export const artifactsDir = join(here, 'artifacts')

const READY_TIMEOUT_MS = 60_000

/** Password of the demo logins `serve --demo` seeds (admin@switchboard.test, owner@acme.test, …). */
export const DEMO_PASSWORD = process.env.SWITCHBOARD_DEMO_PASSWORD || 'switchboard-demo'

/** Runs a command to completion, failing with its output when it exits non-zero. */
async function run(cmd, args, options) {
  const child = spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk) => (output += chunk))
  child.stderr.on('data', (chunk) => (output += chunk))
  const [code] = await once(child, 'exit')
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${code}:\n${output}`)
}

/** A port nobody listens on right now: the OS picks it, we release it and hand it on. */
async function freePort() {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  server.close()
  await once(server, 'close')
  return port
}

async function waitUntilReady(url, child, log) {
  const deadline = Date.now() + READY_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode} before it was ready:\n${log()}`)
    try {
      const res = await fetch(url)
      if (res.status === 200) return
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new Error(`${url} did not answer 200 within ${READY_TIMEOUT_MS / 1000} s:\n${log()}`)
}

/**
 * Builds (unless SWITCHBOARD_BIN names a binary) and starts `switchboard serve --demo`
 * on a free loopback port with a fresh data directory, so the demo organisations
 * (platform, Acme, Globex, Northwind) and their logins exist. The binary embeds
 * console/dist, so run `npm run build` first (and rebuild SWITCHBOARD_BIN) to test
 * the current console.
 */
export async function startServer() {
  const workDir = await mkdtemp(join(tmpdir(), 'switchboard-e2e-'))
  let bin = process.env.SWITCHBOARD_BIN
  if (!bin) {
    bin = join(workDir, 'switchboard')
    await run('go', ['build', '-o', bin, './cmd/switchboard'], { cwd: repoRoot })
  }
  const dataDir = join(workDir, 'data')
  await mkdir(dataDir)
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`

  const child = spawn(bin, ['serve', '--demo'], {
    cwd: workDir,
    env: {
      ...process.env,
      SWITCHBOARD_ADDR: `127.0.0.1:${port}`,
      SWITCHBOARD_DATA_DIR: dataDir,
      SWITCHBOARD_ENV: 'development',
      SWITCHBOARD_PUBLIC_URL: url,
      SWITCHBOARD_DEMO_PASSWORD: DEMO_PASSWORD,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (chunk) => (output += chunk))
  child.stderr.on('data', (chunk) => (output += chunk))
  const log = () => output

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    }
    await rm(workDir, { recursive: true, force: true })
  }

  try {
    await waitUntilReady(`${url}/readyz`, child, log)
  } catch (err) {
    await stop()
    throw err
  }
  return { url, log, stop }
}

const LAUNCH_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-quic',
  '--disable-sync',
]

/** Debian's chromium; playwright-core never downloads a browser of its own here. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: LAUNCH_ARGS,
  })
}

/** Screenshots of every open page plus the server's log, named after the failing test. */
export async function saveEvidence(name, pages, serverLog) {
  await mkdir(artifactsDir, { recursive: true })
  const safe = name.replace(/[^\w.-]+/g, '_')
  for (const [label, page] of Object.entries(pages)) {
    if (page && !page.isClosed()) {
      await page.screenshot({ path: join(artifactsDir, `${safe}-${label}.png`), fullPage: true }).catch(() => {})
    }
  }
  if (serverLog) await writeFile(join(artifactsDir, `${safe}-server.log`), serverLog)
}
