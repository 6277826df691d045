import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { api, bindApiContext, ProblemError, request } from '../src/api'

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
