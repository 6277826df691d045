package tenant

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
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
func (s Status) CanRead() bool { return s.CanWrite() || s == StatusSuspended }

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
		return apperr.Invalid("status", fmt.Sprintf("unknown status %q", to))
	}
	if !CanTransition(from, to) {
		return fmt.Errorf("a %s organisation cannot become %s: %w", from, to, apperr.ErrConflict)
	}
	return nil
}

// Transition moves an organisation to another lifecycle status, checked against the lifecycle
// and recorded in the organisation's audit log in the same transaction. It is a platform
// action (billing, dunning, a platform admin) and crosses tenants on purpose.
func (d *DB) Transition(ctx context.Context, orgID uuid.UUID, to Status, reason string) (Org, error) {
	ctx = d.AsPlatform(ctx, "tenant lifecycle: "+reason)
	var org Org
	err := d.Tx(ctx, func(ctx context.Context) error {
		return d.Run(ctx, func(tx *gorm.DB) error {
			if err := tx.Clauses(lockingFor(d.dialect)...).Where("id = ?", orgID).Take(&org).Error; err != nil {
				if errors.Is(err, gorm.ErrRecordNotFound) {
					return apperr.ErrNotFound
				}
				return err
			}
			if org.Kind != KindTenant {
				return fmt.Errorf("a %s organisation has no lifecycle: %w", org.Kind, apperr.ErrConflict)
			}
			if err := CheckTransition(org.Status, to); err != nil {
				return err
			}
			from, now := org.Status, time.Now().UTC()
			if err := tx.Model(&Org{}).Where("id = ?", orgID).
				Updates(map[string]any{"status": to, "status_changed_at": now, "updated_at": now}).Error; err != nil {
				return err
			}
			org.Status, org.StatusChangedAt = to, now
			d.orgChanged(ctx, orgID)
			return d.Record(WithOrg(ctx, org), Audit{Action: "tenant.status_changed", ObjectType: "org", ObjectID: orgID.String(),
				Data: map[string]any{"from": from, "to": to, "reason": reason}})
		})
	})
	if err != nil {
		return Org{}, fmt.Errorf("tenant: transition %s to %s: %w", orgID, to, err)
	}
	return org, nil
}

// lockingFor locks the organisation row against a concurrent transition (SQLite's write
// transactions are already exclusive).
func lockingFor(d Dialect) []clause.Expression {
	if d == Postgres {
		return []clause.Expression{clause.Locking{Strength: "UPDATE"}}
	}
	return nil
}

// InOrg loads an organisation and returns ctx naming it, for work that starts without one
// (inbound webhooks, background tasks that carry an org id).
func (d *DB) InOrg(ctx context.Context, orgID uuid.UUID) (context.Context, Org, error) {
	var org Org
	err := d.Global(ctx, func(tx *gorm.DB) error { return tx.Where("id = ?", orgID).Take(&org).Error })
	if err != nil {
		return nil, Org{}, fmt.Errorf("tenant: load organisation %s: %w", orgID, err)
	}
	return WithOrg(ctx, org), org, nil
}
