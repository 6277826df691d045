// Browser scenario of the chat widget against the real Go server (demo data): a visitor opens a
// plain HTML page of the brand's site with the widget script, writes in Chinese, and Acme's
// agent, whose inbox is open, sees the conversation appear live within a second; the agent's
// reply appears in the widget; the visitor reloads the page and the thread is still there.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer } from 'node:http'
import { after, before, test } from 'node:test'
import { DEMO_PASSWORD, launchBrowser, saveEvidence, startServer } from './support.mjs'

const TIMEOUT = 15_000
/** The acceptance line: the agent sees the message within a second, without reloading. */
const LIVE_MS = 1_000

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

/** The brand's site: one plain page, no framework, with the widget embedded. */
async function startSite(switchboardURL, channel) {
  const page = `<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>Acme 商城</title></head>
<body><h1>Acme 商城</h1><p>欢迎光临。</p>
<script>window.SwitchboardSettings = { locale: "zh-CN" };</script>
<script src="${switchboardURL}/widget.js" data-channel="${channel}" async></script>
</body></html>`
  const http = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' })
    res.end(page)
  })
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  return { url: `http://127.0.0.1:${http.address().port}/`, close: () => new Promise((r) => http.close(r)) }
}

test('a visitor writes in Chinese from the widget; the agent sees it live and answers; the thread survives a reload', async (t) => {
  const run = Date.now().toString(36)
  const visitorName = `访客 ${run}`
  const question = `你好，我的订单 ${run} 什么时候发货？`
  const answer = `您好，订单 ${run} 今天下午发出。`

  const agentContext = await browser.newContext({ baseURL: server.url, locale: 'zh-CN' })
  const visitorContext = await browser.newContext({ locale: 'zh-CN' })
  const pages = { agent: await agentContext.newPage(), visitor: await visitorContext.newPage() }
  const { agent, visitor } = pages
  const errors = []
  for (const [who, p] of Object.entries(pages)) {
    p.on('pageerror', (err) => errors.push(`${who}: ${err.message}`))
  }
  let site
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
    let channel = ''
    await step("Acme's owner logs in and opens the inbox, live", async () => {
      await agent.goto('/login')
      await agent.getByLabel('邮箱', { exact: true }).fill('owner@acme.test')
      await agent.getByLabel('密码', { exact: true }).fill(DEMO_PASSWORD)
      await agent.getByRole('button', { name: '登录', exact: true }).click()
      await agent.waitForURL((url) => url.pathname === '/', { timeout: TIMEOUT })
      // The demo's web chat channel (serve --demo seeds it).
      const res = await agentContext.request.get('/api/v1/channels?type=webchat')
      assert.equal(res.status(), 200)
      channel = (await res.json()).items[0].public_id
      await agent.goto('/inbox?view=all')
      await visible(agent.locator('[data-testid="realtime-status"][data-status="open"]'))
    })

    site = await startSite(server.url, channel)
    const item = agent.getByTestId('conversation-item').filter({ hasText: visitorName })
    await step('the visitor opens the brand page, fills the pre-chat form and writes in Chinese', async () => {
      await visitor.goto(site.url)
      await visitor.getByRole('button', { name: '在线客服' }).click()
      await visitor.getByPlaceholder('您的姓名').fill(visitorName)
      await visitor.getByPlaceholder('邮箱').fill(`visitor-${run}@example.com`)
      await visitor.getByRole('button', { name: '开始对话' }).click()
      const box = visitor.getByPlaceholder('请输入消息…')
      await visible(box)
      assert.equal(await item.count(), 0)
      await box.fill(question)
      await box.press('Enter')
      const startedAt = Date.now()
      await visible(visitor.locator('.m.out').filter({ hasText: question }))
      // The agent's open inbox shows it without a reload, within a second of the widget showing it sent.
      await visible(item, LIVE_MS)
      t.diagnostic(`the agent saw it ${Date.now() - startedAt} ms after the widget showed it sent`)
      await visible(item.getByTestId('conversation-preview').getByText(question), LIVE_MS)
    })

    await step('the agent opens it and answers', async () => {
      await item.click()
      const pane = agent.getByTestId('conversation-pane')
      await visible(pane.getByTestId('thread').getByTestId('message-text').getByText(question, { exact: true }))
      const input = pane.getByTestId('reply-input')
      await input.fill(answer)
      await agent.keyboard.press('Control+Enter')
      await visible(pane.getByTestId('message').filter({ hasText: answer }))
    })

    await step("the answer appears in the visitor's widget without a reload", async () => {
      await visible(visitor.locator('.m.in').filter({ hasText: answer }), 5_000)
    })

    await step('the visitor reloads the page and still sees the whole thread', async () => {
      await visitor.reload()
      await visitor.getByRole('button', { name: '在线客服' }).click()
      await visible(visitor.locator('.m.out').filter({ hasText: question }))
      await visible(visitor.locator('.m.in').filter({ hasText: answer }))
      assert.equal(await visitor.locator('.m.out').filter({ hasText: question }).count(), 1, 'the question is shown once')
    })
    assert.deepEqual(errors, [])
  } catch (err) {
    await saveEvidence(`widget-${failedStep}`, pages, server.log())
    if (errors.length > 0) err.message += `\npage errors:\n${errors.join('\n')}`
    throw err
  } finally {
    await agentContext.close()
    await visitorContext.close()
    await site?.close()
  }
})
