package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/modules/access"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// Mailer queues mail in the caller's transaction.
type Mailer interface {
	Send(ctx context.Context, to, subject, body string) error
}

// Policies is what identity needs from access control.
type Policies interface {
	RoleExists(ctx context.Context, role string) (bool, error)
	// CheckGrant refuses a role holding permissions the actor lacks.
	CheckGrant(ctx context.Context, role string) error
	PolicyChanged(ctx context.Context) error
}

// Options tune the service.
type Options struct {
	PublicURL        string
	SessionTTL       time.Duration
	LoginMaxFailures int
	LoginLockout     time.Duration
	TrialDays        int
	Now              func() time.Time
	// PlatformOrg names the organisation whose audit log records account events that belong
	// to no tenant (logins, password resets).
	PlatformOrg func() uuid.UUID
}

// Service holds identity's business rules.
type Service struct {
	db     *tenant.DB
	mail   Mailer
	access Policies
	log    *slog.Logger
	opts   Options
	// dummyHash is compared against when the email is unknown, so both failures take as long.
	dummyHash string
	sessions  authCache[Authenticated]
	keys      authCache[KeyPrincipal]
}

// sessionCacheTTL bounds how long another node may act on a session, user or membership that
// changed when the change notice did not reach it; this node forgets at once.
const sessionCacheTTL = 2 * time.Second

// authCache keeps, briefly, what authentication found for a credential (a session's user and
// memberships, an API key's organisation): it runs on every request, and its queries are the
// dearest part of one. Revocations, removals and status changes forget it at once on this node.
type authCache[T any] struct {
	mu  sync.RWMutex
	m   map[string]cached[T]
	gen uint64 // bumped by every forget, so a lookup that raced a change is not kept
}

type cached[T any] struct {
	v   T
	exp time.Time
}

func (c *authCache[T]) get(key string, now time.Time) (T, uint64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.m[key]
	if !ok || now.After(e.exp) {
		var zero T
		return zero, c.gen, false
	}
	return e.v, c.gen, true
}

func (c *authCache[T]) put(key string, v T, now time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.m == nil || len(c.m) > 100_000 {
		c.m = map[string]cached[T]{}
	}
	c.m[key] = cached[T]{v: v, exp: now.Add(sessionCacheTTL)}
}

func (c *authCache[T]) forget() {
	c.mu.Lock()
	c.m = nil
	c.gen++
	c.mu.Unlock()
}

// ForgetSessions drops every cached session and API key. Identity calls it after its own changes; the app
// calls it when another node reports one and when an organisation's status changes.
func (s *Service) ForgetSessions() {
	s.sessions.forget()
	s.keys.forget()
}

// changed forgets cached sessions once ctx's transaction has committed.
func (s *Service) changed(ctx context.Context) {
	tenant.AfterCommit(ctx, func(context.Context) { s.ForgetSessions() })
}

// NewService returns the identity service.
func NewService(db *tenant.DB, mail Mailer, pol Policies, log *slog.Logger, opts Options) (*Service, error) {
	if opts.Now == nil {
		opts.Now = func() time.Time { return time.Now().UTC() }
	}
	if opts.SessionTTL == 0 {
		opts.SessionTTL = 14 * 24 * time.Hour
	}
	if opts.LoginMaxFailures == 0 {
		opts.LoginMaxFailures = 5
	}
	if opts.LoginLockout == 0 {
		opts.LoginLockout = 15 * time.Minute
	}
	if opts.TrialDays == 0 {
		opts.TrialDays = 14
	}
	h, err := HashPassword(ids.Secret(16))
	if err != nil {
		return nil, err
	}
	return &Service{db: db, mail: mail, access: pol, log: log, opts: opts, dummyHash: h}, nil
}

func (s *Service) now() time.Time { return s.opts.Now().UTC() }

// NormalizeEmail is the form emails are stored and compared in.
func NormalizeEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

// SignupInput creates a tenant and its owner.
type SignupInput struct {
	Company  string `json:"company" validate:"required,max=120"`
	Name     string `json:"name" validate:"required,max=120"`
	Email    string `json:"email" validate:"required,email,max=254"`
	Password string `json:"password" validate:"required,min=10,max=200"`
	Locale   string `json:"locale" validate:"omitempty,oneof=en zh-CN"`
}

// Started is a new login session.
type Started struct {
	Token     string // cookie value
	CSRFToken string
	User      User
	Org       *tenant.Org
	ExpiresAt time.Time
}

// Signup creates a tenant on trial, its owner, and a session; it sends the verification mail.
func (s *Service) Signup(ctx context.Context, in SignupInput) (Started, error) {
	if in.Locale == "" {
		in.Locale = "en"
	}
	email := NormalizeEmail(in.Email)
	hash, err := HashPassword(in.Password)
	if err != nil {
		return Started{}, err
	}
	now := s.now()
	trialEnds := now.AddDate(0, 0, s.opts.TrialDays)
	org := tenant.Org{ID: ids.New(), Kind: tenant.KindTenant, Name: strings.TrimSpace(in.Company), Slug: slugify(in.Company),
		Status: tenant.StatusTrial, Locale: in.Locale, TrialEndsAt: &trialEnds, StatusChangedAt: now, CreatedAt: now, UpdatedAt: now}
	user := User{ID: ids.New(), Email: email, Name: strings.TrimSpace(in.Name), PasswordHash: hash, Locale: in.Locale, CreatedAt: now, UpdatedAt: now}
	ctx = tenant.WithOrg(ctx, org)
	ctx = tenant.WithActor(ctx, withUser(tenant.ActorFrom(ctx), user))
	var st Started
	err = s.db.Tx(ctx, func(ctx context.Context) error {
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			if err := tx.Create(&org).Error; err != nil {
				return fmt.Errorf("create org: %w", err)
			}
			if err := tx.Create(&user).Error; err != nil {
				if errors.Is(err, gorm.ErrDuplicatedKey) {
					return apperr.Invalid("email", "is already registered; log in or reset your password")
				}
				return fmt.Errorf("create user: %w", err)
			}
			return tx.Create(&Membership{OrgID: org.ID, UserID: user.ID, Role: access.TenantOwner, Status: "active", CreatedAt: now, UpdatedAt: now}).Error
		}); err != nil {
			return err
		}
		if err := s.db.Record(ctx, tenant.Audit{Action: "tenant.created", ObjectType: "org", ObjectID: org.ID.String(), Data: map[string]any{"name": org.Name, "status": org.Status}}); err != nil {
			return err
		}
		if err := s.sendVerification(ctx, user); err != nil {
			return err
		}
		st, err = s.startSession(ctx, user)
		return err
	})
	if err != nil {
		return Started{}, err
	}
	st.Org = &org
	s.ForgetSessions()
	return st, s.access.PolicyChanged(ctx)
}

func withUser(a tenant.Actor, u User) tenant.Actor {
	a.Kind, a.UserID, a.Email = tenant.ActorUser, u.ID, u.Email
	return a
}

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

// slugify makes a unique, URL-safe org slug; the random tail keeps two "Acme"s apart.
func slugify(name string) string {
	base := strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(base) > 40 {
		base = base[:40]
	}
	if base == "" {
		base = "org"
	}
	return base + "-" + strings.ToLower(ids.Secret(4))[:6]
}

// startSession creates a session row (in ctx's transaction, if any).
func (s *Service) startSession(ctx context.Context, u User) (Started, error) {
	token := ids.Secret(32)
	a := tenant.ActorFrom(ctx)
	now := s.now()
	sess := session{ID: ids.Hash(token), UserID: u.ID, CSRFToken: ids.Secret(24), IP: a.IP, UserAgent: truncate(a.UserAgent, 512),
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(s.opts.SessionTTL)}
	if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Create(&sess).Error }); err != nil {
		return Started{}, fmt.Errorf("create session: %w", err)
	}
	return Started{Token: token, CSRFToken: sess.CSRFToken, User: u, ExpiresAt: sess.ExpiresAt}, nil
}

// LoginInput logs a user in.
type LoginInput struct {
	Email    string `json:"email" validate:"required,max=254"`
	Password string `json:"password" validate:"required,max=200"`
}

// errBadCredentials is the one answer to a wrong password and an unknown email.
var errBadCredentials = fmt.Errorf("email or password is wrong: %w", apperr.ErrUnauthenticated)

// Login checks credentials, with lockout after repeated failures, and starts a session.
// Failures are audited in the platform's log, since the account's organisation is not known
// to the caller.
func (s *Service) Login(ctx context.Context, in LoginInput) (Started, error) {
	email := NormalizeEmail(in.Email)
	var u User
	err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Where("email = ?", email).Take(&u).Error })
	if errors.Is(err, gorm.ErrRecordNotFound) {
		_, _ = CheckPassword(s.dummyHash, in.Password)
		s.auditAccount(ctx, "auth.login_failed", email, "unknown email")
		return Started{}, errBadCredentials
	}
	if err != nil {
		return Started{}, err
	}
	now := s.now()
	if u.LockedUntil != nil && u.LockedUntil.After(now) {
		s.auditAccount(ctx, "auth.login_locked", email, "")
		return Started{}, &apperr.RetryAfter{Err: fmt.Errorf("too many failed logins; try again later: %w", apperr.ErrLocked), Seconds: int(u.LockedUntil.Sub(now).Seconds()) + 1}
	}
	ok, err := CheckPassword(u.PasswordHash, in.Password)
	if err != nil {
		return Started{}, err
	}
	if !ok || u.DisabledAt != nil {
		reason := "wrong password"
		if u.DisabledAt != nil {
			reason = "user disabled"
		}
		locked, err := s.recordFailure(ctx, u.ID)
		if err != nil {
			return Started{}, err
		}
		if locked {
			reason += "; locked"
		}
		s.auditAccount(ctx, "auth.login_failed", email, reason)
		return Started{}, errBadCredentials
	}
	var st Started
	ctx = tenant.WithActor(ctx, withUser(tenant.ActorFrom(ctx), u))
	err = s.db.Tx(ctx, func(ctx context.Context) error {
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Model(&User{}).Where("id = ?", u.ID).Updates(map[string]any{"failed_logins": 0, "locked_until": nil}).Error
		}); err != nil {
			return err
		}
		st, err = s.startSession(ctx, u)
		return err
	})
	if err != nil {
		return Started{}, err
	}
	s.auditAccount(ctx, "auth.login", email, "")
	return st, nil
}

// recordFailure counts a wrong password against the account and locks it once the count
// reaches the limit. The increment and the check happen in one transaction on the locked row,
// so concurrent guesses cannot slip past the limit.
func (s *Service) recordFailure(ctx context.Context, userID uuid.UUID) (locked bool, err error) {
	err = s.db.Tx(ctx, func(ctx context.Context) error {
		return s.db.Global(ctx, func(tx *gorm.DB) error {
			if err := tx.Model(&User{}).Where("id = ?", userID).Update("failed_logins", gorm.Expr("failed_logins + 1")).Error; err != nil {
				return err
			}
			var n int
			if err := tx.Model(&User{}).Where("id = ?", userID).Pluck("failed_logins", &n).Error; err != nil {
				return err
			}
			if n < s.opts.LoginMaxFailures {
				return nil
			}
			locked = true
			return tx.Model(&User{}).Where("id = ?", userID).
				Updates(map[string]any{"failed_logins": 0, "locked_until": s.now().Add(s.opts.LoginLockout)}).Error
		})
	})
	return locked, err
}

// auditAccount records an account event in the platform's log, after the caller's transaction
// commits (the event belongs to another organisation than any tenant the transaction is
// scoped to, and is about an attempt that must be logged even when nothing changes). It never
// fails the request.
func (s *Service) auditAccount(ctx context.Context, action, email, reason string) {
	if s.opts.PlatformOrg == nil {
		return
	}
	org := s.opts.PlatformOrg()
	data := map[string]any{"email": email}
	if reason != "" {
		data["reason"] = reason
	}
	tenant.AfterCommit(ctx, func(ctx context.Context) {
		if err := s.db.Record(ctx, tenant.Audit{Action: action, ObjectType: "user", ObjectID: email, Data: data, OrgID: org}); err != nil {
			s.log.ErrorContext(ctx, "audit account event", "action", action, "err", err)
		}
	})
}

// Logout ends the session with that cookie token.
func (s *Service) Logout(ctx context.Context, token string) error {
	if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Where("id = ?", ids.Hash(token)).Delete(&session{}).Error }); err != nil {
		return err
	}
	s.ForgetSessions()
	s.auditAccount(ctx, "auth.logout", tenant.ActorFrom(ctx).Email, "")
	return nil
}

// Authenticated is the user behind a valid session, with their active memberships.
type Authenticated struct {
	User        User
	CSRFToken   string
	Memberships []MembershipView
}

// membershipOrder puts tenants first, then vendors, then the platform: the first one is where a
// request without X-Switchboard-Org lands.
const membershipOrder = "CASE o.kind WHEN 'tenant' THEN 0 WHEN 'vendor' THEN 1 ELSE 2 END, m.created_at"

// SessionUser returns the user of a live session and their memberships, in one query (this
// runs on every console request); an expired or unknown token, or a disabled user, is
// ErrUnauthenticated.
func (s *Service) SessionUser(ctx context.Context, token string) (Authenticated, error) {
	now := s.now()
	key := ids.Hash(token)
	cached, gen, ok := s.sessions.get(key, now)
	if ok {
		return cached, nil
	}
	var rows []struct {
		SessionID  string
		CSRFToken  string
		LastSeenAt time.Time
		User
		OrgID     *uuid.UUID
		OrgKind   *tenant.Kind
		OrgName   *string
		OrgStatus *tenant.Status
		OrgLocale *string
		Role      *string
	}
	err := s.db.Global(ctx, func(tx *gorm.DB) error {
		return tx.Table("sessions s").
			Select(`s.id AS session_id, s.csrf_token AS csrf_token, s.last_seen_at AS last_seen_at,
				u.id, u.email, u.name, u.locale, u.email_verified_at, u.disabled_at, u.created_at,
				m.org_id, o.kind AS org_kind, o.name AS org_name, o.status AS org_status, o.locale AS org_locale, m.role`).
			Joins("JOIN users u ON u.id = s.user_id").
			Joins("LEFT JOIN memberships m ON m.user_id = u.id AND m.status = 'active'").
			Joins("LEFT JOIN orgs o ON o.id = m.org_id").
			Where("s.id = ? AND s.expires_at > ?", key, now).
			Order(membershipOrder).
			Scan(&rows).Error
	})
	if err != nil {
		return Authenticated{}, fmt.Errorf("look up session: %w", err)
	}
	if len(rows) == 0 || rows[0].DisabledAt != nil || rows[0].CSRFToken == "" {
		return Authenticated{}, apperr.ErrUnauthenticated
	}
	r0 := rows[0]
	out := Authenticated{User: r0.User, CSRFToken: r0.CSRFToken, Memberships: []MembershipView{}}
	for _, r := range rows {
		if r.OrgID != nil && r.OrgKind != nil {
			out.Memberships = append(out.Memberships, MembershipView{OrgID: *r.OrgID, OrgKind: *r.OrgKind, OrgName: *r.OrgName,
				OrgStatus: *r.OrgStatus, OrgLocale: *r.OrgLocale, Role: *r.Role})
		}
	}
	// Sliding expiry, written at most once a minute per session.
	if now.Sub(r0.LastSeenAt) > time.Minute {
		_ = s.db.Global(ctx, func(tx *gorm.DB) error {
			return tx.Model(&session{}).Where("id = ?", r0.SessionID).
				Updates(map[string]any{"last_seen_at": now, "expires_at": now.Add(s.opts.SessionTTL)}).Error
		})
	}
	s.sessions.put(key, out, now, gen)
	return out, nil
}

// endSessions logs a user out everywhere.
func (s *Service) endSessions(ctx context.Context, userID uuid.UUID) error {
	s.changed(ctx)
	return s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Where("user_id = ?", userID).Delete(&session{}).Error })
}

// Memberships lists the user's active memberships with their organisations.
func (s *Service) Memberships(ctx context.Context, userID uuid.UUID) ([]MembershipView, error) {
	var out []MembershipView
	err := s.db.Global(ctx, func(tx *gorm.DB) error {
		return tx.Table("memberships m").
			Select("m.org_id, o.kind AS org_kind, o.name AS org_name, o.status AS org_status, o.locale AS org_locale, m.role").
			Joins("JOIN orgs o ON o.id = m.org_id").
			Where("m.user_id = ? AND m.status = ?", userID, "active").
			Order(membershipOrder).
			Scan(&out).Error
	})
	if err != nil {
		return nil, fmt.Errorf("list memberships: %w", err)
	}
	return out, nil
}

// Org returns an organisation.
func (s *Service) Org(ctx context.Context, id uuid.UUID) (tenant.Org, error) {
	var o tenant.Org
	err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Where("id = ?", id).Take(&o).Error })
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return o, apperr.ErrNotFound
	}
	return o, err
}

// UpdateProfile changes the user's own name or locale.
type UpdateProfile struct {
	Name   *string `json:"name" validate:"omitempty,min=1,max=120"`
	Locale *string `json:"locale" validate:"omitempty,oneof=en zh-CN"`
}

// UpdateMe applies a profile change.
func (s *Service) UpdateMe(ctx context.Context, userID uuid.UUID, in UpdateProfile) error {
	upd := map[string]any{"updated_at": s.now()}
	if in.Name != nil {
		upd["name"] = strings.TrimSpace(*in.Name)
	}
	if in.Locale != nil {
		upd["locale"] = *in.Locale
	}
	s.changed(ctx)
	return s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Model(&User{}).Where("id = ?", userID).Updates(upd).Error })
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
