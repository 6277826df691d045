// Package meta holds Switchboard's adapters for Meta's messaging platforms: the WhatsApp Cloud API
// and the Facebook Messenger Platform. Both deliver webhooks the same way (a GET verification
// handshake with hub.verify_token, then POSTs signed with X-Hub-Signature-256, an HMAC-SHA256 of
// the raw body keyed with the app secret) and both send through the Graph API, so the handshake,
// the signature, the Graph error envelope and the HTTP plumbing live here and the two providers
// differ only in payload shapes and endpoints.
package meta

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

const (
	// DefaultAPIBase is the Graph API host both platforms send through.
	DefaultAPIBase = "https://graph.facebook.com"
	// DefaultAPIVersion is the Graph API version used when a channel does not pin one. Meta keeps
	// each version for about two years, so a channel can pin a newer one without a release.
	DefaultAPIVersion = "v21.0"

	// SignatureHeader carries "sha256=<hex HMAC-SHA256 of the raw body>" keyed with the app secret.
	SignatureHeader = "X-Hub-Signature-256"

	// maxMedia bounds a media download: WhatsApp's largest documents are 100 MB, and a fetch must
	// not be able to exhaust memory whatever the CDN answers.
	maxMedia = 100 << 20
	// maxAnswer bounds the JSON answers of the Graph API we read.
	maxAnswer = 1 << 20
)

var (
	versionRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+$`)
	digitsRE  = regexp.MustCompile(`^[0-9]+$`)
)

func defaultClient(c *http.Client) *http.Client {
	if c != nil {
		return c
	}
	// A send runs inside a queue worker: without a timeout one stuck connection would hold the
	// worker forever.
	return &http.Client{Timeout: 30 * time.Second}
}

// graphURL joins api_base, the API version and the path segments.
func graphURL(ch provider.Channel, segments ...string) string {
	base := strings.TrimRight(ch.Get("api_base", DefaultAPIBase), "/")
	parts := []string{base, ch.Get("api_version", DefaultAPIVersion)}
	for _, s := range segments {
		parts = append(parts, url.PathEscape(s))
	}
	return strings.Join(parts, "/")
}

// validateCommon checks the keys both platforms share.
func validateCommon(cfg map[string]string) error {
	if v := cfg["api_base"]; v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("api_base %q is not an absolute http(s) URL", v)
		}
	}
	if v := cfg["api_version"]; v != "" && !versionRE.MatchString(v) {
		return fmt.Errorf("api_version %q is not a Graph API version such as %s", v, DefaultAPIVersion)
	}
	return nil
}

// handshake answers Meta's webhook verification: when the webhook URL is saved in the app
// dashboard Meta GETs it with hub.mode=subscribe, the verify token the user typed and a random
// hub.challenge, and accepts the URL only if the challenge comes back as the body.
func handshake(ch provider.Channel, r provider.Request) (provider.Batch, error) {
	q := r.Query
	if q == nil {
		if u, err := url.Parse(r.URL); err == nil {
			q = u.Query()
		}
	}
	if q.Get("hub.mode") != "subscribe" || q.Get("hub.challenge") == "" {
		return provider.Batch{}, fmt.Errorf("meta: verification request without hub.mode=subscribe and hub.challenge: %w", provider.ErrPayload)
	}
	want := ch.Config["verify_token"]
	if want == "" || !hmac.Equal([]byte(q.Get("hub.verify_token")), []byte(want)) {
		return provider.Batch{}, fmt.Errorf("meta: hub.verify_token does not match the channel's verify_token: %w", provider.ErrSignature)
	}
	return provider.Batch{Response: provider.Response{
		Status:      http.StatusOK,
		ContentType: "text/plain; charset=utf-8",
		Body:        []byte(q.Get("hub.challenge")),
	}}, nil
}

// Sign returns the X-Hub-Signature-256 value Meta sends for body.
func Sign(appSecret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(appSecret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// verify checks X-Hub-Signature-256 against the raw body.
func verify(ch provider.Channel, r provider.Request) error {
	secret := ch.Config["app_secret"]
	if secret == "" {
		// Without a secret every signature would be "valid" for the empty key; refuse instead.
		return fmt.Errorf("meta: channel has no app_secret: %w", provider.ErrSignature)
	}
	got := r.Header.Get(SignatureHeader)
	if got == "" {
		return fmt.Errorf("meta: no %s header: %w", SignatureHeader, provider.ErrSignature)
	}
	hexSig, ok := strings.CutPrefix(got, "sha256=")
	if !ok {
		return fmt.Errorf("meta: %s is not sha256=<hex>: %w", SignatureHeader, provider.ErrSignature)
	}
	sig, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("meta: %s is not hex: %w", SignatureHeader, provider.ErrSignature)
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(r.Body)
	if !hmac.Equal(sig, m.Sum(nil)) {
		return fmt.Errorf("meta: %s does not match the body: %w", SignatureHeader, provider.ErrSignature)
	}
	return nil
}

// graphError is the error envelope every Graph API endpoint answers with.
type graphError struct {
	Error struct {
		Message      string `json:"message"`
		Type         string `json:"type"`
		Code         int    `json:"code"`
		ErrorSubcode int    `json:"error_subcode"`
		IsTransient  bool   `json:"is_transient"`
		ErrorData    struct {
			Details string `json:"details"`
		} `json:"error_data"`
		FBTraceID string `json:"fbtrace_id"`
	} `json:"error"`
}

// transientCodes are Graph error codes that Meta answers with HTTP 400 although waiting helps:
// temporary failures and the various rate limits. Treating them as permanent would mark a
// message failed that a retry a minute later would deliver.
var transientCodes = map[int]bool{
	1:      true, // unknown error, "please retry"
	2:      true, // service temporarily unavailable
	4:      true, // application request limit
	17:     true, // user request limit
	32:     true, // page request limit
	341:    true, // application limit
	613:    true, // calls within one hour exceeded
	80006:  true, // Messenger rate limit
	80007:  true, // WhatsApp Business Account rate limit
	130429: true, // WhatsApp throughput limit
	131016: true, // WhatsApp service unavailable
	131056: true, // WhatsApp pair rate limit
}

// sendError classifies a non-2xx Graph answer: HTTP status first, then the error envelope's
// own word on whether retrying can help.
func sendError(status int, body []byte) *provider.SendError {
	se := provider.HTTPSendError(status, string(body))
	var ge graphError
	if json.Unmarshal(body, &ge) == nil && ge.Error.Message != "" {
		reason := fmt.Sprintf("%s (#%d)", ge.Error.Message, ge.Error.Code)
		if ge.Error.ErrorData.Details != "" {
			reason += ": " + ge.Error.ErrorData.Details
		}
		se = provider.HTTPSendError(status, reason)
		if ge.Error.IsTransient || transientCodes[ge.Error.Code] {
			se.Permanent = false
		}
	}
	return se
}

// do sends a request to the Graph API and decodes a 2xx JSON answer into out.
func do(ctx context.Context, client *http.Client, method, u, bearer, contentType string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return &provider.SendError{Permanent: true, Reason: err.Error()}
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := client.Do(req)
	if err != nil {
		return &provider.SendError{Reason: redact(err.Error())}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return &provider.SendError{Status: resp.StatusCode, Reason: "reading the answer: " + err.Error()}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return sendError(resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			// The provider accepted the request but its answer cannot be read: retrying could
			// send the message twice, so this is permanent.
			return &provider.SendError{Permanent: true, Status: resp.StatusCode, Reason: "unreadable answer: " + err.Error()}
		}
	}
	return nil
}

// redact removes an access_token query parameter from a transport error, which quotes the URL:
// the page token must not end up in a message's failure reason.
func redact(s string) string {
	i := strings.Index(s, "access_token=")
	if i < 0 {
		return s
	}
	j := i + len("access_token=")
	k := j
	for k < len(s) && s[k] != '&' && s[k] != '"' && s[k] != ' ' && s[k] != ':' {
		k++
	}
	return s[:j] + "REDACTED" + s[k:]
}

// download GETs a media file, bounded by maxMedia.
func download(ctx context.Context, client *http.Client, u, bearer string) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("meta: media download: %s", redact(err.Error()))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, "", fmt.Errorf("meta: media download: %w", sendError(resp.StatusCode, b))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxMedia+1))
	if err != nil {
		return nil, "", fmt.Errorf("meta: media download: %w", err)
	}
	if len(data) > maxMedia {
		return nil, "", errors.New("meta: media larger than 100 MB")
	}
	return data, resp.Header.Get("Content-Type"), nil
}

// firstNonEmpty returns the first non-empty string.
func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
