package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-cloud/switchboard/app/apptest"
)

// serve runs an app on 127.0.0.1 and returns its base URL.
func serve(t *testing.T) string {
	t.Helper()
	e := apptest.New(t, apptest.Dialects(t)[0])
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = e.App.HTTP.Listener(ln) }()
	t.Cleanup(func() { _ = e.App.HTTP.Shutdown() })
	return "http://" + ln.Addr().String()
}

func opts(base string) options {
	return options{base: base, rate: 40, duration: time.Second, senders: 7, maxInflight: 100, timeout: 10 * time.Second,
		setup: true, verify: true, email: "owner@acme.test", password: apptest.Password}
}

// TestRunStoresEveryMessageOnce runs a small load with -setup and the warm-up: the channel and
// key are made through the API, every delivery is answered 200 and the check finds each message
// once.
func TestRunStoresEveryMessageOnce(t *testing.T) {
	o := opts(serve(t))
	o.warmup = true
	if err := run(o); err != nil {
		t.Fatal(err)
	}
}

// TestRunFailsOnRefusedDeliveries: deliveries signed with another secret are refused (401) and
// the run fails.
func TestRunFailsOnRefusedDeliveries(t *testing.T) {
	base := serve(t)
	o := opts(base)
	api := &apiClient{base: base, http: newClient(o)}
	if err := setup(api, &o); err != nil {
		t.Fatal(err)
	}
	o.setup, o.secret = false, strings.Repeat("x", 48)
	if err := run(o); err == nil {
		t.Fatal("a run whose deliveries were all refused passed")
	}
}

// TestRefusesRemoteHosts: the load goes to this machine unless -allow-remote says otherwise.
func TestRefusesRemoteHosts(t *testing.T) {
	o := opts("http://example.com")
	if err := run(o); err == nil || !strings.Contains(err.Error(), "allow-remote") {
		t.Fatalf("got %v", err)
	}
}
