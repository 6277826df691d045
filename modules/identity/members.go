package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/httpx"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/modules/access"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// Grants implements access.GrantSource: every active membership in an organisation that may
// still be read.
func (s *Service) Grants(ctx context.Context) ([]access.Grant, error) {
	var rows []Membership
	err := s.db.Run(ctx, func(tx *gorm.DB) error {
		return tx.Where("status = ?", "active").Find(&rows).Error
	})
	if err != nil {
		return nil, err
	}
	out := make([]access.Grant, len(rows))
	for i, m := range rows {
		out[i] = access.Grant{UserID: m.UserID, Role: m.Role, OrgID: m.OrgID}
	}
	return out, nil
}

// RoleInUse implements access.GrantSource.
func (s *Service) RoleInUse(ctx context.Context, orgID uuid.UUID, role string) (bool, error) {
	var n int64
	err := s.db.Run(ctx, func(tx *gorm.DB) error {
		return tx.Model(&Membership{}).Where("org_id = ? AND role = ?", orgID, role).Count(&n).Error
	})
	return n > 0, err
}

// checkGrant applies the rules for handing out a role: it must exist here, it may hold nothing
// the actor lacks, and only an owner makes or unmakes owners.
func (s *Service) checkGrant(ctx context.Context, role string) error {
	ok, err := s.access.RoleExists(ctx, role)
	if err != nil {
		return err
	}
	if !ok {
		return apperr.Invalid("role", "is not a role of this organisation")
	}
	if role == access.TenantOwner {
		if err := ownerOnly(ctx); err != nil {
			return err
		}
	}
	return s.access.CheckGrant(ctx, role)
}

// ownerOnly refuses anyone but a user holding the owner role.
func ownerOnly(ctx context.Context) error {
	if a := tenant.ActorFrom(ctx); a.Kind != tenant.ActorUser || a.Role != access.TenantOwner {
		return fmt.Errorf("only an owner can grant, change or remove the owner role: %w", apperr.ErrForbidden)
	}
	return nil
}

func mustOrg(ctx context.Context) (tenant.Org, error) {
	org, ok := tenant.OrgFrom(ctx)
	if !ok {
		return org, tenant.ErrNoTenant
	}
	return org, nil
}

// ListMembers returns the current organisation's members, oldest first.
func (s *Service) ListMembers(ctx context.Context, p httpx.PageParams) (httpx.List[Member], error) {
	org, err := mustOrg(ctx)
	if err != nil {
		return httpx.List[Member]{}, err
	}
	var rows []Member
	err = s.db.Global(ctx, func(tx *gorm.DB) error {
		q := tx.Table("memberships m").
			Select("m.user_id, u.email, u.name, m.role, m.status, m.created_at AS joined_at").
			Joins("JOIN users u ON u.id = m.user_id").
			Where("m.org_id = ?", org.ID)
		if p.Cursor != "" {
			q = q.Where("m.user_id > ?", p.Cursor)
		}
		return q.Order("m.user_id").Limit(p.Limit + 1).Scan(&rows).Error
	})
	if err != nil {
		return httpx.List[Member]{}, fmt.Errorf("list members: %w", err)
	}
	return httpx.NewList(rows, p.Limit, func(m Member) string { return m.UserID.String() }), nil
}

func (s *Service) member(ctx context.Context, orgID, userID uuid.UUID) (Member, error) {
	var m Member
	err := s.db.Run(ctx, func(tx *gorm.DB) error {
		return tx.Table("memberships m").
			Select("m.user_id, u.email, u.name, m.role, m.status, m.created_at AS joined_at").
			Joins("JOIN users u ON u.id = m.user_id").
			Where("m.org_id = ? AND m.user_id = ?", orgID, userID).Take(&m).Error
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return m, apperr.ErrNotFound
	}
	return m, err
}

// MemberPatch changes a member's role or disables them.
type MemberPatch struct {
	Role     *string `json:"role" validate:"omitempty,min=2,max=40"`
	Disabled *bool   `json:"disabled"`
}

// UpdateMember changes a member's role or status. The last active owner can be neither demoted
// nor disabled, and disabling ends the user's sessions.
func (s *Service) UpdateMember(ctx context.Context, userID uuid.UUID, in MemberPatch) (Member, error) {
	org, err := mustOrg(ctx)
	if err != nil {
		return Member{}, err
	}
	if in.Role != nil {
		if err := s.checkGrant(ctx, *in.Role); err != nil {
			return Member{}, err
		}
	}
	var out Member
	err = s.db.Tx(ctx, func(ctx context.Context) error {
		cur, err := s.member(ctx, org.ID, userID)
		if err != nil {
			return err
		}
		upd := map[string]any{"updated_at": s.now()}
		if in.Role != nil {
			upd["role"] = *in.Role
		}
		if in.Disabled != nil {
			upd["status"] = map[bool]string{true: "disabled", false: "active"}[*in.Disabled]
		}
		if cur.Role == access.TenantOwner {
			if err := ownerOnly(ctx); err != nil {
				return err
			}
		}
		losesOwner := cur.Role == access.TenantOwner && cur.Status == "active" &&
			((in.Role != nil && *in.Role != access.TenantOwner) || (in.Disabled != nil && *in.Disabled))
		if losesOwner {
			if err := s.keepAnOwner(ctx, org.ID, userID); err != nil {
				return err
			}
		}
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Model(&Membership{}).Where("org_id = ? AND user_id = ?", org.ID, userID).Updates(upd).Error
		}); err != nil {
			return fmt.Errorf("update member: %w", err)
		}
		if in.Disabled != nil && *in.Disabled {
			if err := s.endSessions(ctx, userID); err != nil {
				return err
			}
		}
		data := map[string]any{}
		for k, v := range upd {
			if k != "updated_at" {
				data[k] = v
			}
		}
		if err := s.db.Record(ctx, tenant.Audit{Action: "member.updated", ObjectType: "user", ObjectID: userID.String(), Data: data}); err != nil {
			return err
		}
		out, err = s.member(ctx, org.ID, userID)
		return err
	})
	if err != nil {
		return Member{}, err
	}
	s.ForgetSessions()
	return out, s.access.PolicyChanged(ctx)
}

// keepAnOwner refuses a change that would leave the organisation without an active owner.
func (s *Service) keepAnOwner(ctx context.Context, orgID, leaving uuid.UUID) error {
	var n int64
	if err := s.db.Run(ctx, func(tx *gorm.DB) error {
		return tx.Model(&Membership{}).Where("org_id = ? AND role = ? AND status = ? AND user_id <> ?",
			orgID, access.TenantOwner, "active", leaving).Count(&n).Error
	}); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("the organisation needs at least one active owner: %w", apperr.ErrConflict)
	}
	return nil
}

// RemoveMember takes a user out of the organisation and ends their sessions.
func (s *Service) RemoveMember(ctx context.Context, userID uuid.UUID) error {
	org, err := mustOrg(ctx)
	if err != nil {
		return err
	}
	err = s.db.Tx(ctx, func(ctx context.Context) error {
		cur, err := s.member(ctx, org.ID, userID)
		if err != nil {
			return err
		}
		if cur.Role == access.TenantOwner {
			if err := ownerOnly(ctx); err != nil {
				return err
			}
		}
		if cur.Role == access.TenantOwner && cur.Status == "active" {
			if err := s.keepAnOwner(ctx, org.ID, userID); err != nil {
				return err
			}
		}
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Where("org_id = ? AND user_id = ?", org.ID, userID).Delete(&Membership{}).Error
		}); err != nil {
			return err
		}
		if err := s.endSessions(ctx, userID); err != nil {
			return err
		}
		return s.db.Record(ctx, tenant.Audit{Action: "member.removed", ObjectType: "user", ObjectID: userID.String(), Data: map[string]any{"email": cur.Email, "role": cur.Role}})
	})
	if err != nil {
		return err
	}
	s.ForgetSessions()
	return s.access.PolicyChanged(ctx)
}

// InviteInput invites someone by email.
type InviteInput struct {
	Email string `json:"email" validate:"required,email,max=254"`
	Role  string `json:"role" validate:"required,min=2,max=40"`
}

// Invitation tokens carry their organisation ("<org id>.<secret>") so accepting one, which
// happens before anyone is logged in, can be looked up inside that tenant's scope.
func inviteToken(org uuid.UUID) string { return org.String() + "." + ids.Secret(32) }

func parseInviteToken(tok string) (uuid.UUID, bool) {
	orgPart, secret, ok := strings.Cut(tok, ".")
	if !ok || secret == "" {
		return uuid.Nil, false
	}
	return ids.Parse(orgPart)
}

// Invite creates an invitation and mails it. A pending invitation for the same email is
// replaced; inviting an existing member is a conflict.
func (s *Service) Invite(ctx context.Context, in InviteInput) (Invitation, error) {
	org, err := mustOrg(ctx)
	if err != nil {
		return Invitation{}, err
	}
	email := NormalizeEmail(in.Email)
	if err := s.checkGrant(ctx, in.Role); err != nil {
		return Invitation{}, err
	}
	actor := tenant.ActorFrom(ctx)
	now := s.now()
	tok := inviteToken(org.ID)
	inv := Invitation{ID: ids.New(), Email: email, Role: in.Role, TokenHash: ids.Hash(tok), Status: "pending", ExpiresAt: now.Add(inviteTTL), CreatedAt: now}
	if actor.Kind == tenant.ActorUser {
		inv.InvitedBy = &actor.UserID
	}
	err = s.db.Tx(ctx, func(ctx context.Context) error {
		var n int64
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Table("memberships m").Joins("JOIN users u ON u.id = m.user_id").
				Where("m.org_id = ? AND u.email = ?", org.ID, email).Count(&n).Error
		}); err != nil {
			return err
		}
		if n > 0 {
			return apperr.Invalid("email", "is already a member of this organisation")
		}
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			if err := tx.Model(&Invitation{}).Where("email = ? AND status = ?", email, "pending").Update("status", "revoked").Error; err != nil {
				return err
			}
			return tx.Create(&inv).Error
		}); err != nil {
			return fmt.Errorf("create invitation: %w", err)
		}
		if err := s.db.Record(ctx, tenant.Audit{Action: "invitation.created", ObjectType: "invitation", ObjectID: inv.ID.String(), Data: map[string]any{"email": email, "role": in.Role}}); err != nil {
			return err
		}
		t := texts(org.Locale)["invite"]
		inviter := actor.Email
		if inviter == "" {
			inviter = org.Name
		}
		return s.mail.Send(ctx, email, fmt.Sprintf(t[0], org.Name),
			fmt.Sprintf(t[1], inviter, org.Name, in.Role, s.opts.PublicURL+"/invite/"+tok))
	})
	return inv, err
}

// ListInvitations lists the organisation's invitations, newest first.
func (s *Service) ListInvitations(ctx context.Context, p httpx.PageParams) (httpx.List[Invitation], error) {
	var rows []Invitation
	err := s.db.Run(ctx, func(tx *gorm.DB) error {
		q := tx.Order("id DESC").Limit(p.Limit + 1)
		if p.Cursor != "" {
			q = q.Where("id < ?", p.Cursor)
		}
		return q.Find(&rows).Error
	})
	return httpx.NewList(rows, p.Limit, func(i Invitation) string { return i.ID.String() }), err
}

// RevokeInvitation withdraws a pending invitation.
func (s *Service) RevokeInvitation(ctx context.Context, id uuid.UUID) error {
	return s.db.Tx(ctx, func(ctx context.Context) error {
		var inv Invitation
		if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Where("id = ?", id).Take(&inv).Error }); err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return apperr.ErrNotFound
			}
			return err
		}
		if inv.Status != "pending" {
			return fmt.Errorf("invitation is %s: %w", inv.Status, apperr.ErrConflict)
		}
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Model(&Invitation{}).Where("id = ?", id).Update("status", "revoked").Error
		}); err != nil {
			return err
		}
		return s.db.Record(ctx, tenant.Audit{Action: "invitation.revoked", ObjectType: "invitation", ObjectID: id.String(), Data: map[string]any{"email": inv.Email}})
	})
}

// InvitationPreview is what the accept page shows before anyone logs in.
type InvitationPreview struct {
	OrgName    string `json:"org_name"`
	Email      string `json:"email"`
	Role       string `json:"role"`
	UserExists bool   `json:"user_exists"`
}

// pendingInvitation finds a live invitation by token, inside its organisation's scope.
func (s *Service) pendingInvitation(ctx context.Context, tok string) (context.Context, tenant.Org, Invitation, error) {
	var inv Invitation
	orgID, ok := parseInviteToken(tok)
	if !ok {
		return ctx, tenant.Org{}, inv, apperr.ErrNotFound
	}
	org, err := s.Org(ctx, orgID)
	if err != nil {
		return ctx, org, inv, err
	}
	ctx = tenant.WithOrg(ctx, org)
	err = s.db.Run(ctx, func(tx *gorm.DB) error {
		return tx.Where("token_hash = ? AND status = ? AND expires_at > ?", ids.Hash(tok), "pending", s.now()).Take(&inv).Error
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return ctx, org, inv, apperr.ErrNotFound
	}
	return ctx, org, inv, err
}

// PreviewInvitation describes a pending invitation.
func (s *Service) PreviewInvitation(ctx context.Context, tok string) (InvitationPreview, error) {
	ctx, org, inv, err := s.pendingInvitation(ctx, tok)
	if err != nil {
		return InvitationPreview{}, err
	}
	var n int64
	if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Model(&User{}).Where("email = ?", inv.Email).Count(&n).Error }); err != nil {
		return InvitationPreview{}, err
	}
	return InvitationPreview{OrgName: org.Name, Email: inv.Email, Role: inv.Role, UserExists: n > 0}, nil
}

// AcceptInput accepts an invitation: a name and password create the account if the email has
// none; an existing account proves itself with its password or a session for that email.
type AcceptInput struct {
	Name     string `json:"name" validate:"omitempty,max=120"`
	Password string `json:"password" validate:"omitempty,max=200"`
}

// AcceptInvitation joins the invitee to the organisation and starts a session.
func (s *Service) AcceptInvitation(ctx context.Context, tok string, in AcceptInput, current *User) (Started, error) {
	ctx, org, inv, err := s.pendingInvitation(ctx, tok)
	if err != nil {
		return Started{}, err
	}
	var u User
	err = s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Where("email = ?", inv.Email).Take(&u).Error })
	exists := err == nil
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return Started{}, err
	}
	now := s.now()
	switch {
	case exists && current != nil && current.ID == u.ID:
	case exists:
		if in.Password == "" {
			return Started{}, apperr.Invalid("password", "is required to join with your existing account")
		}
		// The same guard as login: a locked account stays locked, and a wrong password counts.
		if u.LockedUntil != nil && u.LockedUntil.After(now) {
			return Started{}, &apperr.RetryAfter{Err: fmt.Errorf("too many failed logins; try again later: %w", apperr.ErrLocked), Seconds: int(u.LockedUntil.Sub(now).Seconds()) + 1}
		}
		ok, err := CheckPassword(u.PasswordHash, in.Password)
		if err != nil {
			return Started{}, err
		}
		if !ok || u.DisabledAt != nil {
			if _, err := s.recordFailure(ctx, u.ID); err != nil {
				return Started{}, err
			}
			s.auditAccount(ctx, "auth.login_failed", u.Email, "wrong password accepting an invitation")
			return Started{}, errBadCredentials
		}
	default:
		var v apperr.Fields
		if strings.TrimSpace(in.Name) == "" {
			v.Add("name", "is required")
		}
		if len(in.Password) < 10 {
			v.Add("password", "must be at least 10 characters")
		}
		if err := v.Err(); err != nil {
			return Started{}, err
		}
		hash, err := HashPassword(in.Password)
		if err != nil {
			return Started{}, err
		}
		// The invitation reached this address, which verifies it.
		u = User{ID: ids.New(), Email: inv.Email, Name: strings.TrimSpace(in.Name), PasswordHash: hash, Locale: org.Locale, EmailVerifiedAt: &now, CreatedAt: now, UpdatedAt: now}
	}
	ctx = tenant.WithActor(ctx, withUser(tenant.ActorFrom(ctx), u))
	var st Started
	err = s.db.Tx(ctx, func(ctx context.Context) error {
		res := new(gorm.DB)
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			res = tx.Model(&Invitation{}).Where("id = ? AND status = ?", inv.ID, "pending").
				Updates(map[string]any{"status": "accepted", "accepted_at": now})
			if res.Error != nil || res.RowsAffected == 0 {
				return res.Error
			}
			if !exists {
				if err := tx.Create(&u).Error; err != nil {
					return fmt.Errorf("create user: %w", err)
				}
			}
			m := Membership{OrgID: org.ID, UserID: u.ID, Role: inv.Role, Status: "active", CreatedAt: now, UpdatedAt: now}
			return tx.Where("org_id = ? AND user_id = ?", org.ID, u.ID).
				Assign(map[string]any{"role": inv.Role, "status": "active", "updated_at": now}).FirstOrCreate(&m).Error
		}); err != nil {
			return err
		}
		if res.RowsAffected == 0 {
			return apperr.ErrNotFound // accepted concurrently
		}
		if err := s.db.Record(ctx, tenant.Audit{Action: "invitation.accepted", ObjectType: "invitation", ObjectID: inv.ID.String(), Data: map[string]any{"email": inv.Email, "role": inv.Role}}); err != nil {
			return err
		}
		st, err = s.startSession(ctx, u)
		return err
	})
	if err != nil {
		return Started{}, err
	}
	st.Org = &org
	s.ForgetSessions()
	return st, s.access.PolicyChanged(ctx)
}

// AddMember grants a role to an existing user directly (demo data and platform tooling).
func (s *Service) AddMember(ctx context.Context, orgID, userID uuid.UUID, role string) error {
	s.changed(ctx)
	now := time.Now().UTC()
	m := Membership{OrgID: orgID, UserID: userID, Role: role, Status: "active", CreatedAt: now, UpdatedAt: now}
	return s.db.Run(ctx, func(tx *gorm.DB) error {
		return tx.Where("org_id = ? AND user_id = ?", orgID, userID).
			Assign(map[string]any{"role": role, "status": "active", "updated_at": now}).FirstOrCreate(&m).Error
	})
}
