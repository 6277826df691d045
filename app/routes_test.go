package app_test

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/switchboard-cloud/switchboard/app"
	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/modules/access"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// publicRoutes is the short list of routes anyone may call. Adding to it is a security
// decision: say why in the commit.
var publicRoutes = []string{
	"GET /healthz",
	"GET /readyz",
	"GET /metrics",
	"GET /api/v1/openapi.json",
	"POST /api/v1/auth/signup",
	"POST /api/v1/auth/login",
	"POST /api/v1/auth/verify-email",
	"POST /api/v1/auth/password-reset",
	"POST /api/v1/auth/password-reset/confirm",
	"GET /api/v1/invitations/:token/preview",
	"POST /api/v1/invitations/:token/accept",
	"GET /api/v1/dev/mailbox",      // development only: absent in production (tested below)
	"POST /api/v1/webhooks/stripe", // Stripe authenticates with Stripe-Signature, checked by billing
	// Channels' inbound webhooks: each adapter checks its provider's signature (401 otherwise).
	"GET /hooks/:type/:public_id",
	"POST /hooks/:type/:public_id",
	// The chat widget: visitors never log in; they hold a signed visitor token per channel.
	"GET /widget.js",
	"GET /api/v1/widget/:public_id/config",
	"POST /api/v1/widget/:public_id/sessions",
	"GET /api/v1/widget/:public_id/messages",
	"POST /api/v1/widget/:public_id/messages",
	"POST /api/v1/widget/:public_id/typing",
	"GET /api/v1/widget/:public_id/ws",
}

// selfRoutes are a logged-in user's own account: no organisation, no permission.
var selfRoutes = []string{
	"POST /api/v1/auth/logout",
	"POST /api/v1/auth/resend-verification",
	"GET /api/v1/me",
	"PATCH /api/v1/me",
}

// TestEveryRouteHasAPermission walks the router: every route the server answers must be
// registered through the guard with a declared permission, or be on the public or self list.
func TestEveryRouteHasAPermission(t *testing.T) {
	e := apptest.New(t, tenant.SQLite, apptest.Options{NoDemo: true})
	registered := map[string]access.RouteInfo{}
	for _, r := range e.App.Registry.Routes() {
		registered[r.Method+" "+r.Path] = r
	}
	for _, r := range e.App.HTTP.GetRoutes(true) {
		if r.Method == "HEAD" || r.Method == "CONNECT" || r.Method == "TRACE" || r.Method == "OPTIONS" {
			continue
		}
		key := r.Method + " " + r.Path
		info, ok := registered[key]
		if !ok {
			t.Errorf("route %s is not registered through access.Router: it has no permission", key)
			continue
		}
		switch info.Level {
		case access.LevelPublic:
			if !slices.Contains(publicRoutes, key) {
				t.Errorf("route %s is public but not on the public list", key)
			}
		case access.LevelSelf:
			if !slices.Contains(selfRoutes, key) {
				t.Errorf("route %s is self-service but not on the self list", key)
			}
		default:
			if _, ok := e.App.Access.Catalogue().Get(info.Permission); !ok || info.Permission == "" {
				t.Errorf("route %s has undeclared permission %q", key, info.Permission)
			}
		}
	}
}

func TestDevMailboxAbsentInProduction(t *testing.T) {
	e := apptest.New(t, tenant.SQLite, apptest.Options{NoDemo: true, Env: map[string]string{
		"SWITCHBOARD_ENV": "test", "SWITCHBOARD_SMTP_URL": "smtp://mail.invalid:587",
	}})
	e.Anon().Do("GET", "/api/v1/dev/mailbox", nil).Want(404)
}

// TestOpenAPIMatchesRoutes keeps the served OpenAPI document in step with the router.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := apptest.New(t, tenant.SQLite, apptest.Options{NoDemo: true})
	res := e.Anon().Do("GET", "/api/v1/openapi.json", nil).Want(200)
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(res.Body, &doc); err != nil {
		t.Fatal(err)
	}
	var inDoc, inRouter []string
	for p, ops := range doc.Paths {
		for m, op := range ops {
			inDoc = append(inDoc, strings.ToUpper(m)+" "+p)
			if _, hasPerm := op["x-permission"]; !hasPerm && op["x-access"] == nil {
				t.Errorf("%s %s: document names neither permission nor access level", m, p)
			}
		}
	}
	for _, r := range e.App.HTTP.GetRoutes(true) {
		if r.Method == "HEAD" {
			continue
		}
		p := r.Path
		if strings.HasPrefix(p, app.APIPrefix) || strings.HasPrefix(p, "/hooks/") || p == "/healthz" || p == "/readyz" || p == "/metrics" || p == "/widget.js" {
			inRouter = append(inRouter, r.Method+" "+app.OpenAPIPath(p))
		}
	}
	sort.Strings(inDoc)
	sort.Strings(inRouter)
	if !slices.Equal(inDoc, inRouter) {
		t.Fatalf("OpenAPI paths and router differ:\n doc:    %v\n router: %v", inDoc, inRouter)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
}
