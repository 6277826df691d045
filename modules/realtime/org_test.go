package realtime_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/modules/access"
	"github.com/switchboard-cloud/switchboard/modules/realtime/realtimetest"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// TestSocketNamesItsOrganisation: a browser cannot set X-Switchboard-Org on a WebSocket, so the
// handshake names the organisation with ?org=; a user in two organisations gets the one named,
// and naming one they are not in is not found.
func TestSocketNamesItsOrganisation(t *testing.T) {
	e := apptest.New(t, tenant.SQLite)
	ctx := context.Background()
	// Globex's owner also works in Acme; Globex stays their first organisation.
	uid, err := e.App.UserID(ctx, "owner@globex.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.App.Identity.AddMember(e.App.DB.AsPlatform(ctx, "test"), e.Acme.ID, uid, access.Agent); err != nil {
		t.Fatal(err)
	}
	srv := realtimetest.New(t, e) // its policies are loaded now, with the new membership
	user := e.Login("owner@globex.test")
	named := open(t, srv.URL+"?org="+e.Acme.ID.String(), sessionHeader(user))
	unnamed := open(t, srv.URL, sessionHeader(user))
	for _, o := range []tenant.Org{e.Acme, e.Acme, e.Globex} {
		if err := srv.Hub.Append(tenant.WithOrg(ctx, o), "message.created", uuid.Nil, map[string]string{"org": o.Slug}); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range []tenant.Org{e.Acme, e.Globex} {
		if err := srv.Hub.Append(tenant.WithOrg(ctx, o), "barrier", uuid.Nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := named.until("barrier"); len(got) != 2 || string(got[0].Payload) != `{"org":"acme"}` {
		t.Fatalf("the socket naming Acme got %+v, want Acme's 2 events", got)
	}
	if got := unnamed.until("barrier"); len(got) != 1 || string(got[0].Payload) != `{"org":"globex"}` {
		t.Fatalf("the socket naming none got %+v, want its first organisation's event", got)
	}
	if _, status := dialStatus(t, srv.URL+"?org="+e.Northwind.ID.String(), sessionHeader(user)); status != 404 {
		t.Fatalf("naming an organisation the user is not in: %d, want 404", status)
	}
}
