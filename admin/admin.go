// Package admin is the platform administrators' API under /api/v1/admin: tenants and their
// lifecycle, the price list, billing runs. Every route is hidden (404 without the permission),
// and the permissions are platform-only, so no tenant role, built-in or custom, can hold them.
package admin

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/billing"
	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/httpx"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/modules/access"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// Permissions of the admin API.
var (
	PermTenants     = access.Permission{Name: "tenants:manage", Module: "admin", Description: "List tenants, suspend, reactivate, grant credit, change plans", Roles: []string{access.PlatformAdmin}, PlatformOnly: true}
	PermPlans       = access.Permission{Name: "plans:manage", Module: "admin", Description: "Edit the price list", Roles: []string{access.PlatformAdmin, access.BillingAdmin}, PlatformOnly: true}
	PermImpersonate = access.Permission{Name: "tenants:impersonate", Module: "admin", Description: "Read a tenant's console as it sees it (read-only, audited)", Roles: []string{access.PlatformAdmin}, PlatformOnly: true}
	PermBilling     = access.Permission{Name: "billing:run", Module: "admin", Description: "Preview and finalise billing runs, retry Stripe pushes", Roles: []string{access.PlatformAdmin, access.BillingAdmin}, PlatformOnly: true}
)

// Permissions returns the admin catalogue entries.
func Permissions() []access.Permission {
	return []access.Permission{PermTenants, PermPlans, PermBilling, PermImpersonate}
}

// Module is the admin API.
type Module struct {
	enf      func() *access.Enforcer
	platform func() uuid.UUID
	db       *tenant.DB
	ledger   *billing.Ledger
	plans    *billing.Plans
	invoicer *billing.Invoicer
	payments *billing.Payments
	val      *httpx.Validator
	now      func() time.Time
}

// NewModule returns the admin API.
func NewModule(enf func() *access.Enforcer, platform func() uuid.UUID, db *tenant.DB, ledger *billing.Ledger, plans *billing.Plans, invoicer *billing.Invoicer, payments *billing.Payments, val *httpx.Validator) *Module {
	return &Module{enf: enf, platform: platform, db: db, ledger: ledger, plans: plans, invoicer: invoicer, payments: payments, val: val, now: func() time.Time { return time.Now().UTC() }}
}

// Name identifies the module.
func (m *Module) Name() string { return "admin" }

func spec(p access.Permission, summary string, req any) access.Spec {
	s := access.Perm(p, summary)
	s.Tag, s.Hidden, s.Request = "admin", true, req
	return s
}

// Routes registers the admin API.
func (m *Module) Routes(r *access.Router) {
	r.Get("/admin/tenants", spec(PermTenants, "Tenants with status, plan and usage of the open period", nil), m.tenants)
	r.Post("/admin/tenants/:id/suspend", spec(PermTenants, "Suspend a tenant (console read-only, outbound paused)", nil), m.transition(tenant.StatusSuspended))
	r.Post("/admin/tenants/:id/reactivate", spec(PermTenants, "Reactivate a tenant", nil), m.transition(tenant.StatusActive))
	r.Post("/admin/tenants/:id/credits", spec(PermTenants, "Grant credit (minor units), used by the next invoices", CreditInput{}), m.credit)
	r.Put("/admin/tenants/:id/terms", spec(PermTenants, "Set a tenant's tax rate (basis points) and coupons", billing.Terms{}), m.terms)
	r.Put("/admin/tenants/:id/plan", spec(PermTenants, "Move a tenant onto a plan version from a time (prorated)", PlanMove{}), m.movePlan)
	r.Post("/admin/tenants/:id/impersonate", spec(PermImpersonate, "Start reading a tenant's console: audited in its log; then send X-Switchboard-Impersonate: <tenant id> (reads only)", nil), m.startImpersonation)
	r.Get("/admin/plans", spec(PermPlans, "Every version of every plan", nil), m.listPlans)
	r.Post("/admin/plans", spec(PermPlans, "Create a plan or its next version", billing.PlanInput{}), m.savePlan)
	r.Post("/admin/billing-runs", spec(PermBilling, "Bill every tenant for its period starting in a month: preview, or finalise", RunInput{}), m.run)
	r.Get("/admin/revenue", spec(PermBilling, "Revenue of a month (?period=YYYY-MM): MRR, invoiced, usage by meter, managed-seat margin by tenant, vendor and agent", nil), m.revenue)
	r.Put("/admin/vendors/:id/rate", spec(PermTenants, "Set a vendor's cost per managed-seat hour", billing.VendorRate{}), m.vendorRate)
	r.Post("/admin/billing-runs/retry-pushes", spec(PermBilling, "Push again every invoice whose Stripe push failed", nil), m.retry)
}

// TenantRow is one line of the tenants list.
type TenantRow struct {
	ID     uuid.UUID            `json:"id"`
	Name   string               `json:"name"`
	Slug   string               `json:"slug"`
	Status tenant.Status        `json:"status"`
	Plan   string               `json:"plan"`
	Usage  []billing.MeterTotal `json:"usage"`
	Draft  *billing.Invoice     `json:"draft,omitempty"`
}

func (m *Module) tenants(c *fiber.Ctx) error {
	ctx := m.db.AsPlatform(c.UserContext(), "platform admin lists tenants")
	var orgs []tenant.Org
	if err := m.db.Global(ctx, func(tx *gorm.DB) error {
		return tx.Where("kind = ?", tenant.KindTenant).Order("name").Limit(500).Find(&orgs).Error
	}); err != nil {
		return err
	}
	out := make([]TenantRow, 0, len(orgs))
	for _, o := range orgs {
		tctx := tenant.WithOrg(c.UserContext(), o)
		row := TenantRow{ID: o.ID, Name: o.Name, Slug: o.Slug, Status: o.Status}
		plan, ok, err := m.plans.Current(tctx)
		if err != nil {
			return err
		}
		if ok {
			row.Plan = plan.Code + "@" + strconv.Itoa(plan.Version)
			p, err := m.invoicer.PeriodAt(tctx, m.now())
			if err != nil {
				return err
			}
			if d, err := m.invoicer.Draft(tctx, p); err == nil {
				row.Draft = &d
			}
			if row.Usage, err = m.ledger.Totals(tctx, p.Start, p.End); err != nil {
				return err
			}
		}
		out = append(out, row)
	}
	return c.JSON(httpx.List[TenantRow]{Items: out})
}

// target loads the tenant named in the path, as a context scoped to it; not a tenant → 404.
func (m *Module) target(c *fiber.Ctx) (context.Context, tenant.Org, error) {
	s, err := httpx.PathID(c, "id")
	if err != nil {
		return nil, tenant.Org{}, err
	}
	id, _ := ids.Parse(s)
	var org tenant.Org
	err = m.db.Global(c.UserContext(), func(tx *gorm.DB) error {
		return tx.Where("id = ? AND kind = ?", id, tenant.KindTenant).Take(&org).Error
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, org, apperr.ErrNotFound
	}
	if err != nil {
		return nil, org, err
	}
	return tenant.WithOrg(c.UserContext(), org), org, nil
}

func (m *Module) transition(to tenant.Status) fiber.Handler {
	return func(c *fiber.Ctx) error {
		_, org, err := m.target(c)
		if err != nil {
			return err
		}
		o, err := m.db.Transition(c.UserContext(), org.ID, to, "platform admin")
		if err != nil {
			return err
		}
		return c.JSON(o)
	}
}

// CreditInput grants credit.
type CreditInput struct {
	Amount int64  `json:"amount" validate:"required,min=1,max=100000000000"`
	Reason string `json:"reason" validate:"required,max=200"`
}

func (m *Module) credit(c *fiber.Ctx) error {
	var in CreditInput
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	tctx, _, err := m.target(c)
	if err != nil {
		return err
	}
	a, err := m.payments.GrantCredit(tctx, in.Amount, in.Reason)
	if err != nil {
		return err
	}
	return c.JSON(a)
}

func (m *Module) terms(c *fiber.Ctx) error {
	var in billing.Terms
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	tctx, _, err := m.target(c)
	if err != nil {
		return err
	}
	if err := m.plans.CheckAddOns(tctx, in.AddOns); err != nil {
		return err
	}
	a, err := m.payments.SetTerms(tctx, in)
	if err != nil {
		return err
	}
	return c.JSON(a)
}

// PlanMove moves a tenant onto a plan.
type PlanMove struct {
	PlanCode    string    `json:"plan_code" validate:"required,max=40"`
	PlanVersion int       `json:"plan_version" validate:"min=0"`
	EffectiveAt time.Time `json:"effective_at"`
}

func (m *Module) movePlan(c *fiber.Ctx) error {
	var in PlanMove
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	tctx, _, err := m.target(c)
	if err != nil {
		return err
	}
	ch, err := m.plans.Subscribe(tctx, in.PlanCode, in.PlanVersion, in.EffectiveAt)
	if err != nil {
		return err
	}
	return c.JSON(ch)
}

// HeaderImpersonate names the tenant a platform admin reads the console of.
const HeaderImpersonate = "X-Switchboard-Impersonate"

func (m *Module) mayImpersonate(ctx context.Context) (tenant.Actor, bool) {
	a, ok := tenant.Authenticated(ctx)
	if !ok || a.Kind != tenant.ActorUser {
		return a, false
	}
	return a, m.enf().Enforce(a.UserID.String(), m.platform().String(), PermImpersonate.Object(), PermImpersonate.Action())
}

func (m *Module) startImpersonation(c *fiber.Ctx) error {
	tctx, org, err := m.target(c)
	if err != nil {
		return err
	}
	if err := m.db.Tx(tctx, func(ctx context.Context) error {
		return m.db.Record(ctx, tenant.Audit{Action: "admin.impersonation_started", ObjectType: "org", ObjectID: org.ID.String()})
	}); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"tenant_id": org.ID, "header": HeaderImpersonate, "read_only": true})
}

// Impersonation runs after authentication: a request carrying X-Switchboard-Impersonate from a
// user allowed tenants:impersonate in the platform organisation acts in that tenant, marked so
// the route guard lets it read and refuses every write. Anyone else naming a tenant there gets
// 404, as for an organisation they do not belong to.
func (m *Module) Impersonation() fiber.Handler {
	return func(c *fiber.Ctx) error {
		want := c.Get(HeaderImpersonate)
		if want == "" {
			return c.Next()
		}
		ctx := c.UserContext()
		a, ok := m.mayImpersonate(ctx)
		id, valid := ids.Parse(want)
		if !ok || !valid {
			return apperr.ErrNotFound
		}
		var org tenant.Org
		err := m.db.Global(ctx, func(tx *gorm.DB) error {
			return tx.Where("id = ? AND kind = ?", id, tenant.KindTenant).Take(&org).Error
		})
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return apperr.ErrNotFound
		}
		if err != nil {
			return err
		}
		a.Impersonating, a.Role = true, "impersonator"
		c.SetUserContext(tenant.WithOrg(tenant.WithActor(ctx, a), org))
		return c.Next()
	}
}

func (m *Module) listPlans(c *fiber.Ctx) error {
	ps, err := m.plans.List(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(httpx.List[billing.Plan]{Items: ps})
}

func (m *Module) savePlan(c *fiber.Ctx) error {
	var in billing.PlanInput
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	p, err := m.plans.Save(c.UserContext(), in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(p)
}

// RunInput starts a billing run.
type RunInput struct {
	Period   string `json:"period" validate:"required,len=7"` // YYYY-MM
	Finalize bool   `json:"finalize"`
}

func (m *Module) run(c *fiber.Ctx) error {
	var in RunInput
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	items, err := m.invoicer.Run(c.UserContext(), in.Period, in.Finalize, m.now())
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"period": in.Period, "finalize": in.Finalize, "items": items})
}

func (m *Module) revenue(c *fiber.Ctx) error {
	period := c.Query("period", m.now().Format("2006-01"))
	rev, err := m.invoicer.Revenue(c.UserContext(), period, m.now())
	if err != nil {
		return err
	}
	return c.JSON(rev)
}

func (m *Module) vendorRate(c *fiber.Ctx) error {
	var in billing.VendorRate
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	s, err := httpx.PathID(c, "id")
	if err != nil {
		return err
	}
	id, _ := ids.Parse(s)
	var org tenant.Org
	err = m.db.Global(c.UserContext(), func(tx *gorm.DB) error {
		return tx.Where("id = ? AND kind = ?", id, tenant.KindVendor).Take(&org).Error
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return apperr.ErrNotFound
	}
	if err != nil {
		return err
	}
	r, err := m.invoicer.SetVendorRate(c.UserContext(), org, in)
	if err != nil {
		return err
	}
	return c.JSON(r)
}

func (m *Module) retry(c *fiber.Ctx) error {
	n, err := m.payments.RetryPushes(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"pushed": n})
}
