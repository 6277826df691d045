package invoicepdf_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-cloud/switchboard/billing/invoicepdf"
	"github.com/switchboard-cloud/switchboard/billing/invoicepdf/pdftext"
)

var labels = map[string]map[string]string{
	"en":    {"title": "Invoice", "number": "Invoice number", "billed": "Billed to", "period": "Period", "item": "Item", "qty": "Quantity", "amount": "Amount", "subtotal": "Subtotal", "discount": "Discount", "tax": "Tax", "credit": "Credit applied", "total": "Total due"},
	"zh-CN": {"title": "发票", "number": "发票编号", "billed": "客户", "period": "账期", "item": "项目", "qty": "数量", "amount": "金额", "subtotal": "小计", "discount": "折扣", "tax": "税额", "credit": "已用余额", "total": "应付总额"},
}

func view(lang string) invoicepdf.View {
	v := invoicepdf.View{Lang: lang, Labels: labels[lang], Number: "ACME-2026-0007", Currency: "CNY", Period: "2026-01-01 – 2026-01-31",
		Subtotal: "1034.50 CNY", Discount: "0.00 CNY", Tax: "62.07 CNY", Credit: "-5.00 CNY", Total: "1091.57 CNY"}
	v.Title = v.Labels["title"] + " " + v.Number
	if lang == "zh-CN" {
		v.Org = "艾克美科技有限公司"
		v.Lines = []invoicepdf.Line{
			{Text: "Growth 套餐 基础费用", Quantity: 1, Amount: "999.00 CNY"},
			{Text: "交互次数（超出包含的 1,000 次）", Quantity: 250, Amount: "12.50 CNY"},
			{Text: "语音分钟", Quantity: 130, Amount: "23.00 CNY"},
		}
	} else {
		v.Org = "Acme Corp"
		v.Lines = []invoicepdf.Line{
			{Text: "Growth plan base fee", Quantity: 1, Amount: "999.00 CNY"},
			{Text: "Interactions (over the 1,000 included)", Quantity: 250, Amount: "12.50 CNY"},
			{Text: "Voice minutes", Quantity: 130, Amount: "23.00 CNY"},
		}
	}
	return v
}

func render(t *testing.T, r *invoicepdf.Renderer, v invoicepdf.View) (doc []byte, text string) {
	t.Helper()
	var b bytes.Buffer
	if err := r.Render(&b, v); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b.Bytes(), []byte("%PDF-")) {
		t.Fatalf("not a PDF: %q", b.Bytes()[:min(20, b.Len())])
	}
	d, err := pdftext.Read(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.NoGlyph) > 0 {
		t.Errorf("the font has no glyph for %q", string(d.NoGlyph))
	}
	return b.Bytes(), d.Text
}

// Both languages render, and the text read back from the PDF (through the font's ToUnicode
// map, as a viewer's search or copy would) has the labels, the tenant, the lines and amounts,
// each character drawn with a real glyph of the font.
func TestRenderBothLanguages(t *testing.T) {
	r := invoicepdf.NewRenderer()
	for _, lang := range []string{"zh-CN", "en"} {
		t.Run(lang, func(t *testing.T) {
			v := view(lang)
			doc, text := render(t, r, v)
			want := []string{v.Number, v.Org, v.Period, v.Subtotal, v.Tax, v.Credit, v.Total}
			for _, k := range []string{"title", "number", "billed", "period", "item", "qty", "amount", "subtotal", "discount", "tax", "credit", "total"} {
				want = append(want, v.Labels[k])
			}
			for _, l := range v.Lines {
				want = append(want, l.Text, l.Amount, fmt.Sprint(l.Quantity))
			}
			if lang == "zh-CN" {
				want = append(want, "发票", "应付总额", "艾克美科技有限公司", "交互次数")
			}
			for _, w := range want {
				if !strings.Contains(text, w) {
					t.Errorf("%q missing from the PDF text:\n%s", w, text)
				}
			}
			// The font is subset: a one-page invoice is kilobytes, not the 4 MB font.
			if len(doc) > 200_000 {
				t.Errorf("PDF is %d bytes", len(doc))
			}
			if !bytes.Contains(doc, []byte("/Lang ("+lang+")")) {
				t.Errorf("no /Lang (%s) in the catalogue", lang)
			}
		})
	}
}

// Many lines run onto more pages; the table head repeats and no line is lost. Text the font
// cannot index (an emoji beyond the BMP, control characters) does not break the rendering.
func TestRenderManyLinesAndOddText(t *testing.T) {
	r := invoicepdf.NewRenderer()
	v := view("zh-CN")
	v.Org = "Acme 🚀\t公司"
	v.Lines = nil
	for i := range 80 {
		v.Lines = append(v.Lines, invoicepdf.Line{Text: fmt.Sprintf("第 %d 行 · 一个很长的项目说明，用来检查自动换行是否正确处理中文文本而不会溢出表格的项目栏宽度", i+1), Quantity: int64(i), Amount: fmt.Sprintf("%d.00 CNY", i)})
	}
	_, text := render(t, r, v)
	if !strings.Contains(text, "Acme ? 公司") {
		t.Errorf("tenant name: %s", text)
	}
	// Each description wraps onto two lines of the PDF with nothing lost at the break.
	joined := strings.ReplaceAll(text, "\n", "")
	for i, l := range v.Lines {
		if !strings.Contains(joined, l.Text) || !strings.Contains(text, fmt.Sprintf("\n%d.00 CNY\n", i)) {
			t.Fatalf("line %d missing or cut: %s", i+1, text)
		}
		if strings.Contains(text, "\n"+l.Text+"\n") {
			t.Fatalf("line %d did not wrap", i+1)
		}
	}
	if n := strings.Count(text, "\n项目\n"); n < 2 {
		t.Errorf("table head shown %d times; want it on every page", n)
	}
	if !strings.Contains(text, "ACME-2026-0007 · 2\n") {
		t.Errorf("no page 2 footer")
	}
}

// One renderer serves concurrent requests.
func TestRenderConcurrent(t *testing.T) {
	r := invoicepdf.NewRenderer()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := view([]string{"zh-CN", "en"}[i%2])
			var b bytes.Buffer
			if err := r.Render(&b, v); err != nil {
				errs <- err
				return
			}
			text, err := pdftext.Text(b.Bytes())
			if err == nil && !strings.Contains(text, v.Labels["total"]) {
				err = fmt.Errorf("%s: no total label in %q", v.Lang, text)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkRender(b *testing.B) {
	r := invoicepdf.NewRenderer()
	v := view("zh-CN")
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := r.Render(&buf, v); err != nil {
			b.Fatal(err)
		}
	}
}
