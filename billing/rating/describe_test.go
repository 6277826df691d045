package rating

import "testing"

func TestDescribe(t *testing.T) {
	apr := month(2026, 4)
	cases := []struct {
		line   Line
		en, zh string
	}{
		{Line{Kind: KindBase, Code: "team v3", UnitAmount: 5000, Amount: 5000}, "Base fee, team v3", "基础费用（team v3）"},
		{Line{Kind: KindBase, Code: "pro v1", UnitAmount: 99900, Amount: 66600}, "Base fee, pro v1 (prorated)", "基础费用（pro v1，按比例计费）"},
		{Line{Kind: KindBase, Code: "team v3", UnitAmount: 5000, Trial: true}, "Base fee, team v3 — free trial", "基础费用（team v3）（试用期免费）"},
		{Line{Kind: KindAddOn, Code: "sms_pack", UnitAmount: 3000, Amount: 1000}, "Add-on fee, sms_pack (prorated)", "附加组件费用（sms_pack，按比例计费）"},
		{Line{Kind: KindUsage, Meter: MeterInteractions, Quantity: 1250, Included: 1000, Billable: 250, Amount: 1250},
			"Interactions: 1,250 used, 1,000 included, 250 over allowance", "交互次数：已用 1,250，包含 1,000，超出包含量 250"},
		{Line{Kind: KindUsage, Meter: MeterSeatDaysManaged, Quantity: 240, Billable: 240},
			"Managed seat-days: 240 used, 0 included, 240 over allowance", "托管席位天数：已用 240，包含 0，超出包含量 240"},
		{Line{Kind: KindAdjustment, Meter: MeterInteractions, Quantity: 500, From: apr.Start, To: apr.End},
			"Late usage for 2026-04-01 to 2026-04-30: Interactions, 500 more", "迟到用量补计（2026-04-01 至 2026-04-30）：交互次数 增加 500"},
		{Line{Kind: KindDiscount, Code: "WELCOME15", RateBP: 1500}, "Discount WELCOME15 (15% off)", "优惠券 WELCOME15（减 15%）"},
		{Line{Kind: KindDiscount, Code: "FIXED50"}, "Discount FIXED50", "优惠券 FIXED50"},
		{Line{Kind: KindTax, RateBP: 825}, "Tax (8.25%)", "税费（8.25%）"},
		{Line{Kind: KindTax, RateBP: 650}, "Tax (6.5%)", "税费（6.5%）"},
		{Line{Kind: KindCredit, Amount: -100}, "Prepaid credit applied", "预付余额抵扣"},
	}
	for _, tc := range cases {
		if got := Describe(tc.line, "en"); got != tc.en {
			t.Errorf("en: %q, want %q", got, tc.en)
		}
		if got := Describe(tc.line, "zh-CN"); got != tc.zh {
			t.Errorf("zh-CN: %q, want %q", got, tc.zh)
		}
	}
	if got := Describe(Line{Kind: KindCredit}, "fr-FR"); got != "Prepaid credit applied" {
		t.Errorf("unknown locale should fall back to English, got %q", got)
	}
	if got := group(-1234567); got != "-1,234,567" {
		t.Errorf("group(-1234567) = %q", got)
	}
}
