package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/switchboard-cloud/switchboard/billing/rating"
	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// ErrNoPlan is returned for a tenant that is on no plan.
var ErrNoPlan = errors.New("billing: the tenant is on no plan")

// InvoiceLine is an invoice line as stored and shown; amounts in minor units.
type InvoiceLine struct {
	Kind        string    `json:"kind"`
	Meter       string    `json:"meter,omitempty"`
	Code        string    `json:"code,omitempty"`
	Description string    `json:"description"`
	DescZH      string    `json:"description_zh"`
	Quantity    int64     `json:"quantity"`
	Included    int64     `json:"included"`
	Billable    int64     `json:"billable"`
	UnitAmount  int64     `json:"unit_amount"`
	Amount      int64     `json:"amount"`
	RateBP      int64     `json:"rate_bp,omitempty"`
	Trial       bool      `json:"trial,omitempty"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
}

// Invoice is a finalised invoice, or (Draft set, no number) the live draft of the open period.
type Invoice struct {
	TenantID        uuid.UUID     `json:"-" gorm:"type:uuid;primaryKey"`
	ID              uuid.UUID     `json:"id" gorm:"type:uuid;primaryKey"`
	Number          string        `json:"number"`
	PeriodStart     time.Time     `json:"period_start"`
	PeriodEnd       time.Time     `json:"period_end"`
	Currency        string        `json:"currency"`
	Subtotal        int64         `json:"subtotal"`
	Discount        int64         `json:"discount"`
	Tax             int64         `json:"tax"`
	CreditApplied   int64         `json:"credit_applied"`
	Total           int64         `json:"total"`
	LinesRaw        string        `json:"-" gorm:"column:lines"`
	Lines           []InvoiceLine `json:"lines" gorm:"-"`
	Status          string        `json:"status"`
	PushStatus      string        `json:"push_status"`
	PushError       string        `json:"-"`
	StripeInvoiceID string        `json:"stripe_invoice_id,omitempty"`
	FinalizedAt     time.Time     `json:"finalized_at"`
	Draft           bool          `json:"draft" gorm:"-"`
	// billed is what the ledger held for each meter of the period when the draft was made.
	billed map[string]int64
	// adjusted is the ledger total now of each earlier period an adjustment line covers.
	adjusted map[time.Time]map[string]int64
}

type billedUsage struct {
	TenantID    uuid.UUID `gorm:"type:uuid;primaryKey"`
	PeriodStart time.Time `gorm:"primaryKey"`
	Meter       string    `gorm:"primaryKey"`
	Quantity    int64
}

func (billedUsage) TableName() string { return "billed_usage" }

// Invoicer rates periods into invoices.
type Invoicer struct {
	db       *tenant.DB
	ledger   *Ledger
	plans    *Plans
	payments *Payments
	log      *slog.Logger
}

// NewInvoicer returns the invoicer.
func NewInvoicer(db *tenant.DB, ledger *Ledger, plans *Plans, payments *Payments, log *slog.Logger) *Invoicer {
	return &Invoicer{db: db, ledger: ledger, plans: plans, payments: payments, log: log}
}

// PeriodAt is the tenant's billing period containing t.
func (iv *Invoicer) PeriodAt(ctx context.Context, t time.Time) (rating.Period, error) {
	a, err := iv.payments.Account(ctx)
	if err != nil {
		return rating.Period{}, err
	}
	return rating.PeriodFor(max(a.AnchorDay, 1), t), nil
}

// Draft rates the tenant's period p as it stands now: the live draft the tenant sees, and what
// Finalize stores.
func (iv *Invoicer) Draft(ctx context.Context, p rating.Period) (Invoice, error) {
	tid, ok := tenant.ID(ctx)
	if !ok {
		return Invoice{}, tenant.ErrNoTenant
	}
	hist, err := iv.plans.History(ctx)
	if err != nil {
		return Invoice{}, err
	}
	if len(hist) == 0 || !hist[0].EffectiveAt.Before(p.End) {
		return Invoice{}, ErrNoPlan
	}
	acct, err := iv.payments.Account(ctx)
	if err != nil {
		return Invoice{}, err
	}
	segs, err := iv.segments(ctx, hist, p, acct.AddOns)
	if err != nil {
		return Invoice{}, err
	}
	in := rating.Input{Period: p, Segments: segs, Credits: acct.CreditBalance, TaxRateBP: acct.TaxRateBP}
	for _, c := range acct.Coupons {
		in.Coupons = append(in.Coupons, rating.Coupon{Code: c.Code, PercentOffBP: c.PercentOffBP, AmountOff: c.AmountOff})
	}
	first, err := iv.plans.Get(ctx, hist[0].PlanCode, hist[0].PlanVersion)
	if err != nil {
		return Invoice{}, err
	}
	in.Trial = first.TrialDays > 0 && !p.End.After(hist[0].EffectiveAt.AddDate(0, 0, first.TrialDays))

	whole, err := iv.ledgerTotals(ctx, p.Start, p.End)
	if err != nil {
		return Invoice{}, err
	}
	inv := Invoice{TenantID: tid, PeriodStart: p.Start, PeriodEnd: p.End, Draft: true, Status: "draft", billed: whole, adjusted: map[time.Time]map[string]int64{}}
	if err := iv.adjustments(ctx, hist, p, &in, &inv); err != nil {
		return Invoice{}, err
	}
	out, err := rating.Rate(in)
	if err != nil {
		return Invoice{}, fmt.Errorf("billing: rate %s: %w", p.Start.Format("2006-01-02"), err)
	}
	inv.Currency, inv.Subtotal, inv.Discount, inv.Tax, inv.CreditApplied, inv.Total = out.Currency, out.Subtotal, out.Discount, out.Tax, out.CreditApplied, out.Total
	for _, l := range out.Lines {
		inv.Lines = append(inv.Lines, InvoiceLine{Kind: l.Kind, Meter: l.Meter, Code: l.Code, Description: rating.Describe(l, "en"), DescZH: rating.Describe(l, "zh-CN"),
			Quantity: l.Quantity, Included: l.Included, Billable: l.Billable, UnitAmount: l.UnitAmount, Amount: l.Amount, RateBP: l.RateBP, Trial: l.Trial, From: l.From, To: l.To})
	}
	return inv, nil
}

// segments splits p at each plan change inside it, with the usage of each stretch.
func (iv *Invoicer) segments(ctx context.Context, hist []SubscriptionChange, p rating.Period, addOns []string) ([]rating.Segment, error) {
	var segs []rating.Segment
	for i, ch := range hist {
		from, to := ch.EffectiveAt, p.End
		if i+1 < len(hist) {
			to = hist[i+1].EffectiveAt
		}
		if i == 0 && from.After(p.Start) {
			from = p.Start // the first plan covers its whole first period (the anchor is its day)
		}
		if !to.After(p.Start) || !from.Before(p.End) {
			continue
		}
		from, to = maxTime(from, p.Start), minTime(to, p.End)
		plan, err := iv.plans.Get(ctx, ch.PlanCode, ch.PlanVersion)
		if err != nil {
			return nil, err
		}
		usage, err := iv.ledgerTotals(ctx, from, to)
		if err != nil {
			return nil, err
		}
		taken := plan.RatingAddOns(addOns)
		priced := map[string]int64{}
		for _, pr := range plan.Prices {
			priced[pr.Meter] = usage[pr.Meter] // meters neither the plan nor a taken add-on prices are not billed
		}
		for _, a := range taken {
			for _, pr := range a.Prices {
				priced[pr.Meter] = usage[pr.Meter]
			}
		}
		segs = append(segs, rating.Segment{Plan: plan.Rating(), AddOns: taken, From: from, To: to, Usage: priced})
	}
	return segs, nil
}

// adjustments bills late events of the last 12 closed periods: what the ledger holds now for a
// period's meter beyond what was billed for it.
func (iv *Invoicer) adjustments(ctx context.Context, hist []SubscriptionChange, p rating.Period, in *rating.Input, inv *Invoice) error {
	var closed []Invoice
	if err := iv.db.Run(ctx, func(tx *gorm.DB) error {
		return tx.Where("period_end <= ?", p.Start).Order("period_start DESC").Limit(12).Find(&closed).Error
	}); err != nil {
		return err
	}
	for i := len(closed) - 1; i >= 0; i-- {
		c := closed[i]
		var billed []billedUsage
		if err := iv.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Where("period_start = ?", c.PeriodStart).Find(&billed).Error
		}); err != nil {
			return err
		}
		now, err := iv.ledgerTotals(ctx, c.PeriodStart, c.PeriodEnd)
		if err != nil {
			return err
		}
		plan, err := iv.plans.Get(ctx, planAt(hist, c.PeriodEnd.Add(-time.Second)).PlanCode, planAt(hist, c.PeriodEnd.Add(-time.Second)).PlanVersion)
		if err != nil {
			return err
		}
		was := map[string]int64{}
		for _, b := range billed {
			was[b.Meter] = b.Quantity
		}
		for _, pr := range plan.Prices {
			if late := now[pr.Meter] - was[pr.Meter]; late > 0 {
				in.Adjustments = append(in.Adjustments, rating.Adjustment{Period: rating.Period{Start: c.PeriodStart, End: c.PeriodEnd}, Plan: plan.Rating(),
					Meter: pr.Meter, AlreadyBilled: was[pr.Meter], Late: late})
				if inv.adjusted[c.PeriodStart] == nil {
					inv.adjusted[c.PeriodStart] = map[string]int64{}
				}
				inv.adjusted[c.PeriodStart][pr.Meter] = now[pr.Meter]
			}
		}
	}
	return nil
}

func planAt(hist []SubscriptionChange, t time.Time) SubscriptionChange {
	cur := hist[0]
	for _, h := range hist {
		if !h.EffectiveAt.After(t) {
			cur = h
		}
	}
	return cur
}

func (iv *Invoicer) ledgerTotals(ctx context.Context, from, to time.Time) (map[string]int64, error) {
	ts, err := iv.ledger.Totals(ctx, from, to)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, t := range ts {
		out[t.Meter] = t.Quantity
	}
	return out, nil
}

// Finalize closes the tenant's period p (which must have ended by now): the invoice is stored,
// numbered and immutable, what it billed of each meter is remembered (so later events become an
// adjustment on the next invoice), and the credit it used is taken off the balance, all in one
// transaction. Finalising a period again returns the stored invoice: a re-run bills nothing twice.
func (iv *Invoicer) Finalize(ctx context.Context, p rating.Period, now time.Time) (Invoice, bool, error) {
	if p.End.After(now) {
		return Invoice{}, false, apperr.Invalid("period", "the period has not ended yet")
	}
	org, _ := tenant.OrgFrom(ctx)
	var out Invoice
	created := false
	err := iv.db.Tx(ctx, func(ctx context.Context) error {
		return iv.db.Run(ctx, func(tx *gorm.DB) error {
			var existing []Invoice
			if err := tx.Where("period_start = ?", p.Start).Find(&existing).Error; err != nil {
				return err
			}
			if len(existing) > 0 {
				out = existing[0]
				return json.Unmarshal([]byte(out.LinesRaw), &out.Lines)
			}
			inv, err := iv.Draft(ctx, p)
			if err != nil {
				return err
			}
			var n int64
			if err := tx.Model(&Invoice{}).Count(&n).Error; err != nil {
				return err
			}
			inv.ID, inv.Draft, inv.Status, inv.PushStatus, inv.FinalizedAt = ids.New(), false, "open", "pending", now
			inv.Number = fmt.Sprintf("%s-%s-%04d", strings.ToUpper(org.Slug), p.Start.Format("200601"), n+1)
			raw, _ := json.Marshal(inv.Lines)
			inv.LinesRaw = string(raw)
			if err := tx.Create(&inv).Error; err != nil {
				return err
			}
			var rows []billedUsage
			for m, q := range inv.billed {
				rows = append(rows, billedUsage{TenantID: inv.TenantID, PeriodStart: p.Start, Meter: m, Quantity: q})
			}
			for start, ms := range inv.adjusted {
				for m, q := range ms {
					rows = append(rows, billedUsage{TenantID: inv.TenantID, PeriodStart: start, Meter: m, Quantity: q})
				}
			}
			sort.Slice(rows, func(i, j int) bool { return rows[i].Meter < rows[j].Meter })
			if len(rows) > 0 {
				if err := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "tenant_id"}, {Name: "period_start"}, {Name: "meter"}},
					DoUpdates: clause.AssignmentColumns([]string{"quantity"})}).Create(&rows).Error; err != nil {
					return err
				}
			}
			if inv.CreditApplied > 0 {
				if err := tx.Model(&Account{}).Where("tenant_id = ?", inv.TenantID).
					Update("credit_balance", gorm.Expr("credit_balance - ?", inv.CreditApplied)).Error; err != nil {
					return err
				}
			}
			out, created = inv, true
			return iv.db.Record(ctx, tenant.Audit{Action: "billing.invoice_finalized", ObjectType: "invoice", ObjectID: inv.ID.String(),
				Data: map[string]any{"number": inv.Number, "total": inv.Total, "currency": inv.Currency}})
		})
	})
	if err != nil {
		return Invoice{}, false, fmt.Errorf("billing: finalise %s: %w", p.Start.Format("2006-01-02"), err)
	}
	return out, created, nil
}

// List returns the tenant's finalised invoices, newest first.
func (iv *Invoicer) List(ctx context.Context, limit int, cursor string) ([]Invoice, error) {
	var out []Invoice
	err := iv.db.Run(ctx, func(tx *gorm.DB) error {
		q := tx.Order("id DESC").Limit(limit)
		if cursor != "" {
			q = q.Where("id < ?", cursor)
		}
		return q.Find(&out).Error
	})
	for i := range out {
		if err == nil {
			err = json.Unmarshal([]byte(out[i].LinesRaw), &out[i].Lines)
		}
	}
	return out, err
}

// Get returns one of the tenant's invoices; another tenant's is not found.
func (iv *Invoicer) Get(ctx context.Context, id uuid.UUID) (Invoice, error) {
	var inv Invoice
	err := iv.db.Run(ctx, func(tx *gorm.DB) error { return tx.Where("id = ?", id).Take(&inv).Error })
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Invoice{}, apperr.ErrNotFound
	}
	if err != nil {
		return Invoice{}, err
	}
	return inv, json.Unmarshal([]byte(inv.LinesRaw), &inv.Lines)
}

// RunItem is one tenant's result in a billing run.
type RunItem struct {
	TenantID string   `json:"tenant_id"`
	Tenant   string   `json:"tenant"`
	Invoice  *Invoice `json:"invoice,omitempty"`
	Created  bool     `json:"created"`
	Error    string   `json:"error,omitempty"`
}

// Run bills every tenant on a plan for its period starting in month ("2026-11"): a preview
// rates the drafts and stores nothing; otherwise each tenant's period is finalised in its own
// transaction (a tenant that fails does not stop the others, and running again finishes it
// without billing anyone twice).
func (iv *Invoicer) Run(ctx context.Context, month string, finalize bool, now time.Time) ([]RunItem, error) {
	m, err := time.Parse("2006-01", month)
	if err != nil {
		return nil, apperr.Invalid("period", "must be a month, YYYY-MM")
	}
	pctx := iv.db.AsPlatform(ctx, "billing run "+month)
	tenants, err := iv.plans.Subscribed(pctx)
	if err != nil {
		return nil, err
	}
	var items []RunItem
	for _, tid := range tenants {
		org, err := iv.payments.org(pctx, tid)
		if err != nil {
			return items, err
		}
		tctx := tenant.WithOrg(ctx, org) // the tenant's own scope, not the platform's
		item := RunItem{TenantID: tid.String(), Tenant: org.Name}
		a, err := iv.payments.Account(tctx)
		if err == nil {
			p := rating.PeriodFor(max(a.AnchorDay, 1), time.Date(m.Year(), m.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, max(a.AnchorDay, 1)-1))
			var inv Invoice
			if finalize {
				inv, item.Created, err = iv.Finalize(tctx, p, now)
				if err == nil && item.Created {
					iv.payments.schedulePush(tctx, inv)
				}
			} else {
				inv, err = iv.Draft(tctx, p)
			}
			if err == nil {
				item.Invoice = &inv
			}
		}
		if err != nil && !errors.Is(err, ErrNoPlan) {
			item.Error = err.Error()
			iv.log.ErrorContext(ctx, "billing run", "tenant", tid, "err", err)
		}
		if item.Invoice != nil || item.Error != "" {
			items = append(items, item)
		}
	}
	return items, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
