// Package pdftext reads the text back out of a PDF, for tests of the PDF invoices: what a
// viewer's copy and paste or search would find.
//
// The file structure, streams and content operators are read by github.com/ledongthuc/pdf. Its
// own text extraction cannot be used for fpdf's output: fpdf maps every UTF-8 font with one
// ToUnicode range, <0000> <FFFF> → U+0000, and that reader offsets only the last byte of a
// range's destination, so 发 (U+53D1) came back as Ñ (U+00D1). Here the ToUnicode CMap is
// applied with whole-code arithmetic, as PDF viewers do.
//
// Text found that way says nothing of how it prints: a character the font has no glyph for is
// still in the text. Read also lists those, from the CID font's CIDToGIDMap.
package pdftext

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf16"

	"github.com/ledongthuc/pdf"
)

// Text returns the text each page shows, one shown string per line, pages in order.
func Text(doc []byte) (string, error) {
	d, err := Read(doc)
	return d.Text, err
}

// Doc is what Read finds in a PDF.
type Doc struct {
	// Text is the text each page shows, one shown string per line, pages in order.
	Text string
	// NoGlyph holds the characters shown in a TrueType CID font that maps them to glyph 0
	// (.notdef): they are in the text but print as empty boxes.
	NoGlyph []rune
}

type font struct {
	cmap     *cmap
	cidToGID string // CIDFontType2 /CIDToGIDMap stream: two bytes per CID; "" when absent
}

// Read reads the text out of a PDF and the characters it shows without a glyph.
func Read(doc []byte) (d Doc, err error) {
	defer func() { // the reader panics on malformed input
		if r := recover(); r != nil {
			err = fmt.Errorf("pdftext: %v", r)
		}
	}()
	r, err := pdf.NewReader(bytes.NewReader(doc), int64(len(doc)))
	if err != nil {
		return d, err
	}
	if r.NumPage() == 0 {
		return d, errors.New("pdftext: no pages")
	}
	var b strings.Builder
	noGlyph := map[rune]bool{}
	for i := 1; i <= r.NumPage(); i++ {
		p := r.Page(i)
		fonts := map[string]*font{}
		for _, name := range p.Fonts() {
			v := p.Font(name).V
			f := &font{}
			if tu := v.Key("ToUnicode"); tu.Kind() == pdf.Stream {
				f.cmap = readCMap(tu)
			}
			if v.Key("Encoding").Name() == "Identity-H" {
				if m := v.Key("DescendantFonts").Index(0).Key("CIDToGIDMap"); m.Kind() == pdf.Stream {
					rd := m.Reader()
					data, err := io.ReadAll(rd)
					rd.Close()
					if err != nil {
						return d, err
					}
					f.cidToGID = string(data)
				}
			}
			fonts[name] = f
		}
		cur := &font{}
		show := func(raw string) {
			b.WriteString(cur.cmap.decode(raw))
			b.WriteByte('\n')
			if cur.cidToGID == "" {
				return
			}
			for j := 0; j+1 < len(raw); j += 2 {
				cid := int(raw[j])<<8 | int(raw[j+1])
				if 2*cid+1 >= len(cur.cidToGID) || cur.cidToGID[2*cid] == 0 && cur.cidToGID[2*cid+1] == 0 {
					for _, c := range cur.cmap.decode(raw[j : j+2]) {
						noGlyph[c] = true
					}
				}
			}
		}
		contents := p.V.Key("Contents")
		streams := []pdf.Value{contents}
		if contents.Kind() == pdf.Array {
			streams = streams[:0]
			for j := range contents.Len() {
				streams = append(streams, contents.Index(j))
			}
		}
		for _, s := range streams {
			pdf.Interpret(s, func(stk *pdf.Stack, op string) {
				args := make([]pdf.Value, stk.Len())
				for j := len(args) - 1; j >= 0; j-- {
					args[j] = stk.Pop()
				}
				switch op {
				case "Tf":
					if len(args) == 2 {
						if f, ok := fonts[args[0].Name()]; ok {
							cur = f
						} else {
							cur = &font{}
						}
					}
				case "Tj", "'", "\"":
					if len(args) > 0 {
						show(args[len(args)-1].RawString())
					}
				case "TJ":
					if len(args) == 1 {
						var parts []string
						for j := range args[0].Len() {
							if x := args[0].Index(j); x.Kind() == pdf.String {
								parts = append(parts, x.RawString())
							}
						}
						show(strings.Join(parts, ""))
					}
				}
			})
		}
	}
	d.Text = b.String()
	for c := range noGlyph {
		d.NoGlyph = append(d.NoGlyph, c)
	}
	slices.Sort(d.NoGlyph)
	return d, nil
}

type codeRange struct {
	lo, hi uint32
	n      int // bytes per code
}

type bfRange struct {
	codeRange
	dst []uint16 // UTF-16 of lo's text; the last unit grows with the code
}

// cmap is a ToUnicode CMap: character codes to UTF-16.
type cmap struct {
	space  []codeRange
	chars  map[string][]uint16
	ranges []bfRange
}

// readCMap reads the codespace ranges, bfchar and bfrange sections of a ToUnicode CMap; the
// rest of its PostScript is boilerplate.
func readCMap(v pdf.Value) *cmap {
	m := &cmap{chars: map[string][]uint16{}}
	rd := v.Reader()
	defer rd.Close()
	src, err := io.ReadAll(rd)
	if err != nil {
		panic(err)
	}
	section := ""
	var args []any // hex strings (string) and arrays ([]string) since the last operator
	for _, tok := range tokens(string(src)) {
		switch t := tok.(type) {
		case string, []string:
			args = append(args, t)
			continue
		case op:
			switch t {
			case "begincodespacerange", "beginbfchar", "beginbfrange":
				section = string(t)
			case "endcodespacerange":
				for i := 0; i+1 < len(args); i += 2 {
					lo, hi := args[i].(string), args[i+1].(string)
					m.space = append(m.space, codeRange{num(lo), num(hi), len(lo)})
				}
				section = ""
			case "endbfchar":
				for i := 0; i+1 < len(args); i += 2 {
					m.chars[args[i].(string)] = units(args[i+1].(string))
				}
				section = ""
			case "endbfrange":
				for i := 0; i+2 < len(args); i += 3 {
					lo, hi := args[i].(string), args[i+1].(string)
					r := codeRange{num(lo), num(hi), len(lo)}
					switch dst := args[i+2].(type) {
					case []string: // one destination per code
						for j, d := range dst {
							m.chars[code(r.lo+uint32(j), r.n)] = units(d)
						}
					case string:
						m.ranges = append(m.ranges, bfRange{r, units(dst)})
					}
				}
				section = ""
			}
			if section == "" || strings.HasPrefix(string(t), "begin") {
				args = args[:0]
			}
		}
	}
	return m
}

type op string

// tokens splits CMap source into hex strings (decoded, as string), arrays of hex strings
// ([]string) and everything else as an op; comments and literal strings are skipped.
func tokens(s string) []any {
	var out []any
	var arr []string
	inArr := false
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '%':
			for i < len(s) && s[i] != '\n' && s[i] != '\r' {
				i++
			}
		case c == '<' && i+1 < len(s) && s[i+1] == '<', c == '>' && i+1 < len(s) && s[i+1] == '>':
			i += 2
		case c == '<':
			j := strings.IndexByte(s[i:], '>')
			if j < 0 {
				return out
			}
			h := strings.Map(func(r rune) rune {
				if strings.ContainsRune(" \t\r\n", r) {
					return -1
				}
				return r
			}, s[i+1:i+j])
			if len(h)%2 == 1 {
				h += "0"
			}
			b, err := hex.DecodeString(h)
			if err != nil {
				panic(fmt.Errorf("bad hex string <%s>", h))
			}
			if inArr {
				arr = append(arr, string(b))
			} else {
				out = append(out, string(b))
			}
			i += j + 1
		case c == '[':
			inArr, arr = true, nil
			i++
		case c == ']':
			inArr = false
			out = append(out, arr)
			i++
		case c == '(': // literal string (CMap names and the like): skip, nesting included
			depth := 0
			for ; i < len(s); i++ {
				if s[i] == '\\' {
					i++
				} else if s[i] == '(' {
					depth++
				} else if s[i] == ')' {
					if depth--; depth == 0 {
						i++
						break
					}
				}
			}
		case strings.IndexByte(" \t\r\n\f\x00", c) >= 0:
			i++
		default:
			j := i
			for j < len(s) && strings.IndexByte(" \t\r\n\f\x00<>[]()/%", s[j]) < 0 {
				j++
			}
			if j == i { // a name's slash
				j++
			}
			if !inArr {
				out = append(out, op(s[i:j]))
			}
			i = j
		}
	}
	return out
}

// decode maps the codes in raw to text; a code with no mapping becomes U+FFFD, and without a
// ToUnicode map (m == nil) the bytes are read as Latin-1.
func (m *cmap) decode(raw string) string {
	if m == nil {
		r := make([]rune, len(raw))
		for i := range len(raw) {
			r[i] = rune(raw[i])
		}
		return string(r)
	}
	var out []uint16
	for len(raw) > 0 {
		n := 0
		for _, s := range m.space {
			if s.n <= len(raw) {
				if c := num(raw[:s.n]); s.lo <= c && c <= s.hi {
					n = s.n
					break
				}
			}
		}
		if n == 0 {
			out = append(out, 0xFFFD)
			raw = raw[1:]
			continue
		}
		out = append(out, m.lookup(raw[:n])...)
		raw = raw[n:]
	}
	return string(utf16.Decode(out))
}

func (m *cmap) lookup(src string) []uint16 {
	if u, ok := m.chars[src]; ok {
		return u
	}
	c := num(src)
	for _, r := range m.ranges {
		if r.n == len(src) && r.lo <= c && c <= r.hi && len(r.dst) > 0 {
			u := append([]uint16(nil), r.dst...)
			u[len(u)-1] += uint16(c - r.lo)
			return u
		}
	}
	return []uint16{0xFFFD}
}

func num(s string) uint32 {
	var v uint32
	for i := range len(s) {
		v = v<<8 | uint32(s[i])
	}
	return v
}

func code(v uint32, n int) string {
	b := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	return string(b)
}

func units(s string) []uint16 {
	u := make([]uint16, 0, len(s)/2)
	for i := 0; i+1 < len(s); i += 2 {
		u = append(u, uint16(s[i])<<8|uint16(s[i+1]))
	}
	return u
}
