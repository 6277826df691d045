package billingapi

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard-cloud/switchboard/billing"
	"github.com/switchboard-cloud/switchboard/billing/invoicepdf"
	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/httpx"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/modules/access"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// PlanChange is the body of PUT /billing/plan.
type PlanChange struct {
	PlanCode    string `json:"plan_code" validate:"required,max=40"`
	PlanVersion int    `json:"plan_version" validate:"min=0"`
}

func (m *Module) invoiceRoutes(r *access.Router) {
	r.Get("/billing/plan", perm(PermBillingRead, "The current plan and the plan history"), m.plan)
	r.Put("/billing/plan", perm(PermBillingManage, "Move onto another plan (latest version unless plan_version); the period is prorated").WithBody(PlanChange{}), m.changePlan)
	r.Get("/billing/plans", perm(PermBillingRead, "Plans a tenant can move onto: the latest version of each"), m.availablePlans)
	r.Get("/billing/invoices", perm(PermBillingRead, "Finalised invoices, newest first"), m.invoices)
	r.Get("/billing/invoices/current", perm(PermBillingRead, "The live draft of the open period's invoice, rated from the usage so far"), m.currentInvoice)
	r.Get("/billing/invoices/:id", perm(PermBillingRead, "One invoice; ?format=html gives the printable invoice, ?format=pdf the same as a PDF download (?lang=zh-CN|en)"), m.invoice)
}

func (m *Module) plan(c *fiber.Ctx) error {
	ctx := c.UserContext()
	hist, err := m.plans.History(ctx)
	if err != nil {
		return err
	}
	out := fiber.Map{"plan": nil, "history": hist}
	if p, ok, err := m.plans.CurrentOf(ctx, hist); err != nil {
		return err
	} else if ok {
		out["plan"] = p
	}
	return c.JSON(out)
}

func (m *Module) availablePlans(c *fiber.Ctx) error {
	all, err := m.plans.List(c.UserContext())
	if err != nil {
		return err
	}
	latest := []billing.Plan{}
	for _, p := range all { // by code, newest version first
		if len(latest) == 0 || latest[len(latest)-1].Code != p.Code {
			latest = append(latest, p)
		}
	}
	return c.JSON(httpx.List[billing.Plan]{Items: latest})
}

func (m *Module) changePlan(c *fiber.Ctx) error {
	var in PlanChange
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	ch, err := m.plans.Subscribe(c.UserContext(), in.PlanCode, in.PlanVersion, m.now())
	if err != nil {
		return err
	}
	return c.JSON(ch)
}

func (m *Module) invoices(c *fiber.Ctx) error {
	p, err := httpx.ParsePage(c)
	if err != nil {
		return err
	}
	rows, err := m.invoicer.List(c.UserContext(), p.Limit+1, p.Cursor)
	if err != nil {
		return err
	}
	return c.JSON(httpx.NewList(rows, p.Limit, func(i billing.Invoice) string { return i.ID.String() }))
}

func (m *Module) currentInvoice(c *fiber.Ctx) error {
	ctx := c.UserContext()
	p, err := m.invoicer.PeriodAt(ctx, m.now())
	if err != nil {
		return err
	}
	inv, err := m.invoicer.Draft(ctx, p)
	if errors.Is(err, billing.ErrNoPlan) {
		return fmt.Errorf("no plan yet: %w", apperr.ErrNotFound)
	}
	if err != nil {
		return err
	}
	return c.JSON(inv)
}

func (m *Module) invoice(c *fiber.Ctx) error {
	s, err := httpx.PathID(c, "id")
	if err != nil {
		return err
	}
	id, _ := ids.Parse(s)
	inv, err := m.invoicer.Get(c.UserContext(), id)
	if err != nil {
		return err
	}
	switch format := c.Query("format"); format {
	case "", "json":
		return c.JSON(inv)
	case "html", "pdf":
		org, _ := tenant.OrgFrom(c.UserContext())
		v := printable(inv, org, c.Query("lang", org.Locale))
		if format == "pdf" {
			var b bytes.Buffer
			if err := m.pdf.Render(&b, v); err != nil {
				return err
			}
			c.Set(fiber.HeaderContentType, "application/pdf")
			c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+fileName(inv.Number)+`.pdf"`)
			return c.Send(b.Bytes())
		}
		var b strings.Builder
		if err := invoiceHTML.Execute(&b, v); err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
		return c.SendString(b.String())
	default:
		return apperr.Invalid("format", "must be json, html or pdf")
	}
}

// fileName keeps an invoice number safe inside a quoted Content-Disposition filename.
func fileName(number string) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, number)
	if name == "" {
		return "invoice"
	}
	return name
}

var printLabels = map[string]map[string]string{
	"en":    {"title": "Invoice", "number": "Invoice number", "billed": "Billed to", "period": "Period", "item": "Item", "qty": "Quantity", "amount": "Amount", "subtotal": "Subtotal", "discount": "Discount", "tax": "Tax", "credit": "Credit applied", "total": "Total due"},
	"zh-CN": {"title": "发票", "number": "发票编号", "billed": "客户", "period": "账期", "item": "项目", "qty": "数量", "amount": "金额", "subtotal": "小计", "discount": "折扣", "tax": "税额", "credit": "已用余额", "total": "应付总额"},
}

// printable is the invoice as the HTML and the PDF invoice show it, in lang (zh-CN for any zh*,
// else en).
func printable(inv billing.Invoice, org tenant.Org, lang string) invoicepdf.View {
	if strings.HasPrefix(lang, "zh") {
		lang = "zh-CN"
	} else {
		lang = "en"
	}
	money := func(v int64) string { return formatMinor(v) + " " + inv.Currency }
	pv := invoicepdf.View{Lang: lang, Labels: printLabels[lang], Number: inv.Number, Org: org.Name, Currency: inv.Currency,
		Period:   inv.PeriodStart.Format("2006-01-02") + " – " + inv.PeriodEnd.AddDate(0, 0, -1).Format("2006-01-02"),
		Subtotal: money(inv.Subtotal), Discount: money(inv.Discount), Tax: money(inv.Tax), Credit: money(inv.CreditApplied), Total: money(inv.Total)}
	pv.Title = pv.Labels["title"] + " " + inv.Number
	for _, l := range inv.Lines {
		if l.Kind == "discount" || l.Kind == "tax" || l.Kind == "credit" {
			continue // shown in the totals
		}
		text := l.Description
		if lang == "zh-CN" {
			text = l.DescZH
		}
		pv.Lines = append(pv.Lines, invoicepdf.Line{Text: text, Quantity: l.Quantity, Amount: money(l.Amount), Trial: l.Trial, Negative: l.Amount < 0})
	}
	return pv
}

// formatMinor writes minor units with two decimals (every currency billed today has two).
func formatMinor(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}

var invoiceHTML = template.Must(template.New("invoice").Parse(`<!doctype html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:system-ui,"PingFang SC","Noto Sans CJK SC",sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{padding:.4rem;border-bottom:1px solid #ddd;text-align:left}
td.n,th.n{text-align:right}tfoot td{font-weight:600}@media print{body{margin:0}}</style></head>
<body><h1>{{.Labels.title}}</h1>
<p>{{.Labels.number}}: <strong>{{.Number}}</strong><br>{{.Labels.billed}}: {{.Org}}<br>{{.Labels.period}}: {{.Period}}</p>
<table><thead><tr><th>{{.Labels.item}}</th><th class="n">{{.Labels.qty}}</th><th class="n">{{.Labels.amount}}</th></tr></thead>
<tbody>{{range .Lines}}<tr><td>{{.Text}}</td><td class="n">{{.Quantity}}</td><td class="n">{{.Amount}}</td></tr>{{end}}</tbody>
<tfoot><tr><td colspan="2">{{.Labels.subtotal}}</td><td class="n">{{.Subtotal}}</td></tr>
<tr><td colspan="2">{{.Labels.discount}}</td><td class="n">{{.Discount}}</td></tr>
<tr><td colspan="2">{{.Labels.tax}}</td><td class="n">{{.Tax}}</td></tr>
<tr><td colspan="2">{{.Labels.credit}}</td><td class="n">{{.Credit}}</td></tr>
<tr><td colspan="2">{{.Labels.total}}</td><td class="n">{{.Total}}</td></tr></tfoot></table>
</body></html>`))
