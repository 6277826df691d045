package app_test

import (
	"strings"
	"testing"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/tenant"
)

func TestRateLimits(t *testing.T) {
	t.Run("per address", func(t *testing.T) {
		e := apptest.New(t, tenant.SQLite, apptest.Options{NoDemo: true, Env: map[string]string{"SWITCHBOARD_RATE_PER_IP": "5"}})
		c := e.Anon()
		for i := 0; i < 5; i++ {
			c.Do("GET", "/api/v1/openapi.json", nil).Want(200)
		}
		res := c.Do("GET", "/api/v1/openapi.json", nil).Want(429)
		if res.Header.Get("Retry-After") == "" || res.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("429 headers: %v", res.Header)
		}
	})
	t.Run("login attempts per address", func(t *testing.T) {
		e := apptest.New(t, tenant.SQLite, apptest.Options{NoDemo: true})
		c := e.Anon()
		for i := 0; i < 20; i++ {
			c.Do("POST", "/api/v1/auth/login", map[string]any{"email": "nobody@example.com", "password": "wrong-password"}).Want(401)
		}
		c.Do("POST", "/api/v1/auth/login", map[string]any{"email": "nobody@example.com", "password": "wrong-password"}).Want(429)
	})
	t.Run("per tenant", func(t *testing.T) {
		e := apptest.New(t, tenant.SQLite, apptest.Options{Env: map[string]string{"SWITCHBOARD_RATE_PER_TENANT": "5"}})
		acme := e.Login("owner@acme.test")
		agent := e.Login("agent1@acme.test")
		// Two people of one tenant share its budget of 5 a minute.
		for i := 0; i < 2; i++ {
			acme.Do("GET", "/api/v1/me", nil).Want(200)
			agent.Do("GET", "/api/v1/me", nil).Want(200)
		}
		acme.Do("GET", "/api/v1/me", nil).Want(200)
		agent.Do("GET", "/api/v1/me", nil).Want(429)
		acme.Do("GET", "/api/v1/me", nil).Want(429)
		// Another tenant has its own budget.
		e.Login("owner@globex.test").Do("GET", "/api/v1/me", nil).Want(200)
	})
}

func TestHealthAndMetrics(t *testing.T) {
	e := apptest.New(t, tenant.SQLite, apptest.Options{NoDemo: true})
	e.Anon().Do("GET", "/healthz", nil).Want(200)
	if r := e.Anon().Do("GET", "/readyz", nil).Want(200).JSON(); r["status"] != "ok" {
		t.Fatalf("readyz: %v", r)
	}
	res := e.Anon().Do("GET", "/metrics", nil).Want(200)
	if !contains(res.Body, "switchboard_http_requests_total") {
		t.Fatalf("metrics lack the request counter")
	}
	// The console is served for unknown non-API paths (SPA fallback); the API answers 404.
	if r := e.Anon().Do("GET", "/members", nil).Want(200); !contains(r.Body, "<div id=\"app\">") {
		t.Fatalf("console not served: %.200s", r.Body)
	}
	e.Anon().Do("GET", "/api/v1/nothing-here", nil).Want(404)
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }
