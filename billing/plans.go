package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/billing/rating"
	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// Tier is one step of a tiered price, in minor units.
type Tier struct {
	UpTo       int64 `json:"up_to"` // 0: no upper bound (last tier only)
	UnitAmount int64 `json:"unit_amount"`
	FlatAmount int64 `json:"flat_amount"`
}

// Price is what a plan charges for one meter.
type Price struct {
	Meter      string `json:"meter" validate:"required"`
	Model      string `json:"model" validate:"required,oneof=per_unit graduated volume"`
	UnitAmount int64  `json:"unit_amount" validate:"min=0"`
	Included   int64  `json:"included" validate:"min=0"`
	Tiers      []Tier `json:"tiers,omitempty"`
}

// AddOn is an optional extra a tenant on the plan can take: a monthly fee (prorated like the
// base fee) and prices for meters the plan itself does not price.
type AddOn struct {
	Code   string  `json:"code" validate:"required,min=2,max=40"`
	Name   string  `json:"name" validate:"required,max=120"`
	Fee    int64   `json:"fee" validate:"min=0"`
	Prices []Price `json:"prices" validate:"dive"`
}

// PlanInput is the body that creates a plan or its next version.
type PlanInput struct {
	Code      string  `json:"code" validate:"required,min=2,max=40"`
	Name      string  `json:"name" validate:"required,max=120"`
	Currency  string  `json:"currency" validate:"required,len=3,uppercase"`
	BaseFee   int64   `json:"base_fee" validate:"min=0"`
	TrialDays int     `json:"trial_days" validate:"min=0,max=365"`
	Prices    []Price `json:"prices" validate:"dive"`
	AddOns    []AddOn `json:"add_ons" validate:"max=20,dive"`
}

// Plan is one version of a plan.
type Plan struct {
	Code      string    `json:"code" gorm:"primaryKey"`
	Version   int       `json:"version" gorm:"primaryKey"`
	Name      string    `json:"name"`
	Currency  string    `json:"currency"`
	BaseFee   int64     `json:"base_fee"`
	PricesRaw string    `json:"-" gorm:"column:prices"`
	Prices    []Price   `json:"prices" gorm:"-"`
	AddOnsRaw string    `json:"-" gorm:"column:add_ons"`
	AddOns    []AddOn   `json:"add_ons" gorm:"-"`
	TrialDays int       `json:"trial_days"`
	CreatedAt time.Time `json:"created_at"`
}

func (p *Plan) decode() error {
	if err := json.Unmarshal([]byte(p.PricesRaw), &p.Prices); err != nil {
		return err
	}
	p.AddOns = []AddOn{}
	if p.AddOnsRaw == "" {
		return nil
	}
	return json.Unmarshal([]byte(p.AddOnsRaw), &p.AddOns)
}

func ratingPrices(ps []Price) []rating.Price {
	var out []rating.Price
	for _, pr := range ps {
		x := rating.Price{Meter: pr.Meter, Model: pr.Model, UnitAmount: pr.UnitAmount, Included: pr.Included}
		for _, t := range pr.Tiers {
			x.Tiers = append(x.Tiers, rating.Tier{UpTo: t.UpTo, UnitAmount: t.UnitAmount, FlatAmount: t.FlatAmount})
		}
		out = append(out, x)
	}
	return out
}

// RatingAddOns returns the plan's add-ons named in codes, as the rating engine takes them.
func (p Plan) RatingAddOns(codes []string) []rating.AddOn {
	var out []rating.AddOn
	for _, a := range p.AddOns {
		for _, c := range codes {
			if a.Code == c {
				out = append(out, rating.AddOn{Code: a.Code, Fee: a.Fee, Prices: ratingPrices(a.Prices)})
			}
		}
	}
	return out
}

// Rating returns the plan as the rating engine takes it.
func (p Plan) Rating() rating.Plan {
	return rating.Plan{Code: p.Code, Version: p.Version, Currency: p.Currency, BaseFee: p.BaseFee, TrialDays: p.TrialDays, Prices: ratingPrices(p.Prices)}
}

// SubscriptionChange is a tenant moving onto a plan version at a time.
type SubscriptionChange struct {
	TenantID    uuid.UUID `json:"-" gorm:"type:uuid;primaryKey"`
	ID          uuid.UUID `json:"id" gorm:"type:uuid;primaryKey"`
	PlanCode    string    `json:"plan_code"`
	PlanVersion int       `json:"plan_version"`
	EffectiveAt time.Time `json:"effective_at"`
	CreatedAt   time.Time `json:"created_at"`
}

// Plans manages the price list and which plan each tenant is on.
type Plans struct {
	db     *tenant.DB
	meters *Meters
	now    func() time.Time
}

// NewPlans returns the plan service.
func NewPlans(db *tenant.DB, meters *Meters) *Plans {
	return &Plans{db: db, meters: meters, now: func() time.Time { return time.Now().UTC() }}
}

// Save stores in as the next version of its plan (version 1 for a new code). Versions are never
// edited: tenants on an older one stay on it until moved.
func (p *Plans) Save(ctx context.Context, in PlanInput) (Plan, error) {
	var bad apperr.Fields
	priced := map[string]bool{}
	for i, pr := range in.Prices {
		if _, ok := p.meters.Get(pr.Meter); !ok {
			bad.Add(fmt.Sprintf("prices[%d].meter", i), "is not a known meter")
		}
		priced[pr.Meter] = true
	}
	codes := map[string]bool{}
	for i, a := range in.AddOns {
		if codes[a.Code] {
			bad.Add(fmt.Sprintf("add_ons[%d].code", i), "is used twice")
		}
		codes[a.Code] = true
		for j, pr := range a.Prices {
			if _, ok := p.meters.Get(pr.Meter); !ok {
				bad.Add(fmt.Sprintf("add_ons[%d].prices[%d].meter", i, j), "is not a known meter")
			} else if priced[pr.Meter] {
				bad.Add(fmt.Sprintf("add_ons[%d].prices[%d].meter", i, j), "is already priced by the plan or another add-on")
			}
			priced[pr.Meter] = true
		}
		if err := (rating.AddOn{Code: a.Code, Fee: a.Fee, Prices: ratingPrices(a.Prices)}).Validate(); err != nil {
			bad.Add(fmt.Sprintf("add_ons[%d]", i), err.Error())
		}
	}
	if err := bad.Err(); err != nil {
		return Plan{}, err
	}
	plan := Plan{Code: in.Code, Name: in.Name, Currency: in.Currency, BaseFee: in.BaseFee, Prices: in.Prices, AddOns: in.AddOns, TrialDays: in.TrialDays, CreatedAt: p.now()}
	if plan.Prices == nil {
		plan.Prices = []Price{}
	}
	if plan.AddOns == nil {
		plan.AddOns = []AddOn{}
	}
	rawAddOns, _ := json.Marshal(plan.AddOns)
	plan.AddOnsRaw = string(rawAddOns)
	check := plan.Rating()
	check.Version = 1 // the real one is assigned below
	if err := check.Validate(); err != nil {
		return Plan{}, apperr.Invalid("prices", err.Error())
	}
	raw, _ := json.Marshal(plan.Prices)
	plan.PricesRaw = string(raw)
	err := p.db.Tx(ctx, func(ctx context.Context) error {
		return p.db.Global(ctx, func(tx *gorm.DB) error {
			var last *int
			if err := tx.Model(&Plan{}).Where("code = ?", in.Code).Select("MAX(version)").Scan(&last).Error; err != nil {
				return err
			}
			plan.Version = 1
			if last != nil {
				plan.Version = *last + 1
			}
			return tx.Create(&plan).Error
		})
	})
	if err != nil {
		return Plan{}, fmt.Errorf("billing: save plan: %w", err)
	}
	return plan, nil
}

// List returns every version of every plan, newest version first within a code.
func (p *Plans) List(ctx context.Context) ([]Plan, error) {
	var out []Plan
	err := p.db.Global(ctx, func(tx *gorm.DB) error { return tx.Order("code, version DESC").Find(&out).Error })
	for i := range out {
		if err == nil {
			err = out[i].decode()
		}
	}
	return out, err
}

// Get returns one plan version; version 0 is the latest.
func (p *Plans) Get(ctx context.Context, code string, version int) (Plan, error) {
	var plan Plan
	err := p.db.Global(ctx, func(tx *gorm.DB) error {
		q := tx.Where("code = ?", code)
		if version > 0 {
			q = q.Where("version = ?", version)
		}
		return q.Order("version DESC").Take(&plan).Error
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Plan{}, apperr.ErrNotFound
	}
	if err != nil {
		return Plan{}, err
	}
	return plan, plan.decode()
}

// Subscribe moves the tenant in ctx onto a plan version from at (now when zero). The first
// subscription fixes the tenant's billing anchor day. A change in the middle of a period
// prorates: the period is rated in segments, one per plan.
func (p *Plans) Subscribe(ctx context.Context, code string, version int, at time.Time) (SubscriptionChange, error) {
	tid, ok := tenant.ID(ctx)
	if !ok {
		return SubscriptionChange{}, tenant.ErrNoTenant
	}
	plan, err := p.Get(ctx, code, version)
	if errors.Is(err, apperr.ErrNotFound) {
		return SubscriptionChange{}, apperr.Invalid("plan_code", "no such plan or version")
	}
	if err != nil {
		return SubscriptionChange{}, err
	}
	if at.IsZero() {
		at = p.now()
	}
	at = at.UTC().Truncate(time.Second)
	ch := SubscriptionChange{TenantID: tid, ID: ids.New(), PlanCode: plan.Code, PlanVersion: plan.Version, EffectiveAt: at, CreatedAt: p.now()}
	err = p.db.Tx(ctx, func(ctx context.Context) error {
		return p.db.Run(ctx, func(tx *gorm.DB) error {
			var cur []SubscriptionChange
			if err := tx.Order("effective_at DESC").Limit(1).Find(&cur).Error; err != nil {
				return err
			}
			if len(cur) > 0 {
				prev, err := p.Get(ctx, cur[0].PlanCode, cur[0].PlanVersion)
				if err != nil {
					return err
				}
				if prev.Currency != plan.Currency {
					return apperr.Invalid("plan_code", "the plan's currency ("+plan.Currency+") differs from the current plan's ("+prev.Currency+")")
				}
			} else {
				// The first plan anchors the periods: they start on its day of the month.
				now := p.now()
				if err := tx.Exec(`INSERT INTO billing_accounts (tenant_id, payment_status, anchor_day, created_at, updated_at) VALUES (?, 'ok', ?, ?, ?)
					ON CONFLICT (tenant_id) DO UPDATE SET anchor_day = excluded.anchor_day`, tid, at.Day(), now, now).Error; err != nil {
					return err
				}
			}
			if err := tx.Create(&ch).Error; err != nil {
				return err
			}
			return p.db.Record(ctx, tenant.Audit{Action: "billing.plan_changed", ObjectType: "plan", ObjectID: fmt.Sprintf("%s@%d", plan.Code, plan.Version),
				Data: map[string]any{"effective_at": at}})
		})
	})
	if err != nil {
		return SubscriptionChange{}, fmt.Errorf("billing: subscribe: %w", err)
	}
	return ch, nil
}

// Current returns the plan version the tenant in ctx was last moved onto; ok is false when it is
// on no plan.
func (p *Plans) Current(ctx context.Context) (plan Plan, ok bool, err error) {
	hist, err := p.History(ctx)
	if err != nil {
		return Plan{}, false, err
	}
	return p.CurrentOf(ctx, hist)
}

// CurrentOf is Current for a history already read.
func (p *Plans) CurrentOf(ctx context.Context, hist []SubscriptionChange) (Plan, bool, error) {
	if len(hist) == 0 {
		return Plan{}, false, nil
	}
	last := hist[len(hist)-1]
	plan, err := p.Get(ctx, last.PlanCode, last.PlanVersion)
	return plan, err == nil, err
}

// CheckAddOns refuses add-on codes the tenant's current plan does not offer.
func (p *Plans) CheckAddOns(ctx context.Context, codes []string) error {
	if len(codes) == 0 {
		return nil
	}
	plan, ok, err := p.Current(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return apperr.Invalid("add_ons", "the tenant is on no plan")
	}
	var bad apperr.Fields
	for i, code := range codes {
		if len(plan.RatingAddOns([]string{code})) == 0 {
			bad.Add(fmt.Sprintf("add_ons[%d]", i), "is not an add-on of the tenant's plan")
		}
	}
	return bad.Err()
}

// Subscribed lists the tenants that have ever been on a plan (ctx needs platform access).
func (p *Plans) Subscribed(pctx context.Context) ([]uuid.UUID, error) {
	var tenants []uuid.UUID
	err := p.db.Run(pctx, func(tx *gorm.DB) error {
		return tx.Model(&SubscriptionChange{}).Distinct("tenant_id").Order("tenant_id").Pluck("tenant_id", &tenants).Error
	})
	return tenants, err
}

// History returns the tenant's plan changes, oldest first.
func (p *Plans) History(ctx context.Context) ([]SubscriptionChange, error) {
	var out []SubscriptionChange
	err := p.db.Run(ctx, func(tx *gorm.DB) error { return tx.Order("effective_at, id").Find(&out).Error })
	return out, err
}
