package access_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"

	"github.com/switchboard-cloud/switchboard/modules/access"
)

type rules [][]string

func (r rules) Policies(context.Context) ([][]string, error) { return r, nil }

// TestFastDecisionEqualsCasbinMatcher compares the indexed decision with casbin's own matcher
// evaluation on random requests over a random policy set with built-in roles in "*", custom
// roles per domain, grants per domain, role subjects (API keys) and unknown subjects.
func TestFastDecisionEqualsCasbinMatcher(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	objs := []string{"members", "roles", "api_keys", "audit", "conversations"}
	acts := []string{"read", "write"}
	roles := []string{"owner", "admin", "agent", "custom1", "custom2"}
	var r rules
	for _, role := range roles[:3] {
		for _, o := range objs {
			for _, a := range acts {
				if rng.IntN(2) == 0 {
					r = append(r, []string{"p", role, "*", o, a})
				}
			}
		}
	}
	for d := 0; d < 20; d++ {
		dom := fmt.Sprint("dom", d)
		for _, role := range roles[3:] {
			r = append(r, []string{"p", role, dom, objs[rng.IntN(len(objs))], acts[rng.IntN(2)]})
		}
	}
	for u := 0; u < 50; u++ {
		for k := 0; k < 3; k++ {
			r = append(r, []string{"g", fmt.Sprint("user", u), roles[rng.IntN(len(roles))], fmt.Sprint("dom", rng.IntN(20))})
		}
	}
	enf, err := access.NewEnforcer(context.Background(), r, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	subjects := append([]string{"nobody"}, roles...)
	for u := 0; u < 50; u++ {
		subjects = append(subjects, fmt.Sprint("user", u))
	}
	allowed := 0
	for i := 0; i < 20000; i++ {
		sub, dom := subjects[rng.IntN(len(subjects))], fmt.Sprint("dom", rng.IntN(21))
		obj, act := objs[rng.IntN(len(objs))], acts[rng.IntN(2)]
		fast, ref := enf.EnforceUncached(sub, dom, obj, act), enf.EnforceMatcher(sub, dom, obj, act)
		if fast != ref {
			t.Fatalf("Enforce(%s, %s, %s, %s): indexed %v, casbin matcher %v", sub, dom, obj, act, fast, ref)
		}
		if enf.Enforce(sub, dom, obj, act) != ref {
			t.Fatalf("memoised decision differs for (%s, %s, %s, %s)", sub, dom, obj, act)
		}
		if ref {
			allowed++
		}
	}
	if allowed < 1000 || allowed > 19000 {
		t.Fatalf("degenerate policy set: %d of 20000 allowed", allowed)
	}
}
