package wechat

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

// tokenMargin is how long before its expiry an access token is replaced, so a token never
// expires between being read from the cache and reaching WeChat.
const tokenMargin = 5 * time.Minute

// tokenEntry is one account's access token. Its mutex is held while the token is fetched, so
// concurrent sends of one account wait for a single fetch instead of each fetching one: WeChat
// allows 2,000 fetches a day and every fetch retires the previous token within five minutes.
type tokenEntry struct {
	mu      sync.Mutex
	token   string
	expires time.Time // when to stop using it (WeChat's expiry less the margin)
}

// tokenKey identifies an account's token. The secret is part of it: otherwise a second channel
// naming someone else's app_id with a wrong app_secret would be handed the first one's token.
func tokenKey(ch provider.Channel) string {
	sum := sha256.Sum256([]byte(ch.Config["app_secret"]))
	return ch.Get("api_base", DefaultAPIBase) + "\x00" + ch.Config["app_id"] + "\x00" + hex.EncodeToString(sum[:8])
}

func (w *WeChat) entry(ch provider.Channel) *tokenEntry {
	k := tokenKey(ch)
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.tokens[k]
	if e == nil {
		e = &tokenEntry{}
		w.tokens[k] = e
	}
	return e
}

// accessToken returns the account's cached token, fetching a new one when there is none or it is
// about to expire.
func (w *WeChat) accessToken(ctx context.Context, ch provider.Channel) (string, error) {
	e := w.entry(ch)
	e.mu.Lock()
	defer e.mu.Unlock()
	now := w.now()
	if e.token != "" && now.Before(e.expires) {
		return e.token, nil
	}
	tok, ttl, err := w.fetchToken(ctx, ch)
	if err != nil {
		return "", err
	}
	margin := tokenMargin
	if ttl < 2*margin {
		margin = ttl / 2
	}
	e.token, e.expires = tok, now.Add(ttl-margin)
	return tok, nil
}

// dropToken forgets a token WeChat called invalid, unless another send has already replaced it.
func (w *WeChat) dropToken(ch provider.Channel, tok string) {
	e := w.entry(ch)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.token == tok {
		e.token = ""
	}
}

// fetchToken is GET /cgi-bin/token?grant_type=client_credential&appid=…&secret=….
func (w *WeChat) fetchToken(ctx context.Context, ch provider.Channel) (string, time.Duration, error) {
	appID, secret := ch.Config["app_id"], ch.Config["app_secret"]
	if appID == "" || secret == "" {
		return "", 0, &provider.SendError{Permanent: true, Reason: "wechat: app_id and app_secret are required to send"}
	}
	q := url.Values{"grant_type": {"client_credential"}, "appid": {appID}, "secret": {secret}}
	u := strings.TrimRight(ch.Get("api_base", DefaultAPIBase), "/") + "/cgi-bin/token?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", 0, &provider.SendError{Permanent: true, Reason: "wechat: access token: " + redact(err)}
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return "", 0, &provider.SendError{Reason: "wechat: access token: " + redact(err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBody))
	if err != nil {
		return "", 0, &provider.SendError{Reason: "wechat: access token: " + redact(err)}
	}
	if resp.StatusCode/100 != 2 {
		return "", 0, provider.HTTPSendError(resp.StatusCode, "wechat: access token: "+string(body))
	}
	var a struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		ErrCode     int    `json:"errcode"`
		ErrMsg      string `json:"errmsg"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return "", 0, &provider.SendError{Reason: "wechat: access token: unreadable answer: " + string(body)}
	}
	if a.ErrCode != 0 || a.AccessToken == "" {
		return "", 0, apiError("access token", a.ErrCode, a.ErrMsg)
	}
	ttl := time.Duration(a.ExpiresIn) * time.Second
	if ttl <= 0 {
		ttl = 7200 * time.Second
	}
	return a.AccessToken, ttl, nil
}
