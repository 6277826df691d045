package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/modules/realtime/realtimetest"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// TestRunAgainstConsoleSocket runs a small load with an API key against the console socket of
// two servers sharing the database and Redis, as the script does against a deployment: events
// sent through one server reach the sockets of both.
func TestRunAgainstConsoleSocket(t *testing.T) {
	e := apptest.New(t, tenant.SQLite)
	a, b := realtimetest.New(t, e), realtimetest.New(t, e)
	key := e.Login("owner@acme.test").Do("POST", "/api/v1/api-keys", map[string]any{"name": "load", "role": "agent"}).Want(201).JSON()["key"].(string)
	h := http.Header{}
	h.Set("Authorization", "Bearer "+key)
	cfg := Config{URL: a.URL + "," + b.URL, Header: h, Sockets: 200, Events: 24, Publishers: 3, Rate: 4, DialParallel: 20, Wait: 30 * time.Second}
	res, err := Run(context.Background(), cfg)
	var out strings.Builder
	Report(&out, cfg, res)
	t.Log("\n" + out.String())
	if err != nil || !res.OK() || res.Delivered != 200*24 || len(res.Latency) != 200*24 {
		t.Fatalf("run failed: %v", err)
	}

	// Without credentials every handshake fails, and the run says so.
	cfg.Header, cfg.Sockets = http.Header{}, 5
	res, _ = Run(context.Background(), cfg)
	if res.OK() || res.DialFailed != 5 || res.DialErrors["401 Unauthorized"] != 5 {
		t.Fatalf("unauthenticated run: %+v", res)
	}
}
