package identity_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-cloud/switchboard/app/apptest"
)

// TestBadInput sends requests the API must refuse at the edge: each answer is a problem+json
// with the expected status and, where the fault is in one field, that field named; and none
// of them writes anything.
func TestBadInput(t *testing.T) {
	const valid = `{"company":"Bad Input Inc","name":"Bea","email":"bea@example.test","password":"long-enough-pw"}`
	huge := `{"company":"` + strings.Repeat("a", 2<<20) + `","name":"Bea","email":"bea@example.test","password":"long-enough-pw"}`
	signup := "/api/v1/auth/signup"

	type tc struct {
		name    string
		actor   string // "anon" or "owner"
		method  string
		path    string
		body    any // a map is sent as JSON; a string as raw bytes labelled application/json
		headers []string
		status  int
		field   string // the field errors[] must name, if any
	}
	cases := []tc{
		// Decoding: 400, 413, 415.
		{"signup: malformed JSON", "anon", "POST", signup, `{"company": "X",`, nil, 400, ""},
		{"signup: empty body", "anon", "POST", signup, "", nil, 400, ""},
		{"signup: unknown field", "anon", "POST", signup, `{"company":"X","name":"N","email":"n@example.test","password":"long-enough-pw","admin":true}`, nil, 400, "admin"},
		{"signup: trailing garbage", "anon", "POST", signup, valid + ` garbage`, nil, 400, ""},
		{"signup: a JSON array", "anon", "POST", signup, `[` + valid + `]`, nil, 400, ""},
		{"signup: wrong JSON type", "anon", "POST", signup, `{"company":"X","name":"N","email":5,"password":"long-enough-pw"}`, nil, 400, "email"},
		{"signup: 2 MiB body", "anon", "POST", signup, huge, nil, 413, ""},
		{"signup: text/plain", "anon", "POST", signup, valid, []string{"Content-Type", "text/plain"}, 415, ""},
		{"signup: form post", "anon", "POST", signup, valid, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, ""},
		{"signup: no content type", "anon", "POST", signup, valid, []string{"Content-Type", ""}, 415, ""},
		{"login: unknown field", "anon", "POST", "/api/v1/auth/login", `{"email":"owner@acme.test","password":"x","remember":true}`, nil, 400, "remember"},
		{"accept: smuggled role", "anon", "POST", "/api/v1/invitations/x.y/accept", `{"name":"N","password":"long-enough-pw","role":"tenant_owner"}`, nil, 400, "role"},
		{"api key: text/plain", "owner", "POST", "/api/v1/api-keys", `{"name":"k","role":"agent"}`, []string{"Content-Type", "text/plain"}, 415, ""},
		{"invitation: 2 MiB body", "owner", "POST", "/api/v1/invitations", huge, nil, 413, ""},
		{"member: wrong JSON type", "owner", "PATCH", "/api/v1/members/{agent1}", `{"role":5}`, nil, 400, "role"},
		{"member: disabled not a bool", "owner", "PATCH", "/api/v1/members/{agent1}", `{"disabled":"yes"}`, nil, 400, "disabled"},

		// Malformed ids in the path: 400.
		{"api key id not a UUID", "owner", "DELETE", "/api/v1/api-keys/not-a-uuid", nil, nil, 400, "id"},
		{"api key id not a UUID (GET)", "owner", "GET", "/api/v1/api-keys/not-a-uuid", nil, nil, 400, "id"},
		{"invitation id not a UUID", "owner", "DELETE", "/api/v1/invitations/123", nil, nil, 400, "id"},
		{"member id not a UUID", "owner", "PATCH", "/api/v1/members/not-a-uuid", map[string]any{"role": "agent"}, nil, 400, "user_id"},
		{"member id not a UUID (DELETE)", "owner", "DELETE", "/api/v1/members/01234567-89ab-cdef-0123-456789abcdeg", nil, nil, 400, "user_id"},

		// Validation: 422 naming the field.
		{"signup: bad email", "anon", "POST", signup, map[string]any{"company": "X", "name": "N", "email": "not-an-email", "password": "long-enough-pw"}, nil, 422, "email"},
		{"signup: 5-character password", "anon", "POST", signup, map[string]any{"company": "X", "name": "N", "email": "n@example.test", "password": "12345"}, nil, 422, "password"},
		{"signup: missing company", "anon", "POST", signup, map[string]any{"name": "N", "email": "n@example.test", "password": "long-enough-pw"}, nil, 422, "company"},
		{"signup: unknown locale", "anon", "POST", signup, map[string]any{"company": "X", "name": "N", "email": "n@example.test", "password": "long-enough-pw", "locale": "fr"}, nil, 422, "locale"},
		{"verify-email: no token", "anon", "POST", "/api/v1/auth/verify-email", map[string]any{}, nil, 422, "token"},
		{"reset confirm: short password", "anon", "POST", "/api/v1/auth/password-reset/confirm", map[string]any{"token": "x", "password": "short"}, nil, 422, "password"},
		{"invitation: bad email", "owner", "POST", "/api/v1/invitations", map[string]any{"email": "nope", "role": "agent"}, nil, 422, "email"},
		{"invitation: no role", "owner", "POST", "/api/v1/invitations", map[string]any{"email": "x@example.test"}, nil, 422, "role"},
		{"api key: no name", "owner", "POST", "/api/v1/api-keys", map[string]any{"role": "agent"}, nil, 422, "name"},
		{"me: unknown locale", "owner", "PATCH", "/api/v1/me", map[string]any{"locale": "fr"}, nil, 422, "locale"},

		// Paging: 422 naming the parameter.
		{"members: limit=0", "owner", "GET", "/api/v1/members?limit=0", nil, nil, 422, "limit"},
		{"members: limit=1000", "owner", "GET", "/api/v1/members?limit=1000", nil, nil, 422, "limit"},
		{"members: limit=abc", "owner", "GET", "/api/v1/members?limit=abc", nil, nil, 422, "limit"},
		{"members: cursor=garbage", "owner", "GET", "/api/v1/members?cursor=garbage", nil, nil, 422, "cursor"},
		{"invitations: cursor=garbage", "owner", "GET", "/api/v1/invitations?cursor=garbage", nil, nil, 422, "cursor"},
		{"api keys: limit=0", "owner", "GET", "/api/v1/api-keys?limit=0", nil, nil, 422, "limit"},
		{"audit events: limit=201", "owner", "GET", "/api/v1/audit-events?limit=201", nil, nil, 422, "limit"},
	}
	tables := []string{"users", "orgs", "memberships", "invitations", "api_keys", "sessions", "user_tokens", "mails", "audit_events"}

	eachDialect(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		actors := map[string]*apptest.Client{"anon": e.Anon(), "owner": e.Login("owner@acme.test")}
		agent1 := userID(t, e, "agent1@acme.test")
		before := map[string]int64{}
		for _, tb := range tables {
			before[tb] = countRows(t, e, tb)
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				path := strings.ReplaceAll(c.path, "{agent1}", agent1)
				var res *apptest.Response
				if b, ok := c.body.(string); ok && len(b) > 1<<20 {
					res = serveRaw(t, e, actors[c.actor], c.method, path, b)
				} else {
					res = actors[c.actor].Do(c.method, path, c.body, c.headers...)
				}
				res.T = t
				if c.field != "" {
					wantField(t, res, c.status, c.field)
				} else {
					problemOf(t, res, c.status)
				}
			})
		}
		for _, tb := range tables {
			if n := countRows(t, e, tb); n != before[tb] {
				t.Errorf("%s: %d rows after the refused requests, %d before", tb, n, before[tb])
			}
		}
		// The owner's session is still usable: nothing above disturbed it.
		actors["owner"].Do("GET", "/api/v1/members", nil).Want(200)
	})
}

// serveRaw sends one request straight to the app's HTTP server over an in-memory connection
// and reads whatever the server wrote back. The harness's Client.Do goes through fiber's
// App.Test, which returns the server's error instead of its answer when the server refuses a
// request while reading it (a body over the limit), so a 413 cannot be seen through it.
func serveRaw(t *testing.T, e *apptest.Env, c *apptest.Client, method, path, body string) *apptest.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	if c.Cookie != "" {
		req.AddCookie(&http.Cookie{Name: "sb_session", Value: c.Cookie})
	}
	if c.CSRF != "" {
		req.Header.Set("X-CSRF-Token", c.CSRF)
	}
	dump, err := httputil.DumpRequest(req, true)
	if err != nil {
		t.Fatal(err)
	}
	conn := &memConn{}
	conn.in.Write(dump)
	_ = e.App.HTTP.Server().ServeConn(conn) // an error here is the refusal the answer reports
	res, err := http.ReadResponse(bufio.NewReader(&conn.out), req)
	if err != nil {
		t.Fatalf("%s %s: no HTTP answer: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return &apptest.Response{T: t, Status: res.StatusCode, Header: res.Header, Body: b, Req: method + " " + path}
}

// memConn is a net.Conn that reads a prepared request and records the answer.
type memConn struct{ in, out bytes.Buffer }

func (c *memConn) Read(b []byte) (int, error)       { return c.in.Read(b) }
func (c *memConn) Write(b []byte) (int, error)      { return c.out.Write(b) }
func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 40000} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }
