package conversations_test

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/modules/channels/apichannel"
	"github.com/switchboard-cloud/switchboard/modules/channels/meta"
	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
	"github.com/switchboard-cloud/switchboard/modules/channels/telegram"
	"github.com/switchboard-cloud/switchboard/modules/channels/voice"
	"github.com/switchboard-cloud/switchboard/modules/channels/wechat"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// fixtures are every webhook channel type's real wire format.
func fixtures() []provider.Fixture {
	return append(meta.Fixtures(), apichannel.Fixture(), telegram.Fixture(), wechat.Fixture(), voice.Fixture())
}

// inboxEnv is an app with its worker running and fast retries.
func inboxEnv(t *testing.T, d tenant.Dialect) *apptest.Env {
	t.Helper()
	e := apptest.New(t, d, apptest.Options{Env: map[string]string{"SWITCHBOARD_QUEUE_RETRY_BASE": "10ms"}})
	w, mux, err := e.App.NewWorker()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	return e
}

// channelFor creates a channel through the API and returns what an adapter sees of it.
func channelFor(t *testing.T, e *apptest.Env, c *apptest.Client, f provider.Fixture, apiBase string) (provider.Channel, map[string]any) {
	t.Helper()
	cfg := f.Config(apiBase)
	res := c.Do("POST", "/api/v1/channels", map[string]any{"type": f.Type, "name": f.Type + " 渠道", "config": cfg}).Want(201)
	body := string(res.Body)
	spec := e.App.Channels.Registry()
	p, _ := spec.Provider(f.Type)
	for _, k := range p.Spec().Secret {
		if v := cfg[k]; v != "" && strings.Contains(body, `"`+v+`"`) {
			t.Fatalf("%s: the answer echoes the secret %s", f.Type, k)
		}
	}
	j := res.JSON()
	id := uuid.MustParse(j["id"].(string))
	org, _ := e.App.OrgBySlug(e.Ctx, "acme")
	for k, v := range p.Spec().Defaults {
		if _, ok := cfg[k]; !ok {
			cfg[k] = v
		}
	}
	return provider.Channel{ID: id, TenantID: org.ID, Type: f.Type, PublicID: j["public_id"].(string), Name: j["name"].(string),
		Config: cfg, WebhookURL: "http://switchboard.test/hooks/" + f.Type + "/" + j["public_id"].(string)}, j
}

// count counts rows of a tenant table for the org.
func count(t *testing.T, e *apptest.Env, org tenant.Org, table, where string, args ...any) int64 {
	t.Helper()
	var n int64
	ctx := tenant.WithOrg(e.Ctx, org)
	if err := e.App.DB.Run(ctx, func(tx *gorm.DB) error {
		q := tx.Table(table)
		if where != "" {
			q = q.Where(where, args...)
		}
		return q.Count(&n).Error
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestEveryProviderStoresOnceAndRepliesThroughItsAPI walks every webhook channel type with
// its provider's real payloads and signatures.
func TestEveryProviderStoresOnceAndRepliesThroughItsAPI(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := inboxEnv(t, d)
			owner := e.Login("owner@acme.test")
			for _, f := range fixtures() {
				t.Run(f.Type, func(t *testing.T) {
					fake := f.FakeAPI()
					srv := httptest.NewServer(fake.Handler)
					defer srv.Close()
					ch, _ := channelFor(t, e, owner, f, srv.URL)
					msgs := func() int64 { return count(t, e, e.Acme, "messages", "channel_id = ?", ch.ID) }
					usage := func() int64 {
						return count(t, e, e.Acme, "usage_events", "meter = 'interactions' AND channel = ?", f.Type)
					}
					before := usage()

					pid := "pid-" + uuid.NewString()[:8]
					sender := "8613800138000"
					if f.Type == "wechat" {
						sender = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M" // OpenIDs look like this; WeChat's fake refuses others
					}
					in := f.Inbound(ch, pid, sender, "你好，我的订单还没到")
					// Forged and unsigned deliveries are refused and store nothing.
					e.Deliver(f.Forge(in, true)).Want(401)
					e.Deliver(f.Forge(in, false)).Want(401)
					if n := msgs(); n != 0 {
						t.Fatalf("a refused delivery stored %d messages", n)
					}
					// The real one is stored once, also when the provider delivers it again.
					e.Deliver(in).Want(200)
					e.Deliver(in).Want(200)
					if n := msgs(); n != 1 {
						t.Fatalf("stored %d messages, want 1", n)
					}
					if n := usage() - before; n != 1 {
						t.Fatalf("recorded %d interactions, want 1", n)
					}
					// The sender became a contact with the provider's identity.
					want := f.From(sender)
					if n := count(t, e, e.Acme, "contact_identities", "kind = ? AND value = ?", want.Kind, want.Value); n != 1 {
						t.Fatalf("identity %v: %d rows", want, n)
					}
					inbound := int64(1)
					if f.Media != nil {
						inbound++
						e.Deliver(f.Media(ch, pid+"-img", sender)).Want(200)
						if n := count(t, e, e.Acme, "attachments a", "a.message_id IN (SELECT id FROM messages WHERE channel_id = ?)", ch.ID); n != 1 {
							t.Fatalf("media delivery stored %d attachments", n)
						}
					}
					conv := owner.Do("GET", "/api/v1/conversations?channel_id="+ch.ID.String(), nil).Want(200).Items()
					if len(conv) != 1 {
						t.Fatalf("%d conversations for one sender", len(conv))
					}
					convID := conv[0]["id"].(string)
					if f.Type == "voice" {
						// A call takes no written reply; its minutes are metered.
						owner.Do("POST", "/api/v1/conversations/"+convID+"/messages", map[string]any{"content": "hi"}).Want(422)
						if n := count(t, e, e.Acme, "usage_events", "meter = 'voice_minutes' AND channel = 'voice'"); n != 1 {
							t.Fatalf("voice minutes events: %d", n)
						}
						return
					}
					// A reply reaches the provider's API.
					reply := owner.Do("POST", "/api/v1/conversations/"+convID+"/messages", map[string]any{"content": "您好，马上为您查询"}).Want(201).JSON()
					rid := reply["id"].(string)
					status := func() string {
						m := owner.Do("GET", "/api/v1/conversations/"+convID+"/messages?limit=200", nil).Want(200).Items()
						for _, x := range m {
							if x["id"] == rid {
								return fmt.Sprint(x["status"])
							}
						}
						return ""
					}
					waitFor(t, "the reply to be sent", func() bool {
						st := status()
						if st == "failed" {
							t.Fatalf("the reply failed: %s", owner.Do("GET", "/api/v1/conversations/"+convID+"/messages?limit=200", nil).Body)
						}
						return st == "sent"
					})
					calls := fake.Calls()
					found := false
					for _, c := range calls {
						found = found || strings.Contains(string(c.Body), "马上为您查询") || strings.Contains(c.Query, url.QueryEscape("马上为您查询"))
					}
					if !found {
						t.Fatalf("no call to the fake API carried the reply: %+v", calls)
					}
					if f.Status != nil {
						var sent map[string]any
						for _, x := range owner.Do("GET", "/api/v1/conversations/"+convID+"/messages?limit=200", nil).Want(200).Items() {
							if x["id"] == rid {
								sent = x
							}
						}
						if pid, _ := sent["provider_id"].(string); pid != "" {
							e.Deliver(f.Status(ch, pid, "delivered")).Want(200)
							waitFor(t, "delivered", func() bool { return status() == "delivered" })
						}
					}
					// A provider answering 500 is retried, then the reply is marked failed with the reason.
					fake.Fail(true)
					n0 := len(fake.Calls())
					failing := owner.Do("POST", "/api/v1/conversations/"+convID+"/messages", map[string]any{"content": "second"}).Want(201).JSON()
					rid = failing["id"].(string)
					waitFor(t, "the reply to fail", func() bool { return status() == "failed" })
					if tries := len(fake.Calls()) - n0; tries < 2 {
						t.Fatalf("the provider was called %d times before failing, want retries", tries)
					}
					// ...and a hand retry sends it once the provider is back.
					fake.Fail(false)
					owner.Do("POST", "/api/v1/conversations/"+convID+"/messages/"+rid+"/retry", nil).Want(202)
					waitFor(t, "the retried reply to be sent", func() bool { return status() == "sent" })
					// Outbound replies are interactions too, counted once whatever the retries.
					if n := usage() - before; n != inbound+2 {
						t.Fatalf("interactions after %d in + 2 out: %d", inbound, n)
					}
				})
			}
		})
	}
}
