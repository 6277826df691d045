// Package apptest builds a whole Switchboard for tests: a real database (a temporary SQLite
// file, or a fresh PostgreSQL database reached through a non-owner role so row-level security
// applies), the in-process Redis, the demo organisations, and HTTP clients acting as people.
package apptest

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/switchboard-cloud/switchboard/app"
	"github.com/switchboard-cloud/switchboard/internal/config"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// Dialects returns the databases tests should run on: SQLite always, PostgreSQL when
// TEST_DATABASE_URL is set.
func Dialects(t testing.TB) []tenant.Dialect {
	d := []tenant.Dialect{tenant.SQLite}
	if os.Getenv("TEST_DATABASE_URL") != "" {
		d = append(d, tenant.Postgres)
	} else {
		t.Log("TEST_DATABASE_URL not set: PostgreSQL variant skipped, SQLite variant runs")
	}
	return d
}

// PostgresURLs creates a fresh database owned by the test's superuser connection and a
// non-owner login role, and returns the owner's and the app role's URLs. Both are dropped when
// the test ends.
func PostgresURLs(t testing.TB) (ownerURL, appURL string) {
	t.Helper()
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		t.Skip("TEST_DATABASE_URL not set: PostgreSQL test skipped")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	suffix := strings.ReplaceAll(ids.Secret(6), "-", "_")
	suffix = strings.ToLower(strings.ReplaceAll(suffix, "_", "x"))
	dbName, role := "sbtest_"+suffix, "sbapp_"+suffix
	for _, q := range []string{
		`CREATE DATABASE ` + dbName,
		`CREATE ROLE ` + role + ` LOGIN NOSUPERUSER NOBYPASSRLS`,
	} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(`DROP DATABASE IF EXISTS ` + dbName + ` WITH (FORCE)`)
		_, _ = admin.Exec(`DROP ROLE IF EXISTS ` + role)
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + dbName
	ownerURL = u.String()
	u.User = url.User(role)
	appURL = u.String()
	return ownerURL, appURL
}

// Env is a running Switchboard with the demo data.
type Env struct {
	T   testing.TB
	App *app.App
	Ctx context.Context
	Cfg config.Config

	Platform, Acme, Globex, Northwind tenant.Org
}

// Options tune an Env.
type Options struct {
	Env    map[string]string // extra environment
	NoDemo bool
}

// New builds an Env on the dialect.
func New(t testing.TB, dialect tenant.Dialect, o ...Options) *Env {
	t.Helper()
	var opt Options
	if len(o) > 0 {
		opt = o[0]
	}
	env := map[string]string{
		"SWITCHBOARD_ENV":        config.EnvTest,
		"SWITCHBOARD_DATA_DIR":   t.TempDir(),
		"SWITCHBOARD_PUBLIC_URL": "http://switchboard.test",
		// Many tests log in from the same address; the limits have their own tests.
		"SWITCHBOARD_RATE_PER_IP":     "100000",
		"SWITCHBOARD_RATE_PER_TENANT": "100000",
	}
	if dialect == tenant.Postgres {
		owner, appURL := PostgresURLs(t)
		env["DATABASE_URL"], env["DATABASE_MIGRATE_URL"] = appURL, owner
	}
	for k, v := range opt.Env {
		env[k] = v
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx := context.Background()
	a, err := app.New(ctx, cfg, log, app.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	e := &Env{T: t, App: a, Ctx: ctx, Cfg: cfg}
	if !opt.NoDemo {
		if _, err := a.SeedDemo(ctx); err != nil {
			t.Fatal(err)
		}
		for slug, dst := range map[string]*tenant.Org{"acme": &e.Acme, "globex": &e.Globex, "northwind": &e.Northwind} {
			if *dst, err = a.OrgBySlug(ctx, slug); err != nil {
				t.Fatal(slug, err)
			}
		}
	}
	if e.Platform, err = a.OrgBySlug(ctx, "platform"); err != nil {
		t.Fatal(err)
	}
	return e
}

// Node starts another Switchboard process on the Env's database, as a second `serve` behind
// the same load balancer would be: its own caches, group-commit lanes and connections. It
// shares the Env's Redis when REDIS_URL names one; otherwise each has its own in-process
// server, and realtime events, policy reloads and queued jobs do not cross between them.
func (e *Env) Node() *app.App {
	e.T.Helper()
	a, err := app.New(e.Ctx, e.Cfg, slog.New(slog.DiscardHandler), app.Options{})
	if err != nil {
		e.T.Fatal(err)
	}
	e.T.Cleanup(func() { a.Close() })
	return a
}

// Password is the demo password the Env seeds with.
const Password = "switchboard-demo"

// Client is an HTTP caller: anonymous, a logged-in user, or an API key.
type Client struct {
	env    *Env
	Cookie string
	CSRF   string
	Org    string // X-Switchboard-Org
	Bearer string
	IP     string
}

// Anon returns an unauthenticated client.
func (e *Env) Anon() *Client { return &Client{env: e} }

// Login logs a user in through the API and returns their client.
func (e *Env) Login(email string) *Client {
	e.T.Helper()
	return e.LoginWith(email, Password)
}

// LoginWith logs in with a password.
func (e *Env) LoginWith(email, password string) *Client {
	e.T.Helper()
	c := e.Anon()
	res := c.Do("POST", "/api/v1/auth/login", map[string]any{"email": email, "password": password})
	res.Want(200)
	c.Cookie = res.Cookie("sb_session")
	c.CSRF = res.JSON()["csrf_token"].(string)
	return c
}

// InOrg returns a copy of c that addresses org.
func (c *Client) InOrg(org uuid.UUID) *Client {
	cp := *c
	cp.Org = org.String()
	return &cp
}

// Key returns a client authenticating with an API key.
func (e *Env) Key(key string) *Client { return &Client{env: e, Bearer: key} }

// Response is a finished request.
type Response struct {
	T      testing.TB
	Status int
	Header http.Header
	Body   []byte
	Req    string
}

// Do sends a request; body is marshalled to JSON unless it is a string or []byte.
func (c *Client) Do(method, path string, body any, headers ...string) *Response {
	c.env.T.Helper()
	var r io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case string:
		r, ctype = strings.NewReader(b), "application/json"
	case []byte:
		r, ctype = bytes.NewReader(b), "application/json"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.env.T.Fatal(err)
		}
		r, ctype = bytes.NewReader(j), "application/json"
	}
	req := httptest.NewRequest(method, path, r)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.Cookie != "" {
		req.AddCookie(&http.Cookie{Name: "sb_session", Value: c.Cookie})
	}
	if c.CSRF != "" {
		req.Header.Set("X-CSRF-Token", c.CSRF)
	}
	if c.Org != "" {
		req.Header.Set("X-Switchboard-Org", c.Org)
	}
	if c.Bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.Bearer)
	}
	if c.IP != "" {
		req.Header.Set("X-Forwarded-For", c.IP)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := c.env.App.HTTP.Test(req, 30_000)
	if err != nil {
		c.env.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return &Response{T: c.env.T, Status: res.StatusCode, Header: res.Header, Body: b, Req: method + " " + path}
}

// Want fails the test unless the status is one of want.
func (r *Response) Want(want ...int) *Response {
	r.T.Helper()
	for _, w := range want {
		if r.Status == w {
			return r
		}
	}
	r.T.Fatalf("%s: status %d, want %v; body: %s", r.Req, r.Status, want, r.Body)
	return r
}

// JSON decodes the body as an object.
func (r *Response) JSON() map[string]any {
	r.T.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		r.T.Fatalf("%s: body is not a JSON object: %v: %s", r.Req, err, r.Body)
	}
	return m
}

// Items returns the items of a list response.
func (r *Response) Items() []map[string]any {
	r.T.Helper()
	var l struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(r.Body, &l); err != nil {
		r.T.Fatalf("%s: not a list: %v: %s", r.Req, err, r.Body)
	}
	return l.Items
}

// Cookie returns a Set-Cookie value.
func (r *Response) Cookie(name string) string {
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == name {
			return c.Value
		}
	}
	r.T.Fatalf("%s: no %s cookie set", r.Req, name)
	return ""
}

// Mail waits for the newest dev-mailbox message to addr and returns the first link in it that
// contains part.
func (e *Env) Mail(addr, part string) string {
	e.T.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		msgs, err := e.App.Outbox.Recent(e.Ctx, 200)
		if err != nil {
			e.T.Fatal(err)
		}
		for _, m := range msgs {
			if m.ToAddr != addr {
				continue
			}
			for _, f := range strings.Fields(m.Body) {
				if strings.Contains(f, part) && strings.HasPrefix(f, "http") {
					return f
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.T.Fatalf("no mail to %s with a link containing %q", addr, part)
	return ""
}

// Token returns the token of a mailed link (?token= or the last path segment).
func Token(link string) string {
	u, err := url.Parse(link)
	if err != nil {
		panic(err)
	}
	if t := u.Query().Get("token"); t != "" {
		return t
	}
	return u.Path[strings.LastIndexByte(u.Path, '/')+1:]
}

// Name is a test-name-friendly dialect label.
func Name(d tenant.Dialect) string { return fmt.Sprint(d) }

// Deliver sends a channel provider's webhook request (built by an adapter's fixture) to the
// app, as the provider would.
func (e *Env) Deliver(r provider.Request) *Response {
	e.T.Helper()
	u, err := url.Parse(r.URL)
	if err != nil {
		e.T.Fatal(err)
	}
	path := u.Path
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	} else if len(r.Query) > 0 {
		path += "?" + url.Values(r.Query).Encode()
	}
	var hs []string
	for k, v := range r.Header {
		hs = append(hs, k, v[0])
	}
	method := r.Method
	if method == "" {
		method = "POST"
	}
	var body any
	if len(r.Body) > 0 {
		body = r.Body
	}
	return e.Anon().Do(method, path, body, hs...)
}
