// Shapes of the JSON documents in docs/api-console-contract.md.

export interface User {
  id: string
  email: string
  name: string
  locale: string
  email_verified: boolean
}

export type OrgKind = 'platform' | 'tenant' | 'vendor'

export interface Membership {
  org_id: string
  org_kind: OrgKind
  org_name: string
  role: string
}

export interface Org {
  id: string
  kind: OrgKind
  name: string
  status: string
}

export interface Me {
  user: User
  memberships: Membership[]
  /** Null when the user belongs to no organisation (removed from every one). */
  current_org: Org | null
  role: string
  permissions: string[]
  csrf_token: string
  /** A platform admin viewing this tenant read-only. */
  impersonating?: boolean
}

/** Answer of signup, login and invitation accept. */
export interface SessionStart {
  user: User
  csrf_token: string
  current_org?: Org
}

export interface Page<T> {
  items: T[]
  next_cursor: string | null
}

export interface Invitation {
  id: string
  email: string
  role: string
  status: string
  expires_at: string
  created_at: string
  invited_by: string
}

export interface InvitationPreview {
  org_name: string
  email: string
  role: string
  user_exists: boolean
}

export interface Member {
  user_id: string
  email: string
  name: string
  role: string
  status: string
  joined_at: string
}

export interface Role {
  name: string
  builtin: boolean
  description: string
  permissions: string[]
}

export interface Permission {
  name: string
  module: string
  description: string
}

export interface ApiKey {
  id: string
  name: string
  role: string
  prefix: string
  created_at: string
  last_used_at: string | null
  revoked_at: string | null
}

export interface CreatedApiKey {
  id: string
  name: string
  role: string
  prefix: string
  key: string
  created_at: string
}

export interface AuditEvent {
  id: string
  actor_id: string
  actor_email: string
  action: string
  object_type: string
  object_id: string
  ip: string
  user_agent: string
  created_at: string
  data: unknown
}

export interface DevMail {
  id: string
  to: string
  subject: string
  body: string
  created_at: string
}

// ——— Billing (tenant) and platform admin. Amounts are integers in minor units. ———

export type OrgStatus = 'trial' | 'active' | 'past_due' | 'suspended' | 'cancelled'

export type PriceModel = 'per_unit' | 'graduated' | 'volume'

export interface Tier {
  /** 0: no upper bound (last tier only). */
  up_to: number
  unit_amount: number
  flat_amount: number
}

export interface Price {
  meter: string
  model: PriceModel
  unit_amount: number
  included: number
  tiers?: Tier[]
}

export interface Plan {
  code: string
  version: number
  name: string
  currency: string
  base_fee: number
  trial_days: number
  prices: Price[]
  created_at: string
}

export interface SubscriptionChange {
  id: string
  plan_code: string
  plan_version: number
  effective_at: string
  created_at: string
}

/** GET /billing/plan: the plan in force (null before the first) and every change, oldest first. */
export interface PlanState {
  plan: Plan | null
  history: SubscriptionChange[]
}

export interface MeterTotal {
  meter: string
  unit: string
  quantity: number
  events: number
}

export interface UsageReport {
  period_start: string
  period_end: string
  meters: MeterTotal[]
}

export interface InvoiceLine {
  kind: string
  meter?: string
  code?: string
  description: string
  description_zh: string
  quantity: number
  included: number
  billable: number
  unit_amount: number
  amount: number
  trial?: boolean
  from: string
  to: string
}

/** A finalised invoice, or (draft true, empty number) the live draft of the open period. */
export interface Invoice {
  id: string
  number: string
  period_start: string
  period_end: string
  currency: string
  subtotal: number
  discount: number
  tax: number
  credit_applied: number
  total: number
  lines: InvoiceLine[]
  status: string
  push_status: string
  finalized_at?: string
  draft: boolean
}

export interface BillingAccount {
  stripe_customer_id: string
  has_payment_method: boolean
  payment_status: 'ok' | 'failed'
  failed_at: string | null
  grace_until: string | null
  credit_balance: number
  anchor_day: number
  tax_rate_bp?: number
}

export interface PlanInput {
  code: string
  name: string
  currency: string
  base_fee: number
  trial_days: number
  prices: Price[]
}

export interface AdminTenant {
  id: string
  name: string
  slug: string
  status: OrgStatus
  /** "code@version", or "" when the tenant is on no plan. */
  plan: string
  usage: MeterTotal[] | null
  draft?: Invoice
}

export interface PlanMove {
  plan_code: string
  plan_version?: number
  /** RFC 3339; now when absent. */
  effective_at?: string
}

export interface BillingRunItem {
  tenant_id: string
  tenant: string
  invoice?: Invoice
  created: boolean
  error?: string
}

export interface BillingRun {
  period: string
  finalize: boolean
  items: BillingRunItem[] | null
}

export interface MarginRow {
  tenant_id?: string
  tenant?: string
  vendor_id?: string
  vendor?: string
  agent_id?: string
  currency: string
  seat_days: number
  billed: number
  cost: number
  margin: number
  note?: string
}

export interface Revenue {
  period: string
  /** Per currency code. */
  mrr: Record<string, number>
  invoiced: Record<string, number>
  usage: MeterTotal[] | null
  margin_by_tenant: MarginRow[] | null
  margin_by_vendor: MarginRow[] | null
  margin_by_agent: MarginRow[] | null
}

// ——— Omnichannel contact: inbox, contacts, channels, realtime. ———

export type ConversationStatus = 'open' | 'pending' | 'snoozed' | 'resolved' | 'closed'
export type ConversationPriority = 'low' | 'normal' | 'high' | 'urgent'
export type ConversationType = 'service' | 'complaint' | 'sales' | 'field'

/** GET /conversations/unread-counts: conversations (not closed) with unread messages. */
export interface UnreadCounts {
  all: number
  mine: number
  unassigned: number
}

export interface Conversation {
  id: string
  channel_id: string
  /** Absent on a conversation.created event's payload of an older server; the list fills it. */
  channel_type?: string
  contact_id: string
  contact_name: string
  status: ConversationStatus
  snoozed_until: string | null
  priority: ConversationPriority
  type: ConversationType
  assignee_id: string | null
  team: string
  subject: string
  /** null on a conversation.created event's payload. */
  tags: string[] | null
  unread: number
  preview: string
  last_message_at: string
  first_response_at: string | null
  resolved_at: string | null
  created_at: string
  updated_at: string
  attributes?: Record<string, unknown> | null
}

/** PATCH /conversations/:id: absent fields stay; assignee_id "" unassigns; tags replaces, add_tags adds. */
export interface ConversationUpdate {
  status?: ConversationStatus
  snoozed_until?: string
  priority?: ConversationPriority
  type?: ConversationType
  assignee_id?: string
  team?: string
  tags?: string[]
  add_tags?: string[]
  attributes?: Record<string, unknown>
  subject?: string
}

export interface ConversationQuery {
  status?: string
  assignee?: string
  channel_id?: string
  contact_id?: string
  tag?: string
  priority?: string
  type?: string
  limit?: number
  cursor?: string | null
}

export interface Attachment {
  id: string
  message_id: string | null
  conversation_id: string | null
  filename: string
  content_type: string
  size: number
  status: string
  created_at: string
}

export type MessageDirection = 'in' | 'out' | 'internal'

export interface Message {
  id: string
  conversation_id: string
  channel_id: string
  direction: MessageDirection
  author_kind: 'contact' | 'agent' | 'bot' | 'system'
  author_id: string
  private: boolean
  content: string
  content_type: string
  /** Sanitised HTML of an e-mail. */
  html?: string
  provider_id?: string | null
  /** received, queued, sent, delivered, read, failed or note. */
  status: string
  failure_reason: string
  attempts?: number
  created_at: string
  updated_at?: string
  mentions?: string[]
  attachments: Attachment[] | null
}

export interface CannedResponse {
  id: string
  shortcut: string
  title: string
  content: string
  created_by?: string
  created_at?: string
  updated_at?: string
}

export interface CannedInput {
  shortcut: string
  title: string
  content: string
}

export interface ContactIdentity {
  id: string
  kind: string
  value: string
  created_at: string
}

export interface Contact {
  id: string
  name: string
  locale: string
  company: string
  merged_into: string | null
  last_activity_at: string | null
  created_at: string
  updated_at: string
  attributes: Record<string, unknown> | null
  tags: string[] | null
  identities: ContactIdentity[] | null
}

/** POST /contacts and PATCH /contacts/:id; identities given are added. */
export interface ContactInput {
  name?: string
  locale?: string
  company?: string
  attributes?: Record<string, unknown>
  tags?: string[]
  identities?: { kind: string; value: string }[]
}

export interface TimelineItem {
  id: string
  kind: 'message' | 'note' | 'conversation'
  at: string
  conversation_id: string
  channel_id: string
  channel_type: string
  direction?: string
  author_kind?: string
  content_type?: string
  content: string
  status?: string
}

export interface ImportRowError {
  row: number
  field: string
  message: string
}

export interface ImportResult {
  created: number
  updated: number
  errors: ImportRowError[] | null
}

export interface ContactField {
  key: string
  label: string
  type: 'text' | 'number' | 'boolean' | 'date' | 'select'
  options: string[] | null
  created_at?: string
}

export interface ChannelType {
  type: string
  required: string[]
  optional: string[]
  secret: string[]
  defaults: Record<string, string> | null
}

export interface Channel {
  id: string
  public_id: string
  type: string
  name: string
  /** active or disabled. */
  status: string
  /** The non-secret settings. */
  config: Record<string, string> | null
  /** Which secrets hold a value (never the values). */
  secrets_set: string[] | null
  /** Where the provider posts (the channel's inbound webhook). */
  webhook_url?: string
  last_error: string
  created_at: string
  updated_at: string
}

export interface ChannelInput {
  type: string
  name: string
  config: Record<string, string>
}

/** PATCH /channels/:id: a config key set to "" removes an optional key; secrets not named keep their value. */
export interface ChannelUpdate {
  name?: string
  status?: string
  config?: Record<string, string>
}

/** One frame of GET /api/v1/realtime. */
export interface RealtimeEvent {
  id: string
  kind: string
  conversation_id?: string | null
  payload: unknown
  at: string
}
