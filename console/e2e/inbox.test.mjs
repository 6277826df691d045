// Browser scenarios of the inbox and the contacts against the real Go server (started with its
// demo data), once per language. The inbox: Acme's owner connects an "api" channel through the set-up page, writes a canned
// response, and opens the inbox; the brand's system (this test) posts a signed message in
// Chinese to the channel's webhook, and it shows up in the open inbox without a reload; the
// owner opens it, answers with the canned response typed as "/shortcut" (sent with Ctrl+Enter),
// and the reply reaches the brand's webhook — a small HTTP server in this test — signed; a
// reply the brand refuses shows the reason and goes out with Retry.
// The contacts: a CSV import with a refused row, search, merging one person known by e-mail and
// by phone, and the export.
import assert from 'node:assert/strict'
import { createHmac, randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { after, before, describe, test } from 'node:test'
import { DEMO_PASSWORD, launchBrowser, saveEvidence, startServer } from './support.mjs'

const TIMEOUT = 15_000
/** "Within a second or two": how long a live message may take to appear. */
const LIVE_MS = 2_500

// Kept apart from src/locales on purpose: the suite checks what is on screen.
const TEXT = {
  en: {
    email: 'Email',
    password: 'Password',
    login: 'Log in',
    channels: 'Channels',
    connect: 'Connect a channel',
    api: 'API',
    displayName: 'Display name',
    secret: 'Signing secret',
    replyWebhook: 'Your webhook for replies',
    connectSubmit: 'Connect',
    connected: (name) => `Channel ${name} connected`,
    signatureHelp: 'X-Switchboard-Signature',
    test: 'Test connection',
    testOk: 'The channel works',
    canned: 'Canned responses',
    newCanned: 'New canned response',
    shortcut: 'Shortcut',
    cannedTitle: 'Title',
    cannedText: 'Text',
    save: 'Save',
    inbox: 'Inbox',
    unassigned: 'Unassigned',
    live: 'Live',
    sent: 'Sent',
    resolved: 'Resolved',
    notDelivered: 'Not delivered:',
    retry: 'Retry',
    thanks: (name) => `Thanks for waiting, ${name}. Your parcel left the warehouse today.`,
    contacts: 'Contacts',
    importTitle: 'Import contacts from CSV',
    importSubmit: 'Import',
    imported: '2 created, 0 updated',
    search: 'Search',
    mergeTitle: 'Merge two contacts',
    mergeSubmit: 'Merge',
    merged: (name) => `Merged into ${name}`,
  },
  'zh-CN': {
    email: '邮箱',
    password: '密码',
    login: '登录',
    channels: '渠道',
    connect: '接入渠道',
    api: 'API',
    displayName: '显示名称',
    secret: '签名密钥',
    replyWebhook: '接收回复的 Webhook',
    connectSubmit: '接入',
    connected: (name) => `已接入渠道 ${name}`,
    signatureHelp: 'X-Switchboard-Signature',
    test: '测试连接',
    testOk: '渠道工作正常',
    canned: '快捷回复',
    newCanned: '新建快捷回复',
    shortcut: '快捷键',
    cannedTitle: '标题',
    cannedText: '内容',
    save: '保存',
    inbox: '收件箱',
    unassigned: '未分配',
    live: '实时',
    sent: '已发送',
    resolved: '已解决',
    notDelivered: '未送达：',
    retry: '重试',
    thanks: (name) => `${name}，感谢您的耐心等待，您的包裹今天已从仓库发出。`,
    contacts: '联系人',
    importTitle: '从 CSV 导入联系人',
    importSubmit: '导入',
    imported: '新建 2 个，更新 0 个',
    search: '搜索',
    mergeTitle: '合并两个联系人',
    mergeSubmit: '合并',
    merged: (name) => `已合并到 ${name}`,
  },
}

const CUSTOMER_TEXT = '你好，我的订单还没到'

// A reply whose first attempt fails for a passing reason is retried after asynq's default
// backoff (15 s and more); this file's server (node --test runs each file in its own process)
// retries within a second, so a hiccup on a busy machine is retried as in production, only sooner.
process.env.SWITCHBOARD_QUEUE_RETRY_BASE ??= '250ms'

let server
let browser

before(async () => {
  server = await startServer()
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close()
  await server?.stop()
})

const visible = (locator, timeout = TIMEOUT) => locator.waitFor({ state: 'visible', timeout })

/** The brand's own system: records what Switchboard posts to its webhook_url and acknowledges it. */
async function startBrand() {
  const received = []
  const waiters = []
  const brand = { refuse: 0 }
  const http = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk) => (body += chunk))
    req.on('end', () => {
      if (brand.refuse > 0) {
        brand.refuse--
        res.writeHead(400, { 'Content-Type': 'application/json' })
        res.end(JSON.stringify({ error: 'customer blocked' }))
        return
      }
      const hit = { method: req.method, url: req.url, headers: req.headers, body }
      received.push(hit)
      for (const w of waiters.splice(0)) w()
      res.writeHead(200, { 'Content-Type': 'application/json' })
      res.end(JSON.stringify({ id: `brand-${received.length}` }))
    })
  })
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  return {
    url: `http://127.0.0.1:${http.address().port}/switchboard/replies`,
    received,
    /** Answers the next n requests 400 (a permanent refusal: the reply fails at once). */
    refuseNext(n) {
      brand.refuse = n
    },
    /** Resolves with the first request that `match` accepts, failing after `ms`. */
    async next(match, ms = TIMEOUT) {
      const deadline = Date.now() + ms
      for (;;) {
        const hit = received.find(match)
        if (hit) return hit
        const left = deadline - Date.now()
        assert.ok(left > 0, `the brand's webhook got no matching request in ${ms} ms (got ${received.length})`)
        await Promise.race([new Promise((r) => waiters.push(r)), new Promise((r) => setTimeout(r, left))])
      }
    },
    close: () => new Promise((r) => http.close(r)),
  }
}

const hmac = (secret, ts, body) => createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex')

/** Posts a message to the channel's webhook as the brand's system would: signed with the channel secret. */
async function postInbound(webhookUrl, secret, message) {
  const body = JSON.stringify(message)
  const ts = Math.floor(Date.now() / 1000)
  const res = await fetch(webhookUrl, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Switchboard-Signature': `t=${ts},v1=${hmac(secret, ts, body)}` },
    body,
  })
  assert.equal(res.status, 200, await res.text())
}

for (const [locale, text] of Object.entries(TEXT)) {
  describe(`inbox and contacts in ${locale}`, () => {
    test('a signed message to a new api channel appears live; the canned reply reaches the brand', async (t) => {
      const run = `${locale}-${Date.now().toString(36)}`
      const channelName = `Shop backend ${run}`
      const secret = `e2e-secret-${randomUUID()}`
      const customer = { external_id: `cust-${run}`, name: `李雷 ${locale}` }
      const shortcut = `${locale === 'en' ? 'en' : 'zh'}wait`
      const brand = await startBrand()

      const context = await browser.newContext({ baseURL: server.url, locale })
      const pages = { owner: await context.newPage() }
      const page = pages.owner
      // Script errors explain a stuck page better than a screenshot does.
      const pageErrors = []
      page.on('pageerror', (err) => pageErrors.push(err.message))
      page.on('console', (msg) => {
        if (msg.type() === 'error' || msg.type() === 'warning') pageErrors.push(`console.${msg.type()}: ${msg.text()}`)
      })
      let failedStep = 'setup'
      const step = async (name, fn) => {
        failedStep = name
        t.diagnostic(name)
        try {
          await fn()
        } catch (err) {
          err.message = `${name}: ${err.message}`
          throw err
        }
      }
      let webhookUrl = ''
      try {
        await step("Acme's owner logs in", async () => {
          await page.goto('/login')
          await page.getByLabel(text.email, { exact: true }).fill('owner@acme.test')
          await page.getByLabel(text.password, { exact: true }).fill(DEMO_PASSWORD)
          await page.getByRole('button', { name: text.login, exact: true }).click()
          await page.waitForURL((url) => url.pathname === '/', { timeout: TIMEOUT })
        })

        await step('connects an api channel and reads its webhook URL', async () => {
          await page.getByRole('menuitem', { name: text.channels, exact: true }).click()
          await page.waitForURL((url) => url.pathname === '/channels', { timeout: TIMEOUT })
          await page.getByRole('button', { name: text.connect }).click()
          await page.waitForURL((url) => url.pathname === '/channels/new', { timeout: TIMEOUT })
          await page.getByTestId('channel-type').click()
          await page.getByRole('option', { name: text.api, exact: true }).click()
          await page.getByLabel(text.displayName, { exact: true }).fill(channelName)
          await page.getByLabel(text.secret, { exact: true }).fill(secret)
          await page.getByLabel(text.replyWebhook, { exact: true }).fill(brand.url)
          await page.getByRole('button', { name: text.connectSubmit, exact: true }).click()
          await visible(page.getByText(text.connected(channelName)))
          await page.waitForURL((url) => /^\/channels\/[0-9a-f-]{36}$/.test(url.pathname), { timeout: TIMEOUT })

          const field = page.getByTestId('webhook-url').locator('input')
          await visible(field)
          webhookUrl = await field.inputValue()
          const publicId = (await page.getByTestId('public-id').textContent()).trim()
          assert.equal(webhookUrl, `${server.url}/hooks/api/${publicId}`)
          await visible(page.getByTestId('channel-help').getByText(text.signatureHelp))
          // The secret is never shown again, not even in the password field.
          assert.equal(await page.getByLabel(text.secret, { exact: true }).inputValue(), '')

          await page.getByRole('button', { name: text.test }).click()
          await visible(page.getByText(text.testOk))
        })

        await step('writes a canned response with a placeholder', async () => {
          await page.getByRole('menuitem', { name: text.canned, exact: true }).click()
          await page.waitForURL((url) => url.pathname === '/canned-responses', { timeout: TIMEOUT })
          await page.getByRole('button', { name: text.newCanned }).click()
          const dialog = page.getByRole('dialog', { name: text.newCanned })
          await visible(dialog)
          await dialog.getByLabel(text.shortcut, { exact: true }).fill(shortcut)
          await dialog.getByLabel(text.cannedTitle, { exact: true }).fill(`Delay ${locale}`)
          await dialog.getByLabel(text.cannedText, { exact: true }).fill(text.thanks('{{contact.name}}'))
          await dialog.getByRole('button', { name: text.save, exact: true }).click()
          await visible(page.getByTestId('canned-table').getByText(`/${shortcut}`, { exact: true }))
        })

        await step('opens the unassigned inbox, live', async () => {
          await page.getByRole('menuitem', { name: new RegExp(`^${text.inbox}`) }).click()
          await page.waitForURL((url) => url.pathname === '/inbox', { timeout: TIMEOUT })
          await page.getByTestId('view-unassigned').click()
          await page.waitForURL((url) => url.searchParams.get('view') === 'unassigned', { timeout: TIMEOUT })
          await visible(page.locator('[data-testid="realtime-status"][data-status="open"]').getByText(text.live, { exact: true }))
        })

        const item = page.getByTestId('conversation-item').filter({ hasText: customer.name })
        await step('the customer message appears without a reload within a second or two', async () => {
          assert.equal(await item.count(), 0)
          const startedAt = Date.now()
          await postInbound(webhookUrl, secret, { message_id: `m-${run}`, contact: customer, text: CUSTOMER_TEXT })
          await visible(item, LIVE_MS)
          const took = Date.now() - startedAt
          t.diagnostic(`appeared after ${took} ms`)
          await visible(item.getByTestId('conversation-preview').getByText(CUSTOMER_TEXT), LIVE_MS)
          await visible(item.getByTestId('unread').getByText('1', { exact: true }), LIVE_MS)
          await visible(page.getByTestId('inbox-badge'), LIVE_MS)
        })

        const pane = page.getByTestId('conversation-pane')
        await step('opens it: the message, the contact and their timeline', async () => {
          await item.click()
          await visible(pane.getByTestId('conversation-contact').getByText(customer.name, { exact: true }))
          await visible(pane.getByTestId('thread').getByTestId('message-text').getByText(CUSTOMER_TEXT, { exact: true }))
          await visible(pane.getByTestId('contact-panel-name').getByText(customer.name, { exact: true }))
          await visible(pane.getByTestId('contact-timeline').getByText(CUSTOMER_TEXT))
          // Opening it reads it.
          await item.getByTestId('unread').waitFor({ state: 'detached', timeout: TIMEOUT })
        })

        const reply = text.thanks(customer.name)
        await step('answers with the canned response: r, "/shortcut", Enter, Ctrl+Enter', async () => {
          await pane.getByTestId('thread').click()
          await page.keyboard.press('r')
          const input = pane.getByTestId('reply-input')
          await page.waitForFunction(() => document.activeElement?.tagName === 'TEXTAREA', null, { timeout: TIMEOUT })
          assert.equal(await input.inputValue(), '', 'the "r" that focused the box must not be typed into it')
          await page.keyboard.type(`/${shortcut.slice(0, 3)}`)
          const option = pane.getByTestId('canned-option').filter({ hasText: `/${shortcut}` })
          await visible(option)
          await page.keyboard.press('Enter')
          await page.waitForFunction(
            (expected) => document.activeElement instanceof HTMLTextAreaElement && document.activeElement.value === expected,
            reply,
            { timeout: TIMEOUT },
          )
          await page.keyboard.press('Control+Enter')
          await visible(pane.getByTestId('message').filter({ hasText: reply }))
          // The live event can show the reply before the POST's answer empties the box.
          await page.waitForFunction(() => document.querySelector('[data-testid="reply-input"]')?.value === '', null, { timeout: TIMEOUT })
        })

        await step("the reply reached the brand's webhook, signed with the channel secret, and shows as sent", async () => {
          const hit = await brand.next((h) => h.body.includes(reply))
          assert.equal(hit.method, 'POST')
          assert.equal(hit.url, '/switchboard/replies')
          const posted = JSON.parse(hit.body)
          assert.equal(posted.text, reply)
          assert.deepEqual(posted.to, [{ kind: 'external', value: customer.external_id }])
          assert.equal(hit.headers['idempotency-key'], posted.message_id)
          const sig = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(hit.headers['x-switchboard-signature'] ?? '')
          assert.ok(sig, `signature header: ${hit.headers['x-switchboard-signature']}`)
          assert.equal(sig[2], hmac(secret, sig[1], hit.body))
          const sent = pane.getByTestId('message').filter({ hasText: reply })
          await visible(sent.getByTestId('message-status').getByText(text.sent, { exact: true }))
        })

        await step('a reply the brand refuses shows why, and Retry sends it', async () => {
          const again = `${run}: ${text.sent}?`
          brand.refuseNext(1)
          const input = pane.getByTestId('reply-input')
          await input.fill(again)
          await input.press('Control+Enter')
          const failed = pane.getByTestId('message').filter({ hasText: again })
          const failure = failed.getByTestId('message-failure')
          await visible(failure.getByText(text.notDelivered))
          assert.match(await failure.textContent(), /400/)
          await failure.getByRole('button', { name: text.retry, exact: true }).click()
          await brand.next((h) => h.body.includes(again))
          await visible(failed.getByTestId('message-status').getByText(text.sent, { exact: true }))
          await failure.waitFor({ state: 'detached', timeout: TIMEOUT })
        })

        await step('takes it with the a shortcut: it leaves the unassigned list', async () => {
          await pane.getByTestId('thread').click()
          await page.keyboard.press('a')
          await item.waitFor({ state: 'detached', timeout: TIMEOUT })
          await page.getByTestId('view-mine').click()
          await visible(item)
        })

        await step('resolves it with the e shortcut', async () => {
          await pane.getByTestId('thread').click()
          await page.keyboard.press('e')
          await visible(pane.getByTestId('conversation-status').getByText(text.resolved, { exact: true }))
        })
      } catch (err) {
        await saveEvidence(`inbox-${locale}-${failedStep}`, pages, server.log())
        if (pageErrors.length > 0) err.message += `\npage errors:\n${pageErrors.join('\n')}`
        throw err
      } finally {
        await context.close()
        await brand.close()
      }
    })

    test('contacts: a CSV import with a refused row, search, merge of one person known twice, export', async (t) => {
      const run = `${locale}${Date.now().toString(36)}`.toLowerCase().replace(/[^a-z0-9]/g, '')
      const email = `chen.jing.${run}@example.com`
      const phone = `+86139${String(Date.now()).slice(-8)}`
      const byEmail = `陈静 ${run}`
      const byPhone = `Jing Chen ${run}`
      const csv = `name,email,phone,tags\n${byEmail},${email},,vip\n${byPhone},,${phone},\nBroken ${run},not-an-email,,\n`

      const context = await browser.newContext({ baseURL: server.url, locale })
      const pages = { owner: await context.newPage() }
      const page = pages.owner
      let failedStep = 'setup'
      const step = async (name, fn) => {
        failedStep = name
        t.diagnostic(name)
        try {
          await fn()
        } catch (err) {
          err.message = `${name}: ${err.message}`
          throw err
        }
      }
      try {
        await step("Acme's owner logs in and opens Contacts", async () => {
          await page.goto('/login')
          await page.getByLabel(text.email, { exact: true }).fill('owner@acme.test')
          await page.getByLabel(text.password, { exact: true }).fill(DEMO_PASSWORD)
          await page.getByRole('button', { name: text.login, exact: true }).click()
          await page.waitForURL((url) => url.pathname === '/', { timeout: TIMEOUT })
          await page.getByRole('menuitem', { name: text.contacts, exact: true }).click()
          await page.waitForURL((url) => url.pathname === '/contacts', { timeout: TIMEOUT })
        })

        await step('imports a CSV: two contacts created, the third row refused with its reason', async () => {
          await page.getByTestId('contacts-import').click()
          const dialog = page.getByRole('dialog', { name: text.importTitle })
          await visible(dialog)
          await dialog.getByTestId('import-file').setInputFiles({ name: 'contacts.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) })
          await dialog.getByTestId('import-submit').click()
          await visible(dialog.getByTestId('import-result').getByText(text.imported))
          const refused = dialog.getByTestId('import-errors').getByRole('row').filter({ hasText: 'email' })
          await visible(refused)
          assert.match(await refused.textContent(), /^\s*4\s*email/)
          await page.keyboard.press('Escape')
        })

        const table = page.getByTestId('contacts-table')
        const row = (name) => table.getByRole('row').filter({ hasText: name })
        await step('finds both by search', async () => {
          await page.getByTestId('contacts-search').fill(run)
          await page.getByRole('button', { name: text.search, exact: true }).click()
          await visible(row(byEmail))
          await visible(row(byPhone))
          assert.equal(await table.getByRole('row').filter({ hasText: run }).count(), 2)
        })

        await step('merges the phone contact into the e-mail one', async () => {
          await row(byEmail).locator('.el-checkbox').click()
          await row(byPhone).locator('.el-checkbox').click()
          await page.getByTestId('contacts-merge').click()
          const dialog = page.getByRole('dialog', { name: text.mergeTitle })
          await visible(dialog)
          await dialog.getByRole('radio', { name: new RegExp(byEmail) }).check()
          await dialog.getByRole('button', { name: text.mergeSubmit, exact: true }).click()
          await visible(page.getByText(text.merged(byEmail)))
          await row(byPhone).waitFor({ state: 'detached', timeout: TIMEOUT })
          await visible(row(byEmail).getByText(email))
          await visible(row(byEmail).getByText(phone))
        })

        await step('exports CSV with the merged contact holding both identities', async () => {
          const [download] = await Promise.all([page.waitForEvent('download', { timeout: TIMEOUT }), page.getByTestId('contacts-export').click()])
          const exported = await readFile(await download.path(), 'utf8')
          const line = exported.split(/\r?\n/).find((l) => l.includes(email))
          assert.ok(line, `the export has no line with ${email}`)
          assert.ok(line.includes(phone), line)
          assert.ok(!exported.includes(byPhone), 'the merged contact is exported once, under the name kept')
        })
      } catch (err) {
        await saveEvidence(`contacts-${locale}-${failedStep}`, pages, server.log())
        throw err
      } finally {
        await context.close()
      }
    })
  })
}
