package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/internal/config"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/modules/access"
	"github.com/switchboard-cloud/switchboard/modules/identity"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// DemoLogin is one seeded account.
type DemoLogin struct {
	Email string
	Org   string
	Role  string
}

type demoOrg struct {
	slug, name string
	kind       tenant.Kind
	members    []DemoLogin
}

// ErrDemoInProduction refuses demo data where real customers live.
var ErrDemoInProduction = errors.New("demo data is refused when SWITCHBOARD_ENV=production")

// SeedDemo creates the demo organisations and logins; running it again changes nothing but
// the demo passwords. It returns the logins for printing.
func (a *App) SeedDemo(ctx context.Context) ([]DemoLogin, error) {
	if a.Cfg.Env == config.EnvProduction {
		return nil, ErrDemoInProduction
	}
	orgs := []demoOrg{
		{"platform", "Switchboard Platform", tenant.KindPlatform, []DemoLogin{{"admin@switchboard.test", "", access.PlatformAdmin}}},
		{"northwind", "Northwind Outsourcing", tenant.KindVendor, []DemoLogin{
			{"manager@northwind.test", "", access.VendorManager},
			{"vagent1@northwind.test", "", access.VendorAgent},
			{"vagent2@northwind.test", "", access.VendorAgent}}},
		{"acme", "Acme", tenant.KindTenant, []DemoLogin{
			{"owner@acme.test", "", access.TenantOwner},
			{"agent1@acme.test", "", access.Agent},
			{"agent2@acme.test", "", access.Agent},
			// An outsourced Northwind agent working Acme's queues.
			{"vagent1@northwind.test", "", access.Agent}}},
		{"globex", "Globex", tenant.KindTenant, []DemoLogin{{"owner@globex.test", "", access.TenantOwner}}},
	}
	hash, err := identity.HashPassword(a.Cfg.DemoPassword)
	if err != nil {
		return nil, err
	}
	ctx = a.DB.AsPlatform(ctx, "seed demo data")
	var logins []DemoLogin
	err = a.DB.Tx(ctx, func(ctx context.Context) error {
		return a.DB.Run(ctx, func(tx *gorm.DB) error {
			now := time.Now().UTC()
			for _, o := range orgs {
				var org tenant.Org
				err := tx.Where("slug = ?", o.slug).Take(&org).Error
				if errors.Is(err, gorm.ErrRecordNotFound) && o.kind == tenant.KindPlatform {
					err = tx.Where("id = ?", a.PlatformOrgID()).Take(&org).Error
				}
				if errors.Is(err, gorm.ErrRecordNotFound) {
					status := tenant.StatusActive
					org = tenant.Org{ID: ids.New(), Kind: o.kind, Name: o.name, Slug: o.slug, Status: status, Locale: "en",
						StatusChangedAt: now, CreatedAt: now, UpdatedAt: now}
					if err := tx.Create(&org).Error; err != nil {
						return fmt.Errorf("demo org %s: %w", o.slug, err)
					}
				} else if err != nil {
					return err
				}
				for _, m := range o.members {
					var u identity.User
					err := tx.Where("email = ?", m.Email).Take(&u).Error
					if errors.Is(err, gorm.ErrRecordNotFound) {
						u = identity.User{ID: ids.New(), Email: m.Email, Name: demoName(m.Email), PasswordHash: hash, Locale: "en",
							EmailVerifiedAt: &now, CreatedAt: now, UpdatedAt: now}
						err = tx.Create(&u).Error
					} else if err == nil {
						err = tx.Model(&identity.User{}).Where("id = ?", u.ID).
							Updates(map[string]any{"password_hash": hash, "failed_logins": 0, "locked_until": nil}).Error
					}
					if err != nil {
						return fmt.Errorf("demo user %s: %w", m.Email, err)
					}
					if err := a.Identity.AddMember(ctx, org.ID, u.ID, m.Role); err != nil {
						return fmt.Errorf("demo membership %s in %s: %w", m.Email, o.slug, err)
					}
					logins = append(logins, DemoLogin{Email: m.Email, Org: o.name, Role: m.Role})
				}
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return logins, a.Access.PolicyChanged(ctx)
}

func demoName(email string) string {
	for i, c := range email {
		if c == '@' {
			return email[:i]
		}
	}
	return email
}

// OrgBySlug finds an organisation (demo tooling and tests).
func (a *App) OrgBySlug(ctx context.Context, slug string) (tenant.Org, error) {
	var o tenant.Org
	err := a.DB.Run(ctx, func(tx *gorm.DB) error { return tx.Where("slug = ?", slug).Take(&o).Error })
	return o, err
}

// UserID finds a user by email (demo tooling and tests).
func (a *App) UserID(ctx context.Context, email string) (uuid.UUID, error) {
	var u identity.User
	err := a.DB.Run(ctx, func(tx *gorm.DB) error { return tx.Where("email = ?", identity.NormalizeEmail(email)).Take(&u).Error })
	return u.ID, err
}

// CreatePlatformAdmin creates (or promotes) a user as platform admin: how a production
// installation gets its first administrator. The password must meet the sign-up rule.
func (a *App) CreatePlatformAdmin(ctx context.Context, email, name, password string) error {
	email = identity.NormalizeEmail(email)
	if len(password) < 10 {
		return errors.New("the password must be at least 10 characters")
	}
	if !strings.Contains(email, "@") || name == "" {
		return errors.New("an email address and a name are required")
	}
	hash, err := identity.HashPassword(password)
	if err != nil {
		return err
	}
	platform := a.PlatformOrgID()
	ctx = tenant.WithOrg(a.DB.AsPlatform(ctx, "create a platform admin"), tenant.Org{ID: platform, Kind: tenant.KindPlatform})
	err = a.DB.Tx(ctx, func(ctx context.Context) error {
		var u identity.User
		err := a.DB.Run(ctx, func(tx *gorm.DB) error {
			err := tx.Where("email = ?", email).Take(&u).Error
			if errors.Is(err, gorm.ErrRecordNotFound) {
				now := time.Now().UTC()
				u = identity.User{ID: ids.New(), Email: email, Name: name, PasswordHash: hash, Locale: "en", EmailVerifiedAt: &now, CreatedAt: now, UpdatedAt: now}
				return tx.Create(&u).Error
			}
			return err
		})
		if err != nil {
			return err
		}
		if err := a.Identity.AddMember(ctx, platform, u.ID, access.PlatformAdmin); err != nil {
			return err
		}
		return a.DB.Record(ctx, tenant.Audit{Action: "platform_admin.created", ObjectType: "user", ObjectID: u.ID.String(), Data: map[string]any{"email": email, "via": "cli"}})
	})
	if err != nil {
		return fmt.Errorf("create platform admin: %w", err)
	}
	return a.Access.PolicyChanged(ctx)
}
