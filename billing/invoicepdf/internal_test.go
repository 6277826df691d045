package invoicepdf

import (
	"strings"
	"testing"

	"github.com/go-pdf/fpdf"
)

// The embedded font is TrueType with glyf outlines; a CFF-flavoured OpenType font or a cut-off
// file is refused with the reason.
func TestCheckTrueType(t *testing.T) {
	if err := checkTrueType(fontTTF); err != nil {
		t.Fatalf("embedded font: %v", err)
	}
	cff := append([]byte("OTTO"), fontTTF[4:]...)
	if err := checkTrueType(cff); err == nil || !strings.Contains(err.Error(), "CFF") {
		t.Errorf("CFF font: %v", err)
	}
	if err := checkTrueType(fontTTF[:40]); err == nil {
		t.Error("truncated font accepted")
	}
	r := &Renderer{font: []byte("not a font at all"), slots: make(chan struct{}, 1)}
	if err := r.Render(new(strings.Builder), View{}); err == nil || !strings.Contains(err.Error(), "embedded font") {
		t.Errorf("bad font: %v", err)
	}
}

// wrap keeps every character (spaces at a break aside), fits each line in the width, breaks
// Latin text at spaces and CJK text between characters, and never puts closing punctuation at
// the start of a line.
func TestWrap(t *testing.T) {
	f := fpdf.New("P", "mm", "A4", "")
	f.AddUTF8FontFromBytes(family, "", fontTTF)
	f.SetFont(family, "", bodySize)
	const w = 60.0
	for _, s := range []string{
		"",
		"短",
		"Interactions over the included allowance, billed per unit at the plan's price",
		"交互次数，超出套餐包含的一千次之后按单价计费。语音分钟：按阶梯计价（前一百分钟每分钟零点二元）",
		"混合 mixed 文本 with English words 和中文，包括数字 1,234.56 CNY 以及标点。",
		strings.Repeat("x", 200),
		strings.Repeat("，", 60),
	} {
		lines := wrap(f, s, w)
		if len(lines) == 0 {
			t.Fatalf("%q: no lines", s)
		}
		if got, want := strings.ReplaceAll(strings.Join(lines, ""), " ", ""), strings.ReplaceAll(s, " ", ""); got != want {
			t.Errorf("%q: lost text: %q", s, lines)
		}
		for i, l := range lines {
			if f.GetStringWidth(l) > w && len([]rune(l)) > 1 {
				t.Errorf("%q: line %q is %.1f mm wide", s, l, f.GetStringWidth(l))
			}
			if r := []rune(l); i > 0 && len(r) > 0 && strings.ContainsRune(closing, r[0]) && !strings.HasPrefix(s, "，") {
				t.Errorf("%q: line %d starts with %q", s, i, r[0])
			}
		}
	}
	if lines := wrap(f, "alpha beta gamma delta epsilon zeta eta theta iota kappa", 40); len(lines) < 2 || strings.HasSuffix(lines[0], " ") || strings.Contains(strings.Join(lines, "|"), "a|l") {
		t.Errorf("latin breaks mid-word or keeps the space: %q", lines)
	}
}
