package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// customRole is a role an organisation defines from the permission catalogue.
type customRole struct {
	TenantID    uuid.UUID `gorm:"type:uuid;primaryKey"`
	Name        string    `gorm:"primaryKey"`
	Description string
	Permissions string // JSON array of permission names
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func (customRole) TableName() string { return "roles" }

// Role is a role as the API shows it.
type Role struct {
	Name        string   `json:"name"`
	Builtin     bool     `json:"builtin"`
	Description string   `json:"description"`
	Permissions []string `json:"permissions"`
}

// Grant is one user holding one role in one organisation.
type Grant struct {
	UserID uuid.UUID
	Role   string
	OrgID  uuid.UUID
}

// GrantSource lists every active grant; the identity module's memberships implement it.
type GrantSource interface {
	Grants(ctx context.Context) ([]Grant, error)
	// RoleInUse reports whether any member of the organisation holds the role.
	RoleInUse(ctx context.Context, orgID uuid.UUID, role string) (bool, error)
}

// Service manages custom roles and keeps the enforcer in step with roles and grants.
type Service struct {
	db     *tenant.DB
	cat    *Catalogue
	grants GrantSource
	enf    *Enforcer
	// Changed is called after a policy change has been applied locally, to tell other nodes
	// (the app wires it to Redis pub/sub). Optional.
	changed func(ctx context.Context)
}

// NewService wires the access service. Call Start to load the enforcer.
func NewService(db *tenant.DB, cat *Catalogue, grants GrantSource) *Service {
	return &Service{db: db, cat: cat, grants: grants}
}

// Catalogue returns the permission catalogue.
func (s *Service) Catalogue() *Catalogue { return s.cat }

// Start loads the policies into a new enforcer. onChange is told after every local change.
func (s *Service) Start(ctx context.Context, log *slog.Logger, onChange func(context.Context)) (*Enforcer, error) {
	enf, err := NewEnforcer(ctx, s, log)
	if err != nil {
		return nil, err
	}
	s.enf, s.changed = enf, onChange
	return enf, nil
}

// Enforcer returns the loaded enforcer.
func (s *Service) Enforcer() *Enforcer { return s.enf }

// PolicyChanged reloads the enforcer after roles or grants changed, and tells the other nodes.
// Call it after the change's transaction has committed.
func (s *Service) PolicyChanged(ctx context.Context) error {
	if err := s.enf.Reload(ctx); err != nil {
		return err
	}
	if s.changed != nil {
		s.changed(ctx)
	}
	return nil
}

// Policies implements PolicySource: built-in roles from the catalogue, custom roles and grants
// from the database. Reading every organisation's roles is a platform job.
func (s *Service) Policies(ctx context.Context) ([][]string, error) {
	var rules [][]string
	for _, p := range s.cat.All() {
		for _, r := range p.Roles {
			rules = append(rules, []string{"p", r, "*", p.Object(), p.Action()})
		}
	}
	ctx = s.db.AsPlatform(ctx, "load access policies")
	var roles []customRole
	if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Find(&roles).Error }); err != nil {
		return nil, fmt.Errorf("read custom roles: %w", err)
	}
	for _, r := range roles {
		var perms []string
		if err := json.Unmarshal([]byte(r.Permissions), &perms); err != nil {
			return nil, fmt.Errorf("role %s/%s: bad permissions: %w", r.TenantID, r.Name, err)
		}
		for _, name := range perms {
			if p, ok := s.cat.Get(name); ok {
				rules = append(rules, []string{"p", r.Name, r.TenantID.String(), p.Object(), p.Action()})
			}
		}
	}
	grants, err := s.grants.Grants(ctx)
	if err != nil {
		return nil, fmt.Errorf("read grants: %w", err)
	}
	for _, g := range grants {
		rules = append(rules, []string{"g", g.UserID.String(), g.Role, g.OrgID.String()})
	}
	return rules, nil
}

// RoleExists reports whether role may be granted in the organisation in ctx: a built-in role of
// the organisation's kind, or one of its custom roles.
func (s *Service) RoleExists(ctx context.Context, role string) (bool, error) {
	org, ok := tenant.OrgFrom(ctx)
	if !ok {
		return false, tenant.ErrNoTenant
	}
	if b, ok := Builtin(role); ok {
		return b.Kind == org.Kind, nil
	}
	var n int64
	err := s.db.Run(ctx, func(tx *gorm.DB) error {
		return tx.Model(&customRole{}).Where("name = ?", role).Count(&n).Error
	})
	return n > 0, err
}

// Permissions returns what the actor in ctx may do in the organisation in ctx.
func (s *Service) Permissions(ctx context.Context) []string {
	actor, ok := tenant.Authenticated(ctx)
	org, ok2 := tenant.OrgFrom(ctx)
	if !ok || !ok2 {
		return []string{}
	}
	sub := actor.UserID.String()
	if actor.Kind == tenant.ActorAPIKey {
		sub = actor.Role
	}
	out := []string{}
	for _, p := range s.cat.All() {
		if actor.Impersonating {
			// What an impersonating platform admin may do in the tenant: read, as the guard allows.
			if !p.PlatformOnly && p.Action() == "read" {
				out = append(out, p.Name)
			}
			continue
		}
		if s.enf.Enforce(sub, org.ID.String(), p.Object(), p.Action()) {
			out = append(out, p.Name)
		}
	}
	return out
}

// ListRoles returns the organisation's built-in roles followed by its custom roles.
func (s *Service) ListRoles(ctx context.Context) ([]Role, error) {
	org, ok := tenant.OrgFrom(ctx)
	if !ok {
		return nil, tenant.ErrNoTenant
	}
	out := []Role{}
	for _, b := range BuiltinRoles {
		if b.Kind == org.Kind {
			out = append(out, Role{Name: b.Name, Builtin: true, Description: b.Description, Permissions: nonNil(s.cat.RolePermissions(b.Name))})
		}
	}
	var rows []customRole
	if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Order("name").Find(&rows).Error }); err != nil {
		return nil, fmt.Errorf("list roles: %w", err)
	}
	for _, r := range rows {
		role, err := r.toRole()
		if err != nil {
			return nil, err
		}
		out = append(out, role)
	}
	return out, nil
}

func (r customRole) toRole() (Role, error) {
	var perms []string
	if err := json.Unmarshal([]byte(r.Permissions), &perms); err != nil {
		return Role{}, fmt.Errorf("role %s: bad permissions: %w", r.Name, err)
	}
	return Role{Name: r.Name, Description: r.Description, Permissions: nonNil(perms)}, nil
}

// RoleInput creates or changes a custom role.
type RoleInput struct {
	Name        string   `json:"name" validate:"required,min=2,max=40"`
	Description string   `json:"description" validate:"max=200"`
	Permissions []string `json:"permissions" validate:"required,min=1,max=200"`
}

// RolePatch changes a custom role; absent fields stay.
type RolePatch struct {
	Description *string   `json:"description" validate:"omitempty,max=200"`
	Permissions *[]string `json:"permissions" validate:"omitempty,min=1,max=200"`
}

var roleName = regexp.MustCompile(`^[a-z][a-z0-9_]{1,39}$`)

func (s *Service) checkPermissions(org tenant.Org, names []string) error {
	var v apperr.Fields
	grantable := s.cat.Grantable(org.Kind)
	for i, n := range names {
		if !slices.ContainsFunc(grantable, func(p Permission) bool { return p.Name == n }) {
			v.Add(fmt.Sprintf("permissions[%d]", i), fmt.Sprintf("%q is not a permission this organisation can grant", n))
		}
	}
	return v.Err()
}

// CreateRole adds a custom role.
func (s *Service) CreateRole(ctx context.Context, in RoleInput) (Role, error) {
	org, ok := tenant.OrgFrom(ctx)
	if !ok {
		return Role{}, tenant.ErrNoTenant
	}
	if !roleName.MatchString(in.Name) {
		return Role{}, apperr.Invalid("name", "must be 2–40 lowercase letters, digits or underscores, starting with a letter")
	}
	if _, builtin := Builtin(in.Name); builtin {
		return Role{}, apperr.Invalid("name", "is the name of a built-in role")
	}
	if err := s.checkPermissions(org, in.Permissions); err != nil {
		return Role{}, err
	}
	perms := dedupe(in.Permissions)
	b, _ := json.Marshal(perms)
	now := time.Now().UTC()
	row := customRole{Name: in.Name, Description: in.Description, Permissions: string(b), CreatedAt: now, UpdatedAt: now}
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Create(&row).Error }); err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return apperr.Invalid("name", "a role with this name exists")
			}
			return fmt.Errorf("create role: %w", err)
		}
		return s.db.Record(ctx, tenant.Audit{Action: "role.created", ObjectType: "role", ObjectID: in.Name, Data: map[string]any{"permissions": perms}})
	})
	if err != nil {
		return Role{}, err
	}
	return Role{Name: row.Name, Description: row.Description, Permissions: perms}, s.PolicyChanged(ctx)
}

// UpdateRole changes a custom role's description or permissions.
func (s *Service) UpdateRole(ctx context.Context, name string, in RolePatch) (Role, error) {
	org, ok := tenant.OrgFrom(ctx)
	if !ok {
		return Role{}, tenant.ErrNoTenant
	}
	if in.Permissions != nil {
		if err := s.checkPermissions(org, *in.Permissions); err != nil {
			return Role{}, err
		}
	}
	var out Role
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		var row customRole
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Where("name = ?", name).Take(&row).Error
		}); err != nil {
			return notFound(err)
		}
		if in.Description != nil {
			row.Description = *in.Description
		}
		if in.Permissions != nil {
			b, _ := json.Marshal(dedupe(*in.Permissions))
			row.Permissions = string(b)
		}
		row.UpdatedAt = time.Now().UTC()
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Model(&customRole{}).Where("name = ?", name).
				Updates(map[string]any{"description": row.Description, "permissions": row.Permissions, "updated_at": row.UpdatedAt}).Error
		}); err != nil {
			return fmt.Errorf("update role: %w", err)
		}
		var err error
		if out, err = row.toRole(); err != nil {
			return err
		}
		return s.db.Record(ctx, tenant.Audit{Action: "role.updated", ObjectType: "role", ObjectID: name, Data: map[string]any{"permissions": out.Permissions}})
	})
	if err != nil {
		return Role{}, err
	}
	return out, s.PolicyChanged(ctx)
}

// DeleteRole removes a custom role no member holds.
func (s *Service) DeleteRole(ctx context.Context, name string) error {
	org, ok := tenant.OrgFrom(ctx)
	if !ok {
		return tenant.ErrNoTenant
	}
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		inUse, err := s.grants.RoleInUse(ctx, org.ID, name)
		if err != nil {
			return err
		}
		var res *gorm.DB
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			res = tx.Where("name = ?", name).Delete(&customRole{})
			return res.Error
		}); err != nil {
			return fmt.Errorf("delete role: %w", err)
		}
		if res.RowsAffected == 0 {
			return apperr.ErrNotFound
		}
		if inUse {
			return fmt.Errorf("role %s is held by members; give them another role first: %w", name, apperr.ErrConflict)
		}
		return s.db.Record(ctx, tenant.Audit{Action: "role.deleted", ObjectType: "role", ObjectID: name})
	})
	if err != nil {
		return err
	}
	return s.PolicyChanged(ctx)
}

func notFound(err error) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return apperr.ErrNotFound
	}
	return err
}

func dedupe(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// rolePermissions returns what a role of the organisation in ctx holds.
func (s *Service) rolePermissions(ctx context.Context, role string) ([]string, error) {
	if _, ok := Builtin(role); ok {
		return s.cat.RolePermissions(role), nil
	}
	var row customRole
	err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Where("name = ?", role).Take(&row).Error })
	if err != nil {
		return nil, notFound(err)
	}
	r, err := row.toRole()
	return r.Permissions, err
}

// CheckGrant refuses to let the actor in ctx hand out a role (to a member, an invitee or an
// API key) that holds a permission the actor does not hold here: nobody can mint rights they
// do not have.
func (s *Service) CheckGrant(ctx context.Context, role string) error {
	perms, err := s.rolePermissions(ctx, role)
	if err != nil {
		return err
	}
	held := s.Permissions(ctx)
	for _, p := range perms {
		if !slices.Contains(held, p) {
			return fmt.Errorf("role %s holds %s, which you do not: %w", role, p, apperr.ErrForbidden)
		}
	}
	return nil
}
