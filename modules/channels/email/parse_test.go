package email

import (
	"bytes"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func parse(t *testing.T, raw string) provider.InboundMessage {
	t.Helper()
	m, err := Parser{Now: func() time.Time { return fixedNow }}.Parse([]byte(raw))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return m
}

// crlf turns a readable fixture into wire format.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

func TestParsePlainUTF8(t *testing.T) {
	m := parse(t, crlf(`Return-Path: <li.lei@example.com>
From: =?UTF-8?B?5p2O6Zu3?= <Li.Lei@Example.COM>
To: Acme Support <support@acme.test>
Subject: =?UTF-8?Q?Order_=E8=AE=A2=E5=8D=95_42?=
Date: Sun, 01 Feb 2026 09:30:00 +0800
Message-ID: <CAB123.456@mail.example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: 8bit

你好，我的订单还没到。
Thanks!

`))
	want := provider.InboundMessage{
		ProviderID:  "CAB123.456@mail.example.com",
		From:        []provider.Identity{{Kind: provider.IdentityEmail, Value: "li.lei@example.com"}},
		Name:        "李雷",
		ContentType: provider.ContentText,
		Text:        "你好，我的订单还没到。\nThanks!",
		Subject:     "Order 订单 42",
		OccurredAt:  time.Date(2026, 2, 1, 1, 30, 0, 0, time.UTC),
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got  %+v\nwant %+v", m, want)
	}
}

func TestParseMultipartAlternative(t *testing.T) {
	m := parse(t, crlf(`From: "Ann Example" <ann@example.com>
To: support@acme.test
Subject: Hello
Message-ID: <alt-1@example.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

Caf=C3=A9 is closed.=20
Regards
--b1
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

<p>Caf=C3=A9 is <b>closed</b>.</p><script>alert(1)</script>
--b1--
`))
	if m.Text != "Café is closed.\nRegards" {
		t.Errorf("Text = %q", m.Text)
	}
	if m.HTML != "<p>Café is <b>closed</b>.</p><script>alert(1)</script>" {
		t.Errorf("HTML = %q (must be the part as sent; sanitising is separate)", m.HTML)
	}
	if m.ContentType != provider.ContentHTML || len(m.Media) != 0 || m.Name != "Ann Example" {
		t.Errorf("ContentType %q, media %d, name %q", m.ContentType, len(m.Media), m.Name)
	}
	if !m.OccurredAt.Equal(fixedNow) {
		t.Errorf("no Date: OccurredAt = %v, want the injected clock %v", m.OccurredAt, fixedNow)
	}
}

func TestParseHTMLOnly(t *testing.T) {
	m := parse(t, crlf(`From: bob@example.com
Subject: html
Message-ID: <h@example.com>
Content-Type: text/html; charset=utf-8

<html><head><title>T</title><style>p{color:red}</style></head><body>
<h1>Order&nbsp;status</h1>
<p>Dear   team,<br>my parcel is <a href="https://t.example/x">lost</a> &amp; late.</p>
<ul><li>one</li><li>two</li></ul>
<script>var x = "not text";</script>
</body></html>
`))
	want := "Order status\n\nDear team,\nmy parcel is lost & late.\n\n- one\n- two"
	if m.Text != want {
		t.Errorf("Text = %q\nwant  %q", m.Text, want)
	}
	if !strings.Contains(m.HTML, "<h1>Order&nbsp;status</h1>") || m.ContentType != provider.ContentHTML {
		t.Errorf("HTML %q, ContentType %q", m.HTML, m.ContentType)
	}
}

func TestParseAttachmentsAndInlineImage(t *testing.T) {
	pdf := []byte("%PDF-1.4 fake pdf \x00\x01\x02")
	png := []byte("\x89PNG\r\n\x1a\nfake")
	raw := crlf(`From: carol@example.com
Subject: invoice
Message-ID: <att@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/related; boundary="rel"

--rel
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=us-ascii

See the logo and the invoice.
--alt
Content-Type: text/html; charset=us-ascii

<p>See <img src="cid:logo@x"> and the invoice.</p>
--alt--
--rel
Content-Type: image/png
Content-Disposition: inline
Content-ID: <logo@x>
Content-Transfer-Encoding: base64

` + base64.StdEncoding.EncodeToString(png) + `
--rel--
--outer
Content-Type: application/pdf; name="=?UTF-8?B?5Y+R56WoLnBkZg==?="
Content-Disposition: attachment; filename="=?UTF-8?B?5Y+R56WoLnBkZg==?="
Content-Transfer-Encoding: base64

` + base64.StdEncoding.EncodeToString(pdf) + `
--outer
Content-Type: text/plain; charset=utf-8; name="notes.txt"
Content-Disposition: attachment; filename="notes.txt"

a text file, not the body
--outer--
`)
	m := parse(t, raw)
	if m.Text != "See the logo and the invoice." {
		t.Errorf("Text = %q", m.Text)
	}
	if len(m.Media) != 3 {
		t.Fatalf("media = %+v", m.Media)
	}
	img, doc, txt := m.Media[0], m.Media[1], m.Media[2]
	if img.Ref != "logo@x" || img.ContentType != "image/png" || !bytes.Equal(img.Data, png) || img.Size != int64(len(png)) || img.Filename != "part3.png" {
		t.Errorf("inline image = %+v", img)
	}
	if doc.Filename != "发票.pdf" || doc.ContentType != "application/pdf" || !bytes.Equal(doc.Data, pdf) || doc.Size != int64(len(pdf)) {
		t.Errorf("attachment = %+v", doc)
	}
	if txt.Filename != "notes.txt" || txt.ContentType != "text/plain" || string(txt.Data) != "a text file, not the body" {
		t.Errorf("text attachment = %+v %q", txt, txt.Data)
	}
	if m.ContentType != provider.ContentHTML {
		t.Errorf("ContentType = %q", m.ContentType)
	}
}

func TestParseAttachmentOnly(t *testing.T) {
	m := parse(t, crlf(`From: dan@example.com
Subject: photo
Message-ID: <photo@example.com>
Content-Type: image/jpeg
Content-Disposition: attachment; filename=IMG_1.jpg
Content-Transfer-Encoding: base64

/9j/4AAQ
`))
	if m.ContentType != provider.ContentImage || len(m.Media) != 1 || m.Media[0].Filename != "IMG_1.jpg" || m.Text != "" {
		t.Fatalf("%+v", m)
	}
}

func TestParseChineseCharsets(t *testing.T) {
	gbk := func(s string) []byte {
		b, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	big5, err := traditionalchinese.Big5.NewEncoder().Bytes([]byte("請問運費多少"))
	if err != nil {
		t.Fatal(err)
	}
	subject := "=?GB2312?B?" + base64.StdEncoding.EncodeToString(gbk("中文主题：退货")) + "?="
	name := "=?gb2312?B?" + base64.StdEncoding.EncodeToString(gbk("王小明")) + "?="

	cases := []struct {
		name, raw, text, subject, from string
	}{
		{"gbk 8bit body, GB2312 encoded-word subject and name",
			"From: " + name + " <wang@example.cn>\r\nSubject: " + subject + "\r\nMessage-ID: <g1@example.cn>\r\n" +
				"Content-Type: text/plain; charset=gbk\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + string(gbk("你好，中文内容。\r\n谢谢")),
			"你好，中文内容。\n谢谢", "中文主题：退货", "王小明"},
		{"gb2312 base64 body",
			"From: wang@example.cn\r\nSubject: " + subject + "\r\nMessage-ID: <g2@example.cn>\r\n" +
				"Content-Type: text/plain; charset=\"GB2312\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
				base64.StdEncoding.EncodeToString(gbk("订单号 12345 还没发货")),
			"订单号 12345 还没发货", "中文主题：退货", ""},
		{"gb18030 quoted-printable html only",
			"From: wang@example.cn\r\nSubject: hi\r\nMessage-ID: <g3@example.cn>\r\n" +
				"Content-Type: text/html; charset=gb18030\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
				base64.StdEncoding.EncodeToString(gbk("<p>中文</p><p>第二段</p>")),
			"中文\n\n第二段", "hi", ""},
		{"big5 body",
			"From: chen@example.tw\r\nSubject: =?big5?B?" + base64.StdEncoding.EncodeToString(big5) + "?=\r\nMessage-ID: <b1@example.tw>\r\n" +
				"Content-Type: text/plain; charset=big5\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + string(big5),
			"請問運費多少", "請問運費多少", ""},
		{"undeclared Latin-1 body and subject",
			"From: =?iso-8859-1?q?Jos=E9?= <jose@example.es>\r\nSubject: caf\xe9 au lait\r\nMessage-ID: <l1@example.es>\r\n\r\nMerci, \xe0 bient\xf4t.",
			"Merci, à bientôt.", "café au lait", "José"},
		{"raw 8-bit GBK subject without encoded words, body without charset",
			"From: wang@example.cn\r\nSubject: " + string(gbk("退款申请")) + "\r\nMessage-ID: <g4@example.cn>\r\n\r\n" + string(gbk("没有声明字符集")),
			"没有声明字符集", "退款申请", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := parse(t, c.raw)
			if m.Text != c.text || m.Subject != c.subject || m.Name != c.from {
				t.Errorf("text %q subject %q name %q\nwant %q %q %q", m.Text, m.Subject, m.Name, c.text, c.subject, c.from)
			}
		})
	}
}

func TestParseUnknownCharsetKeepsText(t *testing.T) {
	m := parse(t, "From: x@example.com\r\nMessage-ID: <u@x>\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\nplain ascii survives\r\n")
	if m.Text != "plain ascii survives" {
		t.Errorf("Text = %q", m.Text)
	}
}

func TestParseTruncatedMultipartKeepsWhatWasRead(t *testing.T) {
	m := parse(t, crlf(`From: x@example.com
Message-ID: <trunc@x>
Content-Type: multipart/mixed; boundary="zz"

--zz
Content-Type: text/plain

first part arrived
--zz
Content-Type: application/pdf
Content-Transfer-Encoding: base64

JVBER`))
	if m.Text != "first part arrived" {
		t.Errorf("Text = %q", m.Text)
	}
}

func TestParseThreading(t *testing.T) {
	m := parse(t, crlf(`From: li@example.com
Subject: Re: Order 42
Message-ID: <reply-2@example.com>
In-Reply-To: <0b0c6a1e-1111-4222-8333-944455556666@acme.test> (Acme's message of Monday)
References: <first@example.com>
 <0b0c6a1e-1111-4222-8333-944455556666@acme.test>
Date: Mon, 2 Feb 2026 10:00:00 +0000 (UTC)

Thanks
`))
	if m.InReplyTo != "0b0c6a1e-1111-4222-8333-944455556666@acme.test" {
		t.Errorf("InReplyTo = %q", m.InReplyTo)
	}
	if want := []string{"first@example.com", "0b0c6a1e-1111-4222-8333-944455556666@acme.test"}; !reflect.DeepEqual(m.References, want) {
		t.Errorf("References = %q", m.References)
	}
	if m.Subject != "Re: Order 42" || !m.OccurredAt.Equal(time.Date(2026, 2, 2, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("subject %q at %v", m.Subject, m.OccurredAt)
	}

	// Outlook and older mailers: no brackets, or ids separated by commas.
	m = parse(t, "From: a@example.com\r\nMessage-ID: bare-id@example.com\r\nIn-Reply-To: parent@example.com\r\nReferences: <a@x>,<b@x>\r\n\r\nx")
	if m.ProviderID != "bare-id@example.com" || m.InReplyTo != "parent@example.com" || !reflect.DeepEqual(m.References, []string{"a@x", "b@x"}) {
		t.Errorf("lenient ids: %q %q %q", m.ProviderID, m.InReplyTo, m.References)
	}
}

func TestParseMissingMessageIDIsStableHash(t *testing.T) {
	raw := "From: a@example.com\r\nSubject: no id\r\n\r\nbody\r\n"
	a, b := parse(t, raw), parse(t, raw)
	other := parse(t, raw+"more")
	if !strings.HasPrefix(a.ProviderID, "sha256:") || len(a.ProviderID) != len("sha256:")+64 {
		t.Fatalf("ProviderID = %q", a.ProviderID)
	}
	if a.ProviderID != b.ProviderID || a.ProviderID == other.ProviderID {
		t.Errorf("hash ids: %q %q %q", a.ProviderID, b.ProviderID, other.ProviderID)
	}
}

func TestParseDates(t *testing.T) {
	cases := []struct{ date, want string }{
		{"Tue, 3 Feb 2026 08:00:00 -0500", "2026-02-03T13:00:00Z"},
		{"not a date", "2026-03-01T12:00:00Z"},                      // unreadable: the clock
		{"Fri, 1 Jan 2100 00:00:00 +0000", "2026-03-01T12:00:00Z"},  // far future: the clock
		{"Sun, 01 Mar 2026 13:00:00 +0000", "2026-03-01T13:00:00Z"}, // a skewed clock is fine
	}
	for _, c := range cases {
		m := parse(t, "From: a@example.com\r\nMessage-ID: <d@x>\r\nDate: "+c.date+"\r\n\r\nx")
		if got := m.OccurredAt.Format(time.RFC3339); got != c.want {
			t.Errorf("Date %q: OccurredAt %s, want %s", c.date, got, c.want)
		}
	}
}

func TestParseFlowed(t *testing.T) {
	// Soft line breaks are a trailing space (RFC 3676); delsp=yes deletes it when joining.
	m := parse(t, "From: a@example.com\r\nMessage-ID: <f@x>\r\n"+
		"Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes\r\n\r\n"+
		"This is one long paragraph that the \r\nmailer wrapped.\r\n"+
		">> quoted line that was \r\n>> wrapped too\r\n"+
		" >not a quote, space-stuffed\r\n"+
		"-- \r\nsig\r\n")
	want := "This is one long paragraph that themailer wrapped.\n>> quoted line that waswrapped too\n>not a quote, space-stuffed\n--\nsig"
	if m.Text != want {
		t.Errorf("delsp=yes: Text = %q\nwant  %q", m.Text, want)
	}
	m = parse(t, "From: a@example.com\r\nMessage-ID: <f@x>\r\n"+
		"Content-Type: text/plain; charset=utf-8; format=flowed\r\n\r\n"+
		"This is one long paragraph that the \r\nmailer wrapped.\r\n"+
		">> quoted line that was \r\n>> wrapped too\r\n> other depth\r\n")
	want = "This is one long paragraph that the mailer wrapped.\n>> quoted line that was wrapped too\n> other depth"
	if m.Text != want {
		t.Errorf("delsp=no: Text = %q\nwant  %q", m.Text, want)
	}
}

func TestParseAutoReply(t *testing.T) {
	cases := []struct {
		name, headers string
		auto          bool
	}{
		{"plain customer mail", "From: a@example.com\r\n", false},
		{"Auto-Submitted: no", "From: a@example.com\r\nAuto-Submitted: no\r\n", false},
		{"Auto-Submitted: No (comment)", "From: a@example.com\r\nAuto-Submitted: No (human)\r\n", false},
		{"Auto-Submitted: auto-replied", "From: a@example.com\r\nAuto-Submitted: auto-replied\r\n", true},
		{"Auto-Submitted: auto-generated with params", "From: a@example.com\r\nAuto-Submitted: auto-generated; owner-email=\"x@y\"\r\n", true},
		{"Precedence: bulk", "From: a@example.com\r\nPrecedence: bulk\r\n", true},
		{"Precedence: junk", "From: a@example.com\r\nPrecedence: Junk\r\n", true},
		{"Precedence: list", "From: a@example.com\r\nPrecedence: list\r\n", true},
		{"Precedence: auto_reply", "From: a@example.com\r\nPrecedence: auto_reply\r\n", true},
		{"Precedence: first-class", "From: a@example.com\r\nPrecedence: first-class\r\n", false},
		{"X-Autoreply", "From: a@example.com\r\nX-Autoreply: yes\r\n", true},
		{"X-Autorespond", "From: a@example.com\r\nX-Autorespond: vacation\r\n", true},
		{"null return path (bounce)", "Return-Path: <>\r\nFrom: a@example.com\r\n", true},
		{"MAILER-DAEMON return path", "Return-Path: <MAILER-DAEMON@mx.example.com>\r\nFrom: a@example.com\r\n", true},
		{"normal return path", "Return-Path: <bounces+123@example.com>\r\nFrom: a@example.com\r\n", false},
		{"From MAILER-DAEMON", "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\n", true},
		{"From postmaster", "From: postmaster@example.com\r\n", true},
		{"delivery status report", "From: a@example.com\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=x\r\n", true},
		{"read receipt", "From: a@example.com\r\nContent-Type: multipart/report; report-type=disposition-notification; boundary=x\r\n", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := parse(t, c.headers+"Message-ID: <auto@x>\r\nSubject: Out of office\r\n\r\nI am away.\r\n")
			if m.AutoReply != c.auto {
				t.Errorf("AutoReply = %v, want %v", m.AutoReply, c.auto)
			}
		})
	}
}

func TestParseLimitsAndErrors(t *testing.T) {
	raw := []byte(TestMessage("a@example.com", "support@acme.test", "big", strings.Repeat("x", 2000), nil))
	if _, err := (Parser{MaxBytes: 1000}).Parse(raw); !errors.Is(err, ErrTooLarge) || !errors.Is(err, provider.ErrPayload) {
		t.Errorf("over the limit: %v", err)
	}
	if _, err := (Parser{MaxBytes: int64(len(raw))}).Parse(raw); err != nil {
		t.Errorf("at the limit: %v", err)
	}
	if _, err := (Parser{}).Parse([]byte("Subject: no sender\r\n\r\nbody")); !errors.Is(err, provider.ErrPayload) {
		t.Errorf("no From: %v", err)
	}
	if _, err := (Parser{}).Parse([]byte("this is not\x00 a header at all")); !errors.Is(err, provider.ErrPayload) {
		t.Errorf("garbage: %v", err)
	}
	// A From net/mail cannot parse still yields the address.
	m := parse(t, "From: John Doe john.DOE@example.com\r\nMessage-ID: <x@y>\r\n\r\nhi")
	if m.From[0].Value != "john.doe@example.com" || m.Name != "John Doe" {
		t.Errorf("loose From: %+v %q", m.From, m.Name)
	}
}

func TestTestMessageRoundTrip(t *testing.T) {
	raw := TestMessage("王小明 <Wang@Example.cn>", "support@acme.test", "退货 request", "第一行\n第二行", map[string]string{
		"Message-ID":     "<fixed@example.cn>",
		"In-Reply-To":    "<parent@acme.test>",
		"Auto-Submitted": "auto-replied",
	})
	m := parse(t, string(raw))
	if m.ProviderID != "fixed@example.cn" || m.From[0].Value != "wang@example.cn" || m.Name != "王小明" ||
		m.Subject != "退货 request" || m.Text != "第一行\n第二行" || m.InReplyTo != "parent@acme.test" || !m.AutoReply {
		t.Errorf("%+v", m)
	}
	if !bytes.Contains(raw, []byte("\r\n\r\n")) || bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
		t.Errorf("not CRLF wire format: %q", raw)
	}
}
