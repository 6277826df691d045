package billing_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/billing"
	"github.com/switchboard-cloud/switchboard/billing/invoicepdf/pdftext"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// A finalised invoice downloads as a PDF in zh-CN and en: the labels of that language, the
// tenant, every line's text and amount and the totals can be read back out of it, each drawn
// with a glyph of the embedded font. Another tenant gets 404 for it; an unknown format is 422.
func TestInvoicePDF(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := apptest.New(t, d)
			owner, globex := e.Login("owner@acme.test"), e.Login("owner@globex.test")
			ctx := tenant.WithOrg(e.Ctx, e.Acme)
			if _, err := e.App.Plans.Save(e.Ctx, billing.PlanInput{Code: "print", Name: "Print", Currency: "CNY", BaseFee: 99900,
				Prices: []billing.Price{{Meter: "interactions", Model: "per_unit", UnitAmount: 5, Included: 1000}}}); err != nil {
				t.Fatal(err)
			}
			start := time.Now().UTC().AddDate(0, -2, 0).Truncate(24 * time.Hour)
			if start.Day() > 28 {
				start = start.AddDate(0, 0, -3) // an anchor every month has
			}
			if _, err := e.App.Plans.Subscribe(ctx, "print", 0, start); err != nil {
				t.Fatal(err)
			}
			owner.Do("POST", "/api/v1/usage-events", map[string]any{"events": []any{
				map[string]any{"meter": "interactions", "quantity": 1250, "idempotency_key": "pdf-1", "occurred_at": start.Add(time.Hour)}}}).Want(200)
			p, err := e.App.Invoicer.PeriodAt(ctx, start)
			if err != nil {
				t.Fatal(err)
			}
			inv, _, err := e.App.Invoicer.Finalize(ctx, p, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			// 99,900 base + (1,250 − 1,000) × 5.
			if inv.Total != 99900+1250 || len(inv.Lines) < 2 {
				t.Fatalf("invoice: total %d, lines %+v", inv.Total, inv.Lines)
			}
			path := "/api/v1/billing/invoices/" + inv.ID.String()
			money := func(v int64) string { return fmt.Sprintf("%d.%02d CNY", v/100, v%100) }

			for lang, labels := range map[string][]string{
				"zh-CN": {"发票", "发票编号", "客户", "账期", "项目", "数量", "金额", "小计", "应付总额"},
				"en":    {"Invoice", "Invoice number", "Billed to", "Period", "Item", "Quantity", "Amount", "Subtotal", "Total due"},
			} {
				res := owner.Do("GET", path+"?format=pdf&lang="+lang, nil).Want(200)
				if ct := res.Header.Get("Content-Type"); ct != "application/pdf" {
					t.Errorf("%s: content type %q", lang, ct)
				}
				if cd, want := res.Header.Get("Content-Disposition"), `attachment; filename="`+inv.Number+`.pdf"`; cd != want {
					t.Errorf("%s: content disposition %q, want %q", lang, cd, want)
				}
				if !strings.HasPrefix(string(res.Body), "%PDF-") {
					t.Fatalf("%s: not a PDF: %.40q", lang, res.Body)
				}
				doc, err := pdftext.Read(res.Body)
				if err != nil {
					t.Fatalf("%s: %v", lang, err)
				}
				if len(doc.NoGlyph) > 0 {
					t.Errorf("%s: no glyph for %q", lang, string(doc.NoGlyph))
				}
				want := append(labels, inv.Number, e.Acme.Name, money(inv.Subtotal), money(inv.Total), "1011.50 CNY")
				for _, l := range inv.Lines {
					text := l.Description
					if lang == "zh-CN" {
						text = l.DescZH
					}
					want = append(want, text, money(l.Amount))
				}
				text := strings.ReplaceAll(doc.Text, "\n", "")
				for _, w := range want {
					if w == "" || !strings.Contains(text, w) {
						t.Errorf("%s: %q not in the PDF text:\n%s", lang, w, doc.Text)
					}
				}
				other := map[string]string{"zh-CN": "Total due", "en": "应付总额"}[lang]
				if strings.Contains(doc.Text, other) {
					t.Errorf("%s: the PDF has the other language's %q", lang, other)
				}
			}

			res := globex.Do("GET", path+"?format=pdf&lang=en", nil).Want(404)
			if strings.HasPrefix(string(res.Body), "%PDF-") || strings.Contains(string(res.Body), inv.Number) {
				t.Errorf("Globex got Acme's invoice: %.80q", res.Body)
			}
			if res := owner.Do("GET", path+"?format=docx", nil).Want(422); !strings.Contains(string(res.Body), "json, html or pdf") {
				t.Errorf("bad format: %s", res.Body)
			}
		})
	}
}
