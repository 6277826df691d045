package access_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
)

// benchPolicies builds a policy set of production shape and size (DESIGN rule 3):
//   - the 9 built-in roles' permissions in domain "*", over a catalogue of 25 objects × 4
//     actions;
//   - 1,000 tenants each with one custom role of 5 permissions in its own domain (role names
//     differ per tenant, the worst case for casbin's role-link memo);
//   - per tenant an owner, a supervisor, an agent and a holder of the custom role, and 300
//     outsourced agents each with vendor_agent at one of 10 vendors and agent at two tenants.
//
// It returns the rules and 1,000 requests (user, own domain, a permission the user holds) that
// cycle through different users and domains.
func benchPolicies() ([][]string, []req) {
	const tenants, objects, vendors, outsourced = 1000, 25, 10, 300
	actions := []string{"read", "write", "delete", "export"}
	var perms [][2]string
	for o := 0; o < objects; o++ {
		for _, a := range actions {
			perms = append(perms, [2]string{fmt.Sprintf("object%02d", o), a})
		}
	}
	share := map[string]int{ // how many of the 100 permissions each built-in role holds
		"platform_admin": 100, "billing_admin": 10, "tenant_owner": 100, "tenant_admin": 80, "supervisor": 40,
		"agent": 20, "analyst": 15, "vendor_manager": 20, "vendor_agent": 10,
	}
	var rules [][]string
	for role, n := range share {
		for _, p := range perms[:n] {
			rules = append(rules, []string{"p", role, "*", p[0], p[1]})
		}
	}
	dom := func(i int) string { return fmt.Sprintf("00000000-0000-7000-8000-%012d", i) } // UUID-shaped, like org ids
	user := func(kind string, i int) string { return fmt.Sprintf("%s-0000-7000-9000-%012d", kind, i) }
	var reqs []req
	for t := 0; t < tenants; t++ {
		d, custom := dom(t), fmt.Sprintf("custom_%04d", t)
		for k := 0; k < 5; k++ {
			p := perms[(t*7+k*13)%len(perms)]
			rules = append(rules, []string{"p", custom, d, p[0], p[1]})
		}
		rules = append(rules,
			[]string{"g", user("0owner00", t), "tenant_owner", d},
			[]string{"g", user("0superv0", t), "supervisor", d},
			[]string{"g", user("0agent00", t), "agent", d},
			[]string{"g", user("0custom0", t), custom, d},
		)
		// The request a user of this tenant typically makes: the custom-role holder using one of
		// the role's permissions, which is in the tenant's own domain (late in the policy list).
		p := perms[(t*7+2*13)%len(perms)]
		reqs = append(reqs, req{user("0custom0", t), d, p[0], p[1]})
	}
	for v := 0; v < outsourced; v++ {
		rules = append(rules,
			[]string{"g", user("0vagent0", v), "vendor_agent", dom(100000 + v%vendors)},
			[]string{"g", user("0vagent0", v), "agent", dom(v * 3 % tenants)},
			[]string{"g", user("0vagent0", v), "agent", dom((v*3 + 1) % tenants)},
		)
	}
	return rules, reqs
}

// BenchmarkEnforce measures one RBAC decision over ≥10,000 policies. Target: ≤ 10 µs.
//
//	cached          the same request again: the decision memo's hit path (the common case)
//	uncached        the same request through casbin itself (EnforceUncached)
//	mixed           1,000 different users in 1,000 different domains through the memo
//	uncached_mixed  the same 1,000 requests through casbin
//	uncached_denied a request that no policy allows: casbin evaluates every policy
//	parallel        cached, from all cores
func BenchmarkEnforce(b *testing.B) {
	rules, reqs := benchPolicies()
	if len(rules) < 10000 {
		b.Fatalf("only %d policies; the target is stated for 10,000", len(rules))
	}
	e := newEnforcer(b, newSource(rules))
	for _, r := range reqs {
		if !e.EnforceUncached(r.sub, r.dom, r.obj, r.act) {
			b.Fatalf("fixture: %v refused", r)
		}
	}
	denied := req{reqs[500].sub, reqs[501].dom, reqs[500].obj, reqs[500].act} // right user, wrong tenant
	if e.EnforceUncached(denied.sub, denied.dom, denied.obj, denied.act) {
		b.Fatalf("fixture: %v allowed", denied)
	}
	b.Logf("%d policies, %d distinct requests", len(rules), len(reqs))
	one := reqs[500]

	b.Run("cached", func(b *testing.B) {
		e.Enforce(one.sub, one.dom, one.obj, one.act)
		b.ReportAllocs()
		for b.Loop() {
			if !e.Enforce(one.sub, one.dom, one.obj, one.act) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !e.EnforceUncached(one.sub, one.dom, one.obj, one.act) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("mixed", func(b *testing.B) {
		for _, r := range reqs { // steady state: every request seen once since the last reload
			e.Enforce(r.sub, r.dom, r.obj, r.act)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			r := reqs[i%len(reqs)]
			if !e.Enforce(r.sub, r.dom, r.obj, r.act) {
				b.Fatal("refused")
			}
			i++
		}
	})
	b.Run("uncached_mixed", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			r := reqs[i%len(reqs)]
			if !e.EnforceUncached(r.sub, r.dom, r.obj, r.act) {
				b.Fatal("refused")
			}
			i++
		}
	})
	b.Run("uncached_denied", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if e.EnforceUncached(denied.sub, denied.dom, denied.obj, denied.act) {
				b.Fatal("allowed")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				r := reqs[i%len(reqs)]
				if !e.Enforce(r.sub, r.dom, r.obj, r.act) {
					b.Error("refused")
					return
				}
				i++
			}
		})
	})
}

// BenchmarkRetainedMemory reports the heap a snapshot keeps per distinct (user, domain) decided
// through casbin: the decision memo's entry plus what casbin memoises inside the snapshot
// (its g() role-link cache, one entry per policy subject scanned), which lives until the next
// Reload. One iteration decides the 1,000 distinct requests of the fixture (several seconds):
// run it with -benchtime 1x.
func BenchmarkRetainedMemory(b *testing.B) {
	rules, reqs := benchPolicies()
	for b.Loop() {
		b.StopTimer()
		e := newEnforcer(b, newSource(rules))
		before := heapInUse()
		b.StartTimer()
		for _, r := range reqs {
			e.Enforce(r.sub, r.dom, r.obj, r.act)
		}
		b.StopTimer()
		after := heapInUse()
		b.ReportMetric(float64(after-before)/float64(len(reqs)), "retained-B/distinct-request")
		runtime.KeepAlive(e)
		b.StartTimer()
	}
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// BenchmarkReload measures loading the ≥10,000 policies into a fresh snapshot (what every
// role or membership change costs each node).
func BenchmarkReload(b *testing.B) {
	rules, _ := benchPolicies()
	e := newEnforcer(b, newSource(rules))
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Reload(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMatcherOrder is an experiment, not a test of the package: the same policies in a
// plain casbin enforcer with the package's matcher, and with the same matcher reordered so the
// cheap string comparisons run before the role lookup g(). It shows what reordering the
// matcher in enforcer.go would save on the uncached path.
func BenchmarkMatcherOrder(b *testing.B) {
	const head = `
[request_definition]
r = sub, dom, obj, act
[policy_definition]
p = sub, dom, obj, act
[role_definition]
g = _, _, _
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
`
	rules, reqs := benchPolicies()
	for _, m := range []struct{ name, matcher string }{
		{"package_order", `m = g(r.sub, p.sub, r.dom) && (p.dom == "*" || p.dom == r.dom) && r.obj == p.obj && r.act == p.act`},
		{"cheap_first", `m = r.obj == p.obj && r.act == p.act && (p.dom == "*" || p.dom == r.dom) && g(r.sub, p.sub, r.dom)`},
	} {
		mdl, err := model.NewModelFromString(head + m.matcher)
		if err != nil {
			b.Fatal(err)
		}
		ce, err := casbin.NewEnforcer(mdl)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rules {
			if r[0] == "p" {
				_, err = ce.AddPolicy(r[1], r[2], r[3], r[4])
			} else {
				_, err = ce.AddGroupingPolicy(r[1], r[2], r[3])
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		b.Run(m.name+"/uncached_mixed", func(b *testing.B) {
			i := 0
			for b.Loop() {
				r := reqs[i%len(reqs)]
				if ok, _ := ce.Enforce(r.sub, r.dom, r.obj, r.act); !ok {
					b.Fatal("refused")
				}
				i++
			}
		})
		b.Run(m.name+"/denied", func(b *testing.B) {
			r := req{reqs[500].sub, reqs[501].dom, reqs[500].obj, reqs[500].act}
			for b.Loop() {
				if ok, _ := ce.Enforce(r.sub, r.dom, r.obj, r.act); ok {
					b.Fatal("allowed")
				}
			}
		})
	}
}
