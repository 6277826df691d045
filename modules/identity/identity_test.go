package identity_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/internal/httpx"
	"github.com/switchboard-cloud/switchboard/internal/ids"
)

// ---- helpers shared by the identity tests ----

// eachDialect runs fn against a fresh Switchboard on every dialect under test.
func eachDialect(t *testing.T, opts apptest.Options, fn func(t *testing.T, e *apptest.Env)) {
	t.Helper()
	for _, d := range apptest.Dialects(t) {
		t.Run(string(d), func(t *testing.T) { fn(t, apptest.New(t, d, opts)) })
	}
}

// problem is an RFC 9457 problem document as the API writes it.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

func (p problem) fields() []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

// problemOf checks that r is a problem+json answer with status and returns the document.
func problemOf(t testing.TB, r *apptest.Response, status int) problem {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d; body: %s", r.Req, r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != httpx.ProblemContentType {
		t.Fatalf("%s: Content-Type %q, want %q; body: %s", r.Req, ct, httpx.ProblemContentType, r.Body)
	}
	var p problem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("%s: problem body is not JSON: %v: %s", r.Req, err, r.Body)
	}
	if p.Status != status || p.Type == "" || p.Title == "" {
		t.Fatalf("%s: incomplete problem document: %s", r.Req, r.Body)
	}
	return p
}

// wantField checks a problem answer names field in errors[].field.
func wantField(t testing.TB, r *apptest.Response, status int, field string) problem {
	t.Helper()
	p := problemOf(t, r, status)
	if !slices.Contains(p.fields(), field) {
		t.Fatalf("%s: errors name fields %v, want %q; body: %s", r.Req, p.fields(), field, r.Body)
	}
	return p
}

func str(v any) string { s, _ := v.(string); return s }

func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }

// session turns a signup/login/accept answer into a client carrying its cookie and CSRF token.
func session(t testing.TB, e *apptest.Env, r *apptest.Response) *apptest.Client {
	t.Helper()
	c := e.Anon()
	c.Cookie = r.Cookie("sb_session")
	c.CSRF = str(r.JSON()["csrf_token"])
	if c.Cookie == "" || c.CSRF == "" {
		t.Fatalf("%s: no session cookie or csrf_token: %v / %s", r.Req, r.Header, r.Body)
	}
	return c
}

// userID is the id of the user with that email.
func userID(t testing.TB, e *apptest.Env, email string) string {
	t.Helper()
	id, err := e.App.UserID(e.Ctx, email)
	if err != nil {
		t.Fatalf("user %s: %v", email, err)
	}
	return id.String()
}

// countRows counts every row of a table. Tenant tables are read with platform access, since on
// PostgreSQL row-level security hides their rows from a connection without a tenant.
func countRows(t testing.TB, e *apptest.Env, table string, where ...any) int64 {
	t.Helper()
	var n int64
	ctx := e.App.DB.AsPlatform(e.Ctx, "test: count rows")
	err := e.App.DB.Run(ctx, func(tx *gorm.DB) error {
		q := tx.Table(table)
		if len(where) > 0 {
			q = q.Where(where[0], where[1:]...)
		}
		return q.Count(&n).Error
	})
	if err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// memberByEmail finds a member in the caller's organisation's member list.
func memberByEmail(t testing.TB, c *apptest.Client, email string) map[string]any {
	t.Helper()
	for _, m := range c.Do("GET", "/api/v1/members?limit=200", nil).Want(200).Items() {
		if m["email"] == email {
			return m
		}
	}
	return nil
}

// invite has owner invite email as role and returns the invitation's id and mailed token.
func invite(t testing.TB, e *apptest.Env, owner *apptest.Client, email, role string) (id, token string) {
	t.Helper()
	inv := owner.Do("POST", "/api/v1/invitations", map[string]any{"email": email, "role": role}).Want(201).JSON()
	if inv["email"] != email || inv["role"] != role || inv["status"] != "pending" {
		t.Fatalf("invitation: %v", inv)
	}
	return str(inv["id"]), apptest.Token(e.Mail(email, "/invite/"))
}

func membershipRole(me map[string]any, orgID string) (string, bool) {
	for _, m := range me["memberships"].([]any) {
		if mm := obj(m); mm["org_id"] == orgID {
			return str(mm["role"]), true
		}
	}
	return "", false
}

const newPassword = "a-brand-new-secret-42"

func signupBody(company, email string) map[string]any {
	return map[string]any{"company": company, "name": "Peter Gibbons", "email": email, "password": "tps-reports-1999", "locale": "en"}
}

// ---- sign-up and email verification ----

func TestSignup(t *testing.T) {
	eachDialect(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		orgsBefore, usersBefore := countRows(t, e, "orgs"), countRows(t, e, "users")

		res := e.Anon().Do("POST", "/api/v1/auth/signup", signupBody("Initech", "Peter@Initech.test")).Want(201)
		setCookie := strings.ToLower(strings.Join(res.Header.Values("Set-Cookie"), "\n"))
		if !strings.Contains(setCookie, "httponly") || !strings.Contains(setCookie, "samesite=lax") {
			t.Errorf("session cookie lacks HttpOnly or SameSite=Lax: %s", setCookie)
		}
		owner := session(t, e, res)
		body := res.JSON()
		org := obj(body["current_org"])
		orgID := str(org["id"])
		if org["status"] != "trial" || org["kind"] != "tenant" || org["name"] != "Initech" {
			t.Fatalf("current_org: %v", org)
		}
		for _, known := range []string{e.Platform.ID.String(), e.Acme.ID.String(), e.Globex.ID.String(), e.Northwind.ID.String()} {
			if orgID == known {
				t.Fatalf("signup landed in an existing organisation %s", orgID)
			}
		}
		if u := obj(body["user"]); u["email"] != "peter@initech.test" || u["email_verified"] != false {
			t.Fatalf("user: %v", u)
		}
		if n := countRows(t, e, "orgs"); n != orgsBefore+1 {
			t.Fatalf("orgs: %d, want %d", n, orgsBefore+1)
		}

		me := owner.Do("GET", "/api/v1/me", nil).Want(200).JSON()
		if me["role"] != "tenant_owner" || obj(me["current_org"])["id"] != orgID || obj(me["user"])["email_verified"] != false {
			t.Fatalf("/me after signup: %v", me)
		}
		if role, ok := membershipRole(me, orgID); !ok || role != "tenant_owner" {
			t.Fatalf("memberships: %v", me["memberships"])
		}

		// A second mail can be asked for; its link, like the first, verifies the address once.
		first := apptest.Token(e.Mail("peter@initech.test", "/verify-email"))
		owner.Do("POST", "/api/v1/auth/resend-verification", nil).Want(202)
		tok := apptest.Token(e.Mail("peter@initech.test", "/verify-email"))
		if tok == first {
			t.Fatal("resend-verification mailed no new link")
		}
		if v := e.Anon().Do("POST", "/api/v1/auth/verify-email", map[string]any{"token": tok}).Want(200).JSON(); v["status"] != "verified" {
			t.Fatalf("verify: %v", v)
		}
		if me := owner.Do("GET", "/api/v1/me", nil).Want(200).JSON(); obj(me["user"])["email_verified"] != true {
			t.Fatalf("email not verified: %v", me["user"])
		}
		wantField(t, e.Anon().Do("POST", "/api/v1/auth/verify-email", map[string]any{"token": tok}), 422, "token")
		wantField(t, e.Anon().Do("POST", "/api/v1/auth/verify-email", map[string]any{"token": "made-up"}), 422, "token")

		// The same address again (in another case) is refused, and its tenant is not left behind.
		wantField(t, e.Anon().Do("POST", "/api/v1/auth/signup", signupBody("Initech Again", "PETER@initech.test")), 422, "email")
		if n := countRows(t, e, "orgs"); n != orgsBefore+1 {
			t.Fatalf("orgs after refused signup: %d, want %d", n, orgsBefore+1)
		}
		if n := countRows(t, e, "users"); n != usersBefore+1 {
			t.Fatalf("users after refused signup: %d, want %d", n, usersBefore+1)
		}
	})
}

// ---- login ----

func TestLoginFailuresLookAlike(t *testing.T) {
	eachDialect(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		cases := []struct{ name, email, password string }{
			{"wrong password", "owner@acme.test", "not-the-password"},
			{"unknown email", "nobody@acme.test", apptest.Password},
			{"unknown email, wrong password", "nobody@acme.test", "not-the-password"},
		}
		var first problem
		for i, tc := range cases {
			res := e.Anon().Do("POST", "/api/v1/auth/login", map[string]any{"email": tc.email, "password": tc.password})
			p := problemOf(t, res, 401)
			for _, c := range (&http.Response{Header: res.Header}).Cookies() {
				if c.Name == "sb_session" && c.Value != "" {
					t.Errorf("%s: a failed login set a session cookie", tc.name)
				}
			}
			if i == 0 {
				first = p
				continue
			}
			if p.Type != first.Type || p.Title != first.Title || p.Detail != first.Detail {
				t.Errorf("%s answers %+v, %s answers %+v: they must not differ", tc.name, p, cases[0].name, first)
			}
		}
		// Emails are compared case- and space-insensitively.
		e.LoginWith("  OWNER@Acme.test ", apptest.Password)
	})
}

func TestLoginLockout(t *testing.T) {
	eachDialect(t, apptest.Options{Env: map[string]string{"SWITCHBOARD_LOGIN_MAX_FAILURES": "3"}}, func(t *testing.T, e *apptest.Env) {
		login := func(pw string) *apptest.Response {
			return e.Anon().Do("POST", "/api/v1/auth/login", map[string]any{"email": "agent1@acme.test", "password": pw})
		}
		for i := 0; i < 3; i++ {
			problemOf(t, login("wrong-password"), 401)
		}
		for _, pw := range []string{apptest.Password, "wrong-password"} {
			res := login(pw)
			p := problemOf(t, res, 429)
			ra, err := strconv.Atoi(res.Header.Get("Retry-After"))
			if err != nil || ra < 1 || ra > 15*60+1 {
				t.Fatalf("Retry-After %q, want 1..901 seconds", res.Header.Get("Retry-After"))
			}
			if !strings.HasSuffix(p.Type, "/locked") {
				t.Errorf("locked login answered %+v", p)
			}
		}
		// The lock is per account.
		e.Login("agent2@acme.test")

		// A password reset lifts the lock.
		e.Anon().Do("POST", "/api/v1/auth/password-reset", map[string]any{"email": "agent1@acme.test"}).Want(202)
		tok := apptest.Token(e.Mail("agent1@acme.test", "/reset-password"))
		e.Anon().Do("POST", "/api/v1/auth/password-reset/confirm", map[string]any{"token": tok, "password": newPassword}).Want(200)
		e.LoginWith("agent1@acme.test", newPassword)
	})
}

func TestLoginLockoutExpires(t *testing.T) {
	opts := apptest.Options{Env: map[string]string{"SWITCHBOARD_LOGIN_MAX_FAILURES": "3", "SWITCHBOARD_LOGIN_LOCKOUT": "1s"}}
	eachDialect(t, opts, func(t *testing.T, e *apptest.Env) {
		login := func(pw string) *apptest.Response {
			return e.Anon().Do("POST", "/api/v1/auth/login", map[string]any{"email": "agent1@acme.test", "password": pw})
		}
		for i := 0; i < 3; i++ {
			problemOf(t, login("wrong-password"), 401)
		}
		// Not timed: the third failure locked the account.
		if n := countRows(t, e, "users", "email = ? AND locked_until IS NOT NULL", "agent1@acme.test"); n != 1 {
			t.Fatalf("agent1 not locked after 3 failures")
		}
		// Poll until the lock has passed; a locked answer only says "not yet".
		deadline := time.Now().Add(20 * time.Second)
		for {
			res := login(apptest.Password)
			if res.Status == 200 {
				break
			}
			if p := problemOf(t, res, 429); !strings.HasSuffix(p.Type, "/locked") {
				t.Fatalf("while waiting for the lock to pass: %s", res.Body)
			}
			if time.Now().After(deadline) {
				t.Fatal("a 1s lockout has not passed after 20s")
			}
			time.Sleep(200 * time.Millisecond)
		}
		// The counter started over: two more failures do not lock again.
		for i := 0; i < 2; i++ {
			problemOf(t, login("wrong-password"), 401)
		}
		login(apptest.Password).Want(200)
	})
}

// ---- CSRF and logout ----

func TestCSRF(t *testing.T) {
	eachDialect(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		owner := e.Login("owner@acme.test")
		other := e.Login("owner@acme.test") // a second session has its own token
		invitations := countRows(t, e, "invitations")

		noToken, wrongToken, otherToken := *owner, *owner, *owner
		noToken.CSRF, wrongToken.CSRF, otherToken.CSRF = "", "not-the-token", other.CSRF
		for name, c := range map[string]*apptest.Client{"no token": &noToken, "wrong token": &wrongToken, "another session's token": &otherToken} {
			res := c.Do("POST", "/api/v1/invitations", map[string]any{"email": "csrf@example.test", "role": "agent"})
			if p := problemOf(t, res, 403); !strings.Contains(p.Detail, "X-CSRF-Token") {
				t.Errorf("%s: problem does not name the header: %+v", name, p)
			}
			problemOf(t, c.Do("PATCH", "/api/v1/me", map[string]any{"name": "Mallory"}), 403)
			problemOf(t, c.Do("POST", "/api/v1/auth/logout", nil), 403)
		}
		if n := countRows(t, e, "invitations"); n != invitations {
			t.Fatalf("invitations: %d, want %d (a request without CSRF token wrote)", n, invitations)
		}
		me := noToken.Do("GET", "/api/v1/me", nil).Want(200).JSON() // reads need no token; the session survived
		if obj(me["user"])["name"] == "Mallory" {
			t.Fatal("PATCH /me without CSRF token changed the name")
		}
		noToken.Do("GET", "/api/v1/members", nil).Want(200)

		// The right token works.
		owner.Do("PATCH", "/api/v1/me", map[string]any{"name": "Olivia Owner"}).Want(204)

		// A bearer API key carries no cookie and needs no token.
		key := str(owner.Do("POST", "/api/v1/api-keys", map[string]any{"name": "ci", "role": "tenant_admin"}).Want(201).JSON()["key"])
		e.Key(key).Do("POST", "/api/v1/invitations", map[string]any{"email": "csrf@example.test", "role": "agent"}).Want(201)
		if n := countRows(t, e, "invitations"); n != invitations+1 {
			t.Fatalf("invitations: %d, want %d", n, invitations+1)
		}
	})
}

func TestLogout(t *testing.T) {
	eachDialect(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		c := e.Login("owner@acme.test")
		other := e.Login("owner@acme.test")
		sessions := countRows(t, e, "sessions")
		res := c.Do("POST", "/api/v1/auth/logout", nil).Want(204)
		if v := res.Cookie("sb_session"); v != "" {
			t.Errorf("logout left cookie %q", v)
		}
		problemOf(t, c.Do("GET", "/api/v1/me", nil), 401)
		if n := countRows(t, e, "sessions"); n != sessions-1 {
			t.Fatalf("sessions: %d, want %d", n, sessions-1)
		}
		other.Do("GET", "/api/v1/me", nil).Want(200) // only that session ended
		problemOf(t, e.Anon().Do("POST", "/api/v1/auth/logout", nil), 401)
	})
}

// ---- password reset ----

func TestPasswordReset(t *testing.T) {
	eachDialect(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		const email = "agent1@acme.test"
		before := e.Login(email)

		known := e.Anon().Do("POST", "/api/v1/auth/password-reset", map[string]any{"email": email}).Want(202)
		// The answer for an unknown address must be the same; checked without stopping the test.
		unknown := e.Anon().Do("POST", "/api/v1/auth/password-reset", map[string]any{"email": "ghost@acme.test"})
		if unknown.Status != known.Status || string(known.Body) != string(unknown.Body) || known.Header.Get("Content-Type") != unknown.Header.Get("Content-Type") {
			t.Errorf("reset for a known address answers %d %q %s, for an unknown one %d %q %s: they must not differ",
				known.Status, known.Header.Get("Content-Type"), known.Body, unknown.Status, unknown.Header.Get("Content-Type"), unknown.Body)
		}
		tok := apptest.Token(e.Mail(email, "/reset-password"))
		if n := countRows(t, e, "mails", "to_addr = ?", "ghost@acme.test"); n != 0 {
			t.Errorf("a reset mail went to an unknown address")
		}

		// A reset token is not a verification token, and a too-short password spends nothing.
		wantField(t, e.Anon().Do("POST", "/api/v1/auth/verify-email", map[string]any{"token": tok}), 422, "token")
		wantField(t, e.Anon().Do("POST", "/api/v1/auth/password-reset/confirm", map[string]any{"token": tok, "password": "short"}), 422, "password")
		res := e.Anon().Do("POST", "/api/v1/auth/password-reset/confirm", map[string]any{"token": tok, "password": newPassword}).Want(200)
		if res.JSON()["status"] == nil {
			t.Errorf("confirm body: %s", res.Body)
		}

		problemOf(t, e.Anon().Do("POST", "/api/v1/auth/login", map[string]any{"email": email, "password": apptest.Password}), 401)
		e.LoginWith(email, newPassword).Do("GET", "/api/v1/me", nil).Want(200)
		problemOf(t, before.Do("GET", "/api/v1/me", nil), 401) // sessions from before the reset ended
		wantField(t, e.Anon().Do("POST", "/api/v1/auth/password-reset/confirm", map[string]any{"token": tok, "password": "yet-another-secret"}), 422, "token")
		e.LoginWith(email, newPassword) // the spent token changed nothing
	})
}

// ---- invitations ----

func TestInvitationNewUser(t *testing.T) {
	eachDialect(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		owner := e.Login("owner@acme.test")
		const email = "new.agent@example.test"
		id, tok := invite(t, e, owner, email, "agent")

		var listed map[string]any
		for _, i := range owner.Do("GET", "/api/v1/invitations", nil).Want(200).Items() {
			if i["id"] == id {
				listed = i
			}
		}
		if listed == nil || listed["email"] != email || listed["role"] != "agent" || listed["status"] != "pending" || listed["invited_by"] != userID(t, e, "owner@acme.test") {
			t.Fatalf("invitation list entry: %v", listed)
		}
		if strings.Contains(string(owner.Do("GET", "/api/v1/invitations", nil).Body), ids.Hash(tok)) {
			t.Fatal("invitation list shows the token hash")
		}

		p := e.Anon().Do("GET", "/api/v1/invitations/"+tok+"/preview", nil).Want(200).JSON()
		if p["org_name"] != "Acme" || p["email"] != email || p["role"] != "agent" || p["user_exists"] != false {
			t.Fatalf("preview: %v", p)
		}
		// A new account needs a name and a real password.
		wantField(t, e.Anon().Do("POST", "/api/v1/invitations/"+tok+"/accept", map[string]any{"password": "long-enough-pw"}), 422, "name")
		wantField(t, e.Anon().Do("POST", "/api/v1/invitations/"+tok+"/accept", map[string]any{"name": "Nina", "password": "short"}), 422, "password")

		res := e.Anon().Do("POST", "/api/v1/invitations/"+tok+"/accept", map[string]any{"name": "Nina Newcomer", "password": "long-enough-pw"}).Want(200)
		nina := session(t, e, res)
		if org := obj(res.JSON()["current_org"]); org["id"] != e.Acme.ID.String() {
			t.Fatalf("accept current_org: %v", org)
		}
		me := nina.Do("GET", "/api/v1/me", nil).Want(200).JSON()
		if role, ok := membershipRole(me, e.Acme.ID.String()); !ok || role != "agent" || me["role"] != "agent" || obj(me["user"])["email_verified"] != true {
			t.Fatalf("/me of the new member: %v", me)
		}
		if m := memberByEmail(t, owner, email); m == nil || m["role"] != "agent" || m["status"] != "active" || m["name"] != "Nina Newcomer" {
			t.Fatalf("member list entry: %v", m)
		}
		e.LoginWith(email, "long-enough-pw")

		problemOf(t, e.Anon().Do("POST", "/api/v1/invitations/"+tok+"/accept", map[string]any{"name": "Nina", "password": "long-enough-pw"}), 404)
		problemOf(t, e.Anon().Do("GET", "/api/v1/invitations/"+tok+"/preview", nil), 404)
		for _, i := range owner.Do("GET", "/api/v1/invitations", nil).Want(200).Items() {
			if i["id"] == id && (i["status"] != "accepted" || i["accepted_at"] == nil) {
				t.Fatalf("accepted invitation listed as %v", i)
			}
		}
		problemOf(t, owner.Do("DELETE", "/api/v1/invitations/"+id, nil), 409) // no longer pending
	})
}

func TestInvitationExistingUser(t *testing.T) {
	eachDialect(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		owner := e.Login("owner@acme.test")
		const email = "owner@globex.test"
		_, tok := invite(t, e, owner, email, "agent")
		if p := e.Anon().Do("GET", "/api/v1/invitations/"+tok+"/preview", nil).Want(200).JSON(); p["user_exists"] != true {
			t.Fatalf("preview: %v", p)
		}
		accept := func(c *apptest.Client, body any) *apptest.Response {
			return c.Do("POST", "/api/v1/invitations/"+tok+"/accept", body)
		}
		wantField(t, accept(e.Anon(), map[string]any{}), 422, "password")
		problemOf(t, accept(e.Anon(), map[string]any{"password": "not-the-password"}), 401)
		// Someone else's session does not stand in for the invitee's password.
		wantField(t, accept(e.Login("agent1@acme.test"), nil), 422, "password")
		if memberByEmail(t, owner, email) != nil {
			t.Fatal("refused accepts made a member")
		}

		session(t, e, accept(e.Anon(), map[string]any{"password": apptest.Password}).Want(200))
		globex := e.Login(email)
		me := globex.Do("GET", "/api/v1/me", nil).Want(200).JSON()
		if len(me["memberships"].([]any)) != 2 {
			t.Fatalf("memberships: %v", me["memberships"])
		}
		if role, _ := membershipRole(me, e.Globex.ID.String()); role != "tenant_owner" {
			t.Fatalf("Globex membership: %v", me["memberships"])
		}
		inAcme := globex.InOrg(e.Acme.ID).Do("GET", "/api/v1/me", nil).Want(200).JSON()
		if inAcme["role"] != "agent" || obj(inAcme["current_org"])["id"] != e.Acme.ID.String() {
			t.Fatalf("/me in Acme: %v", inAcme)
		}
		problemOf(t, globex.InOrg(e.Acme.ID).Do("GET", "/api/v1/members", nil), 403) // an agent in Acme
		globex.InOrg(e.Globex.ID).Do("GET", "/api/v1/members", nil).Want(200)        // still the owner at home
		problemOf(t, accept(e.Anon(), map[string]any{"password": apptest.Password}), 404)
	})
}

func TestInvitationAcceptWithOwnSession(t *testing.T) {
	eachDialect(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		owner := e.Login("owner@acme.test")
		_, tok := invite(t, e, owner, "manager@northwind.test", "analyst")
		manager := e.Login("manager@northwind.test")
		manager.Do("POST", "/api/v1/invitations/"+tok+"/accept", nil).Want(200)
		if m := memberByEmail(t, owner, "manager@northwind.test"); m == nil || m["role"] != "analyst" {
			t.Fatalf("member: %v", m)
		}
	})
}

func TestInvitationRevokeAndReplace(t *testing.T) {
	eachDialect(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		owner := e.Login("owner@acme.test")
		id, tok := invite(t, e, owner, "revoke.me@example.test", "agent")
		owner.Do("DELETE", "/api/v1/invitations/"+id, nil).Want(204)
		problemOf(t, e.Anon().Do("GET", "/api/v1/invitations/"+tok+"/preview", nil), 404)
		problemOf(t, e.Anon().Do("POST", "/api/v1/invitations/"+tok+"/accept", map[string]any{"name": "R", "password": "long-enough-pw"}), 404)
		problemOf(t, owner.Do("DELETE", "/api/v1/invitations/"+id, nil), 409)
		if countRows(t, e, "users", "email = ?", "revoke.me@example.test") != 0 {
			t.Fatal("a revoked invitation made a user")
		}

		// Inviting the same address again replaces the pending invitation in that tenant only.
		globexOwner := e.Login("owner@globex.test")
		_, globexTok := invite(t, e, globexOwner, "twice@example.test", "agent")
		_, first := invite(t, e, owner, "twice@example.test", "agent")
		_, second := invite(t, e, owner, "twice@example.test", "supervisor")
		if first == second {
			t.Fatal("the second invitation reused the first token")
		}
		problemOf(t, e.Anon().Do("GET", "/api/v1/invitations/"+first+"/preview", nil), 404)
		if p := e.Anon().Do("GET", "/api/v1/invitations/"+second+"/preview", nil).Want(200).JSON(); p["role"] != "supervisor" {
			t.Fatalf("replacement preview: %v", p)
		}
		if p := e.Anon().Do("GET", "/api/v1/invitations/"+globexTok+"/preview", nil).Want(200).JSON(); p["org_name"] != "Globex" {
			t.Fatalf("Globex's invitation was touched by Acme's: %v", p)
		}

		// Tokens that name no live invitation.
		for _, bad := range []string{"garbage", e.Acme.ID.String() + ".nope", e.Globex.ID.String() + "." + strings.SplitN(second, ".", 2)[1]} {
			problemOf(t, e.Anon().Do("GET", "/api/v1/invitations/"+bad+"/preview", nil), 404)
		}
	})
}

func TestInvitationRefusals(t *testing.T) {
	eachDialect(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		owner := e.Login("owner@acme.test")
		agent := e.Login("agent1@acme.test")
		owner.Do("PATCH", "/api/v1/members/"+userID(t, e, "agent2@acme.test"), map[string]any{"role": "tenant_admin"}).Want(200)
		admin := e.Login("agent2@acme.test")
		before := countRows(t, e, "invitations")
		cases := []struct {
			name   string
			actor  *apptest.Client
			body   map[string]any
			status int
			field  string
		}{
			{"already a member", owner, map[string]any{"email": "agent1@acme.test", "role": "agent"}, 422, "email"},
			{"already a member, other case", owner, map[string]any{"email": "Agent1@ACME.test", "role": "supervisor"}, 422, "email"},
			{"unknown role", owner, map[string]any{"email": "x@example.test", "role": "wizard"}, 422, "role"},
			{"role of another kind", owner, map[string]any{"email": "x@example.test", "role": "vendor_agent"}, 422, "role"},
			{"platform role", owner, map[string]any{"email": "x@example.test", "role": "platform_admin"}, 422, "role"},
			{"admin invites an owner", admin, map[string]any{"email": "x@example.test", "role": "tenant_owner"}, 403, ""},
			{"agent invites", agent, map[string]any{"email": "x@example.test", "role": "agent"}, 403, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				res := tc.actor.Do("POST", "/api/v1/invitations", tc.body)
				res.T = t
				if tc.field != "" {
					wantField(t, res, tc.status, tc.field)
				} else {
					problemOf(t, res, tc.status)
				}
			})
		}
		if n := countRows(t, e, "invitations"); n != before {
			t.Fatalf("invitations: %d, want %d", n, before)
		}
		problemOf(t, agent.Do("GET", "/api/v1/invitations", nil), 403)
	})
}

// ---- members ----

func TestMemberRoleChangeTakesEffect(t *testing.T) {
	eachDialect(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		owner := e.Login("owner@acme.test")
		agent := e.Login("agent1@acme.test")
		id := userID(t, e, "agent1@acme.test")

		problemOf(t, agent.Do("GET", "/api/v1/members", nil), 403)
		m := owner.Do("PATCH", "/api/v1/members/"+id, map[string]any{"role": "supervisor"}).Want(200).JSON()
		if m["role"] != "supervisor" || m["user_id"] != id || m["status"] != "active" {
			t.Fatalf("patched member: %v", m)
		}
		agent.Do("GET", "/api/v1/members", nil).Want(200) // the same session, at once
		if me := agent.Do("GET", "/api/v1/me", nil).Want(200).JSON(); me["role"] != "supervisor" || !slices.Contains(me["permissions"].([]any), any("members:read")) {
			t.Fatalf("/me after promotion: %v", me)
		}
		problemOf(t, agent.Do("PATCH", "/api/v1/members/"+id, map[string]any{"role": "tenant_admin"}), 403) // supervisors read only

		owner.Do("PATCH", "/api/v1/members/"+id, map[string]any{"role": "agent"}).Want(200)
		problemOf(t, agent.Do("GET", "/api/v1/members", nil), 403)

		wantField(t, owner.Do("PATCH", "/api/v1/members/"+id, map[string]any{"role": "vendor_manager"}), 422, "role")
		problemOf(t, owner.Do("PATCH", "/api/v1/members/"+userID(t, e, "owner@globex.test"), map[string]any{"role": "agent"}), 404)
		problemOf(t, owner.Do("PATCH", "/api/v1/members/"+ids.New().String(), map[string]any{"role": "agent"}), 404)
	})
}

func TestMemberDisable(t *testing.T) {
	eachDialect(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		owner := e.Login("owner@acme.test")
		id := userID(t, e, "agent1@acme.test")
		owner.Do("PATCH", "/api/v1/members/"+id, map[string]any{"role": "supervisor"}).Want(200)
		old := e.Login("agent1@acme.test")
		old.Do("GET", "/api/v1/members", nil).Want(200)

		m := owner.Do("PATCH", "/api/v1/members/"+id, map[string]any{"disabled": true}).Want(200).JSON()
		if m["status"] != "disabled" {
			t.Fatalf("disabled member: %v", m)
		}
		problemOf(t, old.Do("GET", "/api/v1/me", nil), 401)

		again := e.Login("agent1@acme.test") // the account itself still works
		me := again.Do("GET", "/api/v1/me", nil).Want(200).JSON()
		if _, ok := membershipRole(me, e.Acme.ID.String()); ok || me["current_org"] != nil {
			t.Fatalf("/me of a disabled member: %v", me)
		}
		problemOf(t, again.InOrg(e.Acme.ID).Do("GET", "/api/v1/members", nil), 404)
		problemOf(t, again.Do("GET", "/api/v1/members", nil), 404)
		if m := memberByEmail(t, owner, "agent1@acme.test"); m == nil || m["status"] != "disabled" {
			t.Fatalf("member list entry: %v", m)
		}

		owner.Do("PATCH", "/api/v1/members/"+id, map[string]any{"disabled": false}).Want(200)
		again.InOrg(e.Acme.ID).Do("GET", "/api/v1/members", nil).Want(200)
	})
}

func TestMemberRemove(t *testing.T) {
	eachDialect(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		owner := e.Login("owner@acme.test")
		vagent := e.Login("vagent1@northwind.test")
		id := userID(t, e, "vagent1@northwind.test")

		owner.Do("DELETE", "/api/v1/members/"+id, nil).Want(204)
		if memberByEmail(t, owner, "vagent1@northwind.test") != nil {
			t.Fatal("removed member still listed")
		}
		problemOf(t, vagent.Do("GET", "/api/v1/me", nil), 401)
		me := e.Login("vagent1@northwind.test").Do("GET", "/api/v1/me", nil).Want(200).JSON()
		if _, inAcme := membershipRole(me, e.Acme.ID.String()); inAcme {
			t.Fatalf("still in Acme: %v", me["memberships"])
		}
		if role, _ := membershipRole(me, e.Northwind.ID.String()); role != "vendor_agent" {
			t.Fatalf("lost the Northwind membership: %v", me["memberships"])
		}
		problemOf(t, owner.Do("DELETE", "/api/v1/members/"+id, nil), 404)
		problemOf(t, owner.Do("DELETE", "/api/v1/members/"+userID(t, e, "owner@globex.test"), nil), 404)
		if memberByEmail(t, e.Login("owner@globex.test"), "owner@globex.test") == nil {
			t.Fatal("Globex owner lost their membership")
		}
	})
}

func TestLastOwnerStays(t *testing.T) {
	eachDialect(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		owner := e.Login("owner@acme.test")
		id := userID(t, e, "owner@acme.test")
		path := "/api/v1/members/" + id
		for _, r := range []*apptest.Response{
			owner.Do("PATCH", path, map[string]any{"role": "tenant_admin"}),
			owner.Do("PATCH", path, map[string]any{"disabled": true}),
			owner.Do("PATCH", path, map[string]any{"role": "tenant_owner", "disabled": true}),
			owner.Do("DELETE", path, nil),
		} {
			problemOf(t, r, 409)
		}
		if m := memberByEmail(t, owner, "owner@acme.test"); m["role"] != "tenant_owner" || m["status"] != "active" {
			t.Fatalf("owner after refused changes: %v", m)
		}
		// With a second owner the first may step down.
		owner.Do("PATCH", "/api/v1/members/"+userID(t, e, "agent1@acme.test"), map[string]any{"role": "tenant_owner"}).Want(200)
		owner.Do("PATCH", path, map[string]any{"role": "tenant_admin"}).Want(200)
		second := e.Login("agent1@acme.test")
		problemOf(t, second.Do("DELETE", "/api/v1/members/"+userID(t, e, "agent1@acme.test"), nil), 409)
	})
}

// TestMemberPagination walks the member list one at a time.
func TestMemberPagination(t *testing.T) {
	eachDialect(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		owner := e.Login("owner@acme.test")
		all := owner.Do("GET", "/api/v1/members", nil).Want(200).Items()
		if len(all) != 4 {
			t.Fatalf("Acme has %d members, want 4", len(all))
		}
		var walked []string
		path := "/api/v1/members?limit=1"
		for i := 0; i < 10; i++ {
			var page struct {
				Items      []map[string]any `json:"items"`
				NextCursor *string          `json:"next_cursor"`
			}
			if err := json.Unmarshal(owner.Do("GET", path, nil).Want(200).Body, &page); err != nil {
				t.Fatal(err)
			}
			for _, m := range page.Items {
				walked = append(walked, str(m["user_id"]))
			}
			if page.NextCursor == nil {
				break
			}
			path = "/api/v1/members?limit=1&cursor=" + *page.NextCursor
		}
		var want []string
		for _, m := range all {
			want = append(want, str(m["user_id"]))
		}
		if !slices.Equal(walked, want) {
			t.Fatalf("pages %v, want %v", walked, want)
		}
	})
}

// ---- API keys ----

func TestAPIKeys(t *testing.T) {
	eachDialect(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		owner := e.Login("owner@acme.test")
		created := owner.Do("POST", "/api/v1/api-keys", map[string]any{"name": "zapier", "role": "agent"}).Want(201).JSON()
		key, id := str(created["key"]), str(created["id"])
		if !strings.HasPrefix(key, "sbk_") || created["name"] != "zapier" || created["role"] != "agent" || id == "" {
			t.Fatalf("created key: %v", created)
		}
		if created["last_used_at"] != nil || created["revoked_at"] != nil {
			t.Fatalf("fresh key: %v", created)
		}
		secret := key[strings.LastIndexByte(key[:len("sbk_")+33], '_')+1:]
		shownOnce := func(r *apptest.Response) {
			t.Helper()
			b := string(r.Body)
			for _, leak := range []string{key, secret, ids.Hash(key), `"key"`, `"key_hash"`} {
				if strings.Contains(b, leak) {
					t.Fatalf("%s shows %q: %s", r.Req, leak, b)
				}
			}
		}
		got := owner.Do("GET", "/api/v1/api-keys/"+id, nil).Want(200)
		shownOnce(got)
		if k := got.JSON(); k["name"] != "zapier" || k["role"] != "agent" || k["prefix"] == "" || k["last_used_at"] != nil {
			t.Fatalf("key: %v", k)
		}
		list := owner.Do("GET", "/api/v1/api-keys", nil).Want(200)
		shownOnce(list)
		if items := list.Items(); len(items) != 1 || items[0]["id"] != id {
			t.Fatalf("key list: %v", items)
		}

		// The key acts in Acme as an agent: authenticated, but agents may not read members.
		agentKey := e.Key(key)
		problemOf(t, agentKey.Do("GET", "/api/v1/members", nil), 403)
		problemOf(t, agentKey.Do("GET", "/api/v1/me", nil), 401) // /me is for people
		if k := owner.Do("GET", "/api/v1/api-keys/"+id, nil).Want(200).JSON(); k["last_used_at"] == nil {
			t.Fatalf("last_used_at not set after use: %v", k)
		}

		admin := str(owner.Do("POST", "/api/v1/api-keys", map[string]any{"name": "admin", "role": "tenant_admin"}).Want(201).JSON()["key"])
		members := e.Key(admin).Do("GET", "/api/v1/members", nil).Want(200).Items()
		if len(members) != 4 || !slices.ContainsFunc(members, func(m map[string]any) bool { return m["email"] == "owner@acme.test" }) {
			t.Fatalf("admin key members: %v", members)
		}
		// The organisation header does not move a key to another organisation.
		for _, m := range e.Key(admin).InOrg(e.Globex.ID).Do("GET", "/api/v1/members", nil).Want(200).Items() {
			if m["email"] == "owner@globex.test" {
				t.Fatal("an Acme key read Globex's members")
			}
		}

		wantField(t, owner.Do("POST", "/api/v1/api-keys", map[string]any{"name": "boss", "role": "tenant_owner"}), 422, "role")
		wantField(t, owner.Do("POST", "/api/v1/api-keys", map[string]any{"name": "v", "role": "vendor_manager"}), 422, "role")
		problemOf(t, e.Login("agent1@acme.test").Do("POST", "/api/v1/api-keys", map[string]any{"name": "mine", "role": "agent"}), 403)
		problemOf(t, e.Login("owner@globex.test").Do("GET", "/api/v1/api-keys/"+id, nil), 404)

		owner.Do("DELETE", "/api/v1/api-keys/"+id, nil).Want(204)
		problemOf(t, agentKey.Do("GET", "/api/v1/members", nil), 401)
		if k := owner.Do("GET", "/api/v1/api-keys/"+id, nil).Want(200).JSON(); k["revoked_at"] == nil {
			t.Fatalf("revoked key: %v", k)
		}
		owner.Do("DELETE", "/api/v1/api-keys/"+id, nil).Want(204) // idempotent
		e.Key(admin).Do("GET", "/api/v1/members", nil).Want(200)  // other keys unaffected
	})
}

func TestBadBearer(t *testing.T) {
	eachDialect(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		owner := e.Login("owner@acme.test")
		key := str(owner.Do("POST", "/api/v1/api-keys", map[string]any{"name": "real", "role": "tenant_admin"}).Want(201).JSON()["key"])
		acmeHex := strings.ReplaceAll(e.Acme.ID.String(), "-", "")
		globexHex := strings.ReplaceAll(e.Globex.ID.String(), "-", "")
		cases := map[string]string{
			"garbage":                 "Bearer garbage",
			"empty":                   "Bearer ",
			"not bearer":              "Basic b3duZXI6cGFzcw==",
			"prefix only":             "Bearer sbk_",
			"unknown org":             "Bearer sbk_" + strings.ReplaceAll(ids.New().String(), "-", "") + "_" + ids.Secret(32),
			"right org, wrong secret": "Bearer sbk_" + acmeHex + "_" + ids.Secret(32),
			"moved to another org":    "Bearer " + strings.Replace(key, acmeHex, globexHex, 1),
			"truncated":               "Bearer " + key[:len(key)-1],
		}
		for name, h := range cases {
			t.Run(name, func(t *testing.T) {
				res := e.Anon().Do("GET", "/api/v1/members", nil, "Authorization", h)
				res.T = t
				problemOf(t, res, 401)
			})
		}
		// A bad bearer is refused even on public routes and with a valid cookie alongside.
		problemOf(t, e.Anon().Do("GET", "/api/v1/invitations/x/preview", nil, "Authorization", "Bearer garbage"), 401)
		problemOf(t, owner.Do("GET", "/api/v1/members", nil, "Authorization", "Bearer garbage"), 401)
	})
}

// ---- audit ----

func TestAuditTrail(t *testing.T) {
	eachDialect(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		// A new tenant's log starts with its creation.
		res := e.Anon().Do("POST", "/api/v1/auth/signup", signupBody("Initech", "peter@initech.test")).Want(201)
		initech := session(t, e, res)
		initechID := str(obj(res.JSON()["current_org"])["id"])
		evs := initech.Do("GET", "/api/v1/audit-events", nil).Want(200).Items()
		if len(evs) != 1 || evs[0]["action"] != "tenant.created" || evs[0]["object_id"] != initechID ||
			evs[0]["actor_email"] != "peter@initech.test" || evs[0]["ip"] == "" || evs[0]["tenant_id"] != initechID {
			t.Fatalf("new tenant's log: %v", evs)
		}

		owner := e.Login("owner@acme.test")
		_, tok := invite(t, e, owner, "audited@example.test", "agent")
		e.Anon().Do("POST", "/api/v1/invitations/"+tok+"/accept", map[string]any{"name": "Audrey", "password": "long-enough-pw"}).Want(200)
		keyID := str(owner.Do("POST", "/api/v1/api-keys", map[string]any{"name": "audited", "role": "agent"}).Want(201).JSON()["id"])
		owner.Do("DELETE", "/api/v1/api-keys/"+keyID, nil).Want(204)
		agentID := userID(t, e, "agent1@acme.test")
		agent := e.Login("agent1@acme.test")
		problemOf(t, agent.Do("GET", "/api/v1/audit-events", nil), 403)
		owner.Do("PATCH", "/api/v1/members/"+agentID, map[string]any{"role": "supervisor"}).Want(200)

		want := map[string]string{ // action → who did it
			"invitation.created":  "owner@acme.test",
			"invitation.accepted": "audited@example.test",
			"api_key.created":     "owner@acme.test",
			"api_key.revoked":     "owner@acme.test",
			"member.updated":      "owner@acme.test",
		}
		acmeEvents := owner.Do("GET", "/api/v1/audit-events?limit=200", nil).Want(200).Items()
		for action, actor := range want {
			i := slices.IndexFunc(acmeEvents, func(ev map[string]any) bool { return ev["action"] == action })
			if i < 0 {
				t.Errorf("Acme's log lacks %s", action)
				continue
			}
			ev := acmeEvents[i]
			if ev["actor_email"] != actor || ev["ip"] == "" || ev["tenant_id"] != e.Acme.ID.String() || ev["created_at"] == nil {
				t.Errorf("%s event: %v", action, ev)
			}
		}
		for _, ev := range acmeEvents {
			if ev["tenant_id"] != e.Acme.ID.String() {
				t.Fatalf("Acme's log shows another tenant's event: %v", ev)
			}
		}
		filtered := owner.Do("GET", "/api/v1/audit-events?action=api_key.created", nil).Want(200).Items()
		if len(filtered) != 1 || filtered[0]["object_id"] != keyID {
			t.Fatalf("?action=api_key.created: %v", filtered)
		}
		if ev := owner.Do("GET", "/api/v1/audit-events?action=member.updated", nil).Want(200).Items(); len(ev) != 1 || ev[0]["object_id"] != agentID || obj(ev[0]["data"])["role"] != "supervisor" {
			t.Fatalf("member.updated: %v", ev)
		}

		problemOf(t, agent.Do("GET", "/api/v1/audit-events", nil), 403) // a supervisor now: still no audit:read

		globex := e.Login("owner@globex.test")
		for _, ev := range globex.Do("GET", "/api/v1/audit-events?limit=200", nil).Want(200).Items() {
			if ev["tenant_id"] != e.Globex.ID.String() {
				t.Fatalf("Globex sees another organisation's event: %v", ev)
			}
		}
		wantField(t, owner.Do("GET", "/api/v1/audit-events?tenant_id="+e.Globex.ID.String(), nil), 422, "tenant_id")
		wantField(t, owner.Do("GET", "/api/v1/audit-events?tenant_id="+e.Acme.ID.String(), nil), 422, "tenant_id")

		admin := e.Login("admin@switchboard.test")
		tenants := map[string]bool{}
		for _, ev := range admin.Do("GET", "/api/v1/audit-events?limit=200", nil).Want(200).Items() {
			tenants[str(ev["tenant_id"])] = true
		}
		if !tenants[e.Acme.ID.String()] || !tenants[initechID] {
			t.Fatalf("platform admin sees events of %v, want Acme and Initech among them", tenants)
		}
		onlyAcme := admin.Do("GET", "/api/v1/audit-events?limit=200&tenant_id="+e.Acme.ID.String(), nil).Want(200).Items()
		if len(onlyAcme) != len(acmeEvents) {
			t.Errorf("?tenant_id=acme gives %d events, Acme's owner sees %d", len(onlyAcme), len(acmeEvents))
		}
		for _, ev := range onlyAcme {
			if ev["tenant_id"] != e.Acme.ID.String() {
				t.Fatalf("?tenant_id=acme shows %v", ev)
			}
		}
		wantField(t, admin.Do("GET", "/api/v1/audit-events?tenant_id=not-a-uuid", nil), 422, "tenant_id")
	})
}

func TestAuditAppendOnly(t *testing.T) {
	eachDialect(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		owner := e.Login("owner@acme.test")
		owner.Do("POST", "/api/v1/api-keys", map[string]any{"name": "x", "role": "agent"}).Want(201)
		before := countRows(t, e, "audit_events")
		if before == 0 {
			t.Fatal("no audit events to protect")
		}
		db := e.App.DB.Gorm()
		if err := db.Exec("UPDATE audit_events SET action = 'x'").Error; err == nil {
			t.Error("UPDATE audit_events succeeded")
		}
		if err := db.Exec("DELETE FROM audit_events").Error; err == nil {
			t.Error("DELETE FROM audit_events succeeded")
		}
		if n := countRows(t, e, "audit_events"); n != before {
			t.Fatalf("audit_events: %d rows, want %d", n, before)
		}
		if n := countRows(t, e, "audit_events", "action = ?", "x"); n != 0 {
			t.Fatalf("%d audit events were rewritten", n)
		}
	})
}

// ---- organisation selection ----

func TestMeInForeignOrg(t *testing.T) {
	eachDialect(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		globex := e.Login("owner@globex.test")
		problemOf(t, globex.InOrg(e.Acme.ID).Do("GET", "/api/v1/me", nil), 404)
		problemOf(t, globex.InOrg(e.Acme.ID).Do("GET", "/api/v1/members", nil), 404)
		problemOf(t, globex.InOrg(ids.New()).Do("GET", "/api/v1/me", nil), 404)
		globex.InOrg(e.Globex.ID).Do("GET", "/api/v1/me", nil).Want(200)

		// vagent1 belongs to two organisations and picks one with the header.
		v := e.Login("vagent1@northwind.test")
		for org, role := range map[string]string{e.Acme.ID.String(): "agent", e.Northwind.ID.String(): "vendor_agent"} {
			c := *v
			c.Org = org
			if me := c.Do("GET", "/api/v1/me", nil).Want(200).JSON(); me["role"] != role || obj(me["current_org"])["id"] != org {
				t.Fatalf("/me in %s: %v", org, me)
			}
		}
	})
}

// ---- findings ----

// TestAccountEventsAudited: account events that belong to no tenant go to the platform's log,
// where the platform admin reads them.
func TestAccountEventsAudited(t *testing.T) {
	eachDialect(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		const email = "agent1@acme.test"
		problemOf(t, e.Anon().Do("POST", "/api/v1/auth/login", map[string]any{"email": email, "password": "wrong-password"}), 401)
		e.Login(email)
		e.Anon().Do("POST", "/api/v1/auth/password-reset", map[string]any{"email": email}).Want(202)
		tok := apptest.Token(e.Mail(email, "/reset-password"))
		e.Anon().Do("POST", "/api/v1/auth/password-reset/confirm", map[string]any{"token": tok, "password": newPassword}).Want(200)
		e.Anon().Do("POST", "/api/v1/auth/signup", signupBody("Initech", "peter@initech.test")).Want(201)
		e.Anon().Do("POST", "/api/v1/auth/verify-email", map[string]any{"token": apptest.Token(e.Mail("peter@initech.test", "/verify-email"))}).Want(200)

		admin := e.Login("admin@switchboard.test")
		for _, action := range []string{"auth.login_failed", "auth.login", "auth.password_reset_requested", "auth.password_reset", "auth.email_verified"} {
			evs := admin.Do("GET", "/api/v1/audit-events?action="+action+"&tenant_id="+e.Platform.ID.String(), nil).Want(200).Items()
			if len(evs) == 0 {
				t.Errorf("the platform's log has no %s event", action)
			}
		}
	})
}

// TestAdminCannotMakeThemselvesOwner: only an owner makes owners (Invite refuses an admin
// inviting an owner); a tenant admin must not promote anyone, themselves included, to owner
// and then push the real owner out.
func TestAdminCannotMakeThemselvesOwner(t *testing.T) {
	eachDialect(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		owner := e.Login("owner@acme.test")
		adminID := userID(t, e, "agent2@acme.test")
		owner.Do("PATCH", "/api/v1/members/"+adminID, map[string]any{"role": "tenant_admin"}).Want(200)
		admin := e.Login("agent2@acme.test")
		key := str(owner.Do("POST", "/api/v1/api-keys", map[string]any{"name": "admin", "role": "tenant_admin"}).Want(201).JSON()["key"])

		for name, res := range map[string]*apptest.Response{
			"admin promotes themselves":   admin.Do("PATCH", "/api/v1/members/"+adminID, map[string]any{"role": "tenant_owner"}),
			"admin key promotes an agent": e.Key(key).Do("PATCH", "/api/v1/members/"+userID(t, e, "agent1@acme.test"), map[string]any{"role": "tenant_owner"}),
		} {
			if res.Status == 200 {
				t.Errorf("%s: a tenant_admin made an owner (200 %s)", name, res.Body)
			}
		}
		if m := memberByEmail(t, owner, "agent2@acme.test"); m["role"] != "tenant_admin" {
			t.Errorf("the admin is now %v", m["role"])
			// What that allows: the self-made owner removes the real one.
			if res := admin.Do("DELETE", "/api/v1/members/"+userID(t, e, "owner@acme.test"), nil); res.Status == 204 {
				t.Errorf("the self-made owner removed the real owner")
			}
		}
	})
}

// TestKeyCannotOutrankItsCreator: someone trusted only with API keys (a custom role holding
// api_keys:write) must not mint a key with more rights than they have themselves.
func TestKeyCannotOutrankItsCreator(t *testing.T) {
	eachDialect(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		owner := e.Login("owner@acme.test")
		owner.Do("POST", "/api/v1/roles", map[string]any{"name": "keymaster", "permissions": []string{"api_keys:read", "api_keys:write"}}).Want(201)
		owner.Do("PATCH", "/api/v1/members/"+userID(t, e, "agent1@acme.test"), map[string]any{"role": "keymaster"}).Want(200)
		km := e.Login("agent1@acme.test")
		problemOf(t, km.Do("GET", "/api/v1/members", nil), 403)
		problemOf(t, km.Do("PATCH", "/api/v1/members/"+userID(t, e, "agent2@acme.test"), map[string]any{"role": "tenant_admin"}), 403)

		res := km.Do("POST", "/api/v1/api-keys", map[string]any{"name": "escalate", "role": "tenant_admin"})
		if res.Status != 201 {
			return // refused: as it should be
		}
		t.Errorf("a keymaster minted a tenant_admin key: %s", res.Body)
		key := e.Key(str(res.JSON()["key"]))
		if key.Do("PATCH", "/api/v1/members/"+userID(t, e, "agent2@acme.test"), map[string]any{"role": "tenant_admin"}).Status == 200 {
			t.Errorf("with it, they changed a member's role they could not change themselves")
		}
	})
}
