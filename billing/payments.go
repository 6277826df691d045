package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/switchboard-cloud/switchboard/billing/stripesync"
	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/queue"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// ErrStripeNotConfigured answers requests that need Stripe when no key or webhook secret is set.
var ErrStripeNotConfigured = errors.New("billing: Stripe is not configured")

// Account is a tenant's billing standing: its Stripe customer and where it is in dunning.
type Account struct {
	TenantID         uuid.UUID  `json:"-" gorm:"type:uuid;primaryKey"`
	StripeCustomerID string     `json:"stripe_customer_id"`
	HasPaymentMethod bool       `json:"has_payment_method"`
	PaymentStatus    string     `json:"payment_status"` // ok | failed
	FailedAt         *time.Time `json:"failed_at"`
	GraceUntil       *time.Time `json:"grace_until"`
	RemindersSent    int        `json:"reminders_sent"`
	LastReminderAt   *time.Time `json:"last_reminder_at"`
	AnchorDay        int        `json:"anchor_day"`
	TaxRateBP        int64      `json:"tax_rate_bp"`
	CreditBalance    int64      `json:"credit_balance"`
	CouponsRaw       string     `json:"-" gorm:"column:coupons"`
	AddOnsRaw        string     `json:"-" gorm:"column:add_ons"`
	AddOns           []string   `json:"add_ons" gorm:"-"`
	Coupons          []Coupon   `json:"coupons" gorm:"-"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
}

// TableName is the accounts table.
func (Account) TableName() string { return "billing_accounts" }

// Coupon takes a percentage (basis points) or a fixed amount (minor units) off each invoice
// while it stays on the account.
type Coupon struct {
	Code         string `json:"code" validate:"required,max=40"`
	PercentOffBP int64  `json:"percent_off_bp" validate:"min=0,max=10000"`
	AmountOff    int64  `json:"amount_off" validate:"min=0"`
}

// Terms are the billing terms a platform admin sets on a tenant's account.
type Terms struct {
	TaxRateBP int64    `json:"tax_rate_bp" validate:"min=0,max=10000"`
	Coupons   []Coupon `json:"coupons" validate:"max=10,dive"`
	// AddOns are codes of add-ons of the tenant's plan it has taken.
	AddOns []string `json:"add_ons" validate:"max=20"`
}

// SetTerms sets the tenant's tax rate and coupons (audited); the open period's draft and every
// invoice finalised from now on use them.
func (p *Payments) SetTerms(ctx context.Context, t Terms) (Account, error) {
	var bad apperr.Fields
	for i, c := range t.Coupons {
		if (c.PercentOffBP > 0) == (c.AmountOff > 0) {
			bad.Add(fmt.Sprintf("coupons[%d]", i), "give either percent_off_bp or amount_off")
		}
	}
	if err := bad.Err(); err != nil {
		return Account{}, err
	}
	if t.Coupons == nil {
		t.Coupons = []Coupon{}
	}
	if _, err := p.Account(ctx); err != nil {
		return Account{}, err
	}
	if t.AddOns == nil {
		t.AddOns = []string{}
	}
	raw, _ := json.Marshal(t.Coupons)
	rawAdd, _ := json.Marshal(t.AddOns)
	err := p.db.Tx(ctx, func(ctx context.Context) error {
		if err := p.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Model(&Account{}).Where("tenant_id = ?", acctID(ctx)).
				Updates(map[string]any{"tax_rate_bp": t.TaxRateBP, "coupons": string(raw), "add_ons": string(rawAdd), "updated_at": p.now()}).Error
		}); err != nil {
			return err
		}
		return p.db.Record(ctx, tenant.Audit{Action: "billing.terms_set", ObjectType: "billing_account", ObjectID: acctID(ctx).String(),
			Data: map[string]any{"tax_rate_bp": t.TaxRateBP, "coupons": t.Coupons, "add_ons": t.AddOns}})
	})
	if err != nil {
		return Account{}, fmt.Errorf("billing: set terms: %w", err)
	}
	return p.Account(ctx)
}

type stripeEvent struct {
	ID          string `gorm:"primaryKey"`
	Type        string
	OrgID       *uuid.UUID `gorm:"type:uuid"` // not tenant_id: the table is global
	Created     time.Time
	ProcessedAt time.Time
}

func (stripeEvent) TableName() string { return "stripe_events" }

// Mailer queues a mail in the caller's transaction (the mail outbox).
type Mailer interface {
	Send(ctx context.Context, to, subject, body string) error
}

// Recipients returns whom to tell about an organisation's billing: its owners' addresses.
type Recipients func(ctx context.Context, orgID uuid.UUID) ([]string, error)

// Payments connects tenants to Stripe and runs dunning: a failed payment makes the tenant
// past_due, reminders follow, the grace period ending suspends it (read-only console, outbound
// replies paused, inbound still stored), and a paid invoice makes it active again.
type Payments struct {
	db     *tenant.DB
	stripe *stripesync.Client // nil without STRIPE_SECRET_KEY
	secret bool               // a webhook secret is configured
	mail   Mailer
	owners Recipients
	grace  time.Duration
	public string
	log    *slog.Logger
	now    func() time.Time
}

// PaymentsConfig configures Payments.
type PaymentsConfig struct {
	Stripe stripesync.Config
	// PublicURL is where Stripe Checkout sends the customer back to (the console's billing page).
	PublicURL string
	Grace     time.Duration
	Now       func() time.Time // nil: the clock
}

// NewPayments returns the payments service.
func NewPayments(db *tenant.DB, cfg PaymentsConfig, mail Mailer, owners Recipients, log *slog.Logger) *Payments {
	p := &Payments{db: db, mail: mail, owners: owners, grace: cfg.Grace, public: strings.TrimRight(cfg.PublicURL, "/"), log: log, now: cfg.Now, secret: cfg.Stripe.WebhookSecret != ""}
	if p.now == nil {
		p.now = func() time.Time { return time.Now().UTC() }
	}
	if cfg.Stripe.SecretKey != "" || cfg.Stripe.WebhookSecret != "" {
		p.stripe = stripesync.New(cfg.Stripe, log)
	}
	return p
}

// Account returns the tenant's billing account, creating it on first use.
func (p *Payments) Account(ctx context.Context) (Account, error) {
	tid, ok := tenant.ID(ctx)
	if !ok {
		return Account{}, tenant.ErrNoTenant
	}
	var a Account
	// Read first: every usage and billing page asks, and only a tenant's first ask writes (on
	// SQLite a write transaction would queue behind every other writer).
	err := p.db.Run(ctx, func(tx *gorm.DB) error { return tx.Take(&a).Error })
	if errors.Is(err, gorm.ErrRecordNotFound) {
		err = p.db.Tx(ctx, func(ctx context.Context) error {
			return p.db.Run(ctx, func(tx *gorm.DB) error {
				now := p.now()
				if err := tx.Clauses(clause.OnConflict{DoNothing: true}).
					Create(&Account{TenantID: tid, PaymentStatus: "ok", CreatedAt: now, UpdatedAt: now}).Error; err != nil {
					return err
				}
				return tx.Take(&a).Error
			})
		})
	}
	if err != nil {
		return Account{}, fmt.Errorf("billing: account: %w", err)
	}
	a.Coupons, a.AddOns = []Coupon{}, []string{}
	if a.CouponsRaw != "" {
		if err := json.Unmarshal([]byte(a.CouponsRaw), &a.Coupons); err != nil {
			return Account{}, fmt.Errorf("billing: account coupons: %w", err)
		}
	}
	if a.AddOnsRaw != "" {
		if err := json.Unmarshal([]byte(a.AddOnsRaw), &a.AddOns); err != nil {
			return Account{}, fmt.Errorf("billing: account add-ons: %w", err)
		}
	}
	return a, nil
}

// SetupPayment makes sure the tenant has a Stripe customer and returns a SetupIntent's client
// secret for the console to collect a card with.
func (p *Payments) SetupPayment(ctx context.Context, name, email string) (clientSecret string, err error) {
	if p.stripe == nil {
		return "", ErrStripeNotConfigured
	}
	a, err := p.Account(ctx)
	if err != nil {
		return "", err
	}
	cus, err := p.stripe.EnsureCustomer(ctx, a.TenantID, name, email, a.StripeCustomerID)
	if err != nil {
		return "", err
	}
	if cus != a.StripeCustomerID {
		if err := p.LinkCustomer(ctx, cus); err != nil {
			return "", err
		}
	}
	// One SetupIntent per customer per hour: a double click does not make two.
	secret, _, err := p.stripe.SetupIntent(ctx, cus, fmt.Sprintf("setup-%s-%d", cus, p.now().Unix()/3600))
	return secret, err
}

// CheckoutPayment makes sure the tenant has a Stripe customer and returns the URL of a Stripe
// Checkout page (setup mode) that collects a card and comes back to the console's billing page.
// The return addresses are ours, never the caller's, so the flow cannot redirect elsewhere.
func (p *Payments) CheckoutPayment(ctx context.Context, name, email string) (url string, err error) {
	if p.stripe == nil {
		return "", ErrStripeNotConfigured
	}
	a, err := p.Account(ctx)
	if err != nil {
		return "", err
	}
	cus, err := p.stripe.EnsureCustomer(ctx, a.TenantID, name, email, a.StripeCustomerID)
	if err != nil {
		return "", err
	}
	if cus != a.StripeCustomerID {
		if err := p.LinkCustomer(ctx, cus); err != nil {
			return "", err
		}
	}
	url, _, err = p.stripe.CheckoutSetupSession(ctx, cus, p.public+"/billing?payment=done", p.public+"/billing?payment=cancelled",
		fmt.Sprintf("checkout-%s-%d", cus, p.now().Unix()/60))
	return url, err
}

// LinkCustomer records the tenant's Stripe customer id.
func (p *Payments) LinkCustomer(ctx context.Context, customerID string) error {
	if _, err := p.Account(ctx); err != nil {
		return err
	}
	return p.db.Tx(ctx, func(ctx context.Context) error {
		if err := p.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Model(&Account{}).Where("tenant_id = ?", acctID(ctx)).Updates(map[string]any{"stripe_customer_id": customerID, "updated_at": p.now()}).Error
		}); err != nil {
			return err
		}
		return p.db.Record(ctx, tenant.Audit{Action: "billing.customer_linked", ObjectType: "billing_account", ObjectID: customerID})
	})
}

// WebhookResult says what HandleWebhook did.
type WebhookResult struct {
	EventID   string `json:"event_id"`
	Type      string `json:"type"`
	Duplicate bool   `json:"duplicate"`
	Tenant    string `json:"tenant_id,omitempty"`
}

// HandleWebhook verifies a Stripe webhook (signature and a 300 s window) and applies it once:
// the event id is stored in the same transaction as its effects, so a replay, or Stripe's
// retry of an event we already applied, changes nothing, and a failure part-way applies
// nothing and lets Stripe retry.
func (p *Payments) HandleWebhook(ctx context.Context, payload []byte, signature string) (WebhookResult, error) {
	if p.stripe == nil || !p.secret {
		return WebhookResult{}, ErrStripeNotConfigured
	}
	ev, err := p.stripe.VerifyEvent(payload, signature, p.now())
	if errors.Is(err, stripesync.ErrBadSignature) {
		return WebhookResult{}, apperr.Malformed("Stripe-Signature", "the signature does not verify or is older than 300 seconds")
	}
	if err != nil {
		return WebhookResult{}, err
	}
	res := WebhookResult{EventID: ev.ID, Type: ev.Type}
	ctx = p.db.AsPlatform(ctx, "Stripe webhook "+ev.Type)
	err = p.db.Tx(ctx, func(ctx context.Context) error {
		var inserted int64
		err := p.db.Run(ctx, func(tx *gorm.DB) error {
			r := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&stripeEvent{ID: ev.ID, Type: ev.Type, Created: ev.Created.UTC(), ProcessedAt: p.now()})
			inserted = r.RowsAffected
			return r.Error
		})
		if err != nil {
			return err
		}
		if inserted == 0 {
			res.Duplicate = true
			return nil
		}
		if ev.CustomerID == "" {
			return nil
		}
		var acct Account
		err = p.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Where("stripe_customer_id = ?", ev.CustomerID).Take(&acct).Error
		})
		if errors.Is(err, gorm.ErrRecordNotFound) {
			p.log.WarnContext(ctx, "stripe event for an unknown customer", "event", ev.ID, "customer", ev.CustomerID)
			return nil
		}
		if err != nil {
			return err
		}
		res.Tenant = acct.TenantID.String()
		if err := p.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Model(&stripeEvent{}).Where("id = ?", ev.ID).Update("org_id", acct.TenantID).Error
		}); err != nil {
			return err
		}
		return p.apply(ctx, acct, ev)
	})
	if err != nil {
		return WebhookResult{}, fmt.Errorf("billing: stripe event %s: %w", ev.ID, err)
	}
	return res, nil
}

func (p *Payments) apply(ctx context.Context, acct Account, ev stripesync.Event) error {
	org, err := p.org(ctx, acct.TenantID)
	if err != nil {
		return err
	}
	tctx := tenant.WithOrg(ctx, org)
	now := p.now()
	audit := tenant.Audit{Action: "billing." + strings.ReplaceAll(ev.Type, ".", "_"), ObjectType: "stripe_event", ObjectID: ev.ID,
		Data: map[string]any{"invoice": ev.InvoiceID, "amount_due": ev.AmountDue, "amount_paid": ev.AmountPaid, "currency": ev.Currency}}
	update := map[string]any{"updated_at": now}
	switch ev.Type {
	case "invoice.payment_failed":
		if acct.PaymentStatus != "failed" {
			update["payment_status"], update["failed_at"], update["grace_until"] = "failed", now, now.Add(p.grace)
			update["reminders_sent"], update["last_reminder_at"] = 1, now
			if err := p.remind(tctx, org, "failed", now.Add(p.grace)); err != nil {
				return err
			}
		}
		if tenant.CanTransition(org.Status, tenant.StatusPastDue) && org.Status != tenant.StatusSuspended {
			if _, err := p.db.Transition(ctx, org.ID, tenant.StatusPastDue, "payment failed ("+ev.ID+")"); err != nil {
				return err
			}
		}
	case "invoice.paid":
		update["payment_status"], update["failed_at"], update["grace_until"] = "ok", nil, nil
		update["reminders_sent"], update["last_reminder_at"] = 0, nil
		if org.Status == tenant.StatusPastDue || org.Status == tenant.StatusSuspended {
			if _, err := p.db.Transition(ctx, org.ID, tenant.StatusActive, "invoice paid ("+ev.ID+")"); err != nil {
				return err
			}
		}
	case "payment_method.attached":
		update["has_payment_method"] = true
	case "payment_method.detached":
		update["has_payment_method"] = false
	}
	// customer.subscription.* are recorded and audited only: Switchboard bills through invoices it
	// rates itself, so a Stripe subscription's state does not decide the tenant's.
	if err := p.db.Run(tctx, func(tx *gorm.DB) error {
		return tx.Model(&Account{}).Where("tenant_id = ?", acct.TenantID).Updates(update).Error
	}); err != nil {
		return err
	}
	return p.db.Record(tctx, audit)
}

func (p *Payments) org(ctx context.Context, id uuid.UUID) (tenant.Org, error) {
	var org tenant.Org
	err := p.db.Global(ctx, func(tx *gorm.DB) error { return tx.Where("id = ?", id).Take(&org).Error })
	return org, err
}

// remind mails the tenant's owners about a failed payment or a suspension, in the caller's
// transaction (through the outbox), in the organisation's language.
func (p *Payments) remind(ctx context.Context, org tenant.Org, kind string, until time.Time) error {
	to, err := p.owners(ctx, org.ID)
	if err != nil {
		return err
	}
	subject, body := dunningText(org, kind, until)
	for _, addr := range to {
		if err := p.mail.Send(ctx, addr, subject, body); err != nil {
			return err
		}
	}
	return nil
}

func dunningText(org tenant.Org, kind string, until time.Time) (subject, body string) {
	day := until.Format("2006-01-02 15:04 UTC")
	zh := strings.HasPrefix(org.Locale, "zh")
	switch {
	case kind == "suspended" && zh:
		return "Switchboard 账户已暂停：" + org.Name, "由于付款未能完成，" + org.Name + " 的 Switchboard 账户已暂停。控制台为只读，对客户的回复已暂停；客户发来的消息仍会保存。完成付款后账户将立即恢复。"
	case kind == "suspended":
		return "Switchboard account suspended: " + org.Name, "Payment for " + org.Name + " could not be collected, so its Switchboard account is suspended. The console is read-only and replies to customers are paused; messages from customers are still stored. Paying the open invoice restores the account at once."
	case zh:
		return "付款失败：" + org.Name, org.Name + " 的 Switchboard 发票付款失败。请在 " + day + " 之前更新付款方式，否则账户将被暂停。"
	default:
		return "Payment failed: " + org.Name, "Payment of the Switchboard invoice for " + org.Name + " failed. Please update the payment method before " + day + ", or the account will be suspended."
	}
}

// reminderEvery spaces the reminders between the failure and the end of the grace period.
const reminderEvery = 48 * time.Hour

// RunDunning suspends tenants whose grace period is over and reminds the others; each tenant in
// its own transaction, so a crash leaves every tenant either before or after its step.
// now is passed in so the schedule can be tested at any point of a grace period.
func (p *Payments) RunDunning(ctx context.Context, now time.Time) (suspended, reminded int, err error) {
	pctx := p.db.AsPlatform(ctx, "dunning")
	var due []Account
	if err := p.db.Run(pctx, func(tx *gorm.DB) error {
		return tx.Where("payment_status = 'failed'").Order("tenant_id").Find(&due).Error
	}); err != nil {
		return 0, 0, fmt.Errorf("billing: dunning: %w", err)
	}
	for _, a := range due {
		org, err := p.org(pctx, a.TenantID)
		if err != nil {
			return suspended, reminded, err
		}
		tctx := tenant.WithOrg(pctx, org)
		switch {
		case a.GraceUntil != nil && !now.Before(*a.GraceUntil) && org.Status == tenant.StatusPastDue:
			err = p.db.Tx(tctx, func(ctx context.Context) error {
				if _, err := p.db.Transition(ctx, org.ID, tenant.StatusSuspended, "grace period over"); err != nil {
					return err
				}
				return p.remind(ctx, org, "suspended", now)
			})
			suspended++
		case org.Status == tenant.StatusPastDue && a.GraceUntil != nil && now.Before(*a.GraceUntil) &&
			(a.LastReminderAt == nil || now.Sub(*a.LastReminderAt) >= reminderEvery):
			err = p.db.Tx(tctx, func(ctx context.Context) error {
				if err := p.db.Run(ctx, func(tx *gorm.DB) error {
					return tx.Model(&Account{}).Where("tenant_id = ?", a.TenantID).Updates(map[string]any{"reminders_sent": a.RemindersSent + 1, "last_reminder_at": now, "updated_at": now}).Error
				}); err != nil {
					return err
				}
				return p.remind(ctx, org, "failed", *a.GraceUntil)
			})
			reminded++
		}
		if err != nil {
			return suspended, reminded, fmt.Errorf("billing: dunning %s: %w", org.ID, err)
		}
	}
	return suspended, reminded, nil
}

// TaskDunning runs RunDunning.
const TaskDunning = "billing:dunning"

// Jobs registers the dunning task.
func (p *Payments) Jobs(mux *asynq.ServeMux) {
	mux.HandleFunc(TaskDunning, func(ctx context.Context, _ *asynq.Task) error {
		s, r, err := p.RunDunning(ctx, p.now())
		if s+r > 0 {
			p.log.InfoContext(ctx, "dunning", "suspended", s, "reminded", r)
		}
		return err
	})
}

// Schedules runs dunning every 15 minutes.
func (p *Payments) Schedules() []queue.Schedule {
	return []queue.Schedule{{Cron: "@every 15m", Task: asynq.NewTask(TaskDunning, nil), Opts: []asynq.Option{asynq.Unique(14 * time.Minute)}}}
}

// schedulePush sends a just-finalised invoice to Stripe after its transaction: as invoice items,
// an invoice and its finalisation, each with an idempotency key derived from the invoice number,
// so a retry (RetryPushes) never charges twice. Without Stripe, or before the tenant has a
// customer, the push is skipped and the invoice stays ours alone.
func (p *Payments) schedulePush(ctx context.Context, inv Invoice) {
	if err := p.push(ctx, inv); err != nil {
		p.log.WarnContext(ctx, "push invoice to Stripe", "invoice", inv.Number, "err", err)
	}
}

func (p *Payments) push(ctx context.Context, inv Invoice) error {
	a, err := p.Account(ctx)
	if err != nil {
		return err
	}
	set := map[string]any{}
	if p.stripe == nil || a.StripeCustomerID == "" {
		set["push_status"] = "skipped"
	} else {
		si := stripesync.Invoice{Number: inv.Number, Currency: inv.Currency, Metadata: map[string]string{"tenant_id": inv.TenantID.String(), "invoice_id": inv.ID.String()}}
		for _, l := range inv.Lines {
			if l.Amount != 0 {
				si.Lines = append(si.Lines, stripesync.Line{Description: l.Description, Amount: l.Amount})
			}
		}
		id, perr := p.stripe.PushInvoice(ctx, a.StripeCustomerID, si)
		if perr != nil {
			set["push_status"], set["push_error"] = "failed", perr.Error()
			err = perr
		} else {
			set["push_status"], set["push_error"], set["stripe_invoice_id"] = "pushed", "", id
		}
	}
	if uerr := p.db.Run(ctx, func(tx *gorm.DB) error {
		return tx.Model(&Invoice{}).Where("tenant_id = ? AND id = ?", inv.TenantID, inv.ID).Updates(set).Error
	}); uerr != nil {
		return errors.Join(err, uerr)
	}
	return err
}

// RetryPushes pushes again every invoice whose push failed, and returns how many now went.
func (p *Payments) RetryPushes(ctx context.Context) (int, error) {
	pctx := p.db.AsPlatform(ctx, "retry failed invoice pushes")
	var failed []Invoice
	if err := p.db.Run(pctx, func(tx *gorm.DB) error {
		return tx.Where("push_status = 'failed'").Order("tenant_id, id").Find(&failed).Error
	}); err != nil {
		return 0, err
	}
	ok := 0
	for _, inv := range failed {
		org, err := p.org(pctx, inv.TenantID)
		if err != nil {
			return ok, err
		}
		if err := json.Unmarshal([]byte(inv.LinesRaw), &inv.Lines); err != nil {
			return ok, err
		}
		if p.push(tenant.WithOrg(ctx, org), inv) == nil {
			ok++
		}
	}
	return ok, nil
}

// GrantCredit adds amount (minor units, in the plan's currency) to the tenant's credit balance,
// which the next invoices use up after tax. Audited with its reason.
func (p *Payments) GrantCredit(ctx context.Context, amount int64, reason string) (Account, error) {
	if amount <= 0 {
		return Account{}, apperr.Invalid("amount", "must be positive")
	}
	if _, err := p.Account(ctx); err != nil {
		return Account{}, err
	}
	err := p.db.Tx(ctx, func(ctx context.Context) error {
		if err := p.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Model(&Account{}).Where("tenant_id = ?", acctID(ctx)).
				Updates(map[string]any{"credit_balance": gorm.Expr("credit_balance + ?", amount), "updated_at": p.now()}).Error
		}); err != nil {
			return err
		}
		return p.db.Record(ctx, tenant.Audit{Action: "billing.credit_granted", ObjectType: "billing_account", ObjectID: acctID(ctx).String(),
			Data: map[string]any{"amount": amount, "reason": reason}})
	})
	if err != nil {
		return Account{}, fmt.Errorf("billing: grant credit: %w", err)
	}
	return p.Account(ctx)
}

func acctID(ctx context.Context) uuid.UUID {
	id, _ := tenant.ID(ctx)
	return id
}
