package rating

import (
	"errors"
	"strings"
	"testing"
)

func TestRateErrors(t *testing.T) {
	apr := month(2026, 4)
	mid := day(2026, 4, 11)
	withPrices := func(p Plan, prices ...Price) Plan { p.Prices = prices; return p }
	badTiers := func(tiers ...Tier) Plan {
		return withPrices(scaleCNY(ModelGraduated), Price{Meter: MeterInteractions, Model: ModelGraduated, Tiers: tiers})
	}
	seg := func(p Plan, usage map[string]int64) []Segment { return whole(p, apr, usage) }

	cases := []struct {
		name string
		in   Input
		want error
	}{
		{"segments in two currencies", Input{Period: apr, Segments: []Segment{
			{Plan: starterCNY(), From: apr.Start, To: mid},
			{Plan: teamUSD(), From: mid, To: apr.End},
		}}, ErrCurrencyMismatch},
		{"adjustment in another currency", Input{Period: month(2026, 5), Segments: whole(starterCNY(), month(2026, 5), nil),
			Adjustments: []Adjustment{{Period: apr, Plan: teamUSD(), Meter: MeterSeatDaysOwn, Late: 1}}}, ErrCurrencyMismatch},
		{"gap between segments", Input{Period: apr, Segments: []Segment{
			{Plan: starterCNY(), From: apr.Start, To: day(2026, 4, 10)},
			{Plan: proCNY(), From: mid, To: apr.End},
		}}, ErrSegments},
		{"overlapping segments", Input{Period: apr, Segments: []Segment{
			{Plan: starterCNY(), From: apr.Start, To: day(2026, 4, 15)},
			{Plan: proCNY(), From: mid, To: apr.End},
		}}, ErrSegments},
		{"segments stop short of the period end", Input{Period: apr, Segments: []Segment{
			{Plan: starterCNY(), From: apr.Start, To: day(2026, 4, 30)},
		}}, ErrSegments},
		{"segment past the period end", Input{Period: apr, Segments: []Segment{
			{Plan: starterCNY(), From: apr.Start, To: day(2026, 5, 2)},
		}}, ErrSegments},
		{"no segments", Input{Period: apr}, ErrSegments},
		{"tiers not ascending", Input{Period: apr, Segments: seg(badTiers(Tier{UpTo: 100, UnitAmount: 2}, Tier{UpTo: 100, UnitAmount: 1}), nil)}, ErrInvalidPrice},
		{"unbounded tier not last", Input{Period: apr, Segments: seg(badTiers(Tier{UnitAmount: 2}, Tier{UpTo: 100, UnitAmount: 1}), nil)}, ErrInvalidPrice},
		{"negative tier amount", Input{Period: apr, Segments: seg(badTiers(Tier{UnitAmount: -1}), nil)}, ErrInvalidPrice},
		{"tiered price without tiers", Input{Period: apr, Segments: seg(badTiers(), nil)}, ErrInvalidPrice},
		{"unknown model", Input{Period: apr, Segments: seg(withPrices(starterCNY(), Price{Meter: "x", Model: "stairstep"}), nil)}, ErrInvalidPrice},
		{"usage beyond the last bounded tier", Input{Period: apr,
			Segments: seg(badTiers(Tier{UpTo: 100, UnitAmount: 1}), map[string]int64{MeterInteractions: 101})}, ErrInvalidPrice},
		{"meter priced twice in a plan", Input{Period: apr, Segments: seg(withPrices(starterCNY(),
			Price{Meter: "x", Model: ModelPerUnit}, Price{Meter: "x", Model: ModelPerUnit}), nil)}, ErrInvalidPlan},
		{"meter priced by plan and add-on", Input{Period: apr, Segments: []Segment{{Plan: starterCNY(), From: apr.Start, To: apr.End,
			AddOns: []AddOn{{Code: "more", Prices: []Price{{Meter: MeterInteractions, Model: ModelPerUnit}}}}}}}, ErrInvalidPlan},
		{"lower-case currency", Input{Period: apr, Segments: seg(Plan{Code: "p", Version: 1, Currency: "usd"}, nil)}, ErrInvalidPlan},
		{"usage for an unpriced meter", Input{Period: apr, Segments: seg(starterCNY(), map[string]int64{"sms": 1})}, ErrInvalidInput},
		{"negative usage", Input{Period: apr, Segments: seg(starterCNY(), map[string]int64{MeterInteractions: -1})}, ErrInvalidInput},
		{"coupon with percent and amount", Input{Period: apr, Segments: seg(starterCNY(), nil),
			Coupons: []Coupon{{Code: "BOTH", PercentOffBP: 100, AmountOff: 100}}}, ErrInvalidInput},
		{"adjustment for the current period", Input{Period: apr, Segments: seg(starterCNY(), nil),
			Adjustments: []Adjustment{{Period: apr, Plan: starterCNY(), Meter: MeterInteractions, Late: 1}}}, ErrInvalidInput},
		{"volume adjustment drives subtotal negative", Input{Period: month(2026, 5),
			Segments: whole(scaleCNY(ModelVolume), month(2026, 5), nil),
			// price(1,200) = 1,000 × 10 = 10,000; price(1,201) = 1,001 × 8 + 500 = 8,508 → −1,492
			Adjustments: []Adjustment{{Period: apr, Plan: scaleCNY(ModelVolume), Meter: MeterInteractions, AlreadyBilled: 1200, Late: 1}}}, ErrInvalidInput},
		{"usage amount overflows int64", Input{Period: apr, Segments: seg(withPrices(starterCNY(),
			Price{Meter: "x", Model: ModelPerUnit, UnitAmount: 1 << 40}), map[string]int64{"x": 1 << 40})}, ErrOverflow},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Rate(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "rating: ") || strings.Count(msg, "rating:") != 1 {
				t.Errorf("message %q should carry exactly one rating: prefix", msg)
			}
		})
	}
}

func TestPriceValidate(t *testing.T) {
	cases := []struct {
		name string
		p    Price
		ok   bool
	}{
		{"per unit", Price{Meter: "m", Model: ModelPerUnit, UnitAmount: 5, Included: 10}, true},
		{"graduated, last tier bounded", Price{Meter: "m", Model: ModelGraduated, Tiers: []Tier{{UpTo: 10, UnitAmount: 1}, {UpTo: 20}}}, true},
		{"volume, last tier unbounded", Price{Meter: "m", Model: ModelVolume, Tiers: []Tier{{UpTo: 10, UnitAmount: 2}, {UnitAmount: 1}}}, true},
		{"no meter", Price{Model: ModelPerUnit}, false},
		{"negative included", Price{Meter: "m", Model: ModelPerUnit, Included: -1}, false},
		{"per unit with tiers", Price{Meter: "m", Model: ModelPerUnit, Tiers: []Tier{{UnitAmount: 1}}}, false},
		{"tiered with unit amount", Price{Meter: "m", Model: ModelVolume, UnitAmount: 1, Tiers: []Tier{{UnitAmount: 1}}}, false},
		{"descending tiers", Price{Meter: "m", Model: ModelVolume, Tiers: []Tier{{UpTo: 20}, {UpTo: 10}}}, false},
		{"negative flat", Price{Meter: "m", Model: ModelGraduated, Tiers: []Tier{{FlatAmount: -1}}}, false},
	}
	for _, tc := range cases {
		err := tc.p.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidPrice) {
			t.Errorf("%s: %v is not ErrInvalidPrice", tc.name, err)
		}
	}
}

func TestMulDiv(t *testing.T) {
	cases := []struct {
		a, b, c int64
		halfUp  bool
		want    int64
	}{
		{5, 1, 2, true, 3},  // 2.5 → 3
		{5, 1, 2, false, 2}, // 2.5 → 2
		{1, 1, 3, true, 0},  // 0.33 → 0
		{2, 1, 3, true, 1},  // 0.67 → 1
		// (2⁶³ − 1) × ½ needs 128 bits for the product: 4,611,686,018,427,387,903.5
		{maxInt64, 1_296_000, 2_592_000, true, 4611686018427387904},
		{maxInt64, 1_296_000, 2_592_000, false, 4611686018427387903},
		{maxInt64, 2_592_000, 2_592_000, true, maxInt64},
	}
	for _, tc := range cases {
		got, err := mulDiv(tc.a, tc.b, tc.c, tc.halfUp)
		if err != nil || got != tc.want {
			t.Errorf("mulDiv(%d, %d, %d, %v) = %d, %v; want %d", tc.a, tc.b, tc.c, tc.halfUp, got, err, tc.want)
		}
	}
	if _, err := mulDiv(maxInt64, 2, 1, true); !errors.Is(err, ErrOverflow) {
		t.Errorf("mulDiv(max, 2, 1) err = %v, want ErrOverflow", err)
	}
	if _, err := mulDiv(maxInt64, 3, 2, false); !errors.Is(err, ErrOverflow) {
		t.Errorf("mulDiv(max, 3, 2) err = %v, want ErrOverflow", err)
	}
	// (2³² − 1)(2³² + 1) / 2 = 2⁶³ − 0.5: the quotient is max int64 and rounding up must overflow.
	if _, err := mulDiv(1<<32-1, 1<<32+1, 2, true); !errors.Is(err, ErrOverflow) {
		t.Errorf("rounding past max int64: err = %v, want ErrOverflow", err)
	}
}
