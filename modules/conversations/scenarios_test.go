package conversations_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/smtp"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/modules/channels/apichannel"
	"github.com/switchboard-cloud/switchboard/modules/channels/email"
	"github.com/switchboard-cloud/switchboard/modules/channels/meta"
	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
	"github.com/switchboard-cloud/switchboard/modules/conversations"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// scenarioEnv is an app with fast retries, on a real Redis when the dialect is PostgreSQL and
// TEST_REDIS_URL is set. Its worker is not started: see startWorker.
func scenarioEnv(t *testing.T, d tenant.Dialect) *apptest.Env {
	t.Helper()
	env := map[string]string{"SWITCHBOARD_QUEUE_RETRY_BASE": "10ms"}
	if base := os.Getenv("TEST_REDIS_URL"); base != "" && d == tenant.Postgres {
		env["REDIS_URL"] = apptest.ClaimRedis(t, base)
	}
	return apptest.New(t, d, apptest.Options{Env: env})
}

func startWorker(t *testing.T, e *apptest.Env) {
	t.Helper()
	w, mux, err := e.App.NewWorker()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
}

// openChannel creates a channel of the fixture's type through the API as c, with config
// overrides (another tenant's own secrets), and returns what its adapter sees of it.
func openChannel(t *testing.T, c *apptest.Client, org tenant.Org, f provider.Fixture, apiBase string, override map[string]string) provider.Channel {
	t.Helper()
	cfg := f.Config(apiBase)
	for k, v := range override {
		cfg[k] = v
	}
	j := c.Do("POST", "/api/v1/channels", map[string]any{"type": f.Type, "name": f.Type + " " + org.Slug, "config": cfg}).Want(201).JSON()
	pub := j["public_id"].(string)
	return provider.Channel{ID: uuid.MustParse(j["id"].(string)), TenantID: org.ID, Type: f.Type, PublicID: pub, Name: j["name"].(string),
		Config: cfg, WebhookURL: "http://switchboard.test/hooks/" + f.Type + "/" + pub}
}

// post sends a provider's webhook request like apptest's Deliver, but without failing the
// test, so several can run at once.
func post(e *apptest.Env, r provider.Request) (int, error) {
	u, err := url.Parse(r.URL)
	if err != nil {
		return 0, err
	}
	path := u.Path
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	} else if len(r.Query) > 0 {
		path += "?" + url.Values(r.Query).Encode()
	}
	method := r.Method
	if method == "" {
		method = http.MethodPost
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(r.Body))
	for k, v := range r.Header {
		req.Header[k] = v
	}
	res, err := e.App.HTTP.Test(req, 30_000)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// mailReceiver starts the app's SMTP receiver on a loopback port and returns its address.
func mailReceiver(t *testing.T, e *apptest.Env) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := e.App.MailIn.Receiver("mx.test")
	go r.Serve(ln)
	t.Cleanup(func() { r.Close() })
	return ln.Addr().String()
}

func identityOf(contact map[string]any, kind string) []string {
	var out []string
	list, _ := contact["identities"].([]any)
	for _, x := range list {
		id, _ := x.(map[string]any)
		if id["kind"] == kind {
			out = append(out, id["value"].(string))
		}
	}
	return out
}

// timeline reads a contact's whole timeline page by page with limit per page.
func timeline(t *testing.T, c *apptest.Client, contactID string, limit int) (items []map[string]any, pages int) {
	t.Helper()
	cursor := ""
	for {
		path := fmt.Sprintf("/api/v1/contacts/%s/timeline?limit=%d", contactID, limit)
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		var page struct {
			Items      []map[string]any `json:"items"`
			NextCursor *string          `json:"next_cursor"`
		}
		if err := json.Unmarshal(c.Do("GET", path, nil).Want(200).Body, &page); err != nil {
			t.Fatal(err)
		}
		pages++
		if len(page.Items) > limit {
			t.Fatalf("page of %d items for limit %d", len(page.Items), limit)
		}
		items = append(items, page.Items...)
		if page.NextCursor == nil {
			return items, pages
		}
		if len(page.Items) != limit {
			t.Fatalf("a page of %d items (limit %d) has a next cursor", len(page.Items), limit)
		}
		cursor = *page.NextCursor
		if pages > 100 {
			t.Fatal("the timeline's cursor does not advance")
		}
	}
}

func messageStatus(t *testing.T, c *apptest.Client, convID, msgID string) map[string]any {
	t.Helper()
	for _, m := range c.Do("GET", "/api/v1/conversations/"+convID+"/messages?limit=200", nil).Want(200).Items() {
		if m["id"] == msgID {
			return m
		}
	}
	t.Fatalf("message %s not in conversation %s", msgID, convID)
	return nil
}

// callsCarrying counts the fake API's calls whose body contains s.
func callsCarrying(fake *provider.FakeAPI, s string) int {
	n := 0
	for _, c := range fake.Calls() {
		if strings.Contains(string(c.Body), s) {
			n++
		}
	}
	return n
}

// TestOneCustomerAcrossChannels: a customer writes by e-mail, the agent records her phone,
// she writes on WhatsApp and is the same contact, with both channels in her timeline.
func TestOneCustomerAcrossChannels(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := scenarioEnv(t, d)
			startWorker(t, e)
			owner := e.Login("owner@acme.test")

			mailCh := owner.Do("POST", "/api/v1/channels", map[string]any{"type": "email", "name": "Care",
				"config": map[string]string{"address": "care@acme.test"}}).Want(201).JSON()
			mx := mailReceiver(t, e)
			first := "parcel-" + uuid.NewString()[:8] + "@example.com"
			for i, m := range []struct{ id, body, irt string }{
				{first, "Hello, where is my parcel? Ana", ""},
				{"parcel-2-" + uuid.NewString()[:8] + "@example.com", "Any news about the parcel?", "<" + first + ">"},
			} {
				h := map[string]string{"Message-ID": "<" + m.id + ">", "Date": time.Now().Add(time.Duration(i-2) * time.Hour).Format(time.RFC1123Z)}
				if m.irt != "" {
					h["In-Reply-To"] = m.irt
				}
				raw := email.TestMessage("Ana Lima <ana@example.com>", "care@acme.test", "Where is my parcel?", m.body, h)
				if err := smtp.SendMail(mx, nil, "ana@example.com", []string{"care@acme.test"}, raw); err != nil {
					t.Fatal(err)
				}
			}
			mailConvs := owner.Do("GET", "/api/v1/conversations?channel_id="+mailCh["id"].(string), nil).Want(200).Items()
			if len(mailConvs) != 1 {
				t.Fatalf("%d e-mail conversations", len(mailConvs))
			}
			contactID := mailConvs[0]["contact_id"].(string)

			// The agent adds the phone number she gave, in any notation; it is stored in E.164.
			c := owner.Do("PATCH", "/api/v1/contacts/"+contactID, map[string]any{
				"identities": []map[string]string{{"kind": "phone", "value": "+86 138 0013 8000"}}}).Want(200).JSON()
			if got := identityOf(c, "phone"); len(got) != 1 || got[0] != "+8613800138000" {
				t.Fatalf("phone identities after the edit: %v", got)
			}

			// She writes on WhatsApp from that number: the same contact, a second conversation.
			f := meta.WhatsAppFixture()
			fake := f.FakeAPI()
			srv := httptest.NewServer(fake.Handler)
			defer srv.Close()
			wa := openChannel(t, owner, e.Acme, f, srv.URL, nil)
			e.Deliver(f.Inbound(wa, "wamid.ana-"+uuid.NewString()[:8], "8613800138000", "我的包裹还没到，能帮我查一下吗？")).Want(200)
			waConvs := owner.Do("GET", "/api/v1/conversations?channel_id="+wa.ID.String(), nil).Want(200).Items()
			if len(waConvs) != 1 {
				t.Fatalf("%d WhatsApp conversations", len(waConvs))
			}
			if waConvs[0]["contact_id"] != contactID {
				t.Fatalf("the WhatsApp message went to contact %v, not the e-mail customer %s", waConvs[0]["contact_id"], contactID)
			}
			c = owner.Do("GET", "/api/v1/contacts/"+contactID, nil).Want(200).JSON()
			if got := identityOf(c, "whatsapp"); len(got) != 1 || got[0] != "8613800138000" {
				t.Fatalf("WhatsApp identity not attached: %v", c["identities"])
			}
			if got := identityOf(c, "email"); len(got) != 1 || got[0] != "ana@example.com" {
				t.Fatalf("e-mail identity: %v", got)
			}
			if n := count(t, e, e.Acme, "contacts", "merged_into IS NULL"); n != 1 {
				t.Fatalf("%d contacts for one customer", n)
			}
			both := owner.Do("GET", "/api/v1/conversations?contact_id="+contactID, nil).Want(200).Items()
			if len(both) != 2 {
				t.Fatalf("the contact has %d conversations, want 2", len(both))
			}
			// The agent answers on WhatsApp: the reply goes to her number.
			reply := owner.Do("POST", "/api/v1/conversations/"+waConvs[0]["id"].(string)+"/messages", map[string]any{"content": "Ana，您的包裹明天送达。"}).Want(201).JSON()
			waitFor(t, "the WhatsApp reply to be sent", func() bool {
				return messageStatus(t, owner, waConvs[0]["id"].(string), reply["id"].(string))["status"] == "sent"
			})
			if n := callsCarrying(fake, `"to":"8613800138000"`); n != 1 {
				t.Fatalf("calls to the WhatsApp API for her number: %d: %+v", n, fake.Calls())
			}

			// The timeline: both channels, newest first, through the cursor.
			items, pages := timeline(t, owner, contactID, 3)
			if len(items) != 4 || pages != 2 {
				t.Fatalf("timeline: %d items in %d pages, want 4 in 2: %v", len(items), pages, items)
			}
			want := []struct{ channel, direction, content string }{
				{"whatsapp", "out", "Ana，您的包裹明天送达。"},
				{"whatsapp", "in", "我的包裹还没到，能帮我查一下吗？"},
				{"email", "in", "Any news about the parcel?"},
				{"email", "in", "Hello, where is my parcel? Ana"},
			}
			seen := map[string]bool{}
			var prev time.Time
			for i, it := range items {
				w := want[i]
				if it["channel_type"] != w.channel || it["direction"] != w.direction || it["content"] != w.content {
					t.Fatalf("timeline[%d] = %v, want %+v", i, it, w)
				}
				if seen[it["id"].(string)] {
					t.Fatalf("timeline repeats %v", it["id"])
				}
				seen[it["id"].(string)] = true
				at, err := time.Parse(time.RFC3339Nano, it["at"].(string))
				if err != nil {
					t.Fatal(err)
				}
				if i > 0 && at.After(prev) {
					t.Fatalf("timeline[%d] at %s is newer than the item before it (%s)", i, at, prev)
				}
				prev = at
			}
		})
	}
}

// TestMergeKeepsEveryMessage merges two contacts who each have a conversation: every message
// stays, under the winner; the loser points at the winner; identities move; it is audited; the
// loser's channel keeps working for the winner.
func TestMergeKeepsEveryMessage(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := scenarioEnv(t, d)
			startWorker(t, e)
			owner := e.Login("owner@acme.test")
			af, wf := apichannel.Fixture(), meta.WhatsAppFixture()
			afake, wfake := af.FakeAPI(), wf.FakeAPI()
			asrv, wsrv := httptest.NewServer(afake.Handler), httptest.NewServer(wfake.Handler)
			defer asrv.Close()
			defer wsrv.Close()
			api := openChannel(t, owner, e.Acme, af, asrv.URL, nil)
			wa := openChannel(t, owner, e.Acme, wf, wsrv.URL, nil)

			// The winner wrote through the brand's own system, the loser on WhatsApp.
			for i := range 2 {
				e.Deliver(af.Inbound(api, fmt.Sprintf("crm-msg-%d", i), "crm-1001", fmt.Sprintf("CRM message %d", i))).Want(200)
				e.Deliver(wf.Inbound(wa, fmt.Sprintf("wamid.loser-%d", i), "8613900139000", fmt.Sprintf("WhatsApp message %d", i))).Want(200)
			}
			convOf := func(ch provider.Channel) map[string]any {
				l := owner.Do("GET", "/api/v1/conversations?channel_id="+ch.ID.String(), nil).Want(200).Items()
				if len(l) != 1 {
					t.Fatalf("%s: %d conversations", ch.Type, len(l))
				}
				return l[0]
			}
			apiConv, waConv := convOf(api), convOf(wa)
			winner, loser := apiConv["contact_id"].(string), waConv["contact_id"].(string)
			if winner == loser {
				t.Fatal("the two customers are one contact before the merge")
			}
			// An agent reply and a private note in the loser's conversation are history too.
			r := owner.Do("POST", "/api/v1/conversations/"+waConv["id"].(string)+"/messages", map[string]any{"content": "Reply before the merge"}).Want(201).JSON()
			waitFor(t, "the reply sent", func() bool {
				return messageStatus(t, owner, waConv["id"].(string), r["id"].(string))["status"] == "sent"
			})
			owner.Do("POST", "/api/v1/conversations/"+waConv["id"].(string)+"/notes", map[string]any{"content": "Same person as crm-1001"}).Want(201)

			wItems, _ := timeline(t, owner, winner, 2)
			lItems, _ := timeline(t, owner, loser, 2)
			if len(wItems) != 2 || len(lItems) != 4 {
				t.Fatalf("timelines before the merge: winner %d, loser %d", len(wItems), len(lItems))
			}
			msgsBefore := count(t, e, e.Acme, "messages", "")
			before := map[string]bool{}
			for _, it := range append(wItems, lItems...) {
				before[it["id"].(string)] = true
			}
			loserIdentities := owner.Do("GET", "/api/v1/contacts/"+loser, nil).Want(200).JSON()["identities"].([]any)

			merged := owner.Do("POST", "/api/v1/contacts/merge", map[string]any{"winner_id": winner, "loser_id": loser}).Want(200).JSON()
			if merged["id"] != winner {
				t.Fatalf("merge answered %v", merged["id"])
			}

			// Every message is still there, now under the winner.
			if n := count(t, e, e.Acme, "messages", ""); n != msgsBefore {
				t.Fatalf("messages %d before the merge, %d after", msgsBefore, n)
			}
			after, _ := timeline(t, owner, winner, 2)
			if len(after) != len(before) {
				t.Fatalf("the winner's timeline has %d items, the two had %d", len(after), len(before))
			}
			for _, it := range after {
				if !before[it["id"].(string)] {
					t.Fatalf("unexpected timeline item %v", it)
				}
			}
			// What the loser wrote now reads as the winner's.
			var fromContact int
			for _, m := range owner.Do("GET", "/api/v1/conversations/"+waConv["id"].(string)+"/messages?limit=100", nil).Want(200).Items() {
				if m["author_kind"] == "contact" {
					fromContact++
					if m["author_id"] != winner {
						t.Fatalf("message %v keeps author %v after the merge, want %s", m["id"], m["author_id"], winner)
					}
				}
			}
			if fromContact != 2 {
				t.Fatalf("%d messages from the customer in the moved conversation, want 2", fromContact)
			}
			convs := owner.Do("GET", "/api/v1/conversations?contact_id="+winner, nil).Want(200).Items()
			if len(convs) != 2 {
				t.Fatalf("the winner has %d conversations, want 2", len(convs))
			}
			for _, id := range []string{apiConv["id"].(string), waConv["id"].(string)} {
				if got := owner.Do("GET", "/api/v1/conversations/"+id, nil).Want(200).JSON()["contact_id"]; got != winner {
					t.Fatalf("conversation %s belongs to %v after the merge", id, got)
				}
			}
			// The loser answers with a pointer to the winner and has no identity left.
			l := owner.Do("GET", "/api/v1/contacts/"+loser, nil).Want(200).JSON()
			if l["merged_into"] != winner {
				t.Fatalf("loser merged_into = %v, want %s", l["merged_into"], winner)
			}
			if ids, _ := l["identities"].([]any); len(ids) != 0 {
				t.Fatalf("the loser kept identities: %v", ids)
			}
			w := owner.Do("GET", "/api/v1/contacts/"+winner, nil).Want(200).JSON()
			if len(loserIdentities) == 0 {
				t.Fatal("the loser had no identities to move")
			}
			for _, x := range loserIdentities {
				id := x.(map[string]any)
				if got := identityOf(w, id["kind"].(string)); !contains(got, id["value"].(string)) {
					t.Fatalf("identity %v:%v did not move to the winner: %v", id["kind"], id["value"], w["identities"])
				}
			}
			if got := identityOf(w, provider.IdentityExternal); len(got) != 1 || got[0] != "crm-1001" {
				t.Fatalf("the winner's own identity: %v", w["identities"])
			}
			// The merge is in the audit log.
			var audited bool
			for _, ev := range owner.Do("GET", "/api/v1/audit-events?action=contact.merged", nil).Want(200).Items() {
				data, _ := ev["data"].(map[string]any)
				audited = audited || ev["object_id"] == winner && data["loser_id"] == loser
			}
			if !audited {
				t.Fatalf("no contact.merged audit event for %s ← %s", winner, loser)
			}

			// The loser's number now reaches the winner: a new message joins the moved
			// conversation, and a reply goes back to that number.
			e.Deliver(wf.Inbound(wa, "wamid.after-merge", "8613900139000", "Still waiting")).Want(200)
			if got := convOf(wa); got["id"] != waConv["id"] || got["contact_id"] != winner {
				t.Fatalf("after the merge the WhatsApp message went to %v / %v", got["id"], got["contact_id"])
			}
			if n := count(t, e, e.Acme, "contacts", "merged_into IS NULL"); n != 1 {
				t.Fatalf("%d live contacts after the merge, want 1", n)
			}
			r = owner.Do("POST", "/api/v1/conversations/"+waConv["id"].(string)+"/messages", map[string]any{"content": "Reply after the merge"}).Want(201).JSON()
			waitFor(t, "the reply sent", func() bool {
				return messageStatus(t, owner, waConv["id"].(string), r["id"].(string))["status"] == "sent"
			})
			if n := callsCarrying(wfake, `"to":"8613900139000"`); n != 2 {
				t.Fatalf("replies to the loser's number: %d, want 2", n)
			}
			// A second merge of the loser is refused and changes nothing.
			owner.Do("POST", "/api/v1/contacts/merge", map[string]any{"winner_id": winner, "loser_id": loser}).Want(422)
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// snapshot counts the org's rows in every tenant table.
func snapshot(t *testing.T, e *apptest.Env, org tenant.Org) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, table := range e.App.DB.TenantTables() {
		out[table] = count(t, e, org, table, "")
	}
	return out
}

func diff(before, after map[string]int64) string {
	var d []string
	for k, v := range after {
		if before[k] != v {
			d = append(d, fmt.Sprintf("%s %d→%d", k, before[k], v))
		}
	}
	sort.Strings(d)
	return strings.Join(d, ", ")
}

// TestWebhooksStayInTheirTenant: Acme and Globex have channels of the same types with their own
// secrets. A delivery signed for one tenant's channel and sent to the other's URL is refused and
// stores nothing anywhere; Acme's real deliveries create rows in Acme only.
func TestWebhooksStayInTheirTenant(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := scenarioEnv(t, d)
			acme, globex := e.Login("owner@acme.test"), e.Login("owner@globex.test")
			type pair struct {
				f           provider.Fixture
				acme, other provider.Channel
			}
			var pairs []pair
			for _, p := range []struct {
				f      provider.Fixture
				secret map[string]string
			}{
				{meta.WhatsAppFixture(), map[string]string{"app_secret": "globex-own-meta-app-secret", "access_token": "EAAglobexToken", "verify_token": "globex-verify"}},
				{apichannel.Fixture(), map[string]string{apichannel.KeySecret: "globex-own-api-channel-secret-0123456789"}},
			} {
				pairs = append(pairs, pair{f: p.f,
					acme:  openChannel(t, acme, e.Acme, p.f, "http://127.0.0.1:9", nil),
					other: openChannel(t, globex, e.Globex, p.f, "http://127.0.0.1:9", p.secret)})
			}
			acmeBefore, globexBefore := snapshot(t, e, e.Acme), snapshot(t, e, e.Globex)

			for _, p := range pairs {
				// Signed with Acme's secret, sent to Globex's URL, and the other way round.
				in := p.f.Inbound(p.acme, "cross-"+p.f.Type, "8613800138000", "cross-tenant probe")
				in.URL = p.other.WebhookURL
				e.Deliver(in).Want(401)
				back := p.f.Inbound(p.other, "cross-back-"+p.f.Type, "8613800138000", "cross-tenant probe")
				back.URL = p.acme.WebhookURL
				e.Deliver(back).Want(401)
				if p.f.Status != nil {
					st := p.f.Status(p.acme, "wamid.any", "delivered")
					st.URL = p.other.WebhookURL
					e.Deliver(st).Want(401)
				}
			}
			if d := diff(acmeBefore, snapshot(t, e, e.Acme)); d != "" {
				t.Fatalf("refused cross-tenant deliveries changed Acme: %s", d)
			}
			if d := diff(globexBefore, snapshot(t, e, e.Globex)); d != "" {
				t.Fatalf("refused cross-tenant deliveries changed Globex: %s", d)
			}

			// Acme's real deliveries land in Acme, never in Globex.
			for i, p := range pairs {
				e.Deliver(p.f.Inbound(p.acme, fmt.Sprintf("acme-real-%d", i), "8613800138000", "a real Acme message")).Want(200)
			}
			if d := diff(globexBefore, snapshot(t, e, e.Globex)); d != "" {
				t.Fatalf("Acme's deliveries changed Globex: %s", d)
			}
			acmeAfter := snapshot(t, e, e.Acme)
			if got := acmeAfter["messages"] - acmeBefore["messages"]; got != 2 {
				t.Fatalf("Acme stored %d messages for 2 deliveries", got)
			}
			if got := acmeAfter["usage_events"] - acmeBefore["usage_events"]; got < 2 {
				t.Fatalf("Acme recorded %d usage events for 2 deliveries", got)
			}
			if n := globex.Do("GET", "/api/v1/conversations", nil).Want(200).Items(); len(n) != 0 {
				t.Fatalf("Globex's inbox shows %d conversations", len(n))
			}
		})
	}
}

// failOnce answers 500 to the next n calls, then hands calls to the fake.
type failOnce struct {
	next     atomic.Int32
	attempts atomic.Int32
	fake     *provider.FakeAPI
}

func (f *failOnce) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.attempts.Add(1)
	if f.next.Add(-1) >= 0 {
		http.Error(w, `{"error":{"message":"temporarily unavailable","code":2,"is_transient":true}}`, http.StatusInternalServerError)
		return
	}
	f.next.Store(0)
	f.fake.Handler.ServeHTTP(w, r)
}

// waitTaskDone waits until the worker has taken the reply's send task off the queue.
func waitTaskDone(t *testing.T, e *apptest.Env, msgID string) {
	t.Helper()
	insp := asynq.NewInspectorFromRedisClient(e.App.Queue.Redis())
	waitFor(t, "the send task to run", func() bool {
		_, err := insp.GetTaskInfo("default", "send:"+msgID+":0")
		return errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound)
	})
}

func sendTask(e *apptest.Env, msgID string) *asynq.Task {
	body, _ := json.Marshal(map[string]string{"tenant_id": e.Acme.ID.String(), "message_id": msgID})
	return asynq.NewTask(conversations.TaskSend, body)
}

// TestUsageCountsEachInteractionOnce: 25 messages over two channel types, each delivered twice
// at the same moment, are 25 messages and 25 interactions; replies whose send task runs again
// or is retried after a failure reach the provider once and count once.
func TestUsageCountsEachInteractionOnce(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := scenarioEnv(t, d)
			owner := e.Login("owner@acme.test")
			wf, af := meta.WhatsAppFixture(), apichannel.Fixture()
			gate := &failOnce{fake: wf.FakeAPI()}
			wsrv := httptest.NewServer(gate)
			defer wsrv.Close()
			wa := openChannel(t, owner, e.Acme, wf, wsrv.URL, nil)
			api := openChannel(t, owner, e.Acme, af, "http://127.0.0.1:9", nil)
			interactions := func() int64 {
				return count(t, e, e.Acme, "usage_events", "meter = 'interactions' AND channel IN ('whatsapp', 'api')")
			}
			messages := func() int64 { return count(t, e, e.Acme, "messages", "channel_id IN ?", []uuid.UUID{wa.ID, api.ID}) }
			i0, m0 := interactions(), messages()

			const n = 25
			var reqs []provider.Request
			for i := range n {
				if i%2 == 0 {
					reqs = append(reqs, wf.Inbound(wa, fmt.Sprintf("wamid.usage-%02d", i), fmt.Sprintf("86138001380%02d", i%7), fmt.Sprintf("usage %d", i)))
				} else {
					reqs = append(reqs, af.Inbound(api, fmt.Sprintf("api-usage-%02d", i), fmt.Sprintf("crm-%d", i%5), fmt.Sprintf("usage %d", i)))
				}
			}
			// Each delivery arrives twice at the same moment, as a provider retrying a slow answer.
			statuses := make([]int, 2*n)
			errs := make([]error, 2*n)
			var wg sync.WaitGroup
			for i, r := range reqs {
				for k := range 2 {
					wg.Go(func() { statuses[2*i+k], errs[2*i+k] = post(e, r) })
				}
			}
			wg.Wait()
			for i := range statuses {
				if errs[i] != nil || statuses[i] != http.StatusOK {
					t.Fatalf("delivery %d: status %d, %v", i/2, statuses[i], errs[i])
				}
			}
			if got := messages() - m0; got != n {
				t.Fatalf("%d messages for %d deliveries made twice", got, n)
			}
			if got := interactions() - i0; got != n {
				t.Fatalf("%d interactions for %d messages delivered twice", got, n)
			}
			// A conversation is counted once on its own meter too.
			convs := count(t, e, e.Acme, "conversations", "channel_id IN ?", []uuid.UUID{wa.ID, api.ID})
			if got := count(t, e, e.Acme, "usage_events", "meter = 'conversations' AND channel IN ('whatsapp', 'api')"); got != convs || convs != 12 {
				t.Fatalf("conversation events %d for %d conversations (want 7 + 5)", got, convs)
			}

			// A reply whose send task is delivered twice: sent once, counted once.
			l := owner.Do("GET", "/api/v1/conversations?channel_id="+wa.ID.String()+"&limit=1", nil).Want(200).Items()
			convID := l[0]["id"].(string)
			r1 := owner.Do("POST", "/api/v1/conversations/"+convID+"/messages", map[string]any{"content": "first reply, sent once"}).Want(201).JSON()
			r1ID := r1["id"].(string)
			for range 2 {
				if err := e.App.Inbox.HandleSend(e.Ctx, sendTask(e, r1ID)); err != nil {
					t.Fatal(err)
				}
			}
			if got := callsCarrying(gate.fake, "first reply, sent once"); got != 1 {
				t.Fatalf("the provider got the reply %d times from a task run twice", got)
			}
			if m := messageStatus(t, owner, convID, r1ID); m["status"] != "sent" || m["attempts"] != float64(1) {
				t.Fatalf("reply after two runs of its task: %v attempts %v", m["status"], m["attempts"])
			}
			// The task the reply enqueued itself is still waiting; the worker runs it a third time.
			startWorker(t, e)
			waitTaskDone(t, e, r1ID)
			if got := callsCarrying(gate.fake, "first reply, sent once"); got != 1 {
				t.Fatalf("the provider got the reply %d times after the queued task ran", got)
			}

			// A reply whose first attempt fails: asynq retries it, the provider gets it once.
			gate.next.Store(1)
			before := gate.attempts.Load()
			r2 := owner.Do("POST", "/api/v1/conversations/"+convID+"/messages", map[string]any{"content": "second reply, retried"}).Want(201).JSON()
			r2ID := r2["id"].(string)
			waitFor(t, "the retried reply to be sent", func() bool {
				st := messageStatus(t, owner, convID, r2ID)["status"]
				if st == "failed" {
					t.Fatalf("the reply failed instead of being retried")
				}
				return st == "sent"
			})
			if got := gate.attempts.Load() - before; got != 2 {
				t.Fatalf("%d attempts for one failure and one success", got)
			}
			if got := callsCarrying(gate.fake, "second reply, retried"); got != 1 {
				t.Fatalf("the provider accepted the retried reply %d times", got)
			}
			if m := messageStatus(t, owner, convID, r2ID); m["attempts"] != float64(2) {
				t.Fatalf("attempts recorded: %v", m["attempts"])
			}
			for _, id := range []string{r1ID, r2ID} {
				if got := count(t, e, e.Acme, "usage_events", "meter = 'interactions' AND idempotency_key = ?", "out:"+id); got != 1 {
					t.Fatalf("reply %s counted %d times", id, got)
				}
			}
			if got := interactions() - i0; got != n+2 {
				t.Fatalf("%d interactions for %d messages in and 2 replies", got, n)
			}
		})
	}
}

// TestSuspendedTenantStoresInboundAndPausesReplies is the dunning line of the billing issue: a
// suspended tenant's customers' messages are still stored, its console is read-only, and its
// queued reply waits until the tenant is active again, then goes out once.
func TestSuspendedTenantStoresInboundAndPausesReplies(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := scenarioEnv(t, d)
			// The sweep re-sends replies queued for over a minute; the test moves its clock.
			var skew atomic.Int64
			e.App.Inbox.SetClock(func() time.Time { return time.Now().UTC().Add(time.Duration(skew.Load())) })
			owner := e.Login("owner@acme.test")
			f := meta.WhatsAppFixture()
			fake := f.FakeAPI()
			srv := httptest.NewServer(fake.Handler)
			defer srv.Close()
			wa := openChannel(t, owner, e.Acme, f, srv.URL, nil)
			e.Deliver(f.Inbound(wa, "wamid.before", "8613800138000", "Is my refund coming?")).Want(200)
			convID := owner.Do("GET", "/api/v1/conversations?channel_id="+wa.ID.String(), nil).Want(200).Items()[0]["id"].(string)

			// A reply is queued; before any worker sends it, payment fails and the grace period ends.
			reply := owner.Do("POST", "/api/v1/conversations/"+convID+"/messages", map[string]any{"content": "Your refund is on its way."}).Want(201).JSON()
			replyID := reply["id"].(string)
			for _, st := range []tenant.Status{tenant.StatusPastDue, tenant.StatusSuspended} {
				if _, err := e.App.DB.Transition(e.Ctx, e.Acme.ID, st, "dunning test"); err != nil {
					t.Fatal(err)
				}
			}
			queued := func(when string) {
				t.Helper()
				if n := callsCarrying(fake, "Your refund is on its way."); n != 0 {
					t.Fatalf("%s: the reply reached the provider %d times while suspended", when, n)
				}
				if m := messageStatus(t, owner, convID, replyID); m["status"] != "queued" {
					t.Fatalf("%s: reply status %v, want queued", when, m["status"])
				}
			}

			// The customer keeps writing: stored, counted, shown.
			msgs := func() int64 {
				return count(t, e, e.Acme, "messages", "conversation_id = ? AND direction = 'in'", convID)
			}
			in0 := msgs()
			e.Deliver(f.Inbound(wa, "wamid.during", "8613800138000", "Hello? Anyone there?")).Want(200)
			if got := msgs() - in0; got != 1 {
				t.Fatalf("inbound while suspended stored %d messages", got)
			}
			if n := count(t, e, e.Acme, "usage_events", "meter = 'interactions' AND idempotency_key = ?", "in:"+wa.ID.String()+":wamid.during"); n != 1 {
				t.Fatalf("inbound while suspended recorded %d usage events", n)
			}
			// The console reads but cannot reply.
			res := owner.Do("POST", "/api/v1/conversations/"+convID+"/messages", map[string]any{"content": "Written while suspended"}).Want(403)
			if p := res.JSON(); !strings.HasSuffix(fmt.Sprint(p["type"]), "read-only") {
				t.Fatalf("refusal: %s", res.Body)
			}
			if n := count(t, e, e.Acme, "messages", "content = 'Written while suspended'"); n != 0 {
				t.Fatal("the refused reply was stored")
			}

			// The send task runs (redelivered by hand, then the one the reply enqueued on the
			// worker) and the sweep runs: the reply stays queued and nothing is sent.
			if err := e.App.Inbox.HandleSend(e.Ctx, sendTask(e, replyID)); err != nil {
				t.Fatal(err)
			}
			queued("send task run by hand")
			if info, err := asynq.NewInspectorFromRedisClient(e.App.Queue.Redis()).GetTaskInfo("default", "send:"+replyID+":0"); err != nil || info.State != asynq.TaskStatePending {
				t.Fatalf("the reply's own send task is not waiting in the queue: %v %v", info, err)
			}
			startWorker(t, e)
			waitTaskDone(t, e, replyID)
			queued("send task run by the worker")
			skew.Store(int64(2 * time.Minute))
			if err := e.App.Inbox.HandleSweep(e.Ctx, nil); err != nil {
				t.Fatal(err)
			}
			waitTaskDone(t, e, replyID)
			queued("sweep")

			// Payment arrives: the next sweep sends the reply, once.
			if _, err := e.App.DB.Transition(e.Ctx, e.Acme.ID, tenant.StatusActive, "invoice paid"); err != nil {
				t.Fatal(err)
			}
			if err := e.App.Inbox.HandleSweep(e.Ctx, nil); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the paused reply to be sent", func() bool { return messageStatus(t, owner, convID, replyID)["status"] == "sent" })
			if err := e.App.Inbox.HandleSweep(e.Ctx, nil); err != nil {
				t.Fatal(err)
			}
			waitTaskDone(t, e, replyID)
			if n := callsCarrying(fake, "Your refund is on its way."); n != 1 {
				t.Fatalf("the provider got the paused reply %d times, want 1", n)
			}
			// And the console writes again.
			owner.Do("POST", "/api/v1/conversations/"+convID+"/messages", map[string]any{"content": "Thanks for waiting."}).Want(201)
		})
	}
}
