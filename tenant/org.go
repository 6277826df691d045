package tenant

import (
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Kind is the kind of an organisation; it is also the kind of its RBAC domain.
type Kind string

// Organisation kinds.
const (
	KindPlatform Kind = "platform"
	KindTenant   Kind = "tenant"
	KindVendor   Kind = "vendor"
)

// Status is where an organisation stands in its lifecycle.
type Status string

// Lifecycle states. Vendors and the platform are always active.
const (
	StatusTrial     Status = "trial"
	StatusActive    Status = "active"
	StatusPastDue   Status = "past_due"
	StatusSuspended Status = "suspended"
	StatusCancelled Status = "cancelled"
)

// Org is an organisation: the platform, a tenant (a brand renting Switchboard) or a vendor (an
// outsourcing provider). The orgs table is global: it is the list of tenants itself.
type Org struct {
	ID              uuid.UUID `gorm:"type:uuid;primaryKey"`
	Kind            Kind
	Name            string
	Slug            string
	Status          Status
	Locale          string
	TrialEndsAt     *time.Time
	StatusChangedAt time.Time
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// TableName pins the table name.
func (Org) TableName() string { return "orgs" }

// CanRead reports whether the organisation's members may read its data.
func (s Status) CanRead() bool { return s != StatusCancelled }

// CanWrite reports whether the organisation's members may change its data. A suspended tenant's
// console is read-only; inbound customer messages are still stored by the channel modules,
// which do not ask this.
func (s Status) CanWrite() bool {
	return s == StatusTrial || s == StatusActive || s == StatusPastDue
}

// CanSendOutbound reports whether replies to customers may leave the platform.
func (s Status) CanSendOutbound() bool { return s.CanWrite() }

// transitions lists the lifecycle's legal moves.
var transitions = map[Status][]Status{
	StatusTrial:     {StatusActive, StatusPastDue, StatusSuspended, StatusCancelled},
	StatusActive:    {StatusPastDue, StatusSuspended, StatusCancelled},
	StatusPastDue:   {StatusActive, StatusSuspended, StatusCancelled},
	StatusSuspended: {StatusActive, StatusCancelled},
	StatusCancelled: {},
}

// CanTransition reports whether a tenant may move from one status to another.
func CanTransition(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// CheckTransition returns an error naming the move when it is not allowed.
func CheckTransition(from, to Status) error {
	if _, known := transitions[to]; !known {
		return fmt.Errorf("unknown status %q", to)
	}
	if !CanTransition(from, to) {
		return fmt.Errorf("a %s organisation cannot become %s", from, to)
	}
	return nil
}
