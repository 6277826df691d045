// Package audit serves the audit log: an organisation's admins read their own events; platform
// admins, from the platform organisation, read every organisation's.
package audit

import (
	"context"
	"encoding/json"

	"github.com/gofiber/fiber/v2"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/httpx"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/modules/access"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// Permissions this module owns.
var (
	PermRead    = access.Permission{Name: "audit:read", Module: "audit", Description: "Read the organisation's audit log", Roles: []string{access.PlatformAdmin, access.TenantOwner, access.TenantAdmin, access.VendorManager}}
	PermReadAll = access.Permission{Name: "audit:read_all", Module: "audit", Description: "Read the audit log of every organisation", Roles: []string{access.PlatformAdmin}, PlatformOnly: true}
)

// Permissions returns this module's catalogue entries.
func Permissions() []access.Permission { return []access.Permission{PermRead, PermReadAll} }

// Event is an audit event as the API shows it.
type Event struct {
	tenant.AuditEvent
	Data json.RawMessage `json:"data"`
}

// Filter narrows a listing.
type Filter struct {
	Action   string
	TenantID string // platform only; empty is every organisation
}

// Module is the audit module.
type Module struct {
	db  *tenant.DB
	enf func() *access.Enforcer
}

// NewModule returns the audit module.
func NewModule(db *tenant.DB, enf func() *access.Enforcer) *Module { return &Module{db: db, enf: enf} }

// Name identifies the module.
func (m *Module) Name() string { return "audit" }

// Routes registers the audit API.
func (m *Module) Routes(r *access.Router) {
	s := access.Perm(PermRead, "List audit events, newest first (?action=, platform admins also ?tenant_id=)")
	s.Tag = "audit"
	r.Get("/audit-events", s, m.list)
}

// List returns audit events of the organisation in ctx, newest first. With all set (the caller
// holds audit:read_all in the platform organisation) it reads across organisations.
func (m *Module) List(ctx context.Context, f Filter, all bool, p httpx.PageParams) (httpx.List[Event], error) {
	if all {
		ctx = m.db.AsPlatform(ctx, "platform admin reads the audit log")
	}
	var rows []tenant.AuditEvent
	err := m.db.Run(ctx, func(tx *gorm.DB) error {
		q := tx.Order("id DESC").Limit(p.Limit + 1)
		if f.Action != "" {
			q = q.Where("action = ?", f.Action)
		}
		if all && f.TenantID != "" {
			q = q.Where("tenant_id = ?", f.TenantID)
		}
		if p.Cursor != "" {
			q = q.Where("id < ?", p.Cursor)
		}
		return q.Find(&rows).Error
	})
	if err != nil {
		return httpx.List[Event]{}, err
	}
	evs := make([]Event, len(rows))
	for i, r := range rows {
		evs[i] = Event{AuditEvent: r, Data: json.RawMessage(r.Data)}
	}
	return httpx.NewList(evs, p.Limit, func(e Event) string { return e.ID.String() }), nil
}

func (m *Module) list(c *fiber.Ctx) error {
	ctx := c.UserContext()
	p, err := httpx.ParsePage(c)
	if err != nil {
		return err
	}
	f := Filter{Action: c.Query("action"), TenantID: c.Query("tenant_id")}
	org, _ := tenant.OrgFrom(ctx)
	actor, _ := tenant.Authenticated(ctx)
	sub := actor.UserID.String()
	if actor.Kind == tenant.ActorAPIKey {
		sub = actor.Role
	}
	all := org.Kind == tenant.KindPlatform && m.enf().Enforce(sub, org.ID.String(), PermReadAll.Object(), PermReadAll.Action())
	if f.TenantID != "" {
		if !all {
			return apperr.Invalid("tenant_id", "only platform admins can read another organisation's log")
		}
		if _, ok := ids.Parse(f.TenantID); !ok {
			return apperr.Invalid("tenant_id", "must be a UUID")
		}
	}
	l, err := m.List(ctx, f, all, p)
	if err != nil {
		return err
	}
	return c.JSON(l)
}
