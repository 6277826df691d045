// Package tenant is the tenancy core: organisations and their lifecycle, the tenant and actor
// carried in a context, and the fail-closed database handle every tenant-owned query goes
// through. Nothing in it knows about HTTP.
package tenant

import (
	"context"

	"github.com/google/uuid"
)

// ActorKind says who is acting.
type ActorKind string

// Actor kinds.
const (
	ActorUser   ActorKind = "user"
	ActorAPIKey ActorKind = "api_key"
	ActorSystem ActorKind = "system"
	// ActorAnonymous is an unauthenticated request; it still has an IP for the audit log.
	ActorAnonymous ActorKind = "anonymous"
)

// Actor is who performs a request or job, and from where; the audit log records it.
type Actor struct {
	Kind      ActorKind
	UserID    uuid.UUID // zero for API keys and the system
	Email     string
	APIKeyID  uuid.UUID
	Role      string
	IP        string
	UserAgent string
	RequestID string
	// Impersonating marks a platform admin reading a tenant's console: reads only, audited.
	Impersonating bool
}

// Subject is the actor's id as the audit log and policies see it.
func (a Actor) Subject() string {
	switch a.Kind {
	case ActorUser:
		return a.UserID.String()
	case ActorAPIKey:
		return "apikey:" + a.APIKeyID.String()
	case ActorAnonymous:
		return "anonymous"
	default:
		return "system"
	}
}

type ctxKey int

const (
	orgKey ctxKey = iota
	actorKey
	platformKey
	txKey
	globalKey
)

// WithOrg returns ctx acting inside org: tenant-owned queries are scoped to org.ID.
func WithOrg(ctx context.Context, org Org) context.Context {
	return context.WithValue(ctx, orgKey, org)
}

// OrgFrom returns the organisation in ctx.
func OrgFrom(ctx context.Context) (Org, bool) {
	o, ok := ctx.Value(orgKey).(Org)
	return o, ok && o.ID != uuid.Nil
}

// ID returns the id of the organisation in ctx.
func ID(ctx context.Context) (uuid.UUID, bool) {
	o, ok := OrgFrom(ctx)
	return o.ID, ok
}

// WithActor records who acts in ctx.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey, a)
}

// ActorFrom returns the actor in ctx, or the system actor.
func ActorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey).(Actor); ok {
		return a
	}
	return Actor{Kind: ActorSystem}
}

// platformAccess marks a context allowed to cross tenants, with the reason it was granted.
type platformAccess struct{ reason string }

// isPlatform reports whether ctx was granted cross-tenant access by DB.AsPlatform.
func isPlatform(ctx context.Context) (string, bool) {
	p, ok := ctx.Value(platformKey).(platformAccess)
	return p.reason, ok
}

// Authenticated returns the actor only when one was put in ctx by authentication.
func Authenticated(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey).(Actor)
	return a, ok && (a.Kind == ActorUser || a.Kind == ActorAPIKey)
}
