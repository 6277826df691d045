// Package identity is who people are and how they get in: users, sign-up, login sessions with
// CSRF protection, email verification and password reset, memberships in organisations,
// invitations, and API keys.
package identity

import (
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-cloud/switchboard/tenant"
)

// User is one global identity; it belongs to organisations through memberships.
type User struct {
	ID              uuid.UUID  `gorm:"type:uuid;primaryKey" json:"id"`
	Email           string     `json:"email"`
	Name            string     `json:"name"`
	PasswordHash    string     `json:"-"`
	Locale          string     `json:"locale"`
	EmailVerifiedAt *time.Time `json:"-"`
	DisabledAt      *time.Time `json:"-"`
	FailedLogins    int        `json:"-"`
	LockedUntil     *time.Time `json:"-"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"-"`
}

// TableName pins the table name.
func (User) TableName() string { return "users" }

// Membership is a user's role in one organisation. The table is global (a user's memberships
// span organisations); every query on it names the organisation explicitly.
type Membership struct {
	OrgID     uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID    uuid.UUID `gorm:"type:uuid;primaryKey"`
	Role      string
	Status    string // active, disabled
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TableName pins the table name.
func (Membership) TableName() string { return "memberships" }

// session is a console login; the cookie holds the token, the table its SHA-256.
type session struct {
	ID         string `gorm:"primaryKey"`
	UserID     uuid.UUID
	CSRFToken  string `gorm:"column:csrf_token"`
	IP         string
	UserAgent  string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

func (session) TableName() string { return "sessions" }

// userToken is a one-time token for email verification or password reset.
type userToken struct {
	ID        string `gorm:"primaryKey"`
	UserID    uuid.UUID
	Purpose   string
	ExpiresAt time.Time
	UsedAt    *time.Time
	CreatedAt time.Time
}

func (userToken) TableName() string { return "user_tokens" }

// Token purposes and lifetimes.
const (
	purposeVerify = "verify_email"
	purposeReset  = "reset_password"
	verifyTTL     = 72 * time.Hour
	resetTTL      = time.Hour
	inviteTTL     = 7 * 24 * time.Hour
)

// Invitation asks someone by email to join an organisation with a role.
type Invitation struct {
	TenantID   uuid.UUID  `gorm:"type:uuid;primaryKey" json:"-"`
	ID         uuid.UUID  `gorm:"type:uuid;primaryKey" json:"id"`
	Email      string     `json:"email"`
	Role       string     `json:"role"`
	TokenHash  string     `json:"-"`
	InvitedBy  *uuid.UUID `gorm:"type:uuid" json:"invited_by"`
	Status     string     `json:"status"`
	ExpiresAt  time.Time  `json:"expires_at"`
	AcceptedAt *time.Time `json:"accepted_at"`
	CreatedAt  time.Time  `json:"created_at"`
}

// TableName pins the table name.
func (Invitation) TableName() string { return "invitations" }

// APIKey authenticates an integration as one organisation with one role.
type APIKey struct {
	TenantID   uuid.UUID  `gorm:"type:uuid;primaryKey" json:"-"`
	ID         uuid.UUID  `gorm:"type:uuid;primaryKey" json:"id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	Prefix     string     `json:"prefix"`
	KeyHash    string     `json:"-"`
	CreatedBy  *uuid.UUID `gorm:"type:uuid" json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// TableName pins the table name.
func (APIKey) TableName() string { return "api_keys" }

// MembershipView is a membership with its organisation, as /me shows it.
type MembershipView struct {
	OrgID     uuid.UUID     `json:"org_id"`
	OrgKind   tenant.Kind   `json:"org_kind"`
	OrgName   string        `json:"org_name"`
	OrgStatus tenant.Status `json:"org_status"`
	OrgLocale string        `json:"-"`
	Role      string        `json:"role"`
}

// Member is a user in the current organisation, as the members list shows it.
type Member struct {
	UserID   uuid.UUID `json:"user_id"`
	Email    string    `json:"email"`
	Name     string    `json:"name"`
	Role     string    `json:"role"`
	Status   string    `json:"status"`
	JoinedAt time.Time `json:"joined_at"`
}
