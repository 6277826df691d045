package conversations_test

import (
	"errors"
	"net/smtp"
	"net/url"
	"strings"
	"testing"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/modules/channels/apichannel"
	"github.com/switchboard-cloud/switchboard/modules/channels/email"
	"github.com/switchboard-cloud/switchboard/modules/channels/meta"
	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// TestRouteCacheFollowsChannelChanges: once a channel's route is cached by a delivery, a change
// made through the API applies to the very next delivery on this node, not after the cache's 30 s.
func TestRouteCacheFollowsChannelChanges(t *testing.T) {
	const rotated = "rotated-api-channel-secret-0123456789"
	cases := []struct {
		name   string
		change map[string]any
		old    int // the next delivery, signed as before
		undo   map[string]any
	}{
		{"disabled", map[string]any{"status": "disabled"}, 404, map[string]any{"status": "active"}},
		{"secret rotated", map[string]any{"config": map[string]string{apichannel.KeySecret: rotated}}, 401, nil},
	}
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := scenarioEnv(t, d)
			owner := e.Login("owner@acme.test")
			f := apichannel.Fixture()
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					ch := openChannel(t, owner, e.Acme, f, "http://127.0.0.1:9", nil)
					stored := func(pid string) int64 {
						return count(t, e, e.Acme, "messages", "channel_id = ? AND provider_id = ?", ch.ID, pid)
					}
					// Two deliveries: the route and the channel are cached now.
					e.Deliver(f.Inbound(ch, "rc-1", "rc-cust", "first")).Want(200)
					e.Deliver(f.Inbound(ch, "rc-2", "rc-cust", "second")).Want(200)

					owner.Do("PATCH", "/api/v1/channels/"+ch.ID.String(), c.change).Want(200)
					e.Deliver(f.Inbound(ch, "rc-3", "rc-cust", "after the change")).Want(c.old)
					if n := stored("rc-3"); n != 0 {
						t.Fatalf("a delivery refused after the change stored %d messages", n)
					}

					if c.undo != nil {
						owner.Do("PATCH", "/api/v1/channels/"+ch.ID.String(), c.undo).Want(200)
					} else {
						ch.Config[apichannel.KeySecret] = rotated
					}
					e.Deliver(f.Inbound(ch, "rc-4", "rc-cust", "after the undo")).Want(200)
					if n := stored("rc-4"); n != 1 {
						t.Fatalf("the delivery after the undo stored %d messages", n)
					}
				})
			}
		})
	}
}

// TestRouteNeverCrossesTenants: a route key resolves to its own tenant and type only, whether it
// is cached or not, and whichever tenant's context asks.
func TestRouteNeverCrossesTenants(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := scenarioEnv(t, d)
			af, wf := apichannel.Fixture(), meta.WhatsAppFixture()
			acmeAPI := openChannel(t, e.Login("owner@acme.test"), e.Acme, af, "http://127.0.0.1:9", nil)
			globexWA := openChannel(t, e.Login("owner@globex.test"), e.Globex, wf, "http://127.0.0.1:9",
				map[string]string{"app_secret": "globex-own-meta-app-secret", "access_token": "EAAglobexToken", "verify_token": "globex-verify"})
			at := func(r provider.Request, typ, publicID string) provider.Request {
				u, err := url.Parse(r.URL)
				if err != nil {
					t.Fatal(err)
				}
				u.Path = "/hooks/" + typ + "/" + publicID
				r.URL = u.String()
				return r
			}
			cases := []struct {
				name string
				req  provider.Request
			}{
				{"Acme's id under Globex's type, Globex's signature",
					at(wf.Inbound(globexWA, "wamid.cross-1", "8613800138000", "probe"), wf.Type, acmeAPI.PublicID)},
				{"Acme's id under another type",
					at(af.Inbound(acmeAPI, "cross-2", "rc-cust", "probe"), "telegram", acmeAPI.PublicID)},
				{"Globex's id under Acme's type, Acme's signature",
					at(af.Inbound(acmeAPI, "cross-3", "rc-cust", "probe"), af.Type, globexWA.PublicID)},
				{"an unknown id",
					at(af.Inbound(acmeAPI, "cross-4", "rc-cust", "probe"), af.Type, strings.Repeat("z", len(acmeAPI.PublicID)))},
			}
			acme0, globex0 := snapshot(t, e, e.Acme), snapshot(t, e, e.Globex)
			probe := func(when string) {
				t.Helper()
				for _, c := range cases {
					if st, err := post(e, c.req); err != nil || st != 404 {
						t.Errorf("%s: %s: status %d (%v), want 404", when, c.name, st, err)
					}
				}
				if d := diff(acme0, snapshot(t, e, e.Acme)); d != "" {
					t.Errorf("%s: refused deliveries changed Acme: %s", when, d)
				}
				if d := diff(globex0, snapshot(t, e, e.Globex)); d != "" {
					t.Errorf("%s: refused deliveries changed Globex: %s", when, d)
				}
				// Asked from Globex's context, Acme's route is still Acme's, of its own type only.
				ctx, ch, err := e.App.Channels.Resolve(tenant.WithOrg(e.Ctx, e.Globex), "hook:"+acmeAPI.PublicID, af.Type)
				if err != nil {
					t.Fatalf("%s: resolve Acme's route: %v", when, err)
				}
				if id, _ := tenant.ID(ctx); id != e.Acme.ID || ch.TenantID != e.Acme.ID || ch.ID != acmeAPI.ID {
					t.Errorf("%s: Acme's route resolved to tenant %s, channel %s (tenant %s)", when, id, ch.ID, ch.TenantID)
				}
				if _, _, err := e.App.Channels.Resolve(tenant.WithOrg(e.Ctx, e.Globex), "hook:"+acmeAPI.PublicID, wf.Type); !errors.Is(err, apperr.ErrNotFound) {
					t.Errorf("%s: Acme's api route resolved as %s: %v", when, wf.Type, err)
				}
			}

			probe("not cached")
			// Real deliveries cache both routes; the probes still find nothing.
			e.Deliver(af.Inbound(acmeAPI, "real-acme", "rc-cust", "real")).Want(200)
			e.Deliver(wf.Inbound(globexWA, "wamid.real-globex", "8613800138000", "real")).Want(200)
			acme0, globex0 = snapshot(t, e, e.Acme), snapshot(t, e, e.Globex)
			probe("cached")
		})
	}
}

// TestRouteCacheFollowsAddressChange: Acme's e-mail channel gives up an address that Globex's
// new channel then takes. Mail to it, though the old route was cached by a delivery, goes to
// Globex only.
func TestRouteCacheFollowsAddressChange(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := scenarioEnv(t, d)
			acme, globex := e.Login("owner@acme.test"), e.Login("owner@globex.test")
			mx := mailReceiver(t, e)
			send := func(to, id string) {
				t.Helper()
				raw := email.TestMessage("Ana Lima <ana@example.com>", to, "Route "+id, "Mail "+id, map[string]string{"Message-ID": "<" + id + "@example.com>"})
				if err := smtp.SendMail(mx, nil, "ana@example.com", []string{to}, raw); err != nil {
					t.Fatalf("send %s to %s: %v", id, to, err)
				}
			}
			inChannel := func(org tenant.Org, channelID any, id string) int64 {
				return count(t, e, org, "messages", "channel_id = ? AND provider_id = ?", channelID, id+"@example.com")
			}
			const moved = "moving@route.test"
			ours := acme.Do("POST", "/api/v1/channels", map[string]any{"type": "email", "name": "Moving",
				"config": map[string]string{"address": moved}}).Want(201).JSON()["id"]
			send(moved, "route-1") // caches the route
			if n := inChannel(e.Acme, ours, "route-1"); n != 1 {
				t.Fatalf("the first mail: %d messages in Acme's channel", n)
			}

			acme.Do("PATCH", "/api/v1/channels/"+ours.(string), map[string]any{"config": map[string]string{"address": "kept@route.test"}}).Want(200)
			theirs := globex.Do("POST", "/api/v1/channels", map[string]any{"type": "email", "name": "Taken over",
				"config": map[string]string{"address": moved}}).Want(201).JSON()["id"]
			send(moved, "route-2")
			if n := inChannel(e.Globex, theirs, "route-2"); n != 1 {
				t.Errorf("mail to the address Globex took: %d messages in Globex's channel, want 1", n)
			}
			if n := count(t, e, e.Acme, "messages", "provider_id = ?", "route-2@example.com"); n != 0 {
				t.Errorf("mail to the address Acme gave up went to Acme (%d messages)", n)
			}
		})
	}
}
