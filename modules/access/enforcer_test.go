package access_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/switchboard-cloud/switchboard/modules/access"
)

// source is a PolicySource over rules held in memory: the test's input, swapped atomically so
// a reload can run while the test changes it.
type source struct {
	rules atomic.Pointer[[][]string]
	err   atomic.Pointer[error]
}

func newSource(rules [][]string) *source {
	s := &source{}
	s.set(rules)
	return s
}

func (s *source) set(rules [][]string) { s.rules.Store(&rules) }

func (s *source) Policies(context.Context) ([][]string, error) {
	if e := s.err.Load(); e != nil {
		return nil, *e
	}
	return slices.Clone(*s.rules.Load()), nil
}

func newEnforcer(t testing.TB, src access.PolicySource) *access.Enforcer {
	t.Helper()
	e, err := access.NewEnforcer(context.Background(), src, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Domains and users of the fixture. Domains are organisations: two tenants, a vendor and the
// platform.
const (
	acme, globex, northwind, platform = "acme", "globex", "northwind", "platform"

	ownerA   = "user-owner-acme"
	ownerG   = "user-owner-globex"
	agent1   = "user-agent1-acme"
	vagent   = "user-vagent-northwind" // outsourced: vendor_agent at Northwind, agent at Acme
	helperA  = "user-helper-acme"      // holds Acme's custom role "helper"
	auditorA = "user-auditor-acme"     // holds Acme's custom role "auditor"
	admin    = "user-platform-admin"
)

// policies is v1 of the fixture: built-in roles' permissions in domain "*", custom roles in
// their organisation's domain, and grants per domain, as Service.Policies produces them.
func policies() [][]string {
	p := func(sub, dom, obj, act string) []string { return []string{"p", sub, dom, obj, act} }
	g := func(user, role, dom string) []string { return []string{"g", user, role, dom} }
	return [][]string{
		p("tenant_owner", "*", "members", "read"), p("tenant_owner", "*", "members", "write"),
		p("tenant_owner", "*", "api_keys", "read"), p("tenant_owner", "*", "api_keys", "write"),
		p("tenant_admin", "*", "members", "read"), p("tenant_admin", "*", "members", "write"),
		p("supervisor", "*", "members", "read"), p("supervisor", "*", "conversations", "reassign"),
		p("agent", "*", "conversations", "read"), p("agent", "*", "conversations", "reply"),
		p("vendor_agent", "*", "seats", "read"),
		p("vendor_manager", "*", "seats", "write"),
		p("platform_admin", "*", "tenants", "suspend"),
		// Custom roles: Acme's helper and auditor; Globex has its own, different, helper.
		p("helper", acme, "members", "read"),
		p("auditor", acme, "audit", "read"),
		p("helper", globex, "api_keys", "read"),

		g(ownerA, "tenant_owner", acme),
		g(ownerG, "tenant_owner", globex),
		g(agent1, "agent", acme),
		g(vagent, "vendor_agent", northwind),
		g(vagent, "agent", acme), // a seat allocation at Acme
		g(helperA, "helper", acme),
		g(auditorA, "auditor", acme),
		g(admin, "platform_admin", platform),
	}
}

type req struct{ sub, dom, obj, act string }

func (r req) String() string { return fmt.Sprintf("%s in %s may %s:%s", r.sub, r.dom, r.obj, r.act) }

func TestEnforce(t *testing.T) {
	e := newEnforcer(t, newSource(policies()))
	cases := []struct {
		req
		want bool
		why  string
	}{
		{req{ownerA, acme, "members", "write"}, true, "built-in role in its domain"},
		{req{ownerA, globex, "members", "write"}, false, "Acme's owner has no role in Globex"},
		{req{ownerG, acme, "members", "read"}, false, "Globex's owner has no role in Acme"},
		{req{ownerG, globex, "api_keys", "write"}, true, "built-in role in its domain"},
		{req{agent1, acme, "conversations", "reply"}, true, "agent"},
		{req{agent1, acme, "members", "read"}, false, "agents do not read members"},
		{req{agent1, acme, "conversations", "delete"}, false, "no such permission"},

		// The vendor-agent rule: the agent role at Acme does not follow the person elsewhere.
		{req{vagent, acme, "conversations", "reply"}, true, "outsourced agent in the allocated tenant"},
		{req{vagent, globex, "conversations", "reply"}, false, "outsourced agent in another tenant"},
		{req{vagent, globex, "conversations", "read"}, false, "outsourced agent in another tenant"},
		{req{vagent, northwind, "conversations", "reply"}, false, "vendor_agent at the vendor cannot answer"},
		{req{vagent, northwind, "seats", "read"}, true, "vendor_agent at the vendor"},
		{req{vagent, acme, "seats", "read"}, false, "vendor_agent is a Northwind role, not an Acme one"},

		// Custom roles live in their organisation's domain.
		{req{helperA, acme, "members", "read"}, true, "Acme's custom role in Acme"},
		{req{helperA, globex, "members", "read"}, false, "Acme's custom role is not usable in Globex"},
		{req{helperA, acme, "api_keys", "read"}, false, "that is Globex's helper, not Acme's"},
		{req{helperA, globex, "api_keys", "read"}, false, "holding helper in Acme gives nothing in Globex"},
		{req{auditorA, acme, "audit", "read"}, true, "Acme's auditor"},
		{req{auditorA, globex, "audit", "read"}, false, "Acme's auditor in Globex"},

		// API keys enforce with their role's name as the subject, in the key's organisation.
		{req{"agent", acme, "conversations", "reply"}, true, "key with a built-in role"},
		{req{"agent", globex, "conversations", "reply"}, true, "built-in roles hold in every domain"},
		{req{"agent", acme, "members", "read"}, false, "key with a built-in role lacking the permission"},
		{req{"tenant_admin", acme, "members", "write"}, true, "admin key"},
		{req{"helper", acme, "members", "read"}, true, "key with Acme's custom role in Acme"},
		{req{"helper", acme, "api_keys", "read"}, false, "Acme's helper cannot read keys"},
		{req{"helper", globex, "api_keys", "read"}, true, "Globex's own helper"},
		{req{"helper", globex, "members", "read"}, false, "Acme's helper permissions do not apply in Globex"},
		{req{"auditor", globex, "audit", "read"}, false, "Acme's custom role named by a Globex key"},
		{req{"auditor", acme, "audit", "read"}, true, "Acme's custom role named by an Acme key"},

		{req{admin, platform, "tenants", "suspend"}, true, "platform admin in the platform"},
		{req{admin, acme, "tenants", "suspend"}, false, "platform role granted only in the platform domain"},
		{req{"nobody", acme, "members", "read"}, false, "unknown subject"},
		{req{"", acme, "members", "read"}, false, "empty subject"},
		{req{ownerA, "", "members", "read"}, false, "empty domain"},
		{req{ownerA, "*", "members", "read"}, false, "nobody holds a role in the wildcard domain"},
	}
	for _, c := range cases {
		// Twice through Enforce (the second from the memo) and once without it.
		for i := 0; i < 2; i++ {
			if got := e.Enforce(c.sub, c.dom, c.obj, c.act); got != c.want {
				t.Errorf("Enforce (pass %d): %v = %v, want %v (%s)", i+1, c.req, got, c.want, c.why)
			}
		}
		if got := e.EnforceUncached(c.sub, c.dom, c.obj, c.act); got != c.want {
			t.Errorf("EnforceUncached: %v = %v, want %v (%s)", c.req, got, c.want, c.why)
		}
	}
	for _, c := range []struct {
		sub, dom string
		want     []string
	}{
		{vagent, acme, []string{"agent"}},
		{vagent, northwind, []string{"vendor_agent"}},
		{vagent, globex, nil},
		{helperA, acme, []string{"helper"}},
	} {
		if got := e.RolesIn(c.sub, c.dom); !slices.Equal(got, c.want) {
			t.Errorf("RolesIn(%s, %s) = %v, want %v", c.sub, c.dom, got, c.want)
		}
	}
}

// TestReloadReplacesMemoisedDecisions: a decision memoised before a policy change is not
// served after the reload (an ended seat allocation takes effect at once).
func TestReloadReplacesMemoisedDecisions(t *testing.T) {
	src := newSource(policies())
	e := newEnforcer(t, src)
	if !e.Enforce(vagent, acme, "conversations", "reply") {
		t.Fatal("outsourced agent refused at Acme before the change")
	}
	src.set(slices.DeleteFunc(policies(), func(r []string) bool { return slices.Equal(r, []string{"g", vagent, "agent", acme}) }))
	if !e.Enforce(vagent, acme, "conversations", "reply") {
		t.Error("the policy changed without a Reload") // snapshots change only on Reload
	}
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e.Enforce(vagent, acme, "conversations", "reply") || e.EnforceUncached(vagent, acme, "conversations", "reply") {
		t.Error("outsourced agent still answers at Acme after the allocation ended and the policies were reloaded")
	}
	if !e.Enforce(vagent, northwind, "seats", "read") {
		t.Error("the reload lost the agent's vendor role")
	}
}

// TestReloadFailureKeepsPolicies: a failed reload returns the error and leaves the loaded
// policies in force (neither empty nor half-applied).
func TestReloadFailureKeepsPolicies(t *testing.T) {
	src := newSource(policies())
	e := newEnforcer(t, src)
	boom := errors.New("database down")
	src.err.Store(&boom)
	if err := e.Reload(context.Background()); !errors.Is(err, boom) {
		t.Errorf("Reload with a failing source: %v, want %v", err, boom)
	}
	src.err.Store(nil)
	src.set(append(policies(), []string{"p", "too", "few"}))
	if err := e.Reload(context.Background()); err == nil {
		t.Error("Reload accepted a malformed rule")
	}
	if !e.Enforce(ownerA, acme, "members", "write") || e.Enforce(ownerA, globex, "members", "write") {
		t.Error("a failed reload changed the decisions")
	}
}

// TestEnforceDuringReloads runs Enforce, EnforceUncached and RolesIn in goroutines while
// others reload between two policy versions. Every answer must be the answer of one of the two
// versions (run it with -race), and once the last reload returns, the answers are its own.
func TestEnforceDuringReloads(t *testing.T) {
	v1 := policies()
	// v2: the outsourced agent's allocation at Acme ended, agent1 was promoted to supervisor,
	// and Acme's helper role now reads API keys instead of members.
	v2 := slices.DeleteFunc(policies(), func(r []string) bool {
		return slices.Equal(r, []string{"g", vagent, "agent", acme}) ||
			slices.Equal(r, []string{"g", agent1, "agent", acme}) ||
			slices.Equal(r, []string{"p", "helper", acme, "members", "read"})
	})
	v2 = append(v2, []string{"g", agent1, "supervisor", acme}, []string{"p", "helper", acme, "api_keys", "read"})

	var reqs []req
	for _, sub := range []string{ownerA, ownerG, agent1, vagent, helperA, auditorA, "helper", "agent"} {
		for _, dom := range []string{acme, globex, northwind} {
			for _, oa := range [][2]string{{"members", "read"}, {"conversations", "reply"}, {"conversations", "reassign"},
				{"api_keys", "read"}, {"seats", "read"}, {"audit", "read"}} {
				reqs = append(reqs, req{sub, dom, oa[0], oa[1]})
			}
		}
	}
	// What each version answers, from an enforcer that never reloads.
	want1, want2 := make([]bool, len(reqs)), make([]bool, len(reqs))
	e1, e2 := newEnforcer(t, newSource(v1)), newEnforcer(t, newSource(v2))
	differ := 0
	for i, r := range reqs {
		want1[i], want2[i] = e1.EnforceUncached(r.sub, r.dom, r.obj, r.act), e2.EnforceUncached(r.sub, r.dom, r.obj, r.act)
		if want1[i] != want2[i] {
			differ++
		}
	}
	if differ < 4 {
		t.Fatalf("only %d requests tell the versions apart; the test would prove little", differ)
	}
	roles1, roles2 := e1.RolesIn(agent1, acme), e2.RolesIn(agent1, acme)

	src := newSource(v1)
	e := newEnforcer(t, src)
	const readers, reloaders, reloads = 4, 2, 60
	var done atomic.Bool
	var seen2 atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	report := func(s string) {
		select {
		case errs <- s:
		default:
		}
	}
	for g := 0; g < readers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for round := 0; !done.Load() || round < 3; round++ {
				for k := range reqs {
					i := (k + g*7) % len(reqs) // readers walk the requests out of step
					r := reqs[i]
					got := e.Enforce(r.sub, r.dom, r.obj, r.act)
					if got != want1[i] && got != want2[i] {
						report(fmt.Sprintf("Enforce: %v = %v, in neither version", r, got))
					}
					if want1[i] != want2[i] && got == want2[i] {
						seen2.Add(1)
					}
					if got := e.EnforceUncached(r.sub, r.dom, r.obj, r.act); got != want1[i] && got != want2[i] {
						report(fmt.Sprintf("EnforceUncached: %v = %v, in neither version", r, got))
					}
				}
				if roles := e.RolesIn(agent1, acme); !slices.Equal(roles, roles1) && !slices.Equal(roles, roles2) {
					report(fmt.Sprintf("RolesIn(agent1, acme) = %v, neither %v nor %v", roles, roles1, roles2))
				}
			}
		}(g)
	}
	var rwg sync.WaitGroup
	for w := 0; w < reloaders; w++ {
		rwg.Add(1)
		go func(w int) {
			defer rwg.Done()
			for i := 0; i < reloads; i++ {
				if (i+w)%2 == 0 {
					src.set(v2)
				} else {
					src.set(v1)
				}
				if err := e.Reload(context.Background()); err != nil {
					report("Reload: " + err.Error())
				}
			}
		}(w)
	}
	rwg.Wait()
	done.Store(true)
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Error(s)
	}
	t.Logf("%d requests differ between the versions; readers saw v2's answer %d times", differ, seen2.Load())

	for _, final := range []struct {
		name  string
		rules [][]string
		want  []bool
	}{{"v2", v2, want2}, {"v1", v1, want1}, {"v2 again", v2, want2}} {
		src.set(final.rules)
		if err := e.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		for i, r := range reqs {
			if got := e.Enforce(r.sub, r.dom, r.obj, r.act); got != final.want[i] {
				t.Errorf("after the final reload to %s: Enforce %v = %v, want %v", final.name, r, got, final.want[i])
			}
			if got := e.EnforceUncached(r.sub, r.dom, r.obj, r.act); got != final.want[i] {
				t.Errorf("after the final reload to %s: EnforceUncached %v = %v, want %v", final.name, r, got, final.want[i])
			}
		}
	}
}
