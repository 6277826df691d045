package conversations_test

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/modules/channels/apichannel"
	"github.com/switchboard-cloud/switchboard/modules/channels/meta"
	"github.com/switchboard-cloud/switchboard/modules/channels/wechat"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// TestHookRatePerTenant: a tenant's inbound webhooks share a budget (here one delivery a
// second). Past it a signed delivery is answered 429 with Retry-After and nothing is stored;
// the provider's later redelivery is stored once. Requests with a forged signature are refused
// before they can spend the budget, another tenant's deliveries have their own, and neither a
// verification handshake nor a provider that delivers only once (WeChat) is refused.
func TestHookRatePerTenant(t *testing.T) {
	e := apptest.New(t, tenant.SQLite, apptest.Options{Env: map[string]string{"SWITCHBOARD_HOOK_RATE_PER_TENANT": "1"}})
	f := apichannel.Fixture()
	chA, chB := apiChannels(t, e)
	owner := e.Login("owner@acme.test")
	wa, wc := meta.WhatsAppFixture(), wechat.Fixture()
	chWA := openChannel(t, owner, e.Acme, wa, "http://127.0.0.1:9", nil)
	chWC := openChannel(t, owner, e.Acme, wc, "http://127.0.0.1:9", nil)

	for i := range 3 {
		forged := f.Inbound(chA, "forged", "rate-cust", "not from the brand")
		forged.Header.Set("X-Switchboard-Signature", "sha256=0000")
		if res := e.Deliver(forged); res.Status != 401 {
			t.Fatalf("forged delivery %d: %d, want 401", i, res.Status)
		}
	}
	e.Deliver(f.Inbound(chA, "rate-1", "rate-cust", "first")).Want(200)

	// With Acme's budget spent (the 429 below shows it still is): Meta's verification
	// handshake stores nothing and is answered; WeChat does not deliver again after an error
	// answer, so its message is taken whatever the budget (refusing it would lose it).
	handshake := e.Anon().Do("GET", "/hooks/whatsapp/"+chWA.PublicID+"?"+url.Values{"hub.mode": {"subscribe"},
		"hub.verify_token": {meta.FixtureVerifyToken}, "hub.challenge": {"1158201444"}}.Encode(), nil)
	if handshake.Status != 200 || string(handshake.Body) != "1158201444" {
		t.Fatalf("handshake with the budget spent: %d %s", handshake.Status, handshake.Body)
	}
	e.Deliver(wc.Inbound(chWC, "rate-wechat", "rate-wechat-cust", "微信消息")).Want(200)
	if n := count(t, e, e.Acme, "messages", "channel_id = ?", chWC.ID); n != 1 {
		t.Fatalf("the WeChat message was stored %d times", n)
	}

	second := f.Inbound(chA, "rate-2", "rate-cust", "second")
	res := e.Deliver(second).Want(429)
	var problem map[string]any
	if err := json.Unmarshal(res.Body, &problem); err != nil || res.Header.Get("Content-Type") != "application/problem+json" || res.Header.Get("Retry-After") != "1" {
		t.Fatalf("429: headers %v, body %s", res.Header, res.Body)
	}
	if n := count(t, e, e.Acme, "messages", "channel_id = ? AND provider_id = ?", chA.ID, "rate-2"); n != 0 {
		t.Fatalf("a refused delivery was stored %d times", n)
	}

	e.Deliver(f.Inbound(chB, "rate-1", "rate-cust", "Globex's own budget")).Want(200)

	// The provider delivers again after Retry-After.
	deadline := time.Now().Add(5 * time.Second)
	for {
		time.Sleep(time.Second)
		if r := e.Deliver(second); r.Status == 200 {
			break
		} else if r.Status != 429 || time.Now().After(deadline) {
			t.Fatalf("redelivery: %d %s", r.Status, r.Body)
		}
	}
	if n := count(t, e, e.Acme, "messages", "channel_id = ? AND provider_id IN ?", chA.ID, []string{"rate-1", "rate-2"}); n != 2 {
		t.Fatalf("%d of Acme's two messages stored", n)
	}
}
