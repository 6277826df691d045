package wechat

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

// clock is a settable clock for token expiry and timestamp checks.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testSign and testEncrypt implement WeChat's scheme from its documentation, independently of
// the adapter's code, so a shared misunderstanding cannot make both sides agree.
func testSign(parts ...string) string {
	sort.Strings(parts)
	h := sha1.New()
	for _, p := range parts {
		io.WriteString(h, p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func testEncrypt(t *testing.T, encodingAESKey, random, msg, appID string) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil || len(key) != 32 {
		t.Fatalf("key: %v (%d bytes)", err, len(key))
	}
	if len(random) != 16 {
		t.Fatalf("random must be 16 bytes")
	}
	var buf []byte
	buf = append(buf, random...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(msg)))
	buf = append(buf, msg...)
	buf = append(buf, appID...)
	n := 32 - len(buf)%32
	for i := 0; i < n; i++ {
		buf = append(buf, byte(n))
	}
	block, _ := aes.NewCipher(key)
	out := make([]byte, len(buf))
	cipher.NewCBCEncrypter(block, key[:16]).CryptBlocks(out, buf)
	return base64.StdEncoding.EncodeToString(out)
}

// Published sample vectors of WeChat's message-encryption libraries (WXBizMsgCrypt).
const (
	sampleKey     = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	sampleAppID   = "wxb11529c136998cb6"
	sampleRandom  = "aaaabbbbccccdddd"
	sampleMsg     = "我是中文abcd123"
	sampleEncrypt = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="

	// A compatible-mode text push from the Python sample (plaintext fields and <Encrypt>).
	sampleCToken = "spamtest"
	sampleCAppID = "wx2c2769f8efd9abc2"
	sampleCTime  = 1409735669
	sampleCNonce = "1320562132"
	sampleCSig   = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
	sampleCBody  = `<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[abcdteT]]></Content><MsgId>6054768590064713728</MsgId><Encrypt><![CDATA[hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=]]></Encrypt></xml>`

	// An encrypted URL verification.
	sampleBToken = "QDG6eK"
	sampleBKey   = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
	sampleBAppID = "wx5823bf96d3bd56c7"
	sampleBSig   = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
	sampleBTime  = 1409659589
	sampleBNonce = "263014780"
	sampleBEcho  = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
	sampleBPlain = "1616140317555161061"
)

func TestCryptoAgainstPublishedSample(t *testing.T) {
	if got := testEncrypt(t, sampleKey, sampleRandom, sampleMsg, sampleAppID); got != sampleEncrypt {
		t.Fatalf("the test's own encrypt disagrees with the sample:\n got %s\nwant %s", got, sampleEncrypt)
	}
	key, err := aesKey(sampleKey)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := decrypt(key, sampleEncrypt, sampleAppID)
	if err != nil || string(msg) != sampleMsg {
		t.Fatalf("decrypt = %q, %v", msg, err)
	}
	if _, err := decrypt(key, sampleEncrypt, "wx0000000000000000"); !errors.Is(err, provider.ErrSignature) {
		t.Fatalf("another app id: err = %v", err)
	}
	// The adapter's encrypt (used by the fixture) round-trips through the test's understanding.
	enc, err := encrypt(key, []byte("<xml>你好</xml>"), sampleAppID)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(enc)
	block, _ := aes.NewCipher(key)
	pt := make([]byte, len(raw))
	cipher.NewCBCDecrypter(block, key[:16]).CryptBlocks(pt, raw)
	pad := int(pt[len(pt)-1])
	pt = pt[:len(pt)-pad]
	if n := binary.BigEndian.Uint32(pt[16:20]); string(pt[20:20+n]) != "<xml>你好</xml>" || string(pt[20+n:]) != sampleAppID || len(raw)%32 != 0 {
		t.Fatalf("encrypt produced %q", pt)
	}
}

func TestWebhookPublishedCompatibleModeDelivery(t *testing.T) {
	clk := &clock{t: time.Unix(sampleCTime+30, 0)}
	w := New(nil, clk.now)
	ch := provider.Channel{Type: Type, Config: map[string]string{
		"app_id": sampleCAppID, "app_secret": "s", "token": sampleCToken, "encoding_aes_key": sampleKey}}
	q := url.Values{"signature": {testSign(sampleCToken, "1409735669", sampleCNonce)}, "timestamp": {"1409735669"},
		"nonce": {sampleCNonce}, "encrypt_type": {"aes"}, "msg_signature": {sampleCSig}}
	b, err := w.Webhook(context.Background(), ch, provider.Request{Method: http.MethodPost, Query: q, Body: []byte(sampleCBody)})
	if err != nil {
		t.Fatal(err)
	}
	want := []provider.InboundMessage{{
		ProviderID:  "6054768590064713728",
		From:        []provider.Identity{{Kind: provider.IdentityWeChatOpenID, Value: "oyORnuP8q7ou2gfYjqLzSIWZf0rs"}},
		ContentType: provider.ContentText, Text: "abcdteT", OccurredAt: time.Unix(1409735668, 0).UTC(),
	}}
	if !reflect.DeepEqual(b.Messages, want) {
		t.Fatalf("got %+v", b.Messages)
	}
	if string(b.Response.Body) != "success" || b.Response.Status != 200 {
		t.Fatalf("response %+v", b.Response)
	}
}

// safe-mode and plain-mode channels whose webhook tests build deliveries by hand.
const (
	testAppID  = "wx1234567890abcdef"
	testToken  = "testtoken123"
	testAESKey = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aQ"
	testOpenID = "oDF3iY9ffA-hqb2vVvbr7qxf6A0Q"
	testNow    = 1700000000
)

func safeChannel(apiBase string) provider.Channel {
	return provider.Channel{ID: uuid.New(), Type: Type, PublicID: "wx-pub", WebhookURL: "https://switchboard.example.com/hooks/wechat/wx-pub",
		Config: map[string]string{"app_id": testAppID, "app_secret": "secret", "token": testToken, "encoding_aes_key": testAESKey, "api_base": apiBase}}
}

func plainChannel() provider.Channel {
	ch := safeChannel("")
	delete(ch.Config, "encoding_aes_key")
	return ch
}

func plainDelivery(xmlBody string, ts int64) provider.Request {
	tss := fmt.Sprint(ts)
	q := url.Values{"signature": {testSign(testToken, tss, "1506412929")}, "timestamp": {tss}, "nonce": {"1506412929"}, "openid": {testOpenID}}
	return provider.Request{Method: http.MethodPost, URL: "https://switchboard.example.com/hooks/wechat/wx-pub?" + q.Encode(), Query: q, Body: []byte(xmlBody)}
}

func safeDelivery(t *testing.T, xmlBody string, ts int64, appID string) provider.Request {
	enc := testEncrypt(t, testAESKey, "0123456789abcdef", xmlBody, appID)
	tss := fmt.Sprint(ts)
	q := url.Values{"signature": {testSign(testToken, tss, "827361")}, "timestamp": {tss}, "nonce": {"827361"}, "openid": {testOpenID},
		"encrypt_type": {"aes"}, "msg_signature": {testSign(testToken, tss, "827361", enc)}}
	body := "<xml>\n<ToUserName><![CDATA[gh_0123456789ab]]></ToUserName>\n<Encrypt><![CDATA[" + enc + "]]></Encrypt>\n</xml>"
	return provider.Request{Method: http.MethodPost, Query: q, Body: []byte(body)}
}

// Pushes as WeChat documents them (接收普通消息 / 接收事件推送).
var pushes = []struct {
	name string
	xml  string
	want []provider.InboundMessage
}{
	{"text", `<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><FromUserName><![CDATA[oDF3iY9ffA-hqb2vVvbr7qxf6A0Q]]></FromUserName><CreateTime>1699999990</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好，订单 <123> & 退款]]></Content><MsgId>23411286429398231</MsgId><MsgDataId><![CDATA[]]></MsgDataId><Idx><![CDATA[]]></Idx></xml>`,
		[]provider.InboundMessage{{ProviderID: "23411286429398231", ContentType: provider.ContentText, Text: "你好，订单 <123> & 退款"}}},
	{"image", `<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><FromUserName><![CDATA[oDF3iY9ffA-hqb2vVvbr7qxf6A0Q]]></FromUserName><CreateTime>1699999990</CreateTime><MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[http://mmbiz.qpic.cn/mmbiz_jpg/abc/0]]></PicUrl><MediaId><![CDATA[3kTeVIsFJ2g1-media]]></MediaId><MsgId>23411286429398232</MsgId></xml>`,
		[]provider.InboundMessage{{ProviderID: "23411286429398232", ContentType: provider.ContentImage,
			Media: []provider.Media{{Ref: "3kTeVIsFJ2g1-media", URL: "http://mmbiz.qpic.cn/mmbiz_jpg/abc/0", ContentType: "image/jpeg"}}}}},
	{"voice with recognition", `<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><FromUserName><![CDATA[oDF3iY9ffA-hqb2vVvbr7qxf6A0Q]]></FromUserName><CreateTime>1699999990</CreateTime><MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[voice-media]]></MediaId><Format><![CDATA[amr]]></Format><Recognition><![CDATA[我要退货]]></Recognition><MsgId>23411286429398233</MsgId></xml>`,
		[]provider.InboundMessage{{ProviderID: "23411286429398233", ContentType: provider.ContentAudio, Text: "我要退货",
			Media: []provider.Media{{Ref: "voice-media", ContentType: "audio/amr"}}}}},
	{"short video", `<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><FromUserName><![CDATA[oDF3iY9ffA-hqb2vVvbr7qxf6A0Q]]></FromUserName><CreateTime>1699999990</CreateTime><MsgType><![CDATA[shortvideo]]></MsgType><MediaId><![CDATA[video-media]]></MediaId><ThumbMediaId><![CDATA[thumb]]></ThumbMediaId><MsgId>23411286429398234</MsgId></xml>`,
		[]provider.InboundMessage{{ProviderID: "23411286429398234", ContentType: provider.ContentVideo,
			Media: []provider.Media{{Ref: "video-media", ContentType: "video/mp4"}}}}},
	{"location", `<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><FromUserName><![CDATA[oDF3iY9ffA-hqb2vVvbr7qxf6A0Q]]></FromUserName><CreateTime>1699999990</CreateTime><MsgType><![CDATA[location]]></MsgType><Location_X>31.230416</Location_X><Location_Y>121.473701</Location_Y><Scale>15</Scale><Label><![CDATA[上海市黄浦区]]></Label><MsgId>23411286429398235</MsgId></xml>`,
		[]provider.InboundMessage{{ProviderID: "23411286429398235", ContentType: provider.ContentLocation, Text: "上海市黄浦区 (31.230416,121.473701)"}}},
	{"link", `<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><FromUserName><![CDATA[oDF3iY9ffA-hqb2vVvbr7qxf6A0Q]]></FromUserName><CreateTime>1699999990</CreateTime><MsgType><![CDATA[link]]></MsgType><Title><![CDATA[Order page]]></Title><Description><![CDATA[My order]]></Description><Url><![CDATA[https://shop.example.com/o/1]]></Url><MsgId>23411286429398236</MsgId></xml>`,
		[]provider.InboundMessage{{ProviderID: "23411286429398236", ContentType: provider.ContentText, Text: "Order page\nMy order\nhttps://shop.example.com/o/1"}}},
	{"subscribe event is acknowledged, not stored", `<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><FromUserName><![CDATA[oDF3iY9ffA-hqb2vVvbr7qxf6A0Q]]></FromUserName><CreateTime>1699999990</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event></xml>`,
		nil},
	{"unknown type is kept", `<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><FromUserName><![CDATA[oDF3iY9ffA-hqb2vVvbr7qxf6A0Q]]></FromUserName><CreateTime>1699999990</CreateTime><MsgType><![CDATA[miniprogrampage]]></MsgType><MsgId>23411286429398237</MsgId></xml>`,
		[]provider.InboundMessage{{ProviderID: "23411286429398237", ContentType: provider.ContentText, Text: "[unsupported WeChat message type: miniprogrampage]"}}},
	{"unionid when present", `<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><FromUserName><![CDATA[oDF3iY9ffA-hqb2vVvbr7qxf6A0Q]]></FromUserName><CreateTime>1699999990</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content><MsgId>23411286429398238</MsgId><UnionId><![CDATA[o6_bmasdasdsad6_2sgVt7hMZOPfL]]></UnionId></xml>`,
		[]provider.InboundMessage{{ProviderID: "23411286429398238", ContentType: provider.ContentText, Text: "hi",
			From: []provider.Identity{{Kind: provider.IdentityWeChatOpenID, Value: testOpenID}, {Kind: provider.IdentityWeChatUnionID, Value: "o6_bmasdasdsad6_2sgVt7hMZOPfL"}}}}},
}

func withDefaults(want []provider.InboundMessage) []provider.InboundMessage {
	out := append([]provider.InboundMessage(nil), want...)
	for i := range out {
		if out[i].From == nil {
			out[i].From = []provider.Identity{{Kind: provider.IdentityWeChatOpenID, Value: testOpenID}}
		}
		out[i].OccurredAt = time.Unix(1699999990, 0).UTC()
	}
	return out
}

func TestWebhookPlainAndSafeMode(t *testing.T) {
	clk := &clock{t: time.Unix(testNow, 0)}
	w := New(nil, clk.now)
	for _, mode := range []string{"plain", "safe"} {
		for _, p := range pushes {
			t.Run(mode+"/"+p.name, func(t *testing.T) {
				ch, req := plainChannel(), plainDelivery(p.xml, testNow-5)
				if mode == "safe" {
					ch, req = safeChannel(""), safeDelivery(t, p.xml, testNow-5, testAppID)
				}
				b, err := w.Webhook(context.Background(), ch, req)
				if err != nil {
					t.Fatal(err)
				}
				if want := withDefaults(p.want); !reflect.DeepEqual(b.Messages, want) {
					t.Fatalf("messages\n got %+v\nwant %+v", b.Messages, want)
				}
				if b.Response.Status != 200 || string(b.Response.Body) != "success" || !strings.HasPrefix(b.Response.ContentType, "text/plain") {
					t.Fatalf("response %+v", b.Response)
				}
			})
		}
	}
}

func TestWebhookRejects(t *testing.T) {
	clk := &clock{t: time.Unix(testNow, 0)}
	w := New(nil, clk.now)
	text := pushes[0].xml
	set := func(r provider.Request, k, v string) provider.Request {
		q := url.Values{}
		for kk, vv := range r.Query {
			q[kk] = vv
		}
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
		r.Query = q
		return r
	}
	otherKey := safeChannel("")
	otherKey.Config["encoding_aes_key"] = sampleKey // deliveries below are encrypted with testAESKey
	tests := []struct {
		name string
		ch   provider.Channel
		req  func(t *testing.T) provider.Request
		want error
	}{
		{"plain: missing signature", plainChannel(), func(*testing.T) provider.Request { return set(plainDelivery(text, testNow), "signature", "") }, provider.ErrSignature},
		{"plain: forged signature", plainChannel(), func(*testing.T) provider.Request {
			return set(plainDelivery(text, testNow), "signature", testSign("wrongtoken", fmt.Sprint(testNow), "1506412929"))
		}, provider.ErrSignature},
		{"plain: signature of another timestamp", plainChannel(), func(*testing.T) provider.Request {
			return set(plainDelivery(text, testNow), "timestamp", fmt.Sprint(testNow-1))
		}, provider.ErrSignature},
		{"plain: stale timestamp", plainChannel(), func(*testing.T) provider.Request { return plainDelivery(text, testNow-301) }, provider.ErrSignature},
		{"plain: timestamp from the future", plainChannel(), func(*testing.T) provider.Request { return plainDelivery(text, testNow+301) }, provider.ErrSignature},
		{"plain: channel without token", provider.Channel{Config: map[string]string{"app_id": testAppID}}, func(*testing.T) provider.Request { return plainDelivery(text, testNow) }, provider.ErrSignature},
		{"plain: not XML", plainChannel(), func(*testing.T) provider.Request { return plainDelivery("<xml><MsgType>text", testNow) }, provider.ErrPayload},
		{"plain: message without MsgId", plainChannel(), func(*testing.T) provider.Request {
			return plainDelivery(`<xml><FromUserName>o1</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>`, testNow)
		}, provider.ErrPayload},
		{"safe: missing msg_signature", safeChannel(""), func(t *testing.T) provider.Request {
			return set(safeDelivery(t, text, testNow, testAppID), "msg_signature", "")
		}, provider.ErrSignature},
		{"safe: forged msg_signature", safeChannel(""), func(t *testing.T) provider.Request {
			return set(safeDelivery(t, text, testNow, testAppID), "msg_signature", testSign(testToken, fmt.Sprint(testNow), "827361", "other"))
		}, provider.ErrSignature},
		{"safe: Encrypt swapped for another ciphertext", safeChannel(""), func(t *testing.T) provider.Request {
			r := safeDelivery(t, text, testNow, testAppID)
			other := testEncrypt(t, testAESKey, "fedcba9876543210", text, testAppID)
			r.Body = []byte("<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><Encrypt><![CDATA[" + other + "]]></Encrypt></xml>")
			return r
		}, provider.ErrSignature},
		{"safe: encrypted for another AppID", safeChannel(""), func(t *testing.T) provider.Request { return safeDelivery(t, text, testNow, "wx0000000000000000") }, provider.ErrSignature},
		{"safe: encrypted with another key", otherKey, func(t *testing.T) provider.Request { return safeDelivery(t, text, testNow, testAppID) }, provider.ErrSignature},
		{"safe: stale timestamp", safeChannel(""), func(t *testing.T) provider.Request { return safeDelivery(t, text, testNow-301, testAppID) }, provider.ErrSignature},
		{"safe: plain delivery to a safe-mode channel", safeChannel(""), func(*testing.T) provider.Request { return plainDelivery(text, testNow) }, provider.ErrSignature},
		{"safe: encrypted delivery to a plain channel", plainChannel(), func(t *testing.T) provider.Request { return safeDelivery(t, text, testNow, testAppID) }, provider.ErrPayload},
		{"safe: Encrypt not base64", safeChannel(""), func(*testing.T) provider.Request {
			tss := fmt.Sprint(testNow)
			q := url.Values{"timestamp": {tss}, "nonce": {"1"}, "encrypt_type": {"aes"}, "msg_signature": {testSign(testToken, tss, "1", "%%%")}}
			return provider.Request{Method: http.MethodPost, Query: q, Body: []byte("<xml><Encrypt><![CDATA[%%%]]></Encrypt></xml>")}
		}, provider.ErrPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := w.Webhook(context.Background(), tt.ch, tt.req(t))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if len(b.Messages) != 0 {
				t.Fatalf("messages with an error: %+v", b.Messages)
			}
		})
	}
}

func TestURLVerification(t *testing.T) {
	clk := &clock{t: time.Unix(testNow, 0)}
	w := New(nil, clk.now)
	get := func(q url.Values) provider.Request {
		return provider.Request{Method: http.MethodGet, URL: "https://switchboard.example.com/hooks/wechat/wx-pub?" + q.Encode(), Query: q}
	}
	tss := fmt.Sprint(testNow)
	plainQ := url.Values{"signature": {testSign(testToken, tss, "1514711492")}, "timestamp": {tss}, "nonce": {"1514711492"}, "echostr": {"3849328413758249214"}}
	for _, ch := range []provider.Channel{plainChannel(), safeChannel("")} {
		b, err := w.Webhook(context.Background(), ch, get(plainQ))
		if err != nil {
			t.Fatal(err)
		}
		if b.Response.Status != 200 || string(b.Response.Body) != "3849328413758249214" || !strings.HasPrefix(b.Response.ContentType, "text/plain") || len(b.Messages) != 0 {
			t.Fatalf("plain verification answered %+v", b)
		}
	}

	// Encrypted echostr, WeChat's published sample.
	sclk := &clock{t: time.Unix(sampleBTime, 0)}
	sample := provider.Channel{Config: map[string]string{"app_id": sampleBAppID, "app_secret": "x", "token": sampleBToken, "encoding_aes_key": sampleBKey}}
	q := url.Values{"msg_signature": {sampleBSig}, "timestamp": {fmt.Sprint(sampleBTime)}, "nonce": {sampleBNonce}, "echostr": {sampleBEcho}}
	b, err := New(nil, sclk.now).Webhook(context.Background(), sample, get(q))
	if err != nil {
		t.Fatal(err)
	}
	if string(b.Response.Body) != sampleBPlain {
		t.Fatalf("decrypted echostr %q", b.Response.Body)
	}

	// Encrypted echostr built by the test for the test channel.
	echo := testEncrypt(t, testAESKey, "abcdefghijklmnop", "5927638826017464323", testAppID)
	q = url.Values{"msg_signature": {testSign(testToken, tss, "99", echo)}, "timestamp": {tss}, "nonce": {"99"}, "echostr": {echo}}
	if b, err := w.Webhook(context.Background(), safeChannel(""), get(q)); err != nil || string(b.Response.Body) != "5927638826017464323" {
		t.Fatalf("safe verification: %q, %v", b.Response.Body, err)
	}

	for name, mutate := range map[string]func(url.Values){
		"plain: forged signature":  func(q url.Values) { q.Set("signature", strings.Repeat("0", 40)) },
		"plain: missing signature": func(q url.Values) { q.Del("signature") },
		"plain: stale":             func(q url.Values) { q.Set("timestamp", fmt.Sprint(testNow-600)) },
	} {
		q := url.Values{}
		for k, v := range plainQ {
			q[k] = append([]string(nil), v...)
		}
		mutate(q)
		if _, err := w.Webhook(context.Background(), plainChannel(), get(q)); !errors.Is(err, provider.ErrSignature) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	forged := url.Values{"msg_signature": {testSign(testToken, tss, "99", "other")}, "timestamp": {tss}, "nonce": {"99"}, "echostr": {echo}}
	if _, err := w.Webhook(context.Background(), safeChannel(""), get(forged)); !errors.Is(err, provider.ErrSignature) {
		t.Fatalf("forged msg_signature: err = %v", err)
	}
}

func TestFixtureRoundTrip(t *testing.T) {
	w := New(nil, nil)
	fx := Fixture()
	for _, mode := range []string{"safe", "plain"} {
		t.Run(mode, func(t *testing.T) {
			ch := provider.Channel{ID: uuid.New(), Type: Type, WebhookURL: "https://switchboard.example.com/hooks/wechat/p1", Config: fx.Config("http://127.0.0.1:1")}
			if mode == "plain" {
				delete(ch.Config, "encoding_aes_key")
			}
			r := fx.Inbound(ch, "24602373581209234", "oFixtureOpenID0000000000000", "你好 ]]> <b>")
			if !strings.HasPrefix(r.URL, ch.WebhookURL+"?") || r.Query.Get("timestamp") == "" {
				t.Fatalf("request URL %q", r.URL)
			}
			b, err := w.Webhook(context.Background(), ch, r)
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Messages) != 1 || b.Messages[0].ProviderID != "24602373581209234" || b.Messages[0].Text != "你好 ]]> <b>" ||
				!reflect.DeepEqual(b.Messages[0].From, []provider.Identity{fx.From("oFixtureOpenID0000000000000")}) {
				t.Fatalf("inbound %+v", b.Messages)
			}
			for _, forged := range []bool{false, true} {
				f := fx.Forge(r, forged)
				if _, err := w.Webhook(context.Background(), ch, f); !errors.Is(err, provider.ErrSignature) {
					t.Fatalf("Forge(%v): err = %v", forged, err)
				}
				// The forged request's URL says the same as its Query.
				u, _ := url.Parse(f.URL)
				if !reflect.DeepEqual(u.Query(), f.Query) {
					t.Fatalf("Forge(%v): URL %q vs query %v", forged, f.URL, f.Query)
				}
				if _, err := w.Webhook(context.Background(), ch, r); err != nil {
					t.Fatalf("Forge changed the original request: %v", err)
				}
			}
			b, err = w.Webhook(context.Background(), ch, fx.Media(ch, "24602373581209235", "oFixtureOpenID0000000000000"))
			if err != nil {
				t.Fatal(err)
			}
			if m := b.Messages[0]; m.ContentType != provider.ContentImage || m.Media[0].Ref != "fixture-media-24602373581209235" || m.Media[0].URL == "" {
				t.Fatalf("media %+v", m)
			}
		})
	}
}

// newSender points an adapter with a settable clock at the fixture's fake API (or a handler
// wrapping it).
func newSender(t *testing.T, handler func(fa *provider.FakeAPI) http.Handler) (*WeChat, *clock, provider.Channel, *provider.FakeAPI) {
	t.Helper()
	fa := Fixture().FakeAPI()
	h := fa.Handler
	if handler != nil {
		h = handler(fa)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	clk := &clock{t: time.Unix(testNow, 0)}
	ch := provider.Channel{ID: uuid.New(), Type: Type, Config: Fixture().Config(srv.URL)}
	return New(srv.Client(), clk.now), clk, ch, fa
}

func pathsOf(calls []provider.Call) []string {
	var p []string
	for _, c := range calls {
		p = append(p, c.Method+" "+c.Path)
	}
	return p
}

func TestSendText(t *testing.T) {
	w, _, ch, fa := newSender(t, nil)
	sent, err := w.Send(context.Background(), ch, provider.Outbound{
		To:   []provider.Identity{{Kind: provider.IdentityWeChatUnionID, Value: "union"}, {Kind: provider.IdentityWeChatOpenID, Value: testOpenID}},
		Text: "您好 <b>&</b>",
	})
	if err != nil {
		t.Fatal(err)
	}
	if sent.ProviderID != "" {
		t.Fatalf("WeChat assigns no id to custom messages, got %q", sent.ProviderID)
	}
	calls := fa.Calls()
	if want := []string{"GET /cgi-bin/token", "POST /cgi-bin/message/custom/send"}; !reflect.DeepEqual(pathsOf(calls), want) {
		t.Fatalf("calls %v", pathsOf(calls))
	}
	tq, _ := url.ParseQuery(calls[0].Query)
	if !reflect.DeepEqual(tq, url.Values{"grant_type": {"client_credential"}, "appid": {FixtureAppID}, "secret": {FixtureAppSecret}}) {
		t.Fatalf("token query %v", tq)
	}
	sq, _ := url.ParseQuery(calls[1].Query)
	if sq.Get("access_token") != "FAKE_ACCESS_TOKEN_0001" {
		t.Fatalf("send query %v", sq)
	}
	if !strings.Contains(string(calls[1].Body), "您好 <b>&</b>") {
		t.Fatalf("body HTML-escaped: %s", calls[1].Body)
	}
	var body map[string]any
	_ = json.Unmarshal(calls[1].Body, &body)
	want := map[string]any{"touser": testOpenID, "msgtype": "text", "text": map[string]any{"content": "您好 <b>&</b>"}}
	if !reflect.DeepEqual(body, want) || !strings.HasPrefix(calls[1].Header.Get("Content-Type"), "application/json") {
		t.Fatalf("body %v", body)
	}
}

func TestSendImageAndLinks(t *testing.T) {
	w, _, ch, fa := newSender(t, nil)
	_, err := w.Send(context.Background(), ch, provider.Outbound{
		To:   []provider.Identity{{Kind: provider.IdentityWeChatOpenID, Value: testOpenID}},
		Text: "see below",
		Attachments: []provider.OutAttachment{
			{Filename: "shot.png", ContentType: "image/png", Data: fakeJPEG},
			{Filename: "manual.pdf", ContentType: "application/pdf", URL: "https://files.example.com/manual.pdf"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	calls := fa.Calls()
	want := []string{"GET /cgi-bin/token", "POST /cgi-bin/media/upload", "POST /cgi-bin/message/custom/send", "POST /cgi-bin/message/custom/send"}
	if !reflect.DeepEqual(pathsOf(calls), want) {
		t.Fatalf("calls %v", pathsOf(calls))
	}
	uq, _ := url.ParseQuery(calls[1].Query)
	if uq.Get("type") != "image" || uq.Get("access_token") == "" {
		t.Fatalf("upload query %v", uq)
	}
	_, mp, _ := mime.ParseMediaType(calls[1].Header.Get("Content-Type"))
	p, err := multipart.NewReader(strings.NewReader(string(calls[1].Body)), mp["boundary"]).NextPart()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(p)
	if p.FormName() != "media" || p.FileName() != "shot.png" || p.Header.Get("Content-Type") != "image/png" || string(data) != string(fakeJPEG) {
		t.Fatalf("upload part %s %s %q", p.FormName(), p.FileName(), data)
	}
	var text, image map[string]any
	_ = json.Unmarshal(calls[2].Body, &text)
	_ = json.Unmarshal(calls[3].Body, &image)
	if !reflect.DeepEqual(text["text"], map[string]any{"content": "see below\nmanual.pdf: https://files.example.com/manual.pdf"}) {
		t.Fatalf("text %v", text)
	}
	if image["msgtype"] != "image" || image["touser"] != testOpenID || !reflect.DeepEqual(image["image"], map[string]any{"media_id": "FAKE_MEDIA_0002"}) {
		t.Fatalf("image %v", image)
	}
}

func TestSendErrors(t *testing.T) {
	errcode := func(code int, msg string) func(*provider.FakeAPI) http.Handler {
		return func(fa *provider.FakeAPI) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/cgi-bin/message/custom/send" {
					reply(w, map[string]any{"errcode": code, "errmsg": msg})
					return
				}
				fa.Handler.ServeHTTP(w, r)
			})
		}
	}
	to := []provider.Identity{{Kind: provider.IdentityWeChatOpenID, Value: testOpenID}}
	tests := []struct {
		name      string
		handler   func(*provider.FakeAPI) http.Handler
		config    map[string]string
		to        []provider.Identity
		permanent bool
		status    int
		reason    string
	}{
		{"500 from the fake is retryable", func(fa *provider.FakeAPI) http.Handler { fa.Fail(true); return fa.Handler }, nil, to, false, 500, "Internal Server Error"},
		{"invalid openid is permanent", nil, nil, []provider.Identity{{Kind: provider.IdentityWeChatOpenID, Value: "not-an-openid"}}, true, 0, "errcode 40003"},
		{"outside the 48 h window is permanent", errcode(45015, "response out of time limit or subscription is canceled"), nil, to, true, 0, "48 hours"},
		{"system busy is retryable", errcode(-1, "system error"), nil, to, false, 0, "errcode -1"},
		{"wrong secret is permanent and never leaks", nil, map[string]string{"app_secret": "wrong-secret"}, to, true, 0, "errcode 40125"},
		{"no openid identity is permanent", nil, nil, []provider.Identity{{Kind: provider.IdentityWeChatUnionID, Value: "u"}}, true, 0, "no wechat_openid"},
		{"a file without URL is refused before sending", nil, nil, to, true, 0, "cannot carry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, _, ch, fa := newSender(t, tt.handler)
			for k, v := range tt.config {
				ch.Config[k] = v
			}
			out := provider.Outbound{To: tt.to, Text: "hi"}
			if strings.Contains(tt.name, "file without URL") {
				out.Attachments = []provider.OutAttachment{{Filename: "a.pdf", ContentType: "application/pdf", Data: []byte("%PDF")}}
			}
			_, err := w.Send(context.Background(), ch, out)
			var se *provider.SendError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a SendError", err)
			}
			if se.Permanent != tt.permanent || se.Status != tt.status || !strings.Contains(se.Reason, tt.reason) {
				t.Fatalf("got %+v, want permanent=%v status=%d reason~%q", se, tt.permanent, tt.status, tt.reason)
			}
			if strings.Contains(se.Reason, ch.Config["app_secret"]) || strings.Contains(se.Reason, "FAKE_ACCESS_TOKEN") {
				t.Fatalf("reason leaks a credential: %s", se.Reason)
			}
			if strings.Contains(tt.name, "before sending") && len(fa.Calls()) != 0 {
				t.Fatalf("calls made: %v", pathsOf(fa.Calls()))
			}
		})
	}
}

func TestSendTransportErrorHidesCredentials(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	ch := provider.Channel{Config: Fixture().Config(base)}
	_, err := New(&http.Client{Timeout: 2 * time.Second}, nil).Send(context.Background(), ch,
		provider.Outbound{To: []provider.Identity{{Kind: provider.IdentityWeChatOpenID, Value: testOpenID}}, Text: "hi"})
	var se *provider.SendError
	if !errors.As(err, &se) || se.Permanent {
		t.Fatalf("err = %v, want retryable", err)
	}
	if strings.Contains(se.Reason, FixtureAppSecret) || strings.Contains(se.Reason, "secret=") {
		t.Fatalf("reason leaks the secret: %s", se.Reason)
	}
}

func countPath(calls []provider.Call, path string) int {
	n := 0
	for _, c := range calls {
		if c.Path == path {
			n++
		}
	}
	return n
}

func TestAccessTokenCachedAndRefreshed(t *testing.T) {
	w, clk, ch, fa := newSender(t, nil)
	out := provider.Outbound{To: []provider.Identity{{Kind: provider.IdentityWeChatOpenID, Value: testOpenID}}, Text: "hi"}
	send := func() {
		t.Helper()
		if _, err := w.Send(context.Background(), ch, out); err != nil {
			t.Fatal(err)
		}
	}
	send()
	send()
	if n := countPath(fa.Calls(), "/cgi-bin/token"); n != 1 {
		t.Fatalf("two sends fetched the token %d times", n)
	}
	clk.add(7200*time.Second - tokenMargin - time.Second) // still inside the margin
	send()
	if n := countPath(fa.Calls(), "/cgi-bin/token"); n != 1 {
		t.Fatalf("token refetched %s before its refresh time", time.Second)
	}
	clk.add(2 * time.Second) // now within five minutes of WeChat's expiry
	send()
	calls := fa.Calls()
	if n := countPath(calls, "/cgi-bin/token"); n != 2 {
		t.Fatalf("token fetched %d times, want a refresh", n)
	}
	last, _ := url.ParseQuery(calls[len(calls)-1].Query)
	if last.Get("access_token") != "FAKE_ACCESS_TOKEN_0002" {
		t.Fatalf("send after refresh used %q", last.Get("access_token"))
	}

	// Another account (same AppID, different secret) never gets this token.
	other := ch
	other.Config = map[string]string{}
	for k, v := range ch.Config {
		other.Config[k] = v
	}
	other.Config["app_secret"] = "someone-elses-guess"
	if _, err := w.Send(context.Background(), other, out); err == nil || !strings.Contains(err.Error(), "40125") {
		t.Fatalf("a wrong secret was served the cached token: %v", err)
	}
}

func TestAccessTokenConcurrentSendsFetchOnce(t *testing.T) {
	w, _, ch, fa := newSender(t, nil)
	out := provider.Outbound{To: []provider.Identity{{Kind: provider.IdentityWeChatOpenID, Value: testOpenID}}, Text: "hi"}
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := w.Send(context.Background(), ch, out); err != nil {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d sends failed", failed.Load())
	}
	if n := countPath(fa.Calls(), "/cgi-bin/token"); n != 1 {
		t.Fatalf("16 concurrent sends fetched the token %d times", n)
	}
}

func TestInvalidTokenIsDroppedAndRetriedOnce(t *testing.T) {
	for _, code := range []int{40001, 42001} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			var rejects atomic.Int32
			rejectFirst := int32(1)
			w, _, ch, fa := newSender(t, func(fa *provider.FakeAPI) http.Handler {
				return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/cgi-bin/message/custom/send" && rejects.Add(1) <= rejectFirst {
						fa.Record(provider.Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery})
						reply(rw, map[string]any{"errcode": code, "errmsg": "access_token expired"})
						return
					}
					fa.Handler.ServeHTTP(rw, r)
				})
			})
			out := provider.Outbound{To: []provider.Identity{{Kind: provider.IdentityWeChatOpenID, Value: testOpenID}}, Text: "hi"}
			if _, err := w.Send(context.Background(), ch, out); err != nil {
				t.Fatal(err)
			}
			calls := fa.Calls()
			want := []string{"GET /cgi-bin/token", "POST /cgi-bin/message/custom/send", "GET /cgi-bin/token", "POST /cgi-bin/message/custom/send"}
			if !reflect.DeepEqual(pathsOf(calls), want) {
				t.Fatalf("calls %v", pathsOf(calls))
			}
			first, _ := url.ParseQuery(calls[1].Query)
			second, _ := url.ParseQuery(calls[3].Query)
			if first.Get("access_token") == second.Get("access_token") {
				t.Fatal("retried with the rejected token")
			}
			// Rejected every time: one retry only, then a retryable error.
			rejects.Store(0)
			rejectFirst = 100
			_, err := w.Send(context.Background(), ch, out)
			if err == nil || provider.Permanent(err) || countPath(fa.Calls(), "/cgi-bin/message/custom/send") != 4 {
				t.Fatalf("err = %v after %d sends", err, countPath(fa.Calls(), "/cgi-bin/message/custom/send"))
			}
		})
	}
}

func TestFetchMedia(t *testing.T) {
	w, _, ch, fa := newSender(t, nil)
	data, ct, err := w.FetchMedia(context.Background(), ch, provider.Media{Ref: "3kTeVIsFJ2g1-media"})
	if err != nil || string(data) != string(fakeJPEG) || ct != "image/jpeg" {
		t.Fatalf("FetchMedia = %d bytes, %q, %v", len(data), ct, err)
	}
	calls := fa.Calls()
	q, _ := url.ParseQuery(calls[len(calls)-1].Query)
	if calls[len(calls)-1].Path != "/cgi-bin/media/get" || q.Get("media_id") != "3kTeVIsFJ2g1-media" || q.Get("access_token") == "" {
		t.Fatalf("calls %+v", calls)
	}

	// An expired media id falls back to the image's PicUrl.
	pic := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "image/jpeg")
		_, _ = rw.Write([]byte("picurl-bytes"))
	}))
	defer pic.Close()
	data, _, err = w.FetchMedia(context.Background(), ch, provider.Media{Ref: "expired-1", URL: pic.URL + "/mmbiz_jpg/x/0", ContentType: "image/jpeg"})
	if err != nil || string(data) != "picurl-bytes" {
		t.Fatalf("fallback = %q, %v", data, err)
	}
	if _, _, err := w.FetchMedia(context.Background(), ch, provider.Media{Ref: "expired-2"}); !provider.Permanent(err) || !strings.Contains(err.Error(), "40007") {
		t.Fatalf("expired media without URL: %v", err)
	}

	// Videos answer a JSON video_url.
	vid := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cgi-bin/media/get" {
			rw.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(rw, `{"video_url":"`+"http://"+r.Host+`/video.mp4"}`)
			return
		}
		if r.URL.Path == "/video.mp4" {
			_, _ = rw.Write([]byte("mp4-bytes"))
			return
		}
		fa.Handler.ServeHTTP(rw, r)
	}))
	defer vid.Close()
	vch := provider.Channel{Config: Fixture().Config(vid.URL)}
	data, ct, err = New(vid.Client(), nil).FetchMedia(context.Background(), vch, provider.Media{Ref: "video-media", ContentType: "video/mp4"})
	if err != nil || string(data) != "mp4-bytes" || ct != "video/mp4" {
		t.Fatalf("video = %q %q %v", data, ct, err)
	}
}

func TestValidateAndSpec(t *testing.T) {
	w := New(nil, nil)
	if err := w.Validate(Fixture().Config("https://api.weixin.qq.com")); err != nil {
		t.Fatal(err)
	}
	plain := Fixture().Config("")
	delete(plain, "encoding_aes_key")
	if err := w.Validate(plain); err != nil {
		t.Fatalf("plain mode: %v", err)
	}
	for name, mutate := range map[string]func(map[string]string){
		"no app_id":          func(c map[string]string) { c["app_id"] = "" },
		"no app_secret":      func(c map[string]string) { delete(c, "app_secret") },
		"token too short":    func(c map[string]string) { c["token"] = "ab" },
		"token with symbols": func(c map[string]string) { c["token"] = "tok-en!" },
		"aes key 42 chars":   func(c map[string]string) { c["encoding_aes_key"] = FixtureEncodingAESKey[:42] },
		"aes key not base64": func(c map[string]string) { c["encoding_aes_key"] = strings.Repeat("!", 43) },
		"api_base relative":  func(c map[string]string) { c["api_base"] = "/cgi-bin" },
	} {
		c := Fixture().Config("https://api.weixin.qq.com")
		mutate(c)
		if err := w.Validate(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	s := w.Spec()
	if s.Type != "wechat" || s.Defaults["api_base"] != "https://api.weixin.qq.com" ||
		!reflect.DeepEqual(s.Required, []string{"app_id", "app_secret", "token"}) ||
		!reflect.DeepEqual(s.Secret, []string{"app_secret", "token", "encoding_aes_key"}) ||
		!reflect.DeepEqual(s.Identities, []string{provider.IdentityWeChatOpenID}) {
		t.Fatalf("spec %+v", s)
	}
	if Fixture().Status != nil {
		t.Fatal("WeChat sends no statuses; the fixture must say so with a nil Status")
	}
}
