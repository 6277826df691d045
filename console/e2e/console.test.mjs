// Browser scenarios against the real Go server (started with its demo data):
// - a tenant signs up, logs out and back in, invites an agent, and the agent
//   accepts through the mailed link;
// - the platform admin creates a plan, moves Acme onto it, finalises a billing
//   run, and Acme's owner finds the same invoice on the Billing page.
// Each runs once per language and asserts on the words a person would read.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { DEMO_PASSWORD, launchBrowser, saveEvidence, startServer } from './support.mjs'

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
    billing: 'Billing',
    tenants: 'Tenants',
    plans: 'Plans',
    billingRuns: 'Billing runs',
    newPlanTitle: 'New plan or version',
    planCode: 'Code',
    planName: 'Name',
    currency: 'Currency',
    baseFee: 'Base fee',
    interactions: 'Interactions',
    planCreated: (code) => `Plan ${code} version 1 created`,
    movePlan: 'Move plan',
    moveTitle: (name) => `Move ${name} to a plan`,
    effectiveAt: 'Effective from (UTC)',
    month: 'Month',
    planMoved: (name, plan) => `${name} moved to ${plan}`,
    finalise: 'Finalise',
    suspend: 'Suspend',
    reactivate: 'Reactivate',
    suspendedBanner: 'Organisation suspended',
    print: 'Print / download',
    downloadPdf: 'Download PDF',
    viewing: (name) => `Viewing ${name} as a platform admin`,
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
    billing: '账单',
    tenants: '租户',
    plans: '套餐',
    billingRuns: '账单批处理',
    newPlanTitle: '新建套餐或版本',
    planCode: '代码',
    planName: '名称',
    currency: '币种',
    baseFee: '基础费用',
    interactions: '交互次数',
    planCreated: (code) => `已创建套餐 ${code} 第 1 版`,
    movePlan: '更换套餐',
    moveTitle: (name) => `为 ${name} 更换套餐`,
    effectiveAt: '生效时间（UTC）',
    month: '月份',
    planMoved: (name, plan) => `已将 ${name} 更换为 ${plan}`,
    finalise: '最终确定',
    suspend: '暂停',
    reactivate: '恢复',
    suspendedBanner: '组织已暂停',
    print: '打印 / 下载',
    downloadPdf: '下载 PDF',
    viewing: (name) => `正在以平台管理员身份查看 ${name}`,
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

const DAY_MS = 24 * 60 * 60 * 1000

// Seeded by `serve --demo` (see support.mjs).
const ACCOUNTS = {
  admin: { email: 'admin@switchboard.test' },
  acme: { email: 'owner@acme.test' },
  globex: { email: 'owner@globex.test' },
}

/** Minor units as the console shows them: major units, two decimals, the currency code. */
function money(minor, currency) {
  const major = Math.trunc(minor / 100)
  return `${major.toLocaleString('en-US')}.${String(minor % 100).padStart(2, '0')} ${currency}`
}

/** Logs a context in through the API (its pages share the cookie); answers the CSRF token. */
async function apiLogin(context, email) {
  const login = await context.request.post('/api/v1/auth/login', { data: { email, password: DEMO_PASSWORD } })
  assert.equal(login.status(), 200, await login.text())
  const me = await context.request.get('/api/v1/me')
  assert.equal(me.status(), 200, await me.text())
  return (await me.json()).csrf_token
}

/** A row of the admin tenants table, found by the tenant's slug (names repeat, slugs do not). */
const tenantRow = (page, slug) =>
  page.getByTestId('tenants-table').getByRole('row').filter({ has: page.getByTestId('tenant-slug').getByText(slug, { exact: true }) })

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

    test('the platform admin bills Acme on a new plan; the owner sees the invoice', async (t) => {
      const { admin, acme, globex } = ACCOUNTS
      const plan = { code: `e2e-${locale}`, name: `E2E ${locale}`, baseFee: 99900, unit: 50, included: 1000 }
      const used = 1500
      // Each language bills its own month (en three months back, zh-CN two), starting on day 1
      // at midnight UTC, so the runs against one server never meet; the later language takes
      // the later month, so each move is Acme's newest plan change when it is checked.
      const monthsBack = Object.keys(TEXT).length + 1 - Object.keys(TEXT).indexOf(locale)
      const now = new Date()
      const effective = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - monthsBack, 1))
      const month = effective.toISOString().slice(0, 7)
      const expectedTotal = money(plan.baseFee + (used - plan.included) * plan.unit, 'CNY')

      const contextOptions = { baseURL: server.url, locale }
      const adminContext = await browser.newContext(contextOptions)
      const ownerContext = await browser.newContext(contextOptions)
      const globexContext = await browser.newContext(contextOptions)
      const pages = { admin: await adminContext.newPage(), owner: await ownerContext.newPage(), globex: await globexContext.newPage() }
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
      let invoiceNumber = ''
      try {
        const page = pages.admin

        await step("Acme's owner reports usage in that month through the API", async () => {
          const csrf = await apiLogin(ownerContext, acme.email)
          const res = await ownerContext.request.post('/api/v1/usage-events', {
            headers: { 'X-CSRF-Token': csrf },
            data: {
              events: [
                {
                  meter: 'interactions',
                  quantity: used,
                  idempotency_key: `e2e-${locale}-${month}`,
                  occurred_at: new Date(effective.getTime() + 9 * DAY_MS).toISOString(),
                },
              ],
            },
          })
          assert.equal(res.status(), 200, await res.text())
        })

        await step('the platform admin logs in to the platform organisation', async () => {
          await page.goto('/login')
          await page.getByLabel(text.email, { exact: true }).fill(admin.email)
          await page.getByLabel(text.password, { exact: true }).fill(DEMO_PASSWORD)
          await page.getByRole('button', { name: text.login, exact: true }).click()
          await page.waitForURL((url) => url.pathname === '/', { timeout: TIMEOUT })
          await visible(page.getByTestId('org-switcher').getByText('Switchboard Platform'))
        })

        await step('creates a plan with a per-unit interactions price', async () => {
          await page.getByRole('menuitem', { name: text.plans, exact: true }).click()
          await page.waitForURL((url) => url.pathname === '/admin/plans', { timeout: TIMEOUT })
          await page.getByTestId('create-plan').click()
          const dialog = page.getByRole('dialog', { name: text.newPlanTitle })
          await visible(dialog)
          await dialog.getByLabel(text.planCode, { exact: true }).fill(plan.code)
          await dialog.getByLabel(text.planName, { exact: true }).fill(plan.name)
          await dialog.getByLabel(text.currency, { exact: true }).fill('CNY')
          await dialog.getByLabel(text.baseFee, { exact: true }).fill('999.00')
          await dialog.getByTestId('add-price').click()
          await dialog.getByTestId('price-meter-0').click()
          await page.getByRole('option', { name: text.interactions, exact: true }).click()
          await dialog.getByTestId('price-unit-0').fill('0.50')
          await dialog.getByTestId('price-included-0').locator('input').fill(String(plan.included))
          await dialog.getByTestId('create-plan-submit').click()
          await visible(page.getByText(text.planCreated(plan.code)))
          const row = page.getByTestId('plans-table').getByRole('row').filter({ has: page.getByText(plan.code, { exact: true }) })
          await visible(row.getByText(money(plan.baseFee, 'CNY'), { exact: true }))
        })

        await step(`moves Acme onto it from ${effective.toISOString()}`, async () => {
          await page.getByRole('menuitem', { name: text.tenants, exact: true }).click()
          await page.waitForURL((url) => url.pathname === '/admin/tenants', { timeout: TIMEOUT })
          const row = tenantRow(page, 'acme')
          await row.getByRole('button', { name: text.movePlan }).click()
          const dialog = page.getByRole('dialog', { name: text.moveTitle('Acme') })
          await visible(dialog)
          await dialog.getByTestId('move-plan-select').click()
          await page.getByRole('option').filter({ hasText: `${plan.code} ` }).click()
          const picker = dialog.getByLabel(text.effectiveAt, { exact: true })
          await picker.click()
          await picker.fill(`${effective.toISOString().slice(0, 10)} 00:00:00`)
          await picker.press('Enter')
          await visible(dialog.getByText(effective.toISOString().replace('.000Z', 'Z')))
          await dialog.getByTestId('move-plan-submit').click()
          await visible(page.getByText(text.planMoved('Acme', `${plan.code}@1`)))
          await visible(row.getByText(`${plan.code}@1`, { exact: true }))
        })

        await step(`finalises the billing run of ${month}`, async () => {
          await page.getByRole('menuitem', { name: text.billingRuns, exact: true }).click()
          await page.waitForURL((url) => url.pathname === '/admin/billing', { timeout: TIMEOUT })
          const monthInput = page.getByLabel(text.month, { exact: true })
          await monthInput.click()
          await monthInput.fill(month)
          await monthInput.press('Enter')
          await page.getByTestId('billing-finalize').click()
          await page.getByRole('dialog').getByRole('button', { name: text.finalise }).click()
          const row = page.getByTestId('billing-results').getByRole('row').filter({ hasText: 'Acme' })
          await visible(row.getByTestId('result-number'))
          invoiceNumber = (await row.getByTestId('result-number').textContent()).trim()
          assert.match(invoiceNumber, new RegExp(`^ACME-${month.replace('-', '')}-\\d{4}$`))
          assert.equal((await row.getByTestId('result-total').textContent()).trim(), expectedTotal)
        })

        await step('the owner finds the same invoice and the usage on the Billing page', async () => {
          const owner = pages.owner
          await owner.goto('/')
          await owner.getByRole('menuitem', { name: text.billing, exact: true }).click()
          await owner.waitForURL((url) => url.pathname === '/billing', { timeout: TIMEOUT })
          assert.equal(await owner.getByRole('menuitem', { name: text.tenants, exact: true }).count(), 0)
          const invoice = owner.getByTestId('invoices-table').getByRole('row').filter({ hasText: invoiceNumber })
          await visible(invoice)
          await visible(invoice.getByText(expectedTotal, { exact: true }))
          const print = invoice.getByRole('link', { name: text.print })
          assert.match(await print.getAttribute('href'), /format=html/)
          assert.equal(await print.getAttribute('target'), '_blank')
          const pdf = invoice.getByRole('link', { name: text.downloadPdf })
          const pdfHref = await pdf.getAttribute('href')
          assert.match(pdfHref, new RegExp(`format=pdf&lang=${locale}`))
          assert.equal(await pdf.getAttribute('download'), `${invoiceNumber}.pdf`)
          const file = await owner.context().request.get(pdfHref)
          assert.equal(file.status(), 200)
          assert.equal(file.headers()['content-type'], 'application/pdf')
          assert.equal(file.headers()['content-disposition'], `attachment; filename="${invoiceNumber}.pdf"`)
          assert.equal((await file.body()).subarray(0, 5).toString(), '%PDF-')
          const usage = owner.getByTestId('usage-table').getByRole('row').filter({ hasText: text.interactions })
          await visible(usage)
        })

        await step('suspending Globex shows its owner the suspension banner', async () => {
          await page.getByRole('menuitem', { name: text.tenants, exact: true }).click()
          await page.waitForURL((url) => url.pathname === '/admin/tenants', { timeout: TIMEOUT })
          const row = tenantRow(page, 'globex')
          await row.getByRole('button', { name: text.suspend }).click()
          await page.locator('.el-popconfirm:visible').getByRole('button').last().click()
          await visible(row.getByRole('button', { name: text.reactivate }))

          await apiLogin(globexContext, globex.email)
          const other = pages.globex
          await other.goto('/')
          const banner = other.getByTestId('status-banner')
          await visible(banner)
          await visible(banner.getByText(text.suspendedBanner))

          await row.getByRole('button', { name: text.reactivate }).click()
          await page.locator('.el-popconfirm:visible').getByRole('button').last().click()
          await visible(row.getByRole('button', { name: text.suspend }))
          await other.reload()
          await visible(other.getByRole('menuitem', { name: text.billing, exact: true }))
          assert.equal(await other.getByTestId('status-banner').count(), 0)
        })

        await step('the platform admin views Acme read-only, with a banner, and stops', async () => {
          await tenantRow(page, 'acme').getByTestId('view-as').click()
          const banner = page.getByTestId('status-banner')
          await visible(banner.getByText(text.viewing('Acme')))
          await page.getByRole('menuitem', { name: text.billing, exact: true }).click()
          await page.waitForURL((url) => url.pathname === '/billing', { timeout: TIMEOUT })
          await visible(page.getByTestId('usage-table'))
          await banner.getByTestId('stop-viewing').click()
          await page.waitForURL((url) => url.pathname === '/admin/tenants', { timeout: TIMEOUT })
          assert.equal(await page.getByTestId('status-banner').count(), 0)
        })
      } catch (err) {
        await saveEvidence(`${locale}-billing-${failedStep}`, pages, server.log())
        throw err
      } finally {
        await adminContext.close()
        await ownerContext.close()
        await globexContext.close()
      }
    })
  })
}
