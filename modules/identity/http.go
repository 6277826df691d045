package identity

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/httpx"
	"github.com/switchboard-cloud/switchboard/modules/access"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// Header and cookie names.
const (
	CookieName = "sb_session"
	HeaderCSRF = "X-CSRF-Token"
	HeaderOrg  = "X-Switchboard-Org"
)

// Module is the identity module as the app registers it.
type Module struct {
	svc    *Service
	access *access.Service
	val    *httpx.Validator
	secure bool // cookies only over HTTPS
}

// NewModule returns the identity module. secureCookies marks cookies Secure (the public URL is
// https).
func NewModule(svc *Service, acc *access.Service, val *httpx.Validator, secureCookies bool) *Module {
	return &Module{svc: svc, access: acc, val: val, secure: secureCookies}
}

// Name identifies the module.
func (m *Module) Name() string { return "identity" }

// Routes registers the identity API.
func (m *Module) Routes(r *access.Router) {
	t := func(s access.Spec, tag string) access.Spec { s.Tag = tag; return s }
	r.Post("/auth/signup", t(access.Public("Sign up: create a tenant on trial and its owner").WithBody(SignupInput{}), "auth"), m.signup)
	r.Post("/auth/login", t(access.Public("Log in and start a session").WithBody(LoginInput{}), "auth"), m.login)
	r.Post("/auth/logout", t(access.Self("End the current session"), "auth"), m.logout)
	r.Post("/auth/verify-email", t(access.Public("Confirm an email address with its token").WithBody(TokenInput{}), "auth"), m.verifyEmail)
	r.Post("/auth/resend-verification", t(access.Self("Send the verification mail again"), "auth"), m.resendVerification)
	r.Post("/auth/password-reset", t(access.Public("Mail a password reset link").WithBody(ResetRequest{}), "auth"), m.requestReset)
	r.Post("/auth/password-reset/confirm", t(access.Public("Set a new password with a reset token").WithBody(ResetConfirm{}), "auth"), m.confirmReset)
	r.Get("/me", t(access.Self("The current user, memberships, organisation and permissions"), "auth"), m.me)
	r.Patch("/me", t(access.Self("Change your name or language").WithBody(UpdateProfile{}), "auth"), m.updateMe)

	r.Get("/members", t(access.Perm(PermMembersRead, "List members"), "members"), m.listMembers)
	r.Patch("/members/:user_id", t(access.Perm(PermMembersWrite, "Change a member's role or disable them").WithBody(MemberPatch{}), "members"), m.updateMember)
	r.Delete("/members/:user_id", t(access.Perm(PermMembersWrite, "Remove a member"), "members"), m.removeMember)

	r.Get("/invitations", t(access.Perm(PermInvitationsRead, "List invitations"), "members"), m.listInvitations)
	r.Post("/invitations", t(access.Perm(PermInvitationsWrite, "Invite someone by email").WithBody(InviteInput{}), "members"), m.invite)
	r.Delete("/invitations/:id", t(access.Perm(PermInvitationsWrite, "Revoke an invitation"), "members"), m.revokeInvitation)
	r.Get("/invitations/:token/preview", t(access.Public("Describe a pending invitation"), "members"), m.previewInvitation)
	r.Post("/invitations/:token/accept", t(access.Public("Accept an invitation").WithBody(AcceptInput{}), "members"), m.acceptInvitation)

	r.Get("/api-keys", t(access.Perm(PermAPIKeysRead, "List API keys"), "api-keys"), m.listKeys)
	r.Post("/api-keys", t(access.Perm(PermAPIKeysWrite, "Create an API key (shown once)").WithBody(APIKeyInput{}), "api-keys"), m.createKey)
	r.Get("/api-keys/:id", t(access.Perm(PermAPIKeysRead, "Get an API key"), "api-keys"), m.getKey)
	r.Delete("/api-keys/:id", t(access.Perm(PermAPIKeysWrite, "Revoke an API key"), "api-keys"), m.revokeKey)
}

type localsKey string

const membershipsKey localsKey = "identity.memberships"

// Authenticate resolves the caller from a bearer API key or the session cookie, picks the
// organisation (X-Switchboard-Org or the first membership) and puts actor and organisation in
// the request context. It never refuses a request itself except for a bad bearer key: the
// route guard decides what each route needs.
func (m *Module) Authenticate() fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx := c.UserContext()
		base := tenant.Actor{Kind: tenant.ActorAnonymous, IP: c.IP(), UserAgent: c.Get(fiber.HeaderUserAgent)}
		if rid, ok := c.Locals("requestid").(string); ok {
			base.RequestID = rid
		}
		ctx = tenant.WithActor(ctx, base)
		c.SetUserContext(ctx)

		if auth := c.Get(fiber.HeaderAuthorization); auth != "" {
			key, ok := strings.CutPrefix(auth, "Bearer ")
			if !ok {
				return fmt.Errorf("authorization must be a Bearer API key: %w", apperr.ErrUnauthenticated)
			}
			p, err := m.svc.AuthenticateKey(ctx, strings.TrimSpace(key))
			if err != nil {
				return err
			}
			a := base
			a.Kind, a.APIKeyID, a.Role = tenant.ActorAPIKey, p.Key.ID, p.Key.Role
			c.SetUserContext(tenant.WithOrg(tenant.WithActor(ctx, a), p.Org))
			return c.Next()
		}

		token := c.Cookies(CookieName)
		if token == "" {
			return c.Next()
		}
		au, err := m.svc.SessionUser(ctx, token)
		if errors.Is(err, apperr.ErrUnauthenticated) {
			m.clearCookie(c)
			return c.Next()
		}
		if err != nil {
			return err
		}
		if !safeMethod(c.Method()) && !csrfOK(c.Get(HeaderCSRF), au.CSRFToken) {
			c.Locals(access.AuthErrorKey, fmt.Errorf("missing or invalid %s header: %w", HeaderCSRF, apperr.ErrForbidden))
			return c.Next()
		}
		mships := au.Memberships
		c.Locals(membershipsKey, mships)
		c.Locals(csrfKey, au.CSRFToken)
		a := withUser(base, au.User)
		var org *MembershipView
		if want := requestedOrg(c); want != "" {
			for i := range mships {
				if mships[i].OrgID.String() == want {
					org = &mships[i]
				}
			}
		} else if len(mships) > 0 {
			org = &mships[0]
		}
		ctx = tenant.WithActor(ctx, a)
		if org != nil {
			a.Role = org.Role
			ctx = tenant.WithOrg(tenant.WithActor(ctx, a), tenant.Org{ID: org.OrgID, Kind: org.OrgKind, Name: org.OrgName, Status: org.OrgStatus, Locale: org.OrgLocale})
		}
		c.SetUserContext(ctx)
		c.Locals(userKey, au.User)
		return c.Next()
	}
}

const (
	csrfKey localsKey = "identity.csrf"
	userKey localsKey = "identity.user"
)

func safeMethod(m string) bool {
	return m == fiber.MethodGet || m == fiber.MethodHead || m == fiber.MethodOptions
}

func (m *Module) setCookie(c *fiber.Ctx, st Started) {
	c.Cookie(&fiber.Cookie{Name: CookieName, Value: st.Token, Path: "/", Expires: st.ExpiresAt, HTTPOnly: true, Secure: m.secure, SameSite: fiber.CookieSameSiteLaxMode})
}

func (m *Module) clearCookie(c *fiber.Ctx) {
	c.Cookie(&fiber.Cookie{Name: CookieName, Value: "", Path: "/", Expires: time.Unix(0, 0), MaxAge: -1, HTTPOnly: true, Secure: m.secure, SameSite: fiber.CookieSameSiteLaxMode})
}

// userView is the user as the API shows it.
type userView struct {
	ID            uuid.UUID `json:"id"`
	Email         string    `json:"email"`
	Name          string    `json:"name"`
	Locale        string    `json:"locale"`
	EmailVerified bool      `json:"email_verified"`
}

func viewOf(u User) userView {
	return userView{ID: u.ID, Email: u.Email, Name: u.Name, Locale: u.Locale, EmailVerified: u.EmailVerifiedAt != nil}
}

type orgView struct {
	ID     uuid.UUID     `json:"id"`
	Kind   tenant.Kind   `json:"kind"`
	Name   string        `json:"name"`
	Status tenant.Status `json:"status"`
}

type sessionView struct {
	User       userView `json:"user"`
	CSRFToken  string   `json:"csrf_token"`
	CurrentOrg *orgView `json:"current_org"`
}

func (m *Module) started(c *fiber.Ctx, status int, st Started) error {
	m.setCookie(c, st)
	v := sessionView{User: viewOf(st.User), CSRFToken: st.CSRFToken}
	if st.Org != nil {
		v.CurrentOrg = &orgView{ID: st.Org.ID, Kind: st.Org.Kind, Name: st.Org.Name, Status: st.Org.Status}
	}
	return c.Status(status).JSON(v)
}

func (m *Module) signup(c *fiber.Ctx) error {
	var in SignupInput
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	st, err := m.svc.Signup(c.UserContext(), in)
	if err != nil {
		return err
	}
	return m.started(c, fiber.StatusCreated, st)
}

func (m *Module) login(c *fiber.Ctx) error {
	var in LoginInput
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	st, err := m.svc.Login(c.UserContext(), in)
	if err != nil {
		return err
	}
	// The organisation a request without X-Switchboard-Org lands in.
	mships, err := m.svc.Memberships(c.UserContext(), st.User.ID)
	if err != nil {
		return err
	}
	if len(mships) > 0 {
		d := mships[0]
		st.Org = &tenant.Org{ID: d.OrgID, Kind: d.OrgKind, Name: d.OrgName, Status: d.OrgStatus}
	}
	return m.started(c, fiber.StatusOK, st)
}

func (m *Module) logout(c *fiber.Ctx) error {
	if err := m.svc.Logout(c.UserContext(), c.Cookies(CookieName)); err != nil {
		return err
	}
	m.clearCookie(c)
	return c.SendStatus(fiber.StatusNoContent)
}

func (m *Module) verifyEmail(c *fiber.Ctx) error {
	var in TokenInput
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	if err := m.svc.VerifyEmail(c.UserContext(), in.Token); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"status": "verified"})
}

func (m *Module) resendVerification(c *fiber.Ctx) error {
	a, _ := tenant.Authenticated(c.UserContext())
	if err := m.svc.ResendVerification(c.UserContext(), a.UserID); err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"status": "queued"})
}

func (m *Module) requestReset(c *fiber.Ctx) error {
	var in ResetRequest
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	if err := m.svc.RequestPasswordReset(c.UserContext(), in.Email); err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"status": "queued"})
}

func (m *Module) confirmReset(c *fiber.Ctx) error {
	var in ResetConfirm
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	if err := m.svc.ResetPassword(c.UserContext(), in); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"status": "password_changed"})
}

type meView struct {
	User        userView         `json:"user"`
	Memberships []MembershipView `json:"memberships"`
	CurrentOrg  *orgView         `json:"current_org"`
	Role        string           `json:"role"`
	Permissions []string         `json:"permissions"`
	CSRFToken   string           `json:"csrf_token"`
	// Impersonating: a platform admin reads this tenant's console (read-only; show a banner).
	Impersonating bool `json:"impersonating"`
}

func (m *Module) me(c *fiber.Ctx) error {
	ctx := c.UserContext()
	u, _ := c.Locals(userKey).(User)
	mships, _ := c.Locals(membershipsKey).([]MembershipView)
	if mships == nil {
		mships = []MembershipView{}
	}
	v := meView{User: viewOf(u), Memberships: mships, CSRFToken: fmt.Sprint(c.Locals(csrfKey)), Permissions: m.access.Permissions(ctx)}
	if org, ok := tenant.OrgFrom(ctx); ok {
		v.CurrentOrg = &orgView{ID: org.ID, Kind: org.Kind, Name: org.Name, Status: org.Status}
		v.Role = tenant.ActorFrom(ctx).Role
		v.Impersonating = tenant.ActorFrom(ctx).Impersonating
	} else if want := c.Get(HeaderOrg); want != "" {
		return fmt.Errorf("not a member of organisation %s: %w", want, apperr.ErrNotFound)
	}
	return c.JSON(v)
}

func (m *Module) updateMe(c *fiber.Ctx) error {
	var in UpdateProfile
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	a, _ := tenant.Authenticated(c.UserContext())
	if err := m.svc.UpdateMe(c.UserContext(), a.UserID, in); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (m *Module) listMembers(c *fiber.Ctx) error {
	p, err := httpx.ParsePage(c)
	if err != nil {
		return err
	}
	l, err := m.svc.ListMembers(c.UserContext(), p)
	if err != nil {
		return err
	}
	return c.JSON(l)
}

func (m *Module) updateMember(c *fiber.Ctx) error {
	id, err := httpx.PathUUID(c, "user_id")
	if err != nil {
		return err
	}
	var in MemberPatch
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	mem, err := m.svc.UpdateMember(c.UserContext(), id, in)
	if err != nil {
		return err
	}
	return c.JSON(mem)
}

func (m *Module) removeMember(c *fiber.Ctx) error {
	id, err := httpx.PathUUID(c, "user_id")
	if err != nil {
		return err
	}
	if err := m.svc.RemoveMember(c.UserContext(), id); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (m *Module) listInvitations(c *fiber.Ctx) error {
	p, err := httpx.ParsePage(c)
	if err != nil {
		return err
	}
	l, err := m.svc.ListInvitations(c.UserContext(), p)
	if err != nil {
		return err
	}
	return c.JSON(l)
}

func (m *Module) invite(c *fiber.Ctx) error {
	var in InviteInput
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	inv, err := m.svc.Invite(c.UserContext(), in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(inv)
}

func (m *Module) revokeInvitation(c *fiber.Ctx) error {
	id, err := httpx.PathUUID(c, "id")
	if err != nil {
		return err
	}
	if err := m.svc.RevokeInvitation(c.UserContext(), id); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (m *Module) previewInvitation(c *fiber.Ctx) error {
	p, err := m.svc.PreviewInvitation(c.UserContext(), c.Params("token"))
	if err != nil {
		return err
	}
	return c.JSON(p)
}

func (m *Module) acceptInvitation(c *fiber.Ctx) error {
	var in AcceptInput
	if len(c.Body()) > 0 {
		if err := httpx.Decode(c, m.val, &in); err != nil {
			return err
		}
	}
	var cur *User
	if u, ok := c.Locals(userKey).(User); ok {
		cur = &u
	}
	st, err := m.svc.AcceptInvitation(c.UserContext(), c.Params("token"), in, cur)
	if err != nil {
		return err
	}
	return m.started(c, fiber.StatusOK, st)
}

func (m *Module) listKeys(c *fiber.Ctx) error {
	p, err := httpx.ParsePage(c)
	if err != nil {
		return err
	}
	l, err := m.svc.ListAPIKeys(c.UserContext(), p)
	if err != nil {
		return err
	}
	return c.JSON(l)
}

func (m *Module) createKey(c *fiber.Ctx) error {
	var in APIKeyInput
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	k, err := m.svc.CreateAPIKey(c.UserContext(), in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(k)
}

func (m *Module) getKey(c *fiber.Ctx) error {
	id, err := httpx.PathUUID(c, "id")
	if err != nil {
		return err
	}
	k, err := m.svc.GetAPIKey(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(k)
}

func (m *Module) revokeKey(c *fiber.Ctx) error {
	id, err := httpx.PathUUID(c, "id")
	if err != nil {
		return err
	}
	if err := m.svc.RevokeAPIKey(c.UserContext(), id); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// csrfOK compares the header with the session's token; an empty token never matches.
func csrfOK(got, want string) bool {
	return got != "" && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// requestedOrg is the organisation a request names: X-Switchboard-Org, or for a WebSocket
// handshake (browsers cannot set headers on one) the org query parameter.
func requestedOrg(c *fiber.Ctx) string {
	if v := c.Get(HeaderOrg); v != "" {
		return v
	}
	if strings.EqualFold(c.Get(fiber.HeaderUpgrade), "websocket") {
		return c.Query("org")
	}
	return ""
}
