// HTTP client for the Switchboard API (docs/api-console-contract.md).
// It knows nothing about Vue: the session store tells it which CSRF token and
// organisation to send through bindApiContext, which keeps it easy to test.
import type {
  ApiKey,
  AuditEvent,
  CreatedApiKey,
  DevMail,
  Invitation,
  InvitationPreview,
  Me,
  Member,
  Page,
  Permission,
  Role,
  SessionStart,
} from './types'

export interface FieldError {
  field: string
  message: string
}

/** An RFC 9457 problem document as the server sends it; every member may be absent. */
interface ProblemDocument {
  type?: string
  title?: string
  status?: number
  detail?: string
  errors?: FieldError[]
}

/** A failed API call. status is 0 when the server could not be reached at all. */
export class ProblemError extends Error {
  readonly status: number
  readonly type: string
  readonly title: string
  readonly detail: string
  readonly errors: FieldError[]

  constructor(status: number, doc: ProblemDocument) {
    super(doc.detail || doc.title || `HTTP ${status}`)
    this.name = 'ProblemError'
    this.status = status
    this.type = doc.type ?? 'about:blank'
    this.title = doc.title ?? ''
    this.detail = doc.detail ?? ''
    this.errors = Array.isArray(doc.errors) ? doc.errors : []
  }
}

export interface ApiContext {
  csrfToken(): string | null
  orgId(): string | null
}

let context: ApiContext = { csrfToken: () => null, orgId: () => null }

export function bindApiContext(next: ApiContext): void {
  context = next
}

type Query = Record<string, string | number | null | undefined>

interface RequestOptions {
  body?: unknown
  query?: Query
}

function withQuery(path: string, query: Query | undefined): string {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== null && value !== undefined && value !== '') params.set(key, String(value))
  }
  const qs = params.toString()
  return qs ? `${path}?${qs}` : path
}

async function toProblemError(res: Response): Promise<ProblemError> {
  let doc: ProblemDocument = { title: res.statusText }
  if ((res.headers.get('Content-Type') ?? '').includes('json')) {
    try {
      doc = (await res.json()) as ProblemDocument
    } catch {
      // A broken error body still leaves the status to report.
    }
  }
  return new ProblemError(res.status, doc)
}

export async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const headers = new Headers({ Accept: 'application/json' })
  if (options.body !== undefined) headers.set('Content-Type', 'application/json')
  const csrf = context.csrfToken()
  if (method !== 'GET' && csrf) headers.set('X-CSRF-Token', csrf)
  const org = context.orgId()
  if (org) headers.set('X-Switchboard-Org', org)

  let res: Response
  try {
    res = await fetch(withQuery(path, options.query), {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      // The console is always served from the API's own origin (embedded in
      // the Go binary, or through the Vite proxy), so the cookie never leaves it.
      credentials: 'same-origin',
    })
  } catch (err) {
    throw new ProblemError(0, { title: 'Network error', detail: err instanceof Error ? err.message : String(err) })
  }
  if (!res.ok) throw await toProblemError(res)
  // 202 and 204 answers carry no JSON document (a 202 may say "Accepted" in plain text).
  if (!(res.headers.get('Content-Type') ?? '').includes('json')) return undefined as T
  return (await res.json()) as T
}

const PAGE_SIZE = 100

/** Follows next_cursor to the end; for lists a page shows whole (members, roles, …). */
async function listAll<T>(path: string): Promise<T[]> {
  const items: T[] = []
  let cursor: string | null = null
  do {
    const page: Page<T> = await request<Page<T>>('GET', path, { query: { limit: PAGE_SIZE, cursor } })
    items.push(...page.items)
    cursor = page.next_cursor
  } while (cursor)
  return items
}

const id = encodeURIComponent

export interface SignupInput {
  company: string
  name: string
  email: string
  password: string
  locale: string
}

export const api = {
  signup: (body: SignupInput) => request<SessionStart>('POST', '/api/v1/auth/signup', { body }),
  login: (body: { email: string; password: string }) => request<SessionStart>('POST', '/api/v1/auth/login', { body }),
  logout: () => request<void>('POST', '/api/v1/auth/logout'),
  me: () => request<Me>('GET', '/api/v1/me'),
  verifyEmail: (token: string) => request<{ status: string }>('POST', '/api/v1/auth/verify-email', { body: { token } }),
  resendVerification: () => request<void>('POST', '/api/v1/auth/resend-verification'),
  requestPasswordReset: (email: string) => request<void>('POST', '/api/v1/auth/password-reset', { body: { email } }),
  confirmPasswordReset: (token: string, password: string) =>
    request<void>('POST', '/api/v1/auth/password-reset/confirm', { body: { token, password } }),

  listInvitations: () => listAll<Invitation>('/api/v1/invitations'),
  createInvitation: (body: { email: string; role: string }) =>
    request<Invitation>('POST', '/api/v1/invitations', { body }),
  revokeInvitation: (invitationId: string) => request<void>('DELETE', `/api/v1/invitations/${id(invitationId)}`),
  previewInvitation: (token: string) =>
    request<InvitationPreview>('GET', `/api/v1/invitations/${id(token)}/preview`),
  acceptInvitation: (token: string, body: { name?: string; password?: string }) =>
    request<SessionStart>('POST', `/api/v1/invitations/${id(token)}/accept`, { body }),

  listMembers: () => listAll<Member>('/api/v1/members'),
  updateMember: (userId: string, body: { role?: string; disabled?: boolean }) =>
    request<Member>('PATCH', `/api/v1/members/${id(userId)}`, { body }),
  removeMember: (userId: string) => request<void>('DELETE', `/api/v1/members/${id(userId)}`),

  listRoles: () => listAll<Role>('/api/v1/roles'),
  createRole: (body: { name: string; description: string; permissions: string[] }) =>
    request<Role>('POST', '/api/v1/roles', { body }),
  listPermissions: () => listAll<Permission>('/api/v1/permissions'),

  listApiKeys: () => listAll<ApiKey>('/api/v1/api-keys'),
  createApiKey: (body: { name: string; role: string }) => request<CreatedApiKey>('POST', '/api/v1/api-keys', { body }),
  revokeApiKey: (keyId: string) => request<void>('DELETE', `/api/v1/api-keys/${id(keyId)}`),

  auditEvents: (query: { action?: string; cursor?: string | null; limit?: number }) =>
    request<Page<AuditEvent>>('GET', '/api/v1/audit-events', { query }),

  // Newest first: the first page holds the mail a test or developer is after.
  devMailbox: () => request<Page<DevMail>>('GET', '/api/v1/dev/mailbox', { query: { limit: PAGE_SIZE } }),
}
