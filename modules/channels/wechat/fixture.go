package wechat

import (
	"crypto/rand"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

// The fixture's Official Account. The fake API hands tokens only to this AppID and secret.
const (
	FixtureAppID          = "wx6f1a2b3c4d5e6f70"
	FixtureAppSecret      = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
	FixtureToken          = "SwitchboardFixture2024"
	FixtureEncodingAESKey = "XAquxMVVTLm/6haXHnNVOQY8BapcBsaZzxUMz/hxXG0"
	fixtureOriginalID     = "gh_5f2a1c3d9e7b" // the account's original id, ToUserName of pushes
)

// fakeJPEG is what the fake media/get hands out: the JPEG magic numbers, enough for sniffing.
var fakeJPEG = []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9")

// Fixture drives the adapter with real Official Account pushes. Its Config is in safe mode (the
// mode WeChat recommends), so Inbound and Media are encrypted and carry msg_signature; a channel
// whose config has no encoding_aes_key gets plain-mode deliveries instead. The delivery's
// timestamp is the wall clock, so the adapter under test must run on a clock within MaxSkew of
// it. MsgId is providerID as given and FromUserName (the OpenID) is from.
func Fixture() provider.Fixture {
	return provider.Fixture{
		Type: Type,
		Config: func(apiBase string) map[string]string {
			return map[string]string{"app_id": FixtureAppID, "app_secret": FixtureAppSecret, "token": FixtureToken,
				"encoding_aes_key": FixtureEncodingAESKey, "api_base": apiBase}
		},
		Inbound: func(ch provider.Channel, providerID, from, text string) provider.Request {
			return fixtureDelivery(ch, from, fixtureMessage{
				ToUserName: cdata{fixtureOriginalID}, FromUserName: cdata{from}, CreateTime: time.Now().Unix(),
				MsgType: cdata{"text"}, Content: &cdata{text}, MsgID: providerID,
			})
		},
		Media: func(ch provider.Channel, providerID, from string) provider.Request {
			return fixtureDelivery(ch, from, fixtureMessage{
				ToUserName: cdata{fixtureOriginalID}, FromUserName: cdata{from}, CreateTime: time.Now().Unix(),
				MsgType: cdata{"image"}, PicURL: &cdata{"http://mmbiz.qpic.cn/mmbiz_jpg/fixture/" + url.PathEscape(providerID) + "/0"},
				MediaID: &cdata{"fixture-media-" + providerID}, MsgID: providerID,
			})
		},
		Status: nil, // WeChat reports nothing about customer-service messages
		Forge: func(r provider.Request, forged bool) provider.Request {
			q := url.Values{}
			src := r.Query
			if src == nil {
				if u, err := url.Parse(r.URL); err == nil {
					src = u.Query()
				}
			}
			for k, v := range src {
				q[k] = append([]string(nil), v...)
			}
			for _, k := range []string{"signature", "msg_signature"} {
				if q.Get(k) == "" {
					continue
				}
				if forged {
					q.Set(k, signature("forged", q.Get("timestamp"), q.Get("nonce")))
				} else {
					q.Del(k)
				}
			}
			r.Query = q
			base, _, _ := strings.Cut(r.URL, "?")
			r.URL = base + "?" + q.Encode()
			return r
		},
		From: func(from string) provider.Identity {
			return provider.Identity{Kind: provider.IdentityWeChatOpenID, Value: from}
		},
		FakeAPI: newFakeAPI,
	}
}

type cdata struct {
	Text string `xml:",cdata"`
}

// fixtureMessage is the XML WeChat pushes, with its CDATA sections.
type fixtureMessage struct {
	XMLName      xml.Name `xml:"xml"`
	ToUserName   cdata    `xml:"ToUserName"`
	FromUserName cdata    `xml:"FromUserName"`
	CreateTime   int64    `xml:"CreateTime"`
	MsgType      cdata    `xml:"MsgType"`
	Content      *cdata   `xml:"Content,omitempty"`
	PicURL       *cdata   `xml:"PicUrl,omitempty"`
	MediaID      *cdata   `xml:"MediaId,omitempty"`
	MsgID        string   `xml:"MsgId,omitempty"`
}

// fixtureDelivery signs (and, in safe mode, encrypts) a pushed message the way WeChat does, with
// the channel's own token, key and AppID, and the wall clock's timestamp.
func fixtureDelivery(ch provider.Channel, openID string, msg any) provider.Request {
	plain, err := xml.Marshal(msg)
	if err != nil {
		panic(fmt.Sprintf("wechat fixture: %v", err))
	}
	token := ch.Config["token"]
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	n, _ := rand.Int(rand.Reader, big.NewInt(1e9))
	nonce := strconv.FormatInt(n.Int64()+1, 10)
	q := url.Values{"signature": {signature(token, ts, nonce)}, "timestamp": {ts}, "nonce": {nonce}, "openid": {openID}}
	body := plain
	if k := ch.Config["encoding_aes_key"]; k != "" {
		key, err := aesKey(k)
		if err != nil {
			panic(fmt.Sprintf("wechat fixture: %v", err))
		}
		enc, err := encrypt(key, plain, ch.Config["app_id"])
		if err != nil {
			panic(fmt.Sprintf("wechat fixture: %v", err))
		}
		body, _ = xml.Marshal(struct {
			XMLName    xml.Name `xml:"xml"`
			ToUserName cdata    `xml:"ToUserName"`
			Encrypt    cdata    `xml:"Encrypt"`
		}{ToUserName: cdata{fixtureOriginalID}, Encrypt: cdata{enc}})
		q.Set("encrypt_type", "aes")
		q.Set("msg_signature", signature(token, ts, nonce, enc))
	}
	h := http.Header{}
	h.Set("Content-Type", "text/xml")
	return provider.Request{Method: http.MethodPost, URL: ch.WebhookURL + "?" + q.Encode(), Query: q, Header: h, Body: body}
}

// newFakeAPI is a local WeChat API: /cgi-bin/token, /cgi-bin/message/custom/send,
// /cgi-bin/media/upload and /cgi-bin/media/get, answering like WeChat (HTTP 200 with an errcode)
// for a wrong AppID or secret, an unknown token, an OpenID that is not one, an empty text.
func newFakeAPI() *provider.FakeAPI {
	fa := &provider.FakeAPI{}
	var mu sync.Mutex
	issued := map[string]bool{}
	seq := 0
	next := func(prefix string) string {
		mu.Lock()
		defer mu.Unlock()
		seq++
		return fmt.Sprintf("%s%04d", prefix, seq)
	}
	fa.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if fa.Record(provider.Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body}) {
			http.Error(w, "Internal Server Error", http.StatusInternalServerError)
			return
		}
		q := r.URL.Query()
		fail := func(code int, msg string) {
			reply(w, map[string]any{"errcode": code, "errmsg": msg + " rid: 6650c9a1-0c3e2f5a-1b2c3d4e"})
		}
		if r.URL.Path == "/cgi-bin/token" {
			switch {
			case r.Method != http.MethodGet || q.Get("grant_type") != "client_credential":
				fail(40002, "invalid grant_type")
			case q.Get("appid") != FixtureAppID:
				fail(40013, "invalid appid")
			case q.Get("secret") != FixtureAppSecret:
				fail(40125, "invalid appsecret")
			default:
				tok := next("FAKE_ACCESS_TOKEN_")
				mu.Lock()
				issued[tok] = true
				mu.Unlock()
				reply(w, map[string]any{"access_token": tok, "expires_in": 7200})
			}
			return
		}
		mu.Lock()
		valid := issued[q.Get("access_token")]
		mu.Unlock()
		switch r.URL.Path {
		case "/cgi-bin/message/custom/send", "/cgi-bin/media/upload", "/cgi-bin/media/get":
			if q.Get("access_token") == "" {
				fail(41001, "access_token missing")
				return
			}
			if !valid {
				fail(40001, "invalid credential, access_token is invalid or not latest")
				return
			}
		default:
			http.NotFound(w, r)
			return
		}
		switch r.URL.Path {
		case "/cgi-bin/message/custom/send":
			var m struct {
				ToUser  string `json:"touser"`
				MsgType string `json:"msgtype"`
				Text    *struct {
					Content string `json:"content"`
				} `json:"text"`
				Image *struct {
					MediaID string `json:"media_id"`
				} `json:"image"`
			}
			switch {
			case r.Method != http.MethodPost || json.Unmarshal(body, &m) != nil:
				fail(47001, "data format error")
			case !strings.HasPrefix(m.ToUser, "o"):
				fail(40003, "invalid openid")
			case m.MsgType == "text" && (m.Text == nil || m.Text.Content == ""):
				fail(44004, "empty content")
			case m.MsgType == "image" && (m.Image == nil || m.Image.MediaID == ""):
				fail(40007, "invalid media_id")
			case m.MsgType != "text" && m.MsgType != "image":
				fail(40008, "invalid message type")
			default:
				reply(w, map[string]any{"errcode": 0, "errmsg": "ok"})
			}
		case "/cgi-bin/media/upload":
			_, mp, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
			got := false
			if mp["boundary"] != "" {
				mr := multipart.NewReader(strings.NewReader(string(body)), mp["boundary"])
				for {
					p, err := mr.NextPart()
					if err != nil {
						break
					}
					data, _ := io.ReadAll(p)
					got = got || (p.FormName() == "media" && p.FileName() != "" && len(data) > 0)
				}
			}
			switch {
			case q.Get("type") == "":
				fail(40004, "invalid media type")
			case !got:
				fail(41005, "media data missing")
			default:
				reply(w, map[string]any{"type": q.Get("type"), "media_id": next("FAKE_MEDIA_"), "created_at": time.Now().Unix()})
			}
		case "/cgi-bin/media/get":
			id := q.Get("media_id")
			if id == "" || strings.HasPrefix(id, "expired") {
				fail(40007, "invalid media_id")
				return
			}
			w.Header().Set("Content-Type", "image/jpeg")
			w.Header().Set("Content-disposition", `attachment; filename="`+id+`.jpg"`)
			_, _ = w.Write(fakeJPEG)
		}
	})
	return fa
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; encoding=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}
