package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"
)

// modelText is RBAC with domains. Built-in roles' permissions are policies in domain "*";
// custom roles' are in their organisation's domain. Users get roles per domain through g.
// API keys enforce with their role as the subject (g(x, x, d) holds for any x).
const modelText = `
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub, r.dom) && (p.dom == "*" || p.dom == r.dom) && r.obj == p.obj && r.act == p.act
`

// PolicySource reads the current policies from the database: ["p", sub, dom, obj, act] and
// ["g", user, role, dom] rows.
type PolicySource interface {
	Policies(ctx context.Context) ([][]string, error)
}

// Enforcer answers "may subject do object:action in domain". Policies are loaded into a fresh
// casbin enforcer that is never modified afterwards and swapped in atomically, so an Enforce
// never sees a half-applied edit and never races a policy change; each snapshot memoises its
// decisions, which are immutable for the snapshot's life.
//
// Decisions use casbin's role manager and policy index rather than evaluating the matcher
// against every policy: for this model the matcher holds exactly when some role of sub in dom
// (sub itself included, as g(x, x, d) holds) has a policy in dom or in "*" for obj and act.
// That is a few hash lookups instead of a scan that costs milliseconds at 10,000 policies;
// EnforceMatcher keeps casbin's own evaluation, and a test holds the two equal.
type Enforcer struct {
	src    PolicySource
	log    *slog.Logger
	model  model.Model
	cur    atomic.Pointer[snapshot]
	loadMu sync.Mutex
}

type snapshot struct {
	e     *casbin.Enforcer
	cache sync.Map // request key → bool
	size  atomic.Int64
}

// maxCached bounds each snapshot's decision cache; past it decisions are computed each time.
const maxCached = 1 << 18

// NewEnforcer builds an enforcer and loads the policies once.
func NewEnforcer(ctx context.Context, src PolicySource, log *slog.Logger) (*Enforcer, error) {
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return nil, fmt.Errorf("access: casbin model: %w", err)
	}
	e := &Enforcer{src: src, log: log, model: m}
	if err := e.Reload(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// Reload reads all policies and swaps them in. Concurrent reloads are serialised so the last
// one to finish reflects the database as of its start at least.
func (e *Enforcer) Reload(ctx context.Context) error {
	e.loadMu.Lock()
	defer e.loadMu.Unlock()
	rules, err := e.src.Policies(ctx)
	if err != nil {
		return fmt.Errorf("access: load policies: %w", err)
	}
	ce, err := casbin.NewEnforcer(e.model.Copy(), &arrayAdapter{rules: rules})
	if err != nil {
		return fmt.Errorf("access: build enforcer: %w", err)
	}
	ce.EnableAutoSave(false)
	e.cur.Store(&snapshot{e: ce})
	return nil
}

// Enforce reports whether sub may perform obj:act in domain dom.
func (e *Enforcer) Enforce(sub, dom, obj, act string) bool {
	s := e.cur.Load()
	key := sub + "\x00" + dom + "\x00" + obj + "\x00" + act
	if v, ok := s.cache.Load(key); ok {
		return v.(bool)
	}
	ok, err := decide(s.e, sub, dom, obj, act)
	if err != nil {
		e.log.Error("access decision failed; denying", "err", err)
		return false
	}
	if s.size.Load() < maxCached {
		if _, loaded := s.cache.LoadOrStore(key, ok); !loaded {
			s.size.Add(1)
		}
	}
	return ok
}

// EnforceUncached is Enforce without the memo (benchmarks).
func (e *Enforcer) EnforceUncached(sub, dom, obj, act string) bool {
	ok, err := decide(e.cur.Load().e, sub, dom, obj, act)
	return err == nil && ok
}

// EnforceMatcher decides with casbin's matcher evaluation over every policy: the reference
// the fast path is tested against. Too slow for requests at scale.
func (e *Enforcer) EnforceMatcher(sub, dom, obj, act string) bool {
	ok, err := e.cur.Load().e.Enforce(sub, dom, obj, act)
	return err == nil && ok
}

// decide answers the model's matcher through casbin's indexes.
func decide(ce *casbin.Enforcer, sub, dom, obj, act string) (bool, error) {
	roles, err := ce.GetImplicitRolesForUser(sub, dom)
	if err != nil {
		return false, err
	}
	m := ce.GetModel()
	rule := []string{"", "", obj, act}
	for i := -1; i < len(roles); i++ {
		rule[0] = sub
		if i >= 0 {
			rule[0] = roles[i]
		}
		for _, d := range [...]string{dom, "*"} {
			rule[1] = d
			if ok, err := m.HasPolicy("p", "p", rule); err != nil || ok {
				return ok, err
			}
		}
	}
	return false, nil
}

// RolesIn returns the roles sub holds in dom.
func (e *Enforcer) RolesIn(sub, dom string) []string {
	return e.cur.Load().e.GetRolesForUserInDomain(sub, dom)
}

// arrayAdapter feeds casbin the rows read from our own tables; edits go through those tables,
// never through casbin, so saving is not supported.
type arrayAdapter struct{ rules [][]string }

var errReadOnly = errors.New("access: policies are edited through roles and memberships, not casbin")

func (a *arrayAdapter) LoadPolicy(m model.Model) error {
	for _, r := range a.rules {
		if err := persist.LoadPolicyArray(r, m); err != nil {
			return err
		}
	}
	return nil
}
func (a *arrayAdapter) SavePolicy(model.Model) error                              { return errReadOnly }
func (a *arrayAdapter) AddPolicy(string, string, []string) error                  { return errReadOnly }
func (a *arrayAdapter) RemovePolicy(string, string, []string) error               { return errReadOnly }
func (a *arrayAdapter) RemoveFilteredPolicy(string, string, int, ...string) error { return errReadOnly }
