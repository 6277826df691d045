package rating

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Describe renders a line for people in locale: Simplified Chinese for "zh", "zh-CN" and other
// zh-* tags, English otherwise. Amounts are left to the invoice renderer, which knows how to
// format the currency.
func Describe(l Line, locale string) string {
	zh := strings.HasPrefix(strings.ToLower(locale), "zh")
	t := func(en, cn string) string {
		if zh {
			return cn
		}
		return en
	}
	var s string
	switch l.Kind {
	case KindBase, KindAddOn:
		s = t("Base fee, ", "基础费用（") + l.Code
		if l.Kind == KindAddOn {
			s = t("Add-on fee, ", "附加组件费用（") + l.Code
		}
		if !l.Trial && l.Amount != l.UnitAmount {
			s += t(" (prorated)", "，按比例计费")
		}
		s += t("", "）")
	case KindUsage:
		s = fmt.Sprintf(t("%s: %s used, %s included, %s over allowance", "%s：已用 %s，包含 %s，超出包含量 %s"),
			meterLabel(l.Meter, zh), group(l.Quantity), group(l.Included), group(l.Billable))
	case KindAdjustment:
		// Invoices show an inclusive last day, while periods are half-open.
		s = fmt.Sprintf(t("Late usage for %s to %s: %s, %s more", "迟到用量补计（%s 至 %s）：%s 增加 %s"),
			isoDate(l.From), isoDate(l.To.Add(-time.Second)), meterLabel(l.Meter, zh), group(l.Quantity))
	case KindDiscount:
		s = t("Discount ", "优惠券 ") + l.Code
		if l.RateBP != 0 {
			s += fmt.Sprintf(t(" (%s off)", "（减 %s）"), percent(l.RateBP))
		}
	case KindTax:
		s = fmt.Sprintf(t("Tax (%s)", "税费（%s）"), percent(l.RateBP))
	case KindCredit:
		s = t("Prepaid credit applied", "预付余额抵扣")
	default:
		s = l.Kind
	}
	if l.Trial {
		s += t(" — free trial", "（试用期免费）")
	}
	return s
}

// meterLabel is a switch rather than a map so the package keeps no mutable state.
func meterLabel(meter string, zh bool) string {
	var en, cn string
	switch meter {
	case MeterSeatDaysOwn:
		en, cn = "Own seat-days", "自有席位天数"
	case MeterSeatDaysManaged:
		en, cn = "Managed seat-days", "托管席位天数"
	case MeterPeakSeats:
		en, cn = "Peak seats", "峰值席位数"
	case MeterInteractions:
		en, cn = "Interactions", "交互次数"
	case "conversations":
		en, cn = "Conversations", "会话数"
	case "voice_minutes":
		en, cn = "Voice minutes", "通话分钟数"
	case "bot_resolutions":
		en, cn = "Bot resolutions", "机器人解决数"
	default:
		return meter
	}
	if zh {
		return cn
	}
	return en
}

func isoDate(t time.Time) string { return t.UTC().Format("2006-01-02") }

// percent formats basis points exactly, e.g. 600 → "6%", 825 → "8.25%".
func percent(bp int64) string {
	whole, frac := bp/100, bp%100
	switch {
	case frac == 0:
		return fmt.Sprintf("%d%%", whole)
	case frac%10 == 0:
		return fmt.Sprintf("%d.%d%%", whole, frac/10)
	}
	return fmt.Sprintf("%d.%02d%%", whole, frac)
}

// group inserts thousands separators: 1250 → "1,250".
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	sign := ""
	if s[0] == '-' {
		sign, s = "-", s[1:]
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return sign + b.String()
}
