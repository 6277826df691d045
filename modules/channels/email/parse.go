package email

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
	// Registers golang.org/x/text's encodings with go-message, so GBK, GB2312, GB18030, Big5,
	// Shift_JIS, ISO-8859-x... bodies and RFC 2047 encoded words decode to UTF-8.
	_ "github.com/emersion/go-message/charset"
	gomail "github.com/emersion/go-message/mail"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

// ErrTooLarge is returned for a message over the size limit; it is a provider.ErrPayload.
var ErrTooLarge = fmt.Errorf("email: message exceeds the size limit: %w", provider.ErrPayload)

// Parser turns raw RFC 5322 messages into neutral inbound messages. The zero value uses
// DefaultMaxMessageBytes and time.Now.
type Parser struct {
	// MaxBytes refuses larger messages with ErrTooLarge (DefaultMaxMessageBytes when 0).
	MaxBytes int64
	// Now dates a message without a readable Date header.
	Now func() time.Time
}

// futureSkew is how far ahead of our clock a Date header may be before it is distrusted: a
// sender's clock may be off by minutes, but a date days ahead would pin a conversation to the
// top of the inbox.
const futureSkew = 24 * time.Hour

// Parse reads a raw message: sender, subject, text and HTML bodies, attachments and inline
// images, threading headers and whether it was sent by a machine. A message whose header
// cannot be read at all is a provider.ErrPayload; damage further in (a truncated multipart, an
// unknown charset) keeps what could be read, so a customer's mail is never dropped for it.
func (p Parser) Parse(raw []byte) (provider.InboundMessage, error) {
	var m provider.InboundMessage
	limit := p.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxMessageBytes
	}
	if int64(len(raw)) > limit {
		return m, ErrTooLarge
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}

	e, err := message.Read(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return m, fmt.Errorf("email: %v: %w", err, provider.ErrPayload)
	}
	h := gomail.Header{Header: e.Header}

	m.ProviderID = firstMsgID(h.Get("Message-Id"))
	if m.ProviderID == "" {
		sum := sha256.Sum256(raw)
		m.ProviderID = "sha256:" + hex.EncodeToString(sum[:])
	}
	addr, name := sender(h)
	if addr == "" {
		return m, fmt.Errorf("email: no sender address in From: %w", provider.ErrPayload)
	}
	m.From = []provider.Identity{{Kind: provider.IdentityEmail, Value: addr}}
	m.Name = name
	m.Subject = strings.TrimSpace(headerText(h, "Subject"))
	m.InReplyTo = firstMsgID(h.Get("In-Reply-To"))
	m.References = msgIDs(h.Get("References"))
	m.AutoReply = isAutomatic(h, addr)

	m.OccurredAt = now().UTC()
	if d, err := h.Date(); err == nil && !d.IsZero() && d.Before(m.OccurredAt.Add(futureSkew)) {
		m.OccurredAt = d.UTC()
	}

	var texts, htmls []string
	n := 0
	// Walk tolerates unknown charsets and transfer encodings (the part comes undecoded); any
	// other error is a broken MIME structure, which ends the walk with what was read so far.
	_ = e.Walk(func(_ []int, part *message.Entity, _ error) error {
		ctype, params, _ := part.Header.ContentType()
		if strings.HasPrefix(ctype, "multipart/") {
			return nil
		}
		n++
		if ctype == "" {
			ctype = "text/plain"
		}
		body, _ := io.ReadAll(part.Body)
		disp, dparams, _ := part.Header.ContentDisposition()
		filename := dparams["filename"]
		if filename == "" {
			filename = params["name"]
		}
		isBody := disp != "attachment" && filename == "" && (ctype == "text/plain" || ctype == "text/html")
		switch {
		case isBody && ctype == "text/plain":
			t := validUTF8(body)
			if strings.EqualFold(params["format"], "flowed") {
				t = unflow(t, strings.EqualFold(params["delsp"], "yes"))
			}
			texts = append(texts, t)
		case isBody:
			htmls = append(htmls, validUTF8(body))
		default:
			m.Media = append(m.Media, media(part.Header, ctype, filename, body, n))
		}
		return nil
	})
	m.HTML = strings.Join(htmls, "\n")
	m.Text = tidyText(strings.Join(texts, "\n"))
	if m.Text == "" && m.HTML != "" {
		m.Text = HTMLToText(m.HTML)
	}
	switch {
	case m.HTML != "":
		m.ContentType = provider.ContentHTML
	case m.Text != "" || len(m.Media) == 0:
		m.ContentType = provider.ContentText
	case strings.HasPrefix(m.Media[0].ContentType, "image/"):
		m.ContentType = provider.ContentImage
	default:
		m.ContentType = provider.ContentFile
	}
	return m, nil
}

func media(h message.Header, ctype, filename string, data []byte, n int) provider.Media {
	md := provider.Media{ContentType: ctype, Filename: filename, Size: int64(len(data)), Data: data}
	// The Content-ID is how the HTML body refers to an inline image (src="cid:..."), so it is
	// the media's reference.
	md.Ref = firstMsgID(h.Get("Content-Id"))
	if md.Filename == "" {
		md.Filename = fmt.Sprintf("part%d", n)
		if ctype == "message/rfc822" {
			md.Filename += ".eml"
		} else if exts, _ := mime.ExtensionsByType(ctype); len(exts) > 0 {
			md.Filename += exts[0]
		}
	}
	md.Filename = strings.TrimSpace(md.Filename)
	return md
}

// sender is the From address lower-cased and the display name. net/mail's parser is strict and
// real From lines are not ("Name" <a@b>, ... or a bare address in a comment), so a failed parse
// falls back to the first thing that looks like an address.
func sender(h gomail.Header) (addr, name string) {
	if list, err := h.AddressList("From"); err == nil && len(list) > 0 {
		return strings.ToLower(list[0].Address), strings.TrimSpace(loose(list[0].Name))
	}
	raw := headerText(h, "From")
	loc := looseAddr.FindStringIndex(raw)
	if loc == nil {
		return "", ""
	}
	addr = strings.ToLower(raw[loc[0]:loc[1]])
	name = strings.Trim(strings.TrimSpace(raw[:loc[0]]+" "+raw[loc[1]:]), ` "'<>()`)
	return addr, strings.TrimSpace(name)
}

var looseAddr = regexp.MustCompile(`[A-Za-z0-9.!#$%&'*+/=?^_{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*`)

// headerText decodes a header's RFC 2047 words. Some mailers put raw 8-bit text in headers
// without encoded words; when that is not UTF-8 it is most often GBK from Chinese mailers, so
// GB18030 (its superset) is tried before replacing the bad bytes.
func headerText(h gomail.Header, key string) string {
	s, _ := h.Text(key)
	return loose(s)
}

// msgIDs reads a list of message ids without their angle brackets. Mailers get the syntax
// wrong often enough (no brackets, comments, no @) that RFC 5322's grammar is too strict.
func msgIDs(v string) []string {
	var ids []string
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			break
		}
		if id := strings.TrimSpace(v[i+1 : i+j]); id != "" && !strings.ContainsAny(id, " \t\r\n") {
			ids = append(ids, id)
		}
		v = v[i+j+1:]
	}
	if ids == nil {
		for _, f := range strings.Fields(v) {
			if strings.Contains(f, "@") {
				ids = append(ids, strings.Trim(f, "<>,;"))
			}
		}
	}
	return ids
}

func firstMsgID(v string) string {
	if ids := msgIDs(v); len(ids) > 0 {
		return ids[0]
	}
	return ""
}

// isAutomatic reports whether a machine sent the message: RFC 3834's Auto-Submitted, the
// Precedence values list managers and vacation responders set, the X-Autoreply headers of
// older responders, bounces (a null return path, mail from the postmaster or mailer daemon)
// and reports (multipart/report: delivery status notifications and read receipts). Answering those, or opening conversations for them, is how
// mail loops start.
func isAutomatic(h gomail.Header, from string) bool {
	if v := headerToken(h.Get("Auto-Submitted")); v != "" && v != "no" {
		return true
	}
	switch headerToken(h.Get("Precedence")) {
	case "bulk", "junk", "list", "auto_reply":
		return true
	}
	if h.Has("X-Autoreply") || h.Has("X-Autorespond") || h.Has("X-Auto-Reply") {
		return true
	}
	if h.Has("Return-Path") {
		rp := strings.ToLower(strings.TrimSpace(h.Get("Return-Path")))
		if rp == "<>" || rp == "" || strings.HasPrefix(strings.Trim(rp, "<"), "mailer-daemon@") {
			return true
		}
	}
	if ct, _, _ := h.ContentType(); ct == "multipart/report" { // DSNs, read receipts
		return true
	}
	local := from[:max(strings.IndexByte(from, '@'), 0)]
	return local == "mailer-daemon" || local == "postmaster"
}

// headerToken is a header's value lower-cased without parameters or comments
// ("auto-replied; owner-email=..." → "auto-replied").
func headerToken(v string) string {
	if i := strings.IndexAny(v, ";("); i >= 0 {
		v = v[:i]
	}
	return strings.ToLower(strings.TrimSpace(v))
}

// validUTF8 reads a body that should be UTF-8 by now (see loose).
func validUTF8(b []byte) string { return loose(string(b)) }

// loose decodes text whose charset was not declared (or not known) and is not UTF-8: from
// Chinese mailers that is most often GBK, so GB18030 (its superset) is tried first; what does
// not decode cleanly as that is read as Windows-1252, the usual undeclared Western charset,
// which maps every byte.
func loose(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	if d, err := simplifiedchinese.GB18030.NewDecoder().String(s); err == nil && !strings.ContainsRune(d, utf8.RuneError) {
		return d
	}
	if d, err := charmap.Windows1252.NewDecoder().String(s); err == nil {
		return d
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// tidyText normalises line ends and drops the invisible blank space at the end of lines and
// of the text.
func tidyText(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\r")
	}
	return strings.TrimRight(strings.Join(lines, "\n"), "\n")
}

// unflow undoes RFC 3676 format=flowed: a line ending in a space continues on the next line of
// the same quote depth (Apple Mail and Thunderbird send text this way). The signature
// separator "-- " is never joined.
func unflow(s string, delsp bool) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	var out []string
	var cur strings.Builder
	curDepth, open := 0, false
	flush := func() {
		if open {
			out = append(out, strings.Repeat(">", curDepth)+prefixSpace(curDepth)+cur.String())
			cur.Reset()
			open = false
		}
	}
	for _, line := range lines {
		depth := 0
		for depth < len(line) && line[depth] == '>' {
			depth++
		}
		text := strings.TrimPrefix(line[depth:], " ") // space-stuffing
		if open && depth != curDepth {
			flush()
		}
		curDepth, open = depth, true
		soft := strings.HasSuffix(text, " ") && text != "-- "
		if soft && delsp {
			text = text[:len(text)-1]
		}
		cur.WriteString(text)
		if !soft {
			flush()
		}
	}
	flush()
	return strings.Join(out, "\n")
}

func prefixSpace(depth int) string {
	if depth > 0 {
		return " "
	}
	return ""
}
