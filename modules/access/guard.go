package access

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// Level says what a route requires.
type Level int

// Route levels.
const (
	// LevelPermission: an authenticated actor holding the permission in the current organisation.
	LevelPermission Level = iota
	// LevelSelf: a logged-in user acting on their own account (me, logout); no organisation needed.
	LevelSelf
	// LevelPublic: anyone (auth, widget, help center, inbound webhooks). The list is short and a
	// test keeps it that way.
	LevelPublic
)

// Spec describes a route for the guard and the OpenAPI document.
type Spec struct {
	Permission string
	Level      Level
	Summary    string
	Tag        string
	// Request is a zero value of the JSON body type, for the OpenAPI document.
	Request any
	// Hidden routes answer 404 instead of 403 when the permission is missing, so their
	// existence is not disclosed (platform admin).
	Hidden bool
	// ReadOnlyOK lets a suspended organisation call a writing route (paying its bill).
	ReadOnlyOK bool
}

// RouteInfo is a registered route.
type RouteInfo struct {
	Method string
	Path   string
	Spec
}

// Registry remembers every route registered through a Router.
type Registry struct{ routes []RouteInfo }

// Routes returns the registered routes sorted by path and method.
func (r *Registry) Routes() []RouteInfo {
	out := slices.Clone(r.routes)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}

// Router registers routes on a fiber router, each wrapped with its guard.
type Router struct {
	r      fiber.Router
	prefix string
	reg    *Registry
	enf    *Enforcer
	cat    *Catalogue
}

// NewRouter returns a Router over r whose routes are under prefix (the path r is mounted at).
func NewRouter(r fiber.Router, prefix string, reg *Registry, enf *Enforcer, cat *Catalogue) *Router {
	return &Router{r: r, prefix: prefix, reg: reg, enf: enf, cat: cat}
}

// Handle registers one route. It panics on a permission missing from the catalogue: that is a
// programming error found at start-up, not at request time.
func (rt *Router) Handle(method, path string, s Spec, h fiber.Handler) {
	if s.Level == LevelPermission {
		if _, ok := rt.cat.Get(s.Permission); !ok {
			panic(fmt.Sprintf("access: route %s %s uses undeclared permission %q", method, rt.prefix+path, s.Permission))
		}
	}
	rt.reg.routes = append(rt.reg.routes, RouteInfo{Method: method, Path: rt.prefix + path, Spec: s})
	rt.r.Add(method, path, rt.guard(method, s), h)
}

// Get, Post, Patch and Delete are Handle for one method.
func (rt *Router) Get(path string, s Spec, h fiber.Handler)  { rt.Handle(fiber.MethodGet, path, s, h) }
func (rt *Router) Post(path string, s Spec, h fiber.Handler) { rt.Handle(fiber.MethodPost, path, s, h) }
func (rt *Router) Patch(path string, s Spec, h fiber.Handler) {
	rt.Handle(fiber.MethodPatch, path, s, h)
}
func (rt *Router) Put(path string, s Spec, h fiber.Handler) { rt.Handle(fiber.MethodPut, path, s, h) }
func (rt *Router) Delete(path string, s Spec, h fiber.Handler) {
	rt.Handle(fiber.MethodDelete, path, s, h)
}

// Perm is a Spec for a permission-guarded route.
func Perm(p Permission, summary string) Spec {
	return Spec{Permission: p.Name, Level: LevelPermission, Summary: summary}
}

// Public is a Spec for an unauthenticated route.
func Public(summary string) Spec { return Spec{Level: LevelPublic, Summary: summary} }

// Self is a Spec for a route a logged-in user calls about themselves.
func Self(summary string) Spec { return Spec{Level: LevelSelf, Summary: summary} }

// WithBody returns s documenting req as the request body.
func (s Spec) WithBody(req any) Spec { s.Request = req; return s }

func (rt *Router) guard(method string, s Spec) fiber.Handler {
	obj, act, _ := strings.Cut(s.Permission, ":")
	write := method != fiber.MethodGet && method != fiber.MethodHead
	return func(c *fiber.Ctx) error {
		ctx := c.UserContext()
		switch s.Level {
		case LevelPublic:
			return c.Next()
		case LevelSelf:
			if a, ok := tenant.Authenticated(ctx); !ok || a.Kind != tenant.ActorUser {
				return authError(c)
			}
			return c.Next()
		}
		actor, ok := tenant.Authenticated(ctx)
		if !ok {
			return authError(c)
		}
		org, ok := tenant.OrgFrom(ctx)
		if !ok {
			return fmt.Errorf("no organisation selected: %w", apperr.ErrNotFound)
		}
		sub := actor.UserID.String()
		if actor.Kind == tenant.ActorAPIKey {
			sub = actor.Role
		}
		if actor.Impersonating {
			// A platform admin looking at a tenant's console sees what its pages read and
			// changes nothing; hidden (platform) routes stay out of reach in the tenant.
			if s.Hidden {
				return apperr.ErrNotFound
			}
			if write {
				return fmt.Errorf("impersonation is read-only: %w", apperr.ErrForbidden)
			}
			return c.Next()
		}
		if !rt.enf.Enforce(sub, org.ID.String(), obj, act) {
			if s.Hidden {
				return apperr.ErrNotFound
			}
			return fmt.Errorf("missing permission %s: %w", s.Permission, apperr.ErrForbidden)
		}
		if !org.Status.CanRead() || (write && !org.Status.CanWrite() && !s.ReadOnlyOK) {
			return fmt.Errorf("the organisation is %s: %w", org.Status, apperr.ErrTenantReadOnly)
		}
		return c.Next()
	}
}

// AuthErrorKey is the fiber Locals key where authentication leaves why it did not authenticate
// a request that carried credentials (a bad CSRF token), so the guard can say so.
const AuthErrorKey = "switchboard.auth_error"

func authError(c *fiber.Ctx) error {
	if err, ok := c.Locals(AuthErrorKey).(error); ok {
		return err
	}
	return apperr.ErrUnauthenticated
}
