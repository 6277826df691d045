package rating

import (
	"testing"
	"time"
)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func month(y int, m time.Month) Period { return Period{Start: day(y, m, 1), End: day(y, m+1, 1)} }

// Fixtures are functions so tests cannot leak changes into one another.

func starterCNY() Plan { // ¥299.00 a month, 1,000 interactions included, then ¥0.05 each
	return Plan{Code: "starter", Version: 1, Currency: "CNY", BaseFee: 29900, Prices: []Price{
		{Meter: MeterInteractions, Model: ModelPerUnit, UnitAmount: 5, Included: 1000},
	}}
}

func proCNY() Plan { // ¥999.00 a month, 5,000 interactions included, then ¥0.03 each
	return Plan{Code: "pro", Version: 1, Currency: "CNY", BaseFee: 99900, Prices: []Price{
		{Meter: MeterInteractions, Model: ModelPerUnit, UnitAmount: 3, Included: 5000},
	}}
}

// scaleCNY has no base fee; 200 interactions included, then tiers
// 1–1,000 at 10, 1,001–5,000 at 8 (+500 flat), 5,001+ at 5 (+1,000 flat).
func scaleCNY(model string) Plan {
	return Plan{Code: "scale", Version: 2, Currency: "CNY", Prices: []Price{
		{Meter: MeterInteractions, Model: model, Included: 200, Tiers: []Tier{
			{UpTo: 1000, UnitAmount: 10}, {UpTo: 5000, UnitAmount: 8, FlatAmount: 500}, {UnitAmount: 5, FlatAmount: 1000},
		}},
	}}
}

// teamUSD: $50.00 a month; own seat-days 40¢ after 150 included (5 seats × 30 days); managed
// seat-days 25¢; peak seats after 3 included: 1–10 at $15.00, 11+ at $12.00.
func teamUSD() Plan {
	return Plan{Code: "team", Version: 3, Currency: "USD", BaseFee: 5000, TrialDays: 14, Prices: []Price{
		{Meter: MeterSeatDaysOwn, Model: ModelPerUnit, UnitAmount: 40, Included: 150},
		{Meter: MeterSeatDaysManaged, Model: ModelPerUnit, UnitAmount: 25},
		{Meter: MeterPeakSeats, Model: ModelGraduated, Included: 3, Tiers: []Tier{
			{UpTo: 10, UnitAmount: 1500}, {UnitAmount: 1200},
		}},
	}}
}

func proUSD() Plan { // $99.99, 1,001 interactions included, then 4¢
	return Plan{Code: "pro", Version: 1, Currency: "USD", BaseFee: 9999, Prices: []Price{
		{Meter: MeterInteractions, Model: ModelPerUnit, UnitAmount: 4, Included: 1001},
	}}
}

func basicUSD() Plan { // $29.99, 301 interactions included, then 6¢
	return Plan{Code: "basic", Version: 1, Currency: "USD", BaseFee: 2999, Prices: []Price{
		{Meter: MeterInteractions, Model: ModelPerUnit, UnitAmount: 6, Included: 301},
	}}
}

func smsPack() AddOn { // $30.00 a month, 500 SMS included, then 2¢
	return AddOn{Code: "sms_pack", Fee: 3000, Prices: []Price{{Meter: "sms", Model: ModelPerUnit, UnitAmount: 2, Included: 500}}}
}

func whole(p Plan, per Period, usage map[string]int64) []Segment {
	return []Segment{{Plan: p, From: per.Start, To: per.End, Usage: usage}}
}

// TestRateInvoices is the acceptance table: every expected amount is computed by hand in the
// comment beside it, never by the code under test. Months used: March 2026 has 31 days
// (2,678,400 s), April 2026 has 30 days (2,592,000 s), May 2026 has 31.
func TestRateInvoices(t *testing.T) {
	type want struct {
		kind, ref        string // ref is the meter, or the code for fee and discount lines
		billable, amount int64
	}
	mar, apr, may := month(2026, 3), month(2026, 4), month(2026, 5)
	noon16 := time.Date(2026, 3, 16, 12, 0, 0, 0, time.UTC)

	cases := []struct {
		name                                   string
		in                                     Input
		currency                               string
		lines                                  []want
		subtotal, discount, tax, credit, total int64
	}{
		{
			name: "included allowance, CNY",
			in:   Input{Period: mar, Segments: whole(starterCNY(), mar, map[string]int64{MeterInteractions: 1250}), TaxRateBP: 600},
			lines: []want{
				{KindBase, "starter v1", 0, 29900},
				{KindUsage, MeterInteractions, 250, 1250}, // 1,250 interactions, 1,000 included → 250 × 5 = 1,250
				{KindTax, "", 0, 1869},                    // 31,150 × 6 % = 1,869.00
			},
			currency: "CNY", subtotal: 31150, tax: 1869, total: 33019, // 29,900 + 1,250 = 31,150; + 1,869
		},
		{
			name: "graduated tiers after the allowance, CNY",
			in:   Input{Period: mar, Segments: whole(scaleCNY(ModelGraduated), mar, map[string]int64{MeterInteractions: 6200})},
			lines: []want{
				// 6,200 − 200 included = 6,000 billable:
				// 1,000 × 10 = 10,000; 4,000 × 8 + 500 = 32,500; 1,000 × 5 + 1,000 = 6,000 → 48,500
				{KindUsage, MeterInteractions, 6000, 48500},
			},
			currency: "CNY", subtotal: 48500, total: 48500,
		},
		{
			name: "volume tiers after the allowance, CNY",
			in:   Input{Period: mar, Segments: whole(scaleCNY(ModelVolume), mar, map[string]int64{MeterInteractions: 6200})},
			lines: []want{
				{KindUsage, MeterInteractions, 6000, 31000}, // 6,000 billable fall in tier 3: 6,000 × 5 + 1,000 = 31,000
			},
			currency: "CNY", subtotal: 31000, total: 31000,
		},
		{
			name: "volume tier bound is inclusive, CNY",
			in:   Input{Period: mar, Segments: whole(scaleCNY(ModelVolume), mar, map[string]int64{MeterInteractions: 5200})},
			lines: []want{
				{KindUsage, MeterInteractions, 5000, 40500}, // 5,200 − 200 = 5,000 ≤ 5,000 → tier 2: 5,000 × 8 + 500 = 40,500
			},
			currency: "CNY", subtotal: 40500, total: 40500,
		},
		{
			name: "own and managed seats, USD",
			in: Input{Period: apr, TaxRateBP: 825, Segments: whole(teamUSD(), apr, map[string]int64{
				MeterSeatDaysOwn: 360, MeterSeatDaysManaged: 240, // 12 own and 8 managed seats × 30 days
			})},
			lines: []want{
				{KindBase, "team v3", 0, 5000},
				{KindUsage, MeterSeatDaysOwn, 210, 8400},     // 360 − 150 = 210 × 40 = 8,400
				{KindUsage, MeterSeatDaysManaged, 240, 6000}, // 240 × 25 = 6,000
				{KindTax, "", 0, 1601},                       // 19,400 × 8.25 % = 1,600.5 → half-up 1,601
			},
			currency: "USD", subtotal: 19400, tax: 1601, total: 21001, // 5,000 + 8,400 + 6,000 = 19,400
		},
		{
			name: "peak seats with a percent coupon, USD",
			in: Input{Period: apr, Coupons: []Coupon{{Code: "SPRING10", PercentOffBP: 1000}},
				Segments: whole(teamUSD(), apr, map[string]int64{MeterPeakSeats: 17})},
			lines: []want{
				{KindBase, "team v3", 0, 5000},
				{KindUsage, MeterPeakSeats, 14, 19800}, // 17 − 3 = 14: 10 × 1,500 + 4 × 1,200 = 19,800
				{KindDiscount, "SPRING10", 0, -2480},   // 24,800 × 10 % = 2,480
			},
			currency: "USD", subtotal: 24800, discount: 2480, total: 22320,
		},
		{
			name: "mid-period upgrade on day 11, CNY",
			in: Input{Period: apr, TaxRateBP: 600, Segments: []Segment{
				{Plan: starterCNY(), From: apr.Start, To: day(2026, 4, 11), Usage: map[string]int64{MeterInteractions: 800}},
				{Plan: proCNY(), From: day(2026, 4, 11), To: apr.End, Usage: map[string]int64{MeterInteractions: 4000}},
			}},
			lines: []want{
				{KindBase, "starter v1", 0, 9967},         // 29,900 × 10/30 = 9,966.67 → 9,967
				{KindUsage, MeterInteractions, 467, 2335}, // allowance 1,000 × 10/30 = 333.3 → 333; 800 − 333 = 467 × 5 = 2,335
				{KindBase, "pro v1", 0, 66600},            // 99,900 × 20/30 = 66,600
				{KindUsage, MeterInteractions, 667, 2001}, // allowance 5,000 × 20/30 = 3,333.3 → 3,333; 4,000 − 3,333 = 667 × 3 = 2,001
				{KindTax, "", 0, 4854},                    // 80,903 × 6 % = 4,854.18 → 4,854
			},
			currency: "CNY", subtotal: 80903, tax: 4854, total: 85757, // 9,967 + 2,335 + 66,600 + 2,001
		},
		{
			name: "mid-period downgrade at noon, half-up proration, USD",
			in: Input{Period: mar, Segments: []Segment{ // given out of order: rating sorts by time
				{Plan: basicUSD(), From: noon16, To: mar.End, Usage: map[string]int64{MeterInteractions: 100}},
				{Plan: proUSD(), From: mar.Start, To: noon16, Usage: map[string]int64{MeterInteractions: 700}},
			}},
			lines: []want{
				// 15.5 of 31 days = 1,339,200 / 2,678,400 s = exactly one half
				{KindBase, "pro v1", 0, 5000},            // 9,999 / 2 = 4,999.5 → half-up 5,000
				{KindUsage, MeterInteractions, 200, 800}, // allowance 1,001 / 2 = 500.5 → down 500; 700 − 500 = 200 × 4 = 800
				{KindBase, "basic v1", 0, 1500},          // 2,999 / 2 = 1,499.5 → half-up 1,500
				{KindUsage, MeterInteractions, 0, 0},     // allowance 301 / 2 = 150.5 → 150; 100 < 150 → 0
			},
			currency: "USD", subtotal: 7300, total: 7300, // 5,000 + 800 + 1,500 + 0
		},
		{
			name: "prepaid credit partly used, CNY",
			in: Input{Period: mar, TaxRateBP: 600, Credits: 10000,
				Segments: whole(starterCNY(), mar, map[string]int64{MeterInteractions: 900})},
			lines: []want{
				{KindBase, "starter v1", 0, 29900},
				{KindUsage, MeterInteractions, 0, 0}, // 900 < 1,000 included
				{KindTax, "", 0, 1794},               // 29,900 × 6 % = 1,794
				{KindCredit, "", 0, -10000},          // 10,000 available < 31,694 due
			},
			currency: "CNY", subtotal: 29900, tax: 1794, credit: 10000, total: 21694, // 29,900 + 1,794 − 10,000
		},
		{
			name: "prepaid credit larger than the invoice, USD",
			in:   Input{Period: apr, TaxRateBP: 825, Credits: 8000, Segments: whole(teamUSD(), apr, nil)},
			lines: []want{
				{KindBase, "team v3", 0, 5000},
				{KindTax, "", 0, 413},      // 5,000 × 8.25 % = 412.5 → half-up 413
				{KindCredit, "", 0, -5413}, // only the 5,413 due is used; 2,587 stays on the balance
			},
			currency: "USD", subtotal: 5000, tax: 413, credit: 5413, total: 0,
		},
		{
			name: "late events for a closed period, CNY",
			in: Input{Period: may, TaxRateBP: 600,
				Segments: whole(starterCNY(), may, map[string]int64{MeterInteractions: 1000}),
				Adjustments: []Adjustment{
					{Period: apr, Plan: starterCNY(), Meter: MeterInteractions, AlreadyBilled: 800, Late: 500},
					{Period: apr, Plan: scaleCNY(ModelGraduated), Meter: MeterInteractions, AlreadyBilled: 1100, Late: 300},
				}},
			lines: []want{
				{KindBase, "starter v1", 0, 29900},
				{KindUsage, MeterInteractions, 0, 0}, // exactly the 1,000 included
				// price(1,300) − price(800) = (300 × 5) − 0 = 1,500: the late units first use up the allowance
				{KindAdjustment, MeterInteractions, 300, 1500},
				// billable 900 → 1,200: price = 1,000 × 10 + 200 × 8 + 500 = 12,100, minus 900 × 10 = 9,000 → 3,100
				{KindAdjustment, MeterInteractions, 300, 3100},
				{KindTax, "", 0, 2070}, // 34,500 × 6 % = 2,070
			},
			currency: "CNY", subtotal: 34500, tax: 2070, total: 36570, // 29,900 + 1,500 + 3,100
		},
		{
			name: "trial keeps lines at zero, USD",
			in: Input{Period: apr, TaxRateBP: 825, Trial: true,
				Segments: whole(teamUSD(), apr, map[string]int64{MeterSeatDaysOwn: 360, MeterPeakSeats: 17})},
			lines: []want{
				{KindBase, "team v3", 0, 0},           // would be 5,000
				{KindUsage, MeterSeatDaysOwn, 210, 0}, // would be 210 × 40 = 8,400
				{KindUsage, MeterPeakSeats, 14, 0},    // would be 19,800
				{KindTax, "", 0, 0},
			},
			currency: "USD",
		},
		{
			name: "percent coupon before amount coupon, CNY",
			in: Input{Period: mar, TaxRateBP: 600, Segments: whole(proCNY(), mar, nil), Coupons: []Coupon{
				{Code: "FIXED50", AmountOff: 5000}, {Code: "WELCOME15", PercentOffBP: 1500},
			}},
			lines: []want{
				{KindBase, "pro v1", 0, 99900},
				{KindDiscount, "WELCOME15", 0, -14985}, // 99,900 × 15 % = 14,985
				{KindDiscount, "FIXED50", 0, -5000},
				{KindTax, "", 0, 4795}, // (99,900 − 19,985) = 79,915 × 6 % = 4,794.9 → 4,795
			},
			currency: "CNY", subtotal: 99900, discount: 19985, tax: 4795, total: 84710, // 79,915 + 4,795
		},
		{
			name: "amount coupon capped at the subtotal, USD",
			in: Input{Period: apr, TaxRateBP: 825, Segments: whole(teamUSD(), apr, nil),
				Coupons: []Coupon{{Code: "BIGDEAL", AmountOff: 10000}}},
			lines: []want{
				{KindBase, "team v3", 0, 5000},
				{KindDiscount, "BIGDEAL", 0, -5000}, // 10,000 off, only 5,000 to take it from
				{KindTax, "", 0, 0},                 // 0 × 8.25 %
			},
			currency: "USD", subtotal: 5000, discount: 5000, total: 0,
		},
		{
			name: "add-on bought on day 21 with its own meter, USD",
			in: Input{Period: apr, Segments: []Segment{
				{Plan: teamUSD(), From: apr.Start, To: day(2026, 4, 21), Usage: map[string]int64{MeterSeatDaysOwn: 200}},
				{Plan: teamUSD(), AddOns: []AddOn{smsPack()}, From: day(2026, 4, 21), To: apr.End,
					Usage: map[string]int64{MeterSeatDaysOwn: 100, "sms": 400}},
			}},
			lines: []want{
				{KindBase, "team v3", 0, 3333},           // 5,000 × 20/30 = 3,333.3 → 3,333
				{KindUsage, MeterSeatDaysOwn, 100, 4000}, // allowance 150 × 20/30 = 100; 200 − 100 = 100 × 40
				{KindBase, "team v3", 0, 1667},           // 5,000 × 10/30 = 1,666.7 → 1,667
				{KindAddOn, "sms_pack", 0, 1000},         // 3,000 × 10/30 = 1,000
				{KindUsage, MeterSeatDaysOwn, 50, 2000},  // allowance 150 × 10/30 = 50; 100 − 50 = 50 × 40
				{KindUsage, "sms", 234, 468},             // allowance 500 × 10/30 = 166.7 → 166; 400 − 166 = 234 × 2
			},
			currency: "USD", subtotal: 12468, total: 12468, // 3,333 + 4,000 + 1,667 + 1,000 + 2,000 + 468
		},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := Rate(tc.in)
			if err != nil {
				t.Fatalf("Rate: %v", err)
			}
			if inv.Currency != tc.currency {
				t.Errorf("currency = %q, want %q", inv.Currency, tc.currency)
			}
			got := [5]int64{inv.Subtotal, inv.Discount, inv.Tax, inv.CreditApplied, inv.Total}
			if exp := [5]int64{tc.subtotal, tc.discount, tc.tax, tc.credit, tc.total}; got != exp {
				t.Errorf("subtotal, discount, tax, credit, total = %v, want %v", got, exp)
			}
			var sum int64
			for i, l := range inv.Lines {
				sum += l.Amount
				if l.Description == "" {
					t.Errorf("line %d has no description", i)
				}
				if l.Trial != tc.in.Trial && l.Kind != KindTax {
					t.Errorf("line %d Trial = %v", i, l.Trial)
				}
				if i >= len(tc.lines) {
					t.Errorf("extra line %d: %+v", i, l)
					continue
				}
				w, ref := tc.lines[i], l.Meter
				if ref == "" {
					ref = l.Code
				}
				if l.Kind != w.kind || ref != w.ref || l.Billable != w.billable || l.Amount != w.amount {
					t.Errorf("line %d = {%s %s billable %d amount %d}, want %+v", i, l.Kind, ref, l.Billable, l.Amount, w)
				}
			}
			if len(inv.Lines) < len(tc.lines) {
				t.Errorf("got %d lines, want %d", len(inv.Lines), len(tc.lines))
			}
			if sum != inv.Total {
				t.Errorf("lines add up to %d, total is %d", sum, inv.Total)
			}
		})
	}
}
