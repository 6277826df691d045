import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { api, bindApiContext, invoiceHtmlUrl, invoicePdfUrl, ProblemError, request } from '../src/api'

const fetchMock = vi.fn<typeof fetch>()

function json(status: number, body: unknown, contentType = 'application/json'): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': contentType } })
}

function sentHeaders(call = 0): Headers {
  const init = fetchMock.mock.calls[call]?.[1]
  return new Headers(init?.headers)
}

beforeEach(() => {
  fetchMock.mockReset()
  vi.stubGlobal('fetch', fetchMock)
  bindApiContext({ csrfToken: () => 'csrf-123', orgId: () => 'org-42' })
})

afterEach(() => {
  vi.unstubAllGlobals()
})

describe('request', () => {
  it('turns a problem+json answer into a ProblemError with its field errors', async () => {
    fetchMock.mockResolvedValue(
      json(
        422,
        {
          type: 'https://switchboard.dev/problems/validation',
          title: 'Validation failed',
          status: 422,
          detail: 'The request has invalid fields.',
          errors: [
            { field: 'email', message: 'is already taken' },
            { field: 'password', message: 'is too short' },
          ],
        },
        'application/problem+json',
      ),
    )

    const err = await api.signup({ company: 'Acme', name: 'Ann', email: 'a@example.com', password: 'x', locale: 'en' }).catch((e: unknown) => e)

    expect(err).toBeInstanceOf(ProblemError)
    const problem = err as ProblemError
    expect(problem.status).toBe(422)
    expect(problem.title).toBe('Validation failed')
    expect(problem.detail).toBe('The request has invalid fields.')
    expect(problem.message).toBe('The request has invalid fields.')
    expect(problem.errors).toEqual([
      { field: 'email', message: 'is already taken' },
      { field: 'password', message: 'is too short' },
    ])
  })

  it('keeps the status when the error body is not JSON', async () => {
    fetchMock.mockResolvedValue(new Response('upstream down', { status: 502, statusText: 'Bad Gateway' }))
    const err = (await request('GET', '/api/v1/me').catch((e: unknown) => e)) as ProblemError
    expect(err).toBeInstanceOf(ProblemError)
    expect(err.status).toBe(502)
    expect(err.title).toBe('Bad Gateway')
    expect(err.errors).toEqual([])
  })

  it('reports an unreachable server as status 0', async () => {
    fetchMock.mockRejectedValue(new TypeError('Failed to fetch'))
    const err = (await request('GET', '/api/v1/me').catch((e: unknown) => e)) as ProblemError
    expect(err).toBeInstanceOf(ProblemError)
    expect(err.status).toBe(0)
  })

  it('sends JSON, the CSRF token and the organisation on writes', async () => {
    fetchMock.mockResolvedValue(json(201, { id: 'inv-1', email: 'b@example.com', role: 'agent' }))
    await api.createInvitation({ email: 'b@example.com', role: 'agent' })

    const [url, init] = fetchMock.mock.calls[0] ?? []
    expect(url).toBe('/api/v1/invitations')
    expect(init?.method).toBe('POST')
    expect(init?.credentials).toBe('same-origin')
    expect(init?.body).toBe(JSON.stringify({ email: 'b@example.com', role: 'agent' }))
    const headers = sentHeaders()
    expect(headers.get('Content-Type')).toBe('application/json')
    expect(headers.get('X-CSRF-Token')).toBe('csrf-123')
    expect(headers.get('X-Switchboard-Org')).toBe('org-42')
  })

  it('names the tenant a platform admin is viewing, only while viewing', async () => {
    fetchMock.mockImplementation(async () => json(200, { items: [], next_cursor: null }))
    await api.listMembers()
    expect(sentHeaders().get('X-Switchboard-Impersonate')).toBeNull()
    bindApiContext({ csrfToken: () => 'csrf-123', orgId: () => 'org-42', impersonate: () => 'tenant-7' })
    await api.listMembers()
    expect(sentHeaders(1).get('X-Switchboard-Impersonate')).toBe('tenant-7')
  })

  it('sends no CSRF token on reads but still names the organisation', async () => {
    fetchMock.mockResolvedValue(json(200, { items: [], next_cursor: null }))
    await api.listMembers()
    const headers = sentHeaders()
    expect(headers.get('X-CSRF-Token')).toBeNull()
    expect(headers.get('X-Switchboard-Org')).toBe('org-42')
  })

  it('follows next_cursor until the list ends', async () => {
    fetchMock
      .mockResolvedValueOnce(json(200, { items: [{ name: 'agent' }], next_cursor: 'c2' }))
      .mockResolvedValueOnce(json(200, { items: [{ name: 'analyst' }], next_cursor: null }))
    const roles = await api.listRoles()
    expect(roles.map((r) => r.name)).toEqual(['agent', 'analyst'])
    expect(fetchMock.mock.calls.map(([url]) => url)).toEqual(['/api/v1/roles?limit=100', '/api/v1/roles?limit=100&cursor=c2'])
  })

  it('ignores the plain-text body of a 202', async () => {
    fetchMock.mockResolvedValue(new Response('Accepted', { status: 202, headers: { 'Content-Type': 'text/plain; charset=utf-8' } }))
    await expect(api.requestPasswordReset('a@example.com')).resolves.toBeUndefined()
  })

  it('answers undefined for an empty 204', async () => {
    fetchMock.mockResolvedValue(new Response(null, { status: 204 }))
    await expect(api.logout()).resolves.toBeUndefined()
  })
})

describe('billing API', () => {
  it('reads the plan, usage and invoices of the current organisation', async () => {
    fetchMock
      .mockResolvedValueOnce(json(200, { plan: null, history: [] }))
      .mockResolvedValueOnce(json(200, { period_start: '2026-11-01T00:00:00Z', period_end: '2026-12-01T00:00:00Z', meters: [] }))
      .mockResolvedValueOnce(json(200, { items: [], next_cursor: null }))
      .mockResolvedValueOnce(json(200, { total: 99900, draft: true, lines: [] }))
      .mockResolvedValueOnce(json(200, { payment_status: 'ok', credit_balance: 0 }))

    await expect(api.billingPlan()).resolves.toEqual({ plan: null, history: [] })
    await api.billingUsage()
    await api.invoices({ limit: 20, cursor: 'c1' })
    await api.currentInvoice()
    await api.paymentMethod()

    expect(fetchMock.mock.calls.map(([url, init]) => `${init?.method} ${String(url)}`)).toEqual([
      'GET /api/v1/billing/plan',
      'GET /api/v1/billing/usage',
      'GET /api/v1/billing/invoices?limit=20&cursor=c1',
      'GET /api/v1/billing/invoices/current',
      'GET /api/v1/billing/payment-method',
    ])
    expect(sentHeaders(0).get('X-Switchboard-Org')).toBe('org-42')
  })

  it('lists the plans a tenant can move onto and changes plan with the CSRF token', async () => {
    fetchMock
      .mockResolvedValueOnce(json(200, { items: [{ code: 'growth', version: 2 }], next_cursor: null }))
      .mockResolvedValueOnce(json(200, { id: 'ch-1', plan_code: 'growth', plan_version: 2 }))
    const plans = await api.billingPlans()
    expect(plans.map((p) => p.code)).toEqual(['growth'])
    await api.changePlan({ plan_code: 'growth', plan_version: 2 })

    const [url, init] = fetchMock.mock.calls[1] ?? []
    expect(url).toBe('/api/v1/billing/plan')
    expect(init?.method).toBe('PUT')
    expect(init?.body).toBe(JSON.stringify({ plan_code: 'growth', plan_version: 2 }))
    expect(sentHeaders(1).get('X-CSRF-Token')).toBe('csrf-123')
  })

  it('reports the current invoice of a tenant without a plan as a 404 problem', async () => {
    fetchMock.mockResolvedValue(json(404, { title: 'Not Found', status: 404, detail: 'no plan yet: not found' }, 'application/problem+json'))
    const err = (await api.currentInvoice().catch((e: unknown) => e)) as ProblemError
    expect(err).toBeInstanceOf(ProblemError)
    expect(err.status).toBe(404)
  })

  it('surfaces 503 from the payment-method setup when payments are not configured', async () => {
    fetchMock.mockResolvedValue(
      json(503, { title: 'Service Unavailable', status: 503, detail: 'Payments are not configured on this installation' }, 'application/problem+json'),
    )
    const err = (await api.setupPaymentMethod().catch((e: unknown) => e)) as ProblemError
    expect(err.status).toBe(503)
    const [url, init] = fetchMock.mock.calls[0] ?? []
    expect(url).toBe('/api/v1/billing/payment-method')
    expect(init?.method).toBe('POST')
    expect(JSON.parse(String(init?.body))).toEqual({ mode: 'checkout' })
  })

  it('links to the printable invoice in a language', () => {
    expect(invoiceHtmlUrl('inv/1', 'zh-CN')).toBe('/api/v1/billing/invoices/inv%2F1?format=html&lang=zh-CN')
  })

  it('links to the PDF invoice in a language', () => {
    expect(invoicePdfUrl('inv/1', 'zh-CN')).toBe('/api/v1/billing/invoices/inv%2F1?format=pdf&lang=zh-CN')
    expect(invoicePdfUrl('inv-1', 'en')).toBe('/api/v1/billing/invoices/inv-1?format=pdf&lang=en')
  })

  it('fetches the PDF invoice as a file in the current organisation', async () => {
    fetchMock.mockResolvedValue(new Response('%PDF-1.3 test', { status: 200, headers: { 'Content-Type': 'application/pdf' } }))
    const blob = await api.invoicePdf('inv-1', 'zh-CN')
    expect(blob.type).toBe('application/pdf')
    expect(await blob.text()).toBe('%PDF-1.3 test')
    expect(fetchMock.mock.calls[0]?.[0]).toBe('/api/v1/billing/invoices/inv-1?format=pdf&lang=zh-CN')
    expect(sentHeaders().get('X-Switchboard-Org')).toBe('org-42')
  })

  it('reports a failed PDF download as a problem', async () => {
    fetchMock.mockResolvedValue(
      new Response(JSON.stringify({ title: 'Not Found', status: 404 }), { status: 404, headers: { 'Content-Type': 'application/problem+json' } }),
    )
    const err = (await api.invoicePdf('inv-1', 'en').catch((e: unknown) => e)) as ProblemError
    expect(err).toBeInstanceOf(ProblemError)
    expect(err.status).toBe(404)
  })

  it('fetches the printable invoice as text in the current organisation', async () => {
    fetchMock.mockResolvedValue(new Response('<!doctype html><h1>Invoice</h1>', { status: 200, headers: { 'Content-Type': 'text/html; charset=utf-8' } }))
    await expect(api.invoiceHtml('inv-1', 'en')).resolves.toBe('<!doctype html><h1>Invoice</h1>')
    expect(fetchMock.mock.calls[0]?.[0]).toBe('/api/v1/billing/invoices/inv-1?format=html&lang=en')
    expect(sentHeaders().get('X-Switchboard-Org')).toBe('org-42')
  })
})

describe('admin API', () => {
  it('sends tenant actions to the tenant they name', async () => {
    fetchMock.mockImplementation(async () => json(200, {}))
    await api.suspendTenant('t 1')
    await api.reactivateTenant('t1')
    await api.grantCredit('t1', { amount: 500, reason: 'goodwill' })
    await api.moveTenantPlan('t1', { plan_code: 'growth', plan_version: 2, effective_at: '2026-09-01T00:00:00Z' })

    expect(fetchMock.mock.calls.map(([url, init]) => `${init?.method} ${String(url)} ${String(init?.body ?? '')}`)).toEqual([
      'POST /api/v1/admin/tenants/t%201/suspend ',
      'POST /api/v1/admin/tenants/t1/reactivate ',
      'POST /api/v1/admin/tenants/t1/credits {"amount":500,"reason":"goodwill"}',
      'PUT /api/v1/admin/tenants/t1/plan {"plan_code":"growth","plan_version":2,"effective_at":"2026-09-01T00:00:00Z"}',
    ])
    for (let i = 0; i < 4; i++) expect(sentHeaders(i).get('X-CSRF-Token')).toBe('csrf-123')
  })

  it('creates plans and keeps the field errors of a 422', async () => {
    fetchMock.mockResolvedValue(
      json(
        422,
        { title: 'Validation failed', status: 422, errors: [{ field: 'prices[0].meter', message: 'is not a known meter' }] },
        'application/problem+json',
      ),
    )
    const body = {
      code: 'e2e',
      name: 'E2E',
      currency: 'CNY',
      base_fee: 99900,
      trial_days: 0,
      prices: [{ meter: 'bogus', model: 'per_unit' as const, unit_amount: 50, included: 1000 }],
    }
    const err = (await api.createPlan(body).catch((e: unknown) => e)) as ProblemError
    expect(err.errors).toEqual([{ field: 'prices[0].meter', message: 'is not a known meter' }])
    const [url, init] = fetchMock.mock.calls[0] ?? []
    expect(url).toBe('/api/v1/admin/plans')
    expect(init?.method).toBe('POST')
    expect(init?.body).toBe(JSON.stringify(body))
  })

  it('lists tenants and plan versions, runs billing and reads revenue', async () => {
    fetchMock
      .mockResolvedValueOnce(json(200, { items: [{ id: 't1', plan: 'growth@2' }], next_cursor: null }))
      .mockResolvedValueOnce(json(200, { items: [{ code: 'growth', version: 2 }, { code: 'growth', version: 1 }], next_cursor: null }))
      .mockResolvedValueOnce(json(200, { period: '2026-09', finalize: true, items: [] }))
      .mockResolvedValueOnce(json(200, { period: '2026-09', mrr: { CNY: 99900 }, invoiced: {} }))

    expect((await api.adminTenants()).map((t) => t.plan)).toEqual(['growth@2'])
    expect((await api.adminPlans()).map((p) => p.version)).toEqual([2, 1])
    await api.billingRun({ period: '2026-09', finalize: true })
    expect((await api.revenue('2026-09')).mrr).toEqual({ CNY: 99900 })

    expect(fetchMock.mock.calls.map(([url, init]) => `${init?.method} ${String(url)}`)).toEqual([
      'GET /api/v1/admin/tenants?limit=100',
      'GET /api/v1/admin/plans?limit=100',
      'POST /api/v1/admin/billing-runs',
      'GET /api/v1/admin/revenue?period=2026-09',
    ])
    expect(fetchMock.mock.calls[2]?.[1]?.body).toBe(JSON.stringify({ period: '2026-09', finalize: true }))
  })
})
