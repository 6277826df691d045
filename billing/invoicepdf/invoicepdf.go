// Package invoicepdf draws a printable invoice as a PDF, in Chinese or English, with pure Go
// (github.com/go-pdf/fpdf). One embedded TrueType font, WenQuanYi Micro Hei (Apache-2.0, see
// fonts/NOTICE), covers both the CJK and the Latin text; each PDF embeds only the subset of
// glyphs it uses, so a one-page invoice stays a few kilobytes.
package invoicepdf

import (
	"bytes"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/go-pdf/fpdf"
)

// fontTTF is WenQuanYi Micro Hei, face 0 of Debian's wqy-microhei.ttc taken out of the
// collection (fonts/extract.go) with its tables unchanged: TrueType (glyf) outlines, which
// fpdf's UTF-8 fonts need (it cannot read CFF), with Droid Sans Fallback's CJK ideographs and
// Droid Sans's Latin in one font. Droid Sans Fallback alone has no Latin letters or digits.
//
//go:embed fonts/wqy-microhei.ttf
var fontTTF []byte

// Line is one row of the invoice table.
type Line struct {
	Text            string
	Quantity        int64
	Amount          string
	Trial, Negative bool
}

// View is an invoice ready to print: every string already in the invoice's language and every
// amount already formatted. The HTML invoice renders the same View.
type View struct {
	Lang, Title, Number, Org, Period, Currency string
	// Labels by key: title, number, billed, period, item, qty, amount, subtotal, discount, tax,
	// credit, total.
	Labels                                 map[string]string
	Lines                                  []Line
	Subtotal, Discount, Tax, Credit, Total string
}

// Renderer draws invoices as PDF. Build one with NewRenderer and share it; it is safe for
// concurrent use. It checks the embedded font once, on first use, and keeps the outcome.
type Renderer struct {
	font    []byte
	once    sync.Once
	fontErr error
	// slots bounds the documents drawn at once: each parses the whole font (see loadFont), about
	// 35 MB of short-lived memory, so a burst of downloads waits rather than piling that up.
	slots chan struct{}
}

// NewRenderer returns a renderer over the embedded font.
func NewRenderer() *Renderer {
	return &Renderer{font: fontTTF, slots: make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))}
}

const family = "wqymicrohei"

// loadFont checks, once, that the font is one fpdf can use: TrueType outlines with the tables
// fpdf reads, and a probe document that sets it. fpdf itself only prints a font it cannot parse
// to stdout and fails later with "undefined font", so the check gives the real reason.
//
// fpdf has no way to share a parsed font between documents (the parsed tables live in the
// unexported state of one Fpdf): each document parses the font again and parses it once more
// to cut its glyph subset when written, about 65 ms of CPU and 35 MB of garbage per invoice on
// a 2-core machine (BenchmarkRender).
func (r *Renderer) loadFont() error {
	r.once.Do(func() {
		if err := checkTrueType(r.font); err != nil {
			r.fontErr = fmt.Errorf("invoicepdf: embedded font: %w", err)
			return
		}
		f := fpdf.New("P", "mm", "A4", "")
		f.AddUTF8FontFromBytes(family, "", r.font)
		f.SetFont(family, "", 10)
		if err := f.Error(); err != nil {
			r.fontErr = fmt.Errorf("invoicepdf: fpdf cannot use the embedded font: %w", err)
		}
	})
	return r.fontErr
}

// checkTrueType reads the sfnt table directory: TrueType outlines (not CFF) and the tables a
// UTF-8 font needs in fpdf.
func checkTrueType(b []byte) error {
	if len(b) < 12 {
		return errors.New("too short")
	}
	if v := binary.BigEndian.Uint32(b); v != 0x00010000 && v != 0x74727565 { // 1.0 or 'true'
		return fmt.Errorf("not a TrueType font (sfnt version %#x; CFF/OpenType outlines are not supported)", v)
	}
	n := int(binary.BigEndian.Uint16(b[4:]))
	if len(b) < 12+16*n {
		return errors.New("truncated table directory")
	}
	have := map[string]bool{}
	for i := range n {
		have[string(b[12+16*i:16+16*i])] = true
	}
	for _, t := range []string{"cmap", "glyf", "head", "hhea", "hmtx", "loca", "maxp", "post"} {
		if !have[t] {
			return fmt.Errorf("no %q table", t)
		}
	}
	return nil
}

// Page geometry in millimetres (A4 portrait).
const (
	margin   = 18.0
	qtyW     = 28.0
	amountW  = 42.0
	lineH    = 6.0
	bodySize = 10.0
)

// Render writes v as a PDF to w.
func (r *Renderer) Render(w io.Writer, v View) error {
	if err := r.loadFont(); err != nil {
		return err
	}
	r.slots <- struct{}{}
	defer func() { <-r.slots }()
	f := fpdf.New("P", "mm", "A4", "")
	f.SetMargins(margin, 20, margin)
	f.SetAutoPageBreak(true, 20)
	f.AddUTF8FontFromBytes(family, "", r.font)
	f.SetTitle(clean(v.Title), true)
	f.SetSubject(clean(v.Labels["title"]+" "+v.Number), true)
	f.SetCreator("Switchboard", false)
	f.SetLang(v.Lang)
	label := func(k string) string { return clean(v.Labels[k]) }
	pageW, pageH := f.GetPageSize()
	contentW := pageW - 2*margin
	itemW := contentW - qtyW - amountW

	f.SetFooterFunc(func() {
		f.SetY(-14)
		f.SetFont(family, "", 8)
		f.SetTextColor(120, 120, 120)
		f.CellFormat(0, 5, clean(v.Number)+" · "+strconv.Itoa(f.PageNo()), "", 0, "C", false, 0, "")
		f.SetTextColor(34, 34, 34)
	})
	tableHead := func() {
		f.SetFont(family, "", bodySize)
		f.SetFillColor(242, 242, 242)
		f.SetDrawColor(200, 200, 200)
		f.CellFormat(itemW, lineH+1, label("item"), "B", 0, "L", true, 0, "")
		f.CellFormat(qtyW, lineH+1, label("qty"), "B", 0, "R", true, 0, "")
		f.CellFormat(amountW, lineH+1, label("amount"), "B", 1, "R", true, 0, "")
	}

	f.AddPage()
	f.SetTextColor(34, 34, 34)
	bold(f, func() {
		f.SetFont(family, "", 22)
		f.CellFormat(0, 12, label("title"), "", 1, "L", false, 0, "")
	})
	f.Ln(2)
	f.SetFont(family, "", bodySize)
	for _, kv := range [][2]string{{"number", v.Number}, {"billed", v.Org}, {"period", v.Period}} {
		f.CellFormat(0, lineH, label(kv[0])+": "+clean(kv[1]), "", 1, "L", false, 0, "")
	}
	f.Ln(6)
	tableHead()

	_, _, _, bottom := f.GetMargins()
	for _, l := range v.Lines {
		text := wrap(f, clean(l.Text), itemW-2*f.GetCellMargin())
		h := float64(len(text)) * lineH
		if f.GetY()+h+1 > pageH-bottom {
			f.AddPage()
			tableHead()
		}
		y := f.GetY()
		for i, t := range text {
			f.SetXY(margin, y+float64(i)*lineH)
			f.CellFormat(itemW, lineH, t, "", 0, "L", false, 0, "")
		}
		f.SetXY(margin+itemW, y)
		f.CellFormat(qtyW, lineH, strconv.FormatInt(l.Quantity, 10), "", 0, "R", false, 0, "")
		f.CellFormat(amountW, lineH, clean(l.Amount), "", 0, "R", false, 0, "")
		f.SetY(y + h + 1)
		f.Line(margin, f.GetY(), margin+contentW, f.GetY())
	}

	f.Ln(2)
	if f.GetY()+6*lineH > pageH-bottom {
		f.AddPage()
	}
	for _, kv := range [][2]string{{"subtotal", v.Subtotal}, {"discount", v.Discount}, {"tax", v.Tax}, {"credit", v.Credit}} {
		f.CellFormat(itemW+qtyW, lineH, label(kv[0]), "", 0, "L", false, 0, "")
		f.CellFormat(amountW, lineH, clean(kv[1]), "", 1, "R", false, 0, "")
	}
	f.Line(margin, f.GetY()+1, margin+contentW, f.GetY()+1)
	f.Ln(2)
	bold(f, func() {
		f.SetFont(family, "", 12)
		f.CellFormat(itemW+qtyW, lineH+2, label("total"), "", 0, "L", false, 0, "")
		f.CellFormat(amountW, lineH+2, clean(v.Total), "", 1, "R", false, 0, "")
	})
	return f.Output(w)
}

// wrap breaks s into lines no wider than w in the current font: after a space, or next to a
// CJK character, but never before closing or after opening punctuation; a run longer than a
// line is cut where it overflows. (fpdf's SplitText drops the CJK character it breaks at.)
func wrap(f *fpdf.Fpdf, s string, w float64) []string {
	rs := []rune(s)
	var lines []string
	start, brk, width := 0, -1, 0.0 // brk: where the current line may end
	for i := 0; i < len(rs); i++ {
		if i > start && canBreak(rs[i-1], rs[i]) {
			brk = i
		}
		width += f.GetStringWidth(string(rs[i]))
		if width <= w || i == start {
			continue
		}
		end := i
		if brk > start {
			end = brk
		}
		lines = append(lines, strings.TrimRight(string(rs[start:end]), " "))
		for end < len(rs) && rs[end] == ' ' {
			end++
		}
		start, brk, width = end, -1, 0
		i = start - 1
	}
	if start < len(rs) || len(lines) == 0 {
		lines = append(lines, string(rs[start:]))
	}
	return lines
}

const (
	closing = ",.;:!?)]}%，。、；：！？）】》」』”’·"
	opening = "([{（【《「『“‘"
)

func canBreak(a, b rune) bool {
	switch {
	case b == ' ' || strings.ContainsRune(closing, b) || strings.ContainsRune(opening, a):
		return false
	case a == ' ':
		return true
	}
	return wide(a) || wide(b)
}

// wide is a character that CJK text may break before or after.
func wide(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul) ||
		r >= 0x3000 && r <= 0x303F || r >= 0xFF00 && r <= 0xFFEF
}

// bold draws with a thin outline around the glyphs: the font has no bold face.
func bold(f *fpdf.Fpdf, draw func()) {
	lw := f.GetLineWidth()
	r, g, b := f.GetDrawColor()
	f.SetLineWidth(0.15)
	f.SetDrawColor(f.GetTextColor())
	f.SetTextRenderingMode(2) // fill, then stroke
	draw()
	f.SetTextRenderingMode(0)
	f.SetLineWidth(lw)
	f.SetDrawColor(r, g, b)
}

// clean keeps text fpdf can write with a UTF-8 font: it indexes glyph widths by rune in the
// Basic Multilingual Plane only (a rune beyond it, such as an emoji in a tenant's name, would
// panic there), and control characters would draw as boxes.
func clean(s string) string {
	ok := true
	for _, c := range s {
		if c > 0xFFFF || unicode.IsControl(c) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b bytes.Buffer
	for _, c := range s {
		switch {
		case c > 0xFFFF:
			b.WriteRune('?')
		case unicode.IsControl(c):
			b.WriteByte(' ')
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}
