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
