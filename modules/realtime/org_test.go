package realtime_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/modules/realtime/realtimetest"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// TestSocketNamesItsOrganisation: a browser cannot set X-Switchboard-Org on a WebSocket, so the
// handshake names the organisation with ?org=; a user in two organisations gets the one named,
// and naming one they are not in is not found.
func TestSocketNamesItsOrganisation(t *testing.T) {
	e := apptest.New(t, tenant.SQLite)
	srv := realtimetest.New(t, e)
	ctx := context.Background()
	vagent := e.Login("vagent1@northwind.test") // a Northwind vendor agent, and an agent in Acme
	// Without naming one the socket lands in Northwind, where a vendor agent may not subscribe.
	if _, status := dialStatus(t, srv.URL, sessionHeader(vagent)); status != 403 {
		t.Fatalf("no org named: %d, want 403 (the first membership is Northwind's)", status)
	}
	sock := open(t, srv.URL+"?org="+e.Acme.ID.String(), sessionHeader(vagent))
	for _, o := range []tenant.Org{e.Acme, e.Acme} {
		if err := srv.Hub.Append(tenant.WithOrg(ctx, o), "message.created", uuid.Nil, map[string]string{"org": o.Slug}); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Hub.Append(tenant.WithOrg(ctx, e.Acme), "barrier", uuid.Nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := sock.until("barrier"); len(got) != 2 {
		t.Fatalf("the socket for Acme got %d events, want Acme's 2", len(got))
	}
	if _, status := dialStatus(t, srv.URL+"?org="+e.Globex.ID.String(), sessionHeader(vagent)); status != 404 {
		t.Fatalf("naming an organisation the user is not in: %d, want 404", status)
	}
}
