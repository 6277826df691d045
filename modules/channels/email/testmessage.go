package email

import (
	"bytes"
	"io"
	"net/mail"
	"sort"
	"strings"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"github.com/google/uuid"
)

// TestMessage builds a raw RFC 5322 message for tests outside this package (the inbox sends it
// to the Receiver or an IMAP mailbox): from and to are addresses, optionally with a name
// ("Li Lei <li@example.com>"); body is UTF-8 text sent as quoted-printable text/plain.
// headers are set last and override the defaults (Message-ID random, Date now); a header set
// to "" is removed. Threading and auto-reply tests pass Message-ID, In-Reply-To, References,
// Auto-Submitted, Precedence... here.
func TestMessage(from, to, subject, body string, headers map[string]string) []byte {
	var h gomail.Header // new fields go first: set in reverse reading order
	h.Set("Content-Transfer-Encoding", "quoted-printable")
	h.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	h.SetMessageID(uuid.NewString() + "@test.switchboard.invalid")
	h.SetDate(time.Now())
	h.SetSubject(subject)
	h.SetAddressList("To", addrs(to))
	h.SetAddressList("From", addrs(from))
	keys := make([]string, 0, len(headers))
	for k := range headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if headers[k] == "" {
			h.Del(k)
		} else {
			h.Set(k, headers[k])
		}
	}
	var buf bytes.Buffer
	w, err := gomail.CreateSingleInlineWriter(&buf, h)
	if err != nil {
		panic("email: TestMessage: " + err.Error())
	}
	if !strings.HasSuffix(body, "\n") {
		body += "\n" // a message's last line ends like the others
	}
	_, _ = io.WriteString(w, body)
	_ = w.Close()
	return buf.Bytes()
}

func addrs(s string) []*mail.Address {
	if s == "" {
		return nil
	}
	if a, err := mail.ParseAddress(s); err == nil {
		return []*mail.Address{a}
	}
	return []*mail.Address{{Address: s}}
}
