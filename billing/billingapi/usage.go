// Package billingapi is the tenant-facing billing API: posting usage events, reading usage and
// (with the rating work) plans and invoices. It sits on top of package billing, which other
// modules use directly and which knows nothing of HTTP or roles.
package billingapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/hibiken/asynq"

	"github.com/switchboard-cloud/switchboard/billing"
	"github.com/switchboard-cloud/switchboard/billing/invoicepdf"
	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/httpx"
	"github.com/switchboard-cloud/switchboard/internal/queue"
	"github.com/switchboard-cloud/switchboard/modules/access"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// Permissions of the billing API.
var (
	PermUsageWrite    = access.Permission{Name: "usage:write", Module: "billing", Description: "Report usage events", Roles: []string{access.TenantOwner, access.TenantAdmin}}
	PermUsageRead     = access.Permission{Name: "usage:read", Module: "billing", Description: "Read the usage ledger", Roles: []string{access.TenantOwner, access.TenantAdmin, access.Analyst}}
	PermBillingManage = access.Permission{Name: "billing:manage", Module: "billing", Description: "Set the payment method and change the plan", Roles: []string{access.TenantOwner}}
	PermBillingRead   = access.Permission{Name: "billing:read", Module: "billing", Description: "Read the plan, usage to date and invoices", Roles: []string{access.TenantOwner, access.TenantAdmin, access.Analyst}}
)

// Permissions returns the billing API's catalogue entries.
func Permissions() []access.Permission {
	return []access.Permission{PermUsageWrite, PermUsageRead, PermBillingRead, PermBillingManage}
}

// perm is the Spec of a billing route.
func perm(p access.Permission, summary string) access.Spec {
	s := access.Perm(p, summary)
	s.Tag = "billing"
	return s
}

// Module serves the billing API.
type Module struct {
	ledger   *billing.Ledger
	payments *billing.Payments
	plans    *billing.Plans
	invoicer *billing.Invoicer
	val      *httpx.Validator
	pdf      *invoicepdf.Renderer
	now      func() time.Time
}

// NewModule returns the billing API over the ledger.
func NewModule(ledger *billing.Ledger, payments *billing.Payments, plans *billing.Plans, invoicer *billing.Invoicer, val *httpx.Validator) *Module {
	return &Module{ledger: ledger, payments: payments, plans: plans, invoicer: invoicer, val: val, pdf: invoicepdf.NewRenderer(), now: func() time.Time { return time.Now().UTC() }}
}

// Name identifies the module.
func (m *Module) Name() string { return "billing" }

// UsageBatch is the body of POST /usage-events.
type UsageBatch struct {
	Events []billing.Event `json:"events" validate:"required"`
}

// Routes registers the billing API.
func (m *Module) Routes(r *access.Router) {
	r.Post("/usage-events", perm(PermUsageWrite, "Report up to 1,000 usage events; a repeated idempotency_key is accepted and not counted again; one bad event refuses the batch (422 naming events[i])").WithBody(UsageBatch{}), m.postUsage)
	r.Get("/usage-events", perm(PermUsageRead, "List the usage ledger, newest first (?meter=)"), m.listUsage)
	r.Get("/billing/usage", perm(PermBillingRead, "Usage of the current billing period per meter, counted from the ledger; with ?granularity=hour|day&from=&to= the rolled-up series"), m.usage)
	r.Get("/billing/meters", perm(PermBillingRead, "The meters Switchboard charges by"), m.meters)
	r.Get("/billing/payment-method", perm(PermBillingRead, "The tenant's payment method and payment standing (dunning)"), m.paymentMethod)
	r.Post("/billing/payment-method", perm(PermBillingManage, "Start collecting a payment method: a Stripe SetupIntent's client secret, or with {\"mode\":\"checkout\"} the URL of a Stripe Checkout page that returns to /billing"), m.setupPayment)
	hook := access.Public("Stripe webhook: verified with Stripe-Signature (300 s), each event applied once")
	hook.Tag = "webhooks"
	r.Post("/webhooks/stripe", hook, m.stripeWebhook)
	m.invoiceRoutes(r)
}

func (m *Module) paymentMethod(c *fiber.Ctx) error {
	a, err := m.payments.Account(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(a)
}

func (m *Module) setupPayment(c *fiber.Ctx) error {
	ctx := c.UserContext()
	org, _ := tenant.OrgFrom(ctx)
	actor := tenant.ActorFrom(ctx)
	var in PaymentSetup
	if len(c.Body()) > 0 {
		if err := httpx.Decode(c, m.val, &in); err != nil {
			return err
		}
	}
	var out fiber.Map
	var err error
	if in.Mode == "checkout" {
		var url string
		url, err = m.payments.CheckoutPayment(ctx, org.Name, actor.Email)
		out = fiber.Map{"url": url}
	} else {
		var secret string
		secret, err = m.payments.SetupPayment(ctx, org.Name, actor.Email)
		out = fiber.Map{"client_secret": secret}
	}
	if errors.Is(err, billing.ErrStripeNotConfigured) {
		return &fiber.Error{Code: fiber.StatusServiceUnavailable, Message: "Payments are not configured on this installation"}
	}
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(out)
}

func (m *Module) stripeWebhook(c *fiber.Ctx) error {
	res, err := m.payments.HandleWebhook(c.UserContext(), c.Body(), c.Get("Stripe-Signature"))
	if errors.Is(err, billing.ErrStripeNotConfigured) {
		return &fiber.Error{Code: fiber.StatusServiceUnavailable, Message: "Stripe webhooks are not configured on this installation"}
	}
	if err != nil {
		return err
	}
	return c.JSON(res)
}

// PaymentSetup is the optional body of POST /billing/payment-method.
type PaymentSetup struct {
	Mode string `json:"mode" validate:"omitempty,oneof=setup_intent checkout"`
}

// rawBatch reads the events one by one, so a type error is reported against its event.
type rawBatch struct {
	Events []json.RawMessage `json:"events" validate:"required"`
}

func (m *Module) postUsage(c *fiber.Ctx) error {
	var in rawBatch
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	if len(in.Events) > billing.MaxBatch {
		return apperr.Invalid("events", fmt.Sprintf("at most %d events per batch", billing.MaxBatch))
	}
	events := make([]billing.Event, len(in.Events))
	var bad apperr.Fields
	for i, raw := range in.Events {
		if err := httpx.DecodeStrict(raw, &events[i]); err != nil {
			var ve *apperr.ValidationError
			if errors.As(err, &ve) {
				for _, f := range ve.Fields {
					bad.Add(fmt.Sprintf("events[%d].%s", i, f.Field), f.Message)
				}
				if len(ve.Fields) == 0 {
					bad.Add(fmt.Sprintf("events[%d]", i), ve.Detail)
				}
				continue
			}
			return err
		}
	}
	if err := bad.Err(); err != nil {
		return err
	}
	res, err := m.ledger.Record(c.UserContext(), "api", events)
	if err != nil {
		return err
	}
	return c.JSON(res)
}

func (m *Module) listUsage(c *fiber.Ctx) error {
	p, err := httpx.ParsePage(c)
	if err != nil {
		return err
	}
	meter := c.Query("meter")
	if _, ok := m.ledger.Meters().Get(meter); meter != "" && !ok {
		return apperr.Invalid("meter", "is not a known meter")
	}
	rows, err := m.ledger.List(c.UserContext(), meter, p.Limit+1, p.Cursor)
	if err != nil {
		return err
	}
	return c.JSON(httpx.NewList(rows, p.Limit, func(e billing.UsageEvent) string { return e.ID.String() }))
}

// UsageReport is the answer of GET /billing/usage.
type UsageReport struct {
	PeriodStart time.Time            `json:"period_start"`
	PeriodEnd   time.Time            `json:"period_end"`
	Meters      []billing.MeterTotal `json:"meters"`
	// Alerts are the priced meters at 80 % or more of their allowance (in-app alerts).
	Alerts []billing.Alert `json:"alerts"`
}

func (m *Module) usage(c *fiber.Ctx) error {
	ctx := c.UserContext()
	if g := c.Query("granularity"); g != "" {
		return m.series(c, g)
	}
	u, err := m.invoicer.Usage(ctx, m.now())
	if err != nil {
		return err
	}
	return c.JSON(UsageReport{PeriodStart: u.Period.Start, PeriodEnd: u.Period.End, Meters: u.Meters, Alerts: u.Alerts})
}

// maxSeries bounds a series request: 31 days of hours or 400 days of days.
var maxSeries = map[string]time.Duration{"hour": 31 * 24 * time.Hour, "day": 400 * 24 * time.Hour}

func (m *Module) series(c *fiber.Ctx, g string) error {
	span, ok := maxSeries[g]
	if !ok {
		return apperr.Invalid("granularity", "must be hour or day")
	}
	var bad apperr.Fields
	parse := func(name string, def time.Time) time.Time {
		s := c.Query(name)
		if s == "" {
			return def
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			bad.Add(name, "must be an RFC 3339 time")
		}
		return t
	}
	to := parse("to", m.now())
	from := parse("from", to.Add(-span))
	if err := bad.Err(); err != nil {
		return err
	}
	if !from.Before(to) || to.Sub(from) > span {
		return apperr.Invalid("from", "must be before to, and at most "+span.String()+" before it")
	}
	rows, err := m.ledger.Series(c.UserContext(), g, from, to)
	if err != nil {
		return err
	}
	return c.JSON(httpx.List[billing.Rollup]{Items: append([]billing.Rollup{}, rows...)})
}

func (m *Module) meters(c *fiber.Ctx) error {
	return c.JSON(httpx.List[billing.Meter]{Items: m.ledger.Meters().All()})
}

// Jobs registers the ledger's and dunning's background work.
func (m *Module) Jobs(mux *asynq.ServeMux) {
	m.ledger.Jobs(mux)
	m.payments.Jobs(mux)
	m.invoicer.Jobs(mux)
}

// Schedules lists their periodic tasks.
func (m *Module) Schedules() []queue.Schedule {
	return append(append(m.ledger.Schedules(), m.payments.Schedules()...), m.invoicer.Schedules()...)
}
