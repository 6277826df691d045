// HTTP client for the Switchboard API (docs/api-console-contract.md).
// It knows nothing about Vue: the session store tells it which CSRF token and
// organisation to send through bindApiContext, which keeps it easy to test.
import type {
  AdminTenant,
  ApiKey,
  Attachment,
  AuditEvent,
  BillingAccount,
  BillingRun,
  CannedInput,
  CannedResponse,
  Channel,
  ChannelInput,
  ChannelType,
  ChannelUpdate,
  Contact,
  ContactField,
  ContactInput,
  Conversation,
  ConversationQuery,
  ConversationUpdate,
  CreatedApiKey,
  DevMail,
  ImportResult,
  Invitation,
  InvitationPreview,
  Invoice,
  Me,
  Member,
  Message,
  Page,
  Permission,
  Plan,
  PlanInput,
  PlanMove,
  PlanState,
  Revenue,
  Role,
  SessionStart,
  SubscriptionChange,
  TimelineItem,
  UnreadCounts,
  UsageReport,
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
  /** The tenant a platform admin is viewing read-only, if any. */
  impersonate?(): string | null
}

let context: ApiContext = { csrfToken: () => null, orgId: () => null }

export function bindApiContext(next: ApiContext): void {
  context = next
}

type Query = Record<string, string | number | null | undefined>

interface RequestOptions {
  body?: unknown
  query?: Query
  /** Answer the body as text (an HTML document) instead of JSON. */
  text?: boolean
  /** A multipart body (file uploads); the browser sets its Content-Type. */
  form?: FormData
  /** Answer the body as a Blob (a file download). */
  blob?: boolean
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
  const accept = options.text ? 'text/html, application/problem+json' : options.blob ? '*/*' : 'application/json'
  const headers = new Headers({ Accept: accept })
  if (options.body !== undefined) headers.set('Content-Type', 'application/json')
  const csrf = context.csrfToken()
  if (method !== 'GET' && csrf) headers.set('X-CSRF-Token', csrf)
  const org = context.orgId()
  if (org) headers.set('X-Switchboard-Org', org)
  const viewing = context.impersonate?.()
  if (viewing) headers.set('X-Switchboard-Impersonate', viewing)

  let res: Response
  try {
    res = await fetch(withQuery(path, options.query), {
      method,
      headers,
      body: options.form ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
      // The console is always served from the API's own origin (embedded in
      // the Go binary, or through the Vite proxy), so the cookie never leaves it.
      credentials: 'same-origin',
    })
  } catch (err) {
    throw new ProblemError(0, { title: 'Network error', detail: err instanceof Error ? err.message : String(err) })
  }
  if (!res.ok) throw await toProblemError(res)
  if (options.text) return (await res.text()) as T
  if (options.blob) return (await res.blob()) as T
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

  // Billing of the current (tenant) organisation.
  billingPlan: () => request<PlanState>('GET', '/api/v1/billing/plan'),
  /** The latest version of each plan: what the tenant can move onto. */
  billingPlans: () => listAll<Plan>('/api/v1/billing/plans'),
  changePlan: (body: { plan_code: string; plan_version?: number }) =>
    request<SubscriptionChange>('PUT', '/api/v1/billing/plan', { body }),
  billingUsage: () => request<UsageReport>('GET', '/api/v1/billing/usage'),
  /** The live draft of the open period; 404 while the tenant is on no plan. */
  currentInvoice: () => request<Invoice>('GET', '/api/v1/billing/invoices/current'),
  invoices: (query: { cursor?: string | null; limit?: number }) =>
    request<Page<Invoice>>('GET', '/api/v1/billing/invoices', { query }),
  /** The printable invoice as an HTML document, fetched in the current organisation. */
  invoiceHtml: (invoiceId: string, lang: string) =>
    request<string>('GET', `/api/v1/billing/invoices/${id(invoiceId)}`, { query: { format: 'html', lang }, text: true }),
  /** The invoice as a PDF file, fetched in the current organisation. */
  invoicePdf: (invoiceId: string, lang: string) =>
    request<Blob>('GET', `/api/v1/billing/invoices/${id(invoiceId)}`, { query: { format: 'pdf', lang }, blob: true }),
  paymentMethod: () => request<BillingAccount>('GET', '/api/v1/billing/payment-method'),
  /** 201 with a Stripe SetupIntent's client secret; 503 when payments are not configured. */
  /** A Stripe Checkout page (setup mode) that collects a card and returns to /billing. */
  setupPaymentMethod: () => request<{ url: string }>('POST', '/api/v1/billing/payment-method', { body: { mode: 'checkout' } }),

  // Platform administration (platform organisation only; 404 for everyone else).
  adminTenants: () => listAll<AdminTenant>('/api/v1/admin/tenants'),
  /** Starts (and audits) a read-only view of a tenant's console. */
  startImpersonation: (tenantId: string) => request<unknown>('POST', `/api/v1/admin/tenants/${id(tenantId)}/impersonate`),
  suspendTenant: (tenantId: string) => request<unknown>('POST', `/api/v1/admin/tenants/${id(tenantId)}/suspend`),
  reactivateTenant: (tenantId: string) => request<unknown>('POST', `/api/v1/admin/tenants/${id(tenantId)}/reactivate`),
  grantCredit: (tenantId: string, body: { amount: number; reason: string }) =>
    request<BillingAccount>('POST', `/api/v1/admin/tenants/${id(tenantId)}/credits`, { body }),
  moveTenantPlan: (tenantId: string, body: PlanMove) =>
    request<SubscriptionChange>('PUT', `/api/v1/admin/tenants/${id(tenantId)}/plan`, { body }),
  /** Every version of every plan, newest version first within a code. */
  adminPlans: () => listAll<Plan>('/api/v1/admin/plans'),
  createPlan: (body: PlanInput) => request<Plan>('POST', '/api/v1/admin/plans', { body }),
  billingRun: (body: { period: string; finalize: boolean }) => request<BillingRun>('POST', '/api/v1/admin/billing-runs', { body }),
  revenue: (period: string) => request<Revenue>('GET', '/api/v1/admin/revenue', { query: { period } }),

  // The inbox (docs/api-console-contract.md, "Omnichannel contact").
  conversations: (query: ConversationQuery) =>
    request<Page<Conversation>>('GET', '/api/v1/conversations', { query: { ...query } }),
  conversation: (conversationId: string) => request<Conversation>('GET', `/api/v1/conversations/${id(conversationId)}`),
  unreadCounts: () => request<UnreadCounts>('GET', '/api/v1/conversations/unread-counts'),
  updateConversation: (conversationId: string, body: ConversationUpdate) =>
    request<Conversation>('PATCH', `/api/v1/conversations/${id(conversationId)}`, { body }),
  bulkUpdateConversations: (ids: string[], update: ConversationUpdate) =>
    request<{ updated: number }>('POST', '/api/v1/conversations/bulk', { body: { ids, update } }),
  markRead: (conversationId: string) => request<void>('POST', `/api/v1/conversations/${id(conversationId)}/read`),
  /** Oldest first; the cursor is the last message id seen. Notes are included. */
  messages: (conversationId: string, cursor?: string | null) =>
    request<Page<Message>>('GET', `/api/v1/conversations/${id(conversationId)}/messages`, {
      query: { private: 'true', limit: PAGE_SIZE, cursor },
    }),
  reply: (conversationId: string, body: { content: string; attachments: string[] }) =>
    request<Message>('POST', `/api/v1/conversations/${id(conversationId)}/messages`, { body }),
  retryMessage: (conversationId: string, messageId: string) =>
    request<Message>('POST', `/api/v1/conversations/${id(conversationId)}/messages/${id(messageId)}/retry`),
  addNote: (conversationId: string, body: { content: string; mentions: string[] }) =>
    request<Message>('POST', `/api/v1/conversations/${id(conversationId)}/notes`, { body }),
  cannedResponses: () => listAll<CannedResponse>('/api/v1/canned-responses'),
  createCanned: (body: CannedInput) => request<CannedResponse>('POST', '/api/v1/canned-responses', { body }),
  updateCanned: (cannedId: string, body: CannedInput) =>
    request<CannedResponse>('PUT', `/api/v1/canned-responses/${id(cannedId)}`, { body }),
  deleteCanned: (cannedId: string) => request<void>('DELETE', `/api/v1/canned-responses/${id(cannedId)}`),
  /** A canned response with its placeholders filled for this conversation. */
  renderCanned: (conversationId: string, cannedId: string) =>
    request<{ content: string }>('GET', `/api/v1/conversations/${id(conversationId)}/canned-responses/${id(cannedId)}`),
  uploadAttachment: (file: File) => {
    const form = new FormData()
    form.append('file', file)
    return request<Attachment>('POST', '/api/v1/attachments', { form })
  },
  /** The file, fetched in the current organisation (a plain link would use the default one). */
  downloadAttachment: (attachmentId: string) => request<Blob>('GET', `/api/v1/attachments/${id(attachmentId)}`, { blob: true }),

  // Contacts.
  contacts: (query: { q?: string; tag?: string; cursor?: string | null; limit?: number }) =>
    request<Page<Contact>>('GET', '/api/v1/contacts', { query: { ...query } }),
  contact: (contactId: string) => request<Contact>('GET', `/api/v1/contacts/${id(contactId)}`),
  createContact: (body: ContactInput) => request<Contact>('POST', '/api/v1/contacts', { body }),
  updateContact: (contactId: string, body: ContactInput) =>
    request<Contact>('PATCH', `/api/v1/contacts/${id(contactId)}`, { body }),
  removeIdentity: (contactId: string, identityId: string) =>
    request<void>('DELETE', `/api/v1/contacts/${id(contactId)}/identities/${id(identityId)}`),
  /** Newest first; the cursor is the last item's id. */
  timeline: (contactId: string, cursor?: string | null, limit = 20) =>
    request<Page<TimelineItem>>('GET', `/api/v1/contacts/${id(contactId)}/timeline`, { query: { cursor, limit } }),
  /** The winner keeps its id and gains the loser's identities and conversations. */
  mergeContacts: (winnerId: string, loserId: string) =>
    request<Contact>('POST', '/api/v1/contacts/merge', { body: { winner_id: winnerId, loser_id: loserId } }),
  exportContacts: () => request<Blob>('GET', '/api/v1/contacts/export', { blob: true }),
  importContacts: (file: File) => {
    const form = new FormData()
    form.append('file', file)
    return request<ImportResult>('POST', '/api/v1/contacts/import', { form })
  },
  contactFields: () => request<{ items: ContactField[] }>('GET', '/api/v1/contact-fields'),
  saveContactField: (key: string, body: Omit<ContactField, 'key' | 'created_at'>) =>
    request<ContactField>('PUT', `/api/v1/contact-fields/${id(key)}`, { body }),
  deleteContactField: (key: string) => request<void>('DELETE', `/api/v1/contact-fields/${id(key)}`),

  // Channels.
  channelTypes: () => request<{ items: ChannelType[] }>('GET', '/api/v1/channel-types'),
  channels: () => listAll<Channel>('/api/v1/channels'),
  channel: (channelId: string) => request<Channel>('GET', `/api/v1/channels/${id(channelId)}`),
  createChannel: (body: ChannelInput) => request<Channel>('POST', '/api/v1/channels', { body }),
  updateChannel: (channelId: string, body: ChannelUpdate) =>
    request<Channel>('PATCH', `/api/v1/channels/${id(channelId)}`, { body }),
  /** Re-runs the provider set-up; the answer's last_error says how it went ("" is fine). */
  testChannel: (channelId: string) => request<Channel>('POST', `/api/v1/channels/${id(channelId)}/test`),

  // Newest first: the first page holds the mail a test or developer is after.
  devMailbox: () => request<Page<DevMail>>('GET', '/api/v1/dev/mailbox', { query: { limit: PAGE_SIZE } }),
}

/**
 * Address of an invoice's printable HTML. A plain link (opened in a new tab) sends the cookie
 * but not X-Switchboard-Org, so the server answers it in the user's default organisation (the
 * first membership); in another organisation use api.invoiceHtml.
 */
export function invoiceHtmlUrl(invoiceId: string, lang: string): string {
  return withQuery(`/api/v1/billing/invoices/${id(invoiceId)}`, { format: 'html', lang })
}

/**
 * Address of an invoice as a PDF download (the server names the file after the invoice
 * number). Like invoiceHtmlUrl it answers in the user's default organisation; in another
 * organisation use api.invoicePdf.
 */
export function invoicePdfUrl(invoiceId: string, lang: string): string {
  return withQuery(`/api/v1/billing/invoices/${id(invoiceId)}`, { format: 'pdf', lang })
}
