package tenant

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/internal/ids"
)

// AuditEvent is one append-only record of who did what to which object, in which
// organisation, from where. The table refuses UPDATE and DELETE (a trigger on SQLite, grants on
// PostgreSQL).
type AuditEvent struct {
	TenantID   uuid.UUID `gorm:"type:uuid;primaryKey" json:"tenant_id"`
	ID         uuid.UUID `gorm:"type:uuid;primaryKey" json:"id"`
	ActorKind  ActorKind `json:"actor_kind"`
	ActorID    string    `json:"actor_id"`
	ActorEmail string    `json:"actor_email"`
	Action     string    `json:"action"`
	ObjectType string    `json:"object_type"`
	ObjectID   string    `json:"object_id"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
	RequestID  string    `json:"request_id"`
	Data       string    `json:"-"`
	CreatedAt  time.Time `json:"created_at"`
}

// TableName pins the table name.
func (AuditEvent) TableName() string { return "audit_events" }

// Audit describes an action to record; the actor and the organisation come from the context.
type Audit struct {
	Action     string // e.g. "api_key.created"
	ObjectType string
	ObjectID   string
	Data       map[string]any
	// OrgID overrides the context's organisation (an event about an org the actor is not in,
	// such as a failed login recorded in the platform's log).
	OrgID uuid.UUID
}

// Record appends an audit event inside ctx's transaction, if any, so the event commits with
// the change it describes or not at all.
func (d *DB) Record(ctx context.Context, a Audit) error {
	org := a.OrgID
	if org == uuid.Nil {
		var ok bool
		if org, ok = ID(ctx); !ok {
			return fmt.Errorf("audit %s: %w", a.Action, ErrNoTenant)
		}
	}
	actor := ActorFrom(ctx)
	data := []byte("{}")
	if len(a.Data) > 0 {
		var err error
		if data, err = json.Marshal(a.Data); err != nil {
			return fmt.Errorf("audit %s: encode data: %w", a.Action, err)
		}
	}
	ev := AuditEvent{
		TenantID: org, ID: ids.New(), ActorKind: actor.Kind, ActorID: actor.Subject(),
		ActorEmail: actor.Email, Action: a.Action, ObjectType: a.ObjectType, ObjectID: a.ObjectID,
		IP: actor.IP, UserAgent: truncate(actor.UserAgent, 512), RequestID: actor.RequestID,
		Data: string(data), CreatedAt: time.Now().UTC(),
	}
	// The event's organisation may differ from the context's (see Audit.OrgID).
	ctx = WithOrg(ctx, Org{ID: org})
	return d.Run(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(&ev).Error; err != nil {
			return fmt.Errorf("audit %s: %w", a.Action, err)
		}
		return nil
	})
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
