package rating

import (
	"fmt"
	"slices"
	"time"
)

// Line kinds, stable for machines; Description and Describe are for people.
const (
	KindBase       = "base"
	KindAddOn      = "addon"
	KindUsage      = "usage"
	KindAdjustment = "adjustment"
	KindDiscount   = "discount"
	KindTax        = "tax"
	KindCredit     = "credit"
)

// Input is everything needed to rate one period.
type Input struct {
	Period      Period
	Segments    []Segment // must tile Period exactly; more than one after a mid-period change
	Coupons     []Coupon
	Credits     int64 // prepaid balance available
	TaxRateBP   int64 // basis points: 600 is 6 %
	Adjustments []Adjustment
	// Trial zeroes the period's fee and usage lines but keeps them, so the tenant sees what the
	// trial covered; adjustments for earlier, paid periods are still charged.
	Trial bool
}

// Segment is a stretch [From, To) of the period under one plan and set of add-ons, with the
// usage that occurred in it.
type Segment struct {
	Plan     Plan
	AddOns   []AddOn
	From, To time.Time
	Usage    map[string]int64
}

// Coupon takes either a percentage (basis points) or a fixed amount off the subtotal.
type Coupon struct {
	Code         string
	PercentOffBP int64
	AmountOff    int64
}

// Adjustment bills Late units of Meter that arrived after Period, rated under Plan, had been
// invoiced with AlreadyBilled units.
type Adjustment struct {
	Period        Period
	Plan          Plan
	Meter         string
	AlreadyBilled int64
	Late          int64
}

// Invoice is a rated period. Total = Subtotal − Discount + Tax − CreditApplied, and it equals
// the sum of the line amounts.
type Invoice struct {
	Currency                                      string
	Lines                                         []Line
	Subtotal, Discount, Tax, CreditApplied, Total int64
}

// Line is one invoice line. Discount and credit lines have negative amounts so that the lines
// add up to the total.
//
// Field use by kind: base and addon lines have Quantity 1, UnitAmount the full-period fee and
// Amount the prorated fee. Usage lines have Quantity the usage, Included the (prorated)
// allowance, Billable what was charged and UnitAmount the unit price applied (0 when tiers
// vary). Adjustment lines have Quantity the late units, Billable the extra billable units and
// From/To the adjusted period. The tax line has Quantity the taxable amount. Code names the
// plan and version, add-on or coupon; RateBP is the rate of a tax or percent discount line;
// Trial marks lines zeroed by a trial.
type Line struct {
	Kind                                             string
	Meter, Code, Description                         string
	Quantity, Included, Billable, UnitAmount, Amount int64
	RateBP                                           int64
	Trial                                            bool
	From, To                                         time.Time
}

// Rate rates one period. Lines come out in a fixed order: per segment in time order its base
// fee, add-on fees, then usage in price order (plan first, then add-ons); then adjustments,
// percent coupons, amount coupons (each in input order), tax and credit. Fee lines appear only
// for non-zero fees and usage lines only for meters with usage.
func Rate(in Input) (Invoice, error) {
	if err := in.validate(); err != nil {
		return Invoice{}, fmt.Errorf("rating: %w", err)
	}
	segs, err := tile(in.Period, in.Segments)
	if err != nil {
		return Invoice{}, fmt.Errorf("rating: %w", err)
	}
	inv := Invoice{Currency: segs[0].Plan.Currency}
	for i, s := range segs {
		if s.Plan.Currency != inv.Currency {
			return Invoice{}, fmt.Errorf("rating: segment %d is in %q, invoice in %q: %w", i, s.Plan.Currency, inv.Currency, ErrCurrencyMismatch)
		}
		lines, err := rateSegment(s, in.Period.secs(), in.Trial)
		if err != nil {
			return Invoice{}, fmt.Errorf("rating: segment %d (%s): %w", i, s.Plan.ref(), err)
		}
		inv.Lines = append(inv.Lines, lines...)
	}
	for i, a := range in.Adjustments {
		l, err := rateAdjustment(a, inv.Currency, in.Period)
		if err != nil {
			return Invoice{}, fmt.Errorf("rating: adjustment %d (%s): %w", i, a.Meter, err)
		}
		inv.Lines = append(inv.Lines, l)
	}
	for _, l := range inv.Lines {
		if inv.Subtotal, err = add(inv.Subtotal, l.Amount); err != nil {
			return Invoice{}, fmt.Errorf("rating: subtotal: %w", err)
		}
	}
	// Rating issues invoices, not refunds; a net credit needs a credit note.
	if inv.Subtotal < 0 {
		return Invoice{}, fmt.Errorf("rating: subtotal %d is negative: %w", inv.Subtotal, ErrInvalidInput)
	}
	if err := inv.applyTotals(in); err != nil {
		return Invoice{}, fmt.Errorf("rating: %w", err)
	}
	for i := range inv.Lines {
		inv.Lines[i].Description = Describe(inv.Lines[i], "en")
	}
	return inv, nil
}

func (in Input) validate() error {
	if !in.Period.Start.Before(in.Period.End) {
		return fmt.Errorf("period %v–%v is empty: %w", in.Period.Start, in.Period.End, ErrInvalidInput)
	}
	if in.Credits < 0 || in.TaxRateBP < 0 {
		return fmt.Errorf("negative credits or tax rate: %w", ErrInvalidInput)
	}
	for i, c := range in.Coupons {
		percent, amount := c.PercentOffBP != 0, c.AmountOff != 0
		switch {
		case c.Code == "":
			return fmt.Errorf("coupon %d has no code: %w", i, ErrInvalidInput)
		case percent == amount:
			return fmt.Errorf("coupon %s must set exactly one of percent or amount off: %w", c.Code, ErrInvalidInput)
		case c.PercentOffBP < 0 || c.PercentOffBP > 10_000 || c.AmountOff < 0:
			return fmt.Errorf("coupon %s is out of range: %w", c.Code, ErrInvalidInput)
		}
	}
	return nil
}

// tile returns the segments in time order after checking they cover the period exactly.
// Boundaries must be whole seconds because proration counts whole seconds.
func tile(p Period, segs []Segment) ([]Segment, error) {
	if len(segs) == 0 {
		return nil, fmt.Errorf("no segments: %w", ErrSegments)
	}
	if p.Start.Nanosecond() != 0 || p.End.Nanosecond() != 0 {
		return nil, fmt.Errorf("period bounds are not whole seconds: %w", ErrInvalidInput)
	}
	sorted := slices.Clone(segs)
	slices.SortStableFunc(sorted, func(a, b Segment) int { return a.From.Compare(b.From) })
	cursor := p.Start
	for i, s := range sorted {
		switch {
		case !s.From.Before(s.To):
			return nil, fmt.Errorf("segment %d [%v, %v) is empty: %w", i, s.From, s.To, ErrSegments)
		case s.From.Nanosecond() != 0 || s.To.Nanosecond() != 0:
			return nil, fmt.Errorf("segment %d bounds are not whole seconds: %w", i, ErrSegments)
		case s.From.After(cursor):
			return nil, fmt.Errorf("gap [%v, %v): %w", cursor, s.From, ErrSegments)
		case s.From.Before(cursor):
			return nil, fmt.Errorf("segment %d starts at %v, before %v: overlap: %w", i, s.From, cursor, ErrSegments)
		}
		cursor = s.To
	}
	if !cursor.Equal(p.End) {
		return nil, fmt.Errorf("segments end at %v, period at %v: %w", cursor, p.End, ErrSegments)
	}
	return sorted, nil
}

func rateSegment(s Segment, periodSecs int64, trial bool) ([]Line, error) {
	if err := s.Plan.validate(); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	if err := validPrices(s.Plan.Prices, seen); err != nil {
		return nil, err
	}
	prices := slices.Clone(s.Plan.Prices)
	for _, a := range s.AddOns {
		if err := a.validate(seen); err != nil {
			return nil, err
		}
		prices = append(prices, a.Prices...)
	}
	// Usage nobody prices would silently vanish from the invoice; make the caller decide.
	for meter, q := range s.Usage {
		if !seen[meter] && q != 0 {
			return nil, fmt.Errorf("usage for unpriced meter %q: %w", meter, ErrInvalidInput)
		}
		if q < 0 {
			return nil, fmt.Errorf("meter %q: negative usage %d: %w", meter, q, ErrInvalidInput)
		}
	}
	segSecs := s.To.Unix() - s.From.Unix()
	from, to := s.From.UTC(), s.To.UTC()
	var lines []Line
	fee := func(kind, code string, amount int64) error {
		if amount == 0 {
			return nil
		}
		prorated, err := mulDiv(amount, segSecs, periodSecs, true)
		if err != nil {
			return fmt.Errorf("%s fee %s: %w", kind, code, err)
		}
		lines = append(lines, Line{Kind: kind, Code: code, Quantity: 1, UnitAmount: amount, Amount: prorated, From: from, To: to})
		return nil
	}
	if err := fee(KindBase, s.Plan.ref(), s.Plan.BaseFee); err != nil {
		return nil, err
	}
	for _, a := range s.AddOns {
		if err := fee(KindAddOn, a.Code, a.Fee); err != nil {
			return nil, err
		}
	}
	for _, p := range prices {
		q := s.Usage[p.Meter]
		if q == 0 {
			continue
		}
		included, err := mulDiv(p.Included, segSecs, periodSecs, false)
		if err != nil {
			return nil, fmt.Errorf("meter %q allowance: %w", p.Meter, err)
		}
		billable, unit, amount, err := p.charge(q, included)
		if err != nil {
			return nil, err
		}
		lines = append(lines, Line{Kind: KindUsage, Meter: p.Meter, Quantity: q, Included: included,
			Billable: billable, UnitAmount: unit, Amount: amount, From: from, To: to})
	}
	if trial {
		for i := range lines {
			lines[i].Amount, lines[i].Trial = 0, true
		}
	}
	return lines, nil
}

func rateAdjustment(a Adjustment, currency string, current Period) (Line, error) {
	if err := a.Plan.validate(); err != nil {
		return Line{}, err
	}
	if a.Plan.Currency != currency {
		return Line{}, fmt.Errorf("plan in %q, invoice in %q: %w", a.Plan.Currency, currency, ErrCurrencyMismatch)
	}
	if !a.Period.Start.Before(a.Period.End) || a.Period.End.After(current.Start) {
		return Line{}, fmt.Errorf("period %v–%v is not a closed period before this one: %w", a.Period.Start, a.Period.End, ErrInvalidInput)
	}
	if a.AlreadyBilled < 0 || a.Late < 0 {
		return Line{}, fmt.Errorf("negative quantity: %w", ErrInvalidInput)
	}
	i := slices.IndexFunc(a.Plan.Prices, func(p Price) bool { return p.Meter == a.Meter })
	if i < 0 {
		return Line{}, fmt.Errorf("plan %s does not price meter %q: %w", a.Plan.ref(), a.Meter, ErrInvalidInput)
	}
	p := a.Plan.Prices[i]
	total, err := add(a.AlreadyBilled, a.Late)
	if err != nil {
		return Line{}, err
	}
	billedB, _, billedAmt, err := p.charge(a.AlreadyBilled, p.Included)
	if err != nil {
		return Line{}, err
	}
	totalB, unit, totalAmt, err := p.charge(total, p.Included)
	if err != nil {
		return Line{}, err
	}
	return Line{Kind: KindAdjustment, Meter: a.Meter, Code: a.Plan.ref(), Quantity: a.Late, Included: p.Included,
		Billable: totalB - billedB, UnitAmount: unit, Amount: totalAmt - billedAmt,
		From: a.Period.Start.UTC(), To: a.Period.End.UTC()}, nil
}

// applyTotals appends discount, tax and credit lines to an invoice whose Subtotal is set.
func (inv *Invoice) applyTotals(in Input) error {
	remaining := inv.Subtotal
	discount := func(c Coupon, off int64) {
		off = min(off, remaining)
		remaining -= off
		inv.Discount += off
		inv.Lines = append(inv.Lines, Line{Kind: KindDiscount, Code: c.Code, RateBP: c.PercentOffBP, Amount: -off})
	}
	for _, c := range in.Coupons {
		if c.PercentOffBP != 0 {
			off, err := mulDiv(inv.Subtotal, c.PercentOffBP, 10_000, true)
			if err != nil {
				return fmt.Errorf("coupon %s: %w", c.Code, err)
			}
			discount(c, off)
		}
	}
	for _, c := range in.Coupons {
		if c.AmountOff != 0 {
			discount(c, c.AmountOff)
		}
	}
	taxable := inv.Subtotal - inv.Discount
	tax, err := mulDiv(taxable, in.TaxRateBP, 10_000, true)
	if err != nil {
		return fmt.Errorf("tax: %w", err)
	}
	inv.Tax = tax
	if in.TaxRateBP != 0 {
		inv.Lines = append(inv.Lines, Line{Kind: KindTax, Quantity: taxable, RateBP: in.TaxRateBP, Amount: tax})
	}
	gross, err := add(taxable, tax)
	if err != nil {
		return fmt.Errorf("tax: %w", err)
	}
	inv.CreditApplied = min(in.Credits, gross)
	if inv.CreditApplied > 0 {
		inv.Lines = append(inv.Lines, Line{Kind: KindCredit, Amount: -inv.CreditApplied})
	}
	inv.Total = gross - inv.CreditApplied
	return nil
}
