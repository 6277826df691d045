package billing

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// VendorRate is what one managed seat of a vendor costs the platform.
type VendorRate struct {
	TenantID        uuid.UUID `json:"vendor_id" gorm:"type:uuid;primaryKey"` // the vendor organisation
	Currency        string    `json:"currency" validate:"required,len=3,uppercase"`
	CostPerSeatHour int64     `json:"cost_per_seat_hour" validate:"min=0"`
	HoursPerSeatDay int       `json:"hours_per_seat_day" validate:"min=1,max=24"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// TableName is the rates table.
func (VendorRate) TableName() string { return "vendor_rates" }

// SetVendorRate records the vendor's cost rate (platform action, audited in the vendor's log).
func (iv *Invoicer) SetVendorRate(ctx context.Context, vendor tenant.Org, r VendorRate) (VendorRate, error) {
	if vendor.Kind != tenant.KindVendor {
		return VendorRate{}, apperr.ErrNotFound
	}
	r.TenantID, r.UpdatedAt = vendor.ID, time.Now().UTC()
	ctx = tenant.WithOrg(ctx, vendor)
	err := iv.db.Tx(ctx, func(ctx context.Context) error {
		if err := iv.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "tenant_id"}}, UpdateAll: true}).Create(&r).Error
		}); err != nil {
			return err
		}
		return iv.db.Record(ctx, tenant.Audit{Action: "billing.vendor_rate_set", ObjectType: "vendor_rate", ObjectID: vendor.ID.String(),
			Data: map[string]any{"currency": r.Currency, "cost_per_seat_hour": r.CostPerSeatHour, "hours_per_seat_day": r.HoursPerSeatDay}})
	})
	return r, err
}

// MarginRow is billed against cost of managed seats for one tenant, vendor or agent.
type MarginRow struct {
	TenantID string `json:"tenant_id,omitempty"`
	Tenant   string `json:"tenant,omitempty"`
	VendorID string `json:"vendor_id,omitempty"`
	Vendor   string `json:"vendor,omitempty"`
	AgentID  string `json:"agent_id,omitempty"`
	Currency string `json:"currency"`
	SeatDays int64  `json:"seat_days"`
	Billed   int64  `json:"billed"`
	Cost     int64  `json:"cost"`
	Margin   int64  `json:"margin"`
	// Note says why a row has no margin (no cost rate, or the vendor is paid in another currency).
	Note string `json:"note,omitempty"`
}

// Revenue is the platform's revenue view of a month.
type Revenue struct {
	Period   string           `json:"period"`
	MRR      map[string]int64 `json:"mrr"`      // base fees of the plans tenants are on, per currency
	Invoiced map[string]int64 `json:"invoiced"` // finalised invoices of periods starting in the month
	Usage    []MeterTotal     `json:"usage"`    // every tenant's usage in the calendar month
	ByTenant []MarginRow      `json:"margin_by_tenant"`
	ByVendor []MarginRow      `json:"margin_by_vendor"`
	ByAgent  []MarginRow      `json:"margin_by_agent"`
}

type seatGroup struct {
	vendor, agent string
	days          int64
}

// Revenue reports month ("2026-11"): MRR, invoiced totals, usage by meter, and the margin of
// managed seats. A tenant's managed-seat charge (its invoice's seat_days_managed lines, or its
// draft's while the period is open) is split over the vendors' agents in proportion to their
// seat-days (largest remainder, so the parts add up to the charge); cost is seat-days × the
// vendor's hours per seat-day × its cost per seat-hour.
func (iv *Invoicer) Revenue(ctx context.Context, month string, now time.Time) (Revenue, error) {
	m, err := time.Parse("2006-01", month)
	if err != nil {
		return Revenue{}, apperr.Invalid("period", "must be a month, YYYY-MM")
	}
	rev := Revenue{Period: month, MRR: map[string]int64{}, Invoiced: map[string]int64{}}
	pctx := iv.db.AsPlatform(ctx, "revenue report "+month)

	var rates []VendorRate
	var vendors []tenant.Org
	if err := iv.db.Run(pctx, func(tx *gorm.DB) error { return tx.Find(&rates).Error }); err != nil {
		return rev, err
	}
	if err := iv.db.Global(pctx, func(tx *gorm.DB) error { return tx.Where("kind = ?", tenant.KindVendor).Find(&vendors).Error }); err != nil {
		return rev, err
	}
	rateOf, vendorName := map[string]VendorRate{}, map[string]string{}
	for _, r := range rates {
		rateOf[r.TenantID.String()] = r
	}
	for _, v := range vendors {
		vendorName[v.ID.String()] = v.Name
	}

	items, err := iv.Run(ctx, month, false, now) // drafts; a finalised period's draft equals its invoice
	if err != nil {
		return rev, err
	}
	byVendor, byAgent := map[string]*MarginRow{}, map[string]*MarginRow{}
	for _, it := range items {
		if it.Invoice == nil {
			continue
		}
		inv := it.Invoice
		tid, _ := uuid.Parse(it.TenantID)
		org, err := iv.payments.org(pctx, tid)
		if err != nil {
			return rev, err
		}
		if org.Status != tenant.StatusCancelled {
			p, ok, err := iv.plans.Current(tenant.WithOrg(ctx, org))
			if err != nil {
				return rev, err
			}
			if ok {
				rev.MRR[p.Currency] += p.BaseFee
			}
		}
		var billed int64
		for _, l := range inv.Lines {
			if l.Meter == SeatDaysManaged.Name && (l.Kind == "usage") {
				billed += l.Amount
			}
		}
		groups, err := iv.seatGroups(tenant.WithOrg(ctx, org), inv.PeriodStart, inv.PeriodEnd)
		if err != nil {
			return rev, err
		}
		if len(groups) == 0 {
			continue
		}
		parts := splitLargestRemainder(billed, groups)
		trow := MarginRow{TenantID: it.TenantID, Tenant: it.Tenant, Currency: inv.Currency}
		for i, g := range groups {
			row := MarginRow{TenantID: it.TenantID, Tenant: it.Tenant, VendorID: g.vendor, Vendor: vendorName[g.vendor], AgentID: g.agent,
				Currency: inv.Currency, SeatDays: g.days, Billed: parts[i]}
			r, ok := rateOf[g.vendor]
			switch {
			case !ok:
				row.Note = "no cost rate for this vendor"
			case r.Currency != inv.Currency:
				row.Note = "vendor is paid in " + r.Currency
			default:
				row.Cost = g.days * int64(r.HoursPerSeatDay) * r.CostPerSeatHour
			}
			row.Margin = row.Billed - row.Cost
			add(&trow, row)
			add(upsert(byVendor, g.vendor+"|"+inv.Currency, MarginRow{VendorID: g.vendor, Vendor: row.Vendor, Currency: inv.Currency}), row)
			add(upsert(byAgent, g.vendor+"|"+g.agent+"|"+inv.Currency, MarginRow{VendorID: g.vendor, Vendor: row.Vendor, AgentID: g.agent, Currency: inv.Currency}), row)
		}
		rev.ByTenant = append(rev.ByTenant, trow)
	}
	rev.ByVendor, rev.ByAgent = sorted(byVendor), sorted(byAgent)

	var invs []Invoice
	if err := iv.db.Run(pctx, func(tx *gorm.DB) error {
		return tx.Where("period_start >= ? AND period_start < ? AND status <> 'void'", m, m.AddDate(0, 1, 0)).Find(&invs).Error
	}); err != nil {
		return rev, err
	}
	for _, i := range invs {
		rev.Invoiced[i.Currency] += i.Total
	}
	rev.Usage, err = iv.platformUsage(pctx, m, m.AddDate(0, 1, 0))
	return rev, err
}

func add(dst *MarginRow, r MarginRow) {
	dst.SeatDays += r.SeatDays
	dst.Billed += r.Billed
	dst.Cost += r.Cost
	dst.Margin += r.Margin
	if r.Note != "" {
		dst.Note = r.Note
	}
}

func upsert(m map[string]*MarginRow, key string, zero MarginRow) *MarginRow {
	if r, ok := m[key]; ok {
		return r
	}
	r := zero
	m[key] = &r
	return &r
}

func sorted(m map[string]*MarginRow) []MarginRow {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]MarginRow, 0, len(keys))
	for _, k := range keys {
		out = append(out, *m[k])
	}
	return out
}

// seatGroups are the managed seat-days of the tenant in [from, to) by vendor and agent.
func (iv *Invoicer) seatGroups(ctx context.Context, from, to time.Time) ([]seatGroup, error) {
	var rows []struct {
		VendorID   string
		Dimensions string
		Quantity   int64
	}
	err := iv.db.Run(ctx, func(tx *gorm.DB) error {
		return tx.Model(&UsageEvent{}).Select("vendor_id, dimensions, quantity").
			Where("meter = ? AND occurred_at >= ? AND occurred_at < ?", SeatDaysManaged.Name, from, to).Scan(&rows).Error
	})
	if err != nil {
		return nil, err
	}
	sum := map[[2]string]int64{}
	for _, r := range rows {
		var dims map[string]string
		if err := json.Unmarshal([]byte(r.Dimensions), &dims); err != nil {
			return nil, fmt.Errorf("billing: usage dimensions: %w", err)
		}
		sum[[2]string{r.VendorID, dims["agent_id"]}] += r.Quantity
	}
	out := make([]seatGroup, 0, len(sum))
	for k, d := range sum {
		out = append(out, seatGroup{vendor: k[0], agent: k[1], days: d})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].vendor != out[j].vendor {
			return out[i].vendor < out[j].vendor
		}
		return out[i].agent < out[j].agent
	})
	return out, nil
}

// splitLargestRemainder divides total over groups in proportion to their days: each gets the
// floor of its share, and the minor units left over go to the largest remainders (ties to the
// earlier group), so the parts add up to total exactly.
func splitLargestRemainder(total int64, groups []seatGroup) []int64 {
	var days int64
	for _, g := range groups {
		days += g.days
	}
	parts := make([]int64, len(groups))
	if days == 0 {
		return parts
	}
	rem := make([]int64, len(groups))
	var given int64
	for i, g := range groups {
		parts[i] = total * g.days / days
		rem[i] = total * g.days % days
		given += parts[i]
	}
	idx := make([]int, len(groups))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return rem[idx[a]] > rem[idx[b]] })
	for k := int64(0); k < total-given; k++ {
		parts[idx[k%int64(len(idx))]]++
	}
	return parts
}

// platformUsage totals every tenant's usage of [from, to) per meter (distinct counts per tenant,
// then added up: the same conversation id in two tenants is two conversations).
func (iv *Invoicer) platformUsage(pctx context.Context, from, to time.Time) ([]MeterTotal, error) {
	var rows []aggRow
	err := iv.db.Run(pctx, func(tx *gorm.DB) error {
		return tx.Table("usage_events").
			Select("tenant_id, meter, "+aggColumns).
			Where("occurred_at >= ? AND occurred_at < ?", from, to).Group("tenant_id, meter").Scan(&rows).Error
	})
	if err != nil {
		return nil, err
	}
	sum := map[string]aggRow{}
	for _, r := range rows {
		mt, ok := iv.ledger.meters.Get(r.Meter)
		if !ok {
			continue
		}
		s := sum[r.Meter]
		s.Meter = r.Meter
		s.Events += r.Events
		q := pick(mt, r)
		if mt.Aggregation == Max {
			s.Peak = max(s.Peak, q)
		} else {
			s.Total += q
			s.Subjects += q
		}
		sum[r.Meter] = s
	}
	out := []MeterTotal{}
	for _, mt := range iv.ledger.meters.All() {
		s := sum[mt.Name]
		out = append(out, MeterTotal{Meter: mt.Name, Unit: mt.Unit, Quantity: pick(mt, s), Events: s.Events})
	}
	return out, nil
}
