// Browser scenario against the real Go server: a tenant signs up, logs out and
// back in, invites an agent, and the agent accepts through the mailed link.
// It runs once per language and asserts on the words a person would read.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { launchBrowser, saveEvidence, startServer } from './support.mjs'

const TIMEOUT = 15_000

// Kept apart from src/locales on purpose: the suite checks what is on screen,
// not that the app agrees with itself.
const TEXT = {
  en: {
    signupTitle: 'Create your Switchboard account',
    signup: 'Sign up',
    company: 'Company',
    yourName: 'Your name',
    email: 'Email',
    password: 'Password',
    name: 'Name',
    welcome: (name) => `Welcome, ${name}`,
    logout: 'Log out',
    loginTitle: 'Log in to Switchboard',
    login: 'Log in',
    members: 'Members',
    owner: 'Owner',
    agent: 'Agent',
    sendInvitation: 'Send invitation',
    invitationSent: (email) => `Invitation sent to ${email}`,
    mailbox: 'Dev mailbox',
    refresh: 'Refresh',
    join: (org) => `Join ${org}`,
    accept: 'Accept invitation',
  },
  'zh-CN': {
    signupTitle: '创建 Switchboard 账号',
    signup: '注册',
    company: '公司名称',
    yourName: '您的姓名',
    email: '邮箱',
    password: '密码',
    name: '姓名',
    welcome: (name) => `欢迎，${name}`,
    logout: '退出登录',
    loginTitle: '登录 Switchboard',
    login: '登录',
    members: '成员',
    owner: '所有者',
    agent: '坐席',
    sendInvitation: '发送邀请',
    invitationSent: (email) => `邀请已发送至 ${email}`,
    mailbox: '开发邮箱',
    refresh: '刷新',
    join: (org) => `加入 ${org}`,
    accept: '接受邀请',
  },
}

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

const visible = (locator) => locator.waitFor({ state: 'visible', timeout: TIMEOUT })

/** The dev mailbox fills asynchronously: refresh until the mail for `to` shows up. */
async function openMail(page, text, to) {
  await page.goto('/dev/mailbox')
  await visible(page.getByRole('heading', { name: text.mailbox }))
  const mail = page.getByTestId('mail').filter({ hasText: to })
  const deadline = Date.now() + TIMEOUT
  while ((await mail.count()) === 0) {
    assert.ok(Date.now() < deadline, `no mail to ${to} in the dev mailbox`)
    await page.waitForTimeout(500)
    await page.getByRole('button', { name: text.refresh }).click()
  }
  return mail.first()
}

for (const [locale, text] of Object.entries(TEXT)) {
  describe(`console in ${locale}`, () => {
    test('sign up, log in again, invite an agent who accepts', async (t) => {
      const run = `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`
      const owner = { name: `Olivia ${locale}`, email: `owner-${run}@example.com`, password: 'correct-horse-battery-1' }
      const agent = { name: `Aaron ${locale}`, email: `agent-${run}@example.com`, password: 'staple-lamp-river-22' }
      const company = `Acme ${locale} ${run}`

      // Each person gets a fresh context: separate cookies, storage and browser language.
      const contextOptions = { baseURL: server.url, locale }
      const ownerContext = await browser.newContext(contextOptions)
      const agentContext = await browser.newContext(contextOptions)
      const pages = { owner: await ownerContext.newPage(), agent: await agentContext.newPage() }
      // Steps share the pages, so they run in sequence inside one test; the
      // step's name goes into the error and the screenshot names.
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
        const page = pages.owner

        await step('signs up a new tenant and lands in the console', async () => {
          await page.goto('/signup')
          await visible(page.getByRole('heading', { name: text.signupTitle }))
          assert.equal(await page.evaluate(() => document.documentElement.lang), locale)
          await page.getByLabel(text.company, { exact: true }).fill(company)
          await page.getByLabel(text.yourName, { exact: true }).fill(owner.name)
          await page.getByLabel(text.email, { exact: true }).fill(owner.email)
          await page.getByLabel(text.password, { exact: true }).fill(owner.password)
          await page.getByRole('button', { name: text.signup }).click()
          await page.waitForURL((url) => url.pathname === '/', { timeout: TIMEOUT })
          await visible(page.getByRole('heading', { name: text.welcome(owner.name) }))
        })

        await step('logs out', async () => {
          await page.getByTestId('user-menu').click()
          await page.getByRole('menuitem', { name: text.logout }).click()
          await page.waitForURL((url) => url.pathname === '/login', { timeout: TIMEOUT })
          await visible(page.getByRole('heading', { name: text.loginTitle }))
        })

        await step('logs in through the login page', async () => {
          await page.getByLabel(text.email, { exact: true }).fill(owner.email)
          await page.getByLabel(text.password, { exact: true }).fill(owner.password)
          await page.getByRole('button', { name: text.login, exact: true }).click()
          await page.waitForURL((url) => url.pathname === '/', { timeout: TIMEOUT })
          await visible(page.getByRole('heading', { name: text.welcome(owner.name) }))
        })

        await step('invites a new email as agent', async () => {
          await page.getByRole('menuitem', { name: text.members }).click()
          await page.waitForURL((url) => url.pathname === '/members', { timeout: TIMEOUT })
          const ownerRow = page.getByTestId('members-table').getByRole('row').filter({ hasText: owner.email })
          await visible(ownerRow.getByText(text.owner, { exact: true }))

          await page.getByLabel(text.email, { exact: true }).fill(agent.email)
          await page.getByTestId('invite-role').click()
          await page.getByRole('option', { name: text.agent, exact: true }).click()
          await page.getByRole('button', { name: text.sendInvitation }).click()
          await visible(page.getByText(text.invitationSent(agent.email)))
          const invitation = page.getByTestId('invitations-table').getByRole('row').filter({ hasText: agent.email })
          await visible(invitation.getByText(text.agent, { exact: true }))
        })

        await step('the invitee follows the mailed link and accepts', async () => {
          const invitee = pages.agent
          const mail = await openMail(invitee, text, agent.email)
          await mail.locator('a[href*="/invite/"]').first().click()
          await invitee.waitForURL((url) => url.pathname.startsWith('/invite/'), { timeout: TIMEOUT })
          await visible(invitee.getByRole('heading', { name: text.join(company) }))
          await visible(invitee.getByText(text.agent, { exact: true }))
          await invitee.getByLabel(text.name, { exact: true }).fill(agent.name)
          await invitee.getByLabel(text.password, { exact: true }).fill(agent.password)
          await invitee.getByRole('button', { name: text.accept }).click()
          await invitee.waitForURL((url) => url.pathname === '/', { timeout: TIMEOUT })
          await visible(invitee.getByRole('heading', { name: text.welcome(agent.name) }))
        })

        await step('the owner sees the new member with the agent role', async () => {
          await page.reload()
          const row = page.getByTestId('members-table').getByRole('row').filter({ hasText: agent.email })
          await visible(row)
          await visible(row.getByText(text.agent, { exact: true }))
        })
      } catch (err) {
        await saveEvidence(`${locale}-${failedStep}`, pages, server.log())
        throw err
      } finally {
        await ownerContext.close()
        await agentContext.close()
      }
    })
  })
}
