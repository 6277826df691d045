package apichannel

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

// SignatureHeader carries Switchboard's own webhook signature. Both directions of the API
// channel and the voice channel's provider-neutral call-event API use it, so a brand implements
// one scheme for everything it exchanges with Switchboard.
const SignatureHeader = "X-Switchboard-Signature"

// Tolerance is how far a signature's timestamp may be from our clock. The timestamp is signed,
// so a captured delivery cannot be replayed after this window; it is symmetric because the
// sender's clock may run ahead of ours.
const Tolerance = 300 * time.Second

// Sign returns the X-Switchboard-Signature value for body sent at t: "t=<unix>,v1=<hex>", where
// v1 is HMAC-SHA256 under secret of "<unix>.<body>". It is Stripe's scheme, which brands'
// developers usually know already and for which most languages have a few-line verifier.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks an X-Switchboard-Signature value against the raw body. Any failure wraps
// provider.ErrSignature. Several v1 entries are allowed (any one matching is enough) so a brand
// can sign with the old and the new secret while it rotates them.
func Verify(secret, header string, body []byte, now time.Time) error {
	if secret == "" {
		return fmt.Errorf("channel has no signing secret: %w", provider.ErrSignature)
	}
	if header == "" {
		return fmt.Errorf("no %s header: %w", SignatureHeader, provider.ErrSignature)
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if sig, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, sig)
			}
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("malformed %s header: %w", SignatureHeader, provider.ErrSignature)
	}
	if d := now.Sub(time.Unix(unix, 0)); d > Tolerance || d < -Tolerance {
		return fmt.Errorf("signature timestamp %d is outside the %s tolerance: %w", unix, Tolerance, provider.ErrSignature)
	}
	want := mac(secret, ts, body)
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return fmt.Errorf("signature does not match: %w", provider.ErrSignature)
}
