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
