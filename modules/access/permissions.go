// Package access is role-based access control: the permission catalogue the modules declare,
// built-in and custom roles, casbin RBAC-with-domains (a domain is an organisation), and the
// route guard every HTTP route is registered through.
package access

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/switchboard-cloud/switchboard/tenant"
)

// Built-in roles.
const (
	PlatformAdmin = "platform_admin"
	BillingAdmin  = "billing_admin"
	TenantOwner   = "tenant_owner"
	TenantAdmin   = "tenant_admin"
	Supervisor    = "supervisor"
	Agent         = "agent"
	Analyst       = "analyst"
	VendorManager = "vendor_manager"
	VendorAgent   = "vendor_agent"
)

// Role groups the inbox modules grant their permissions to: whoever answers customers, and
// whoever leads them.
var (
	InboxAgents  = []string{TenantOwner, TenantAdmin, Supervisor, Agent}
	InboxLeaders = []string{TenantOwner, TenantAdmin, Supervisor}
)

// BuiltinRole is a role every organisation of its kind has.
type BuiltinRole struct {
	Name        string
	Kind        tenant.Kind
	Description string
}

// BuiltinRoles lists the built-in roles in display order.
var BuiltinRoles = []BuiltinRole{
	{PlatformAdmin, tenant.KindPlatform, "Runs the platform: tenants, plans, billing, audit."},
	{BillingAdmin, tenant.KindPlatform, "Runs billing and reads revenue."},
	{TenantOwner, tenant.KindTenant, "Owns the tenant: everything, including billing and deletion."},
	{TenantAdmin, tenant.KindTenant, "Administers members, roles, channels and settings."},
	{Supervisor, tenant.KindTenant, "Watches queues and agents, reassigns work."},
	{Agent, tenant.KindTenant, "Answers conversations."},
	{Analyst, tenant.KindTenant, "Reads reports and analytics."},
	{VendorManager, tenant.KindVendor, "Manages the vendor's agent pool and seat allocations."},
	{VendorAgent, tenant.KindVendor, "An outsourced agent of the vendor."},
}

// Builtin returns the built-in role with that name.
func Builtin(name string) (BuiltinRole, bool) {
	for _, r := range BuiltinRoles {
		if r.Name == name {
			return r, true
		}
	}
	return BuiltinRole{}, false
}

// Permission is an "object:action" right declared by the module that owns the object, with the
// built-in roles that hold it.
type Permission struct {
	Name        string   `json:"name"`
	Module      string   `json:"module"`
	Description string   `json:"description"`
	Roles       []string `json:"-"`
	// PlatformOnly permissions are never granted to tenant or vendor roles, custom or not.
	PlatformOnly bool `json:"-"`
}

// Object and Action split the name.
func (p Permission) Object() string { o, _, _ := strings.Cut(p.Name, ":"); return o }

// Action is the part after the colon.
func (p Permission) Action() string { _, a, _ := strings.Cut(p.Name, ":"); return a }

// Catalogue is every permission the modules declare.
type Catalogue struct {
	byName map[string]Permission
	list   []Permission
}

// NewCatalogue checks and indexes the declared permissions.
func NewCatalogue(perms ...[]Permission) (*Catalogue, error) {
	c := &Catalogue{byName: map[string]Permission{}}
	for _, group := range perms {
		for _, p := range group {
			o, a, ok := strings.Cut(p.Name, ":")
			if !ok || o == "" || a == "" || strings.Contains(a, ":") {
				return nil, fmt.Errorf("access: permission %q is not object:action", p.Name)
			}
			if _, dup := c.byName[p.Name]; dup {
				return nil, fmt.Errorf("access: permission %q declared twice", p.Name)
			}
			for _, r := range p.Roles {
				b, ok := Builtin(r)
				if !ok {
					return nil, fmt.Errorf("access: permission %q grants unknown role %q", p.Name, r)
				}
				if p.PlatformOnly && b.Kind != tenant.KindPlatform {
					return nil, fmt.Errorf("access: platform permission %q granted to %s role %q", p.Name, b.Kind, r)
				}
			}
			c.byName[p.Name] = p
			c.list = append(c.list, p)
		}
	}
	sort.Slice(c.list, func(i, j int) bool { return c.list[i].Name < c.list[j].Name })
	return c, nil
}

// All returns the catalogue sorted by name.
func (c *Catalogue) All() []Permission { return slices.Clone(c.list) }

// Get returns one permission.
func (c *Catalogue) Get(name string) (Permission, bool) { p, ok := c.byName[name]; return p, ok }

// Grantable returns the permissions an organisation of kind k may put into a custom role.
func (c *Catalogue) Grantable(k tenant.Kind) []Permission {
	var out []Permission
	for _, p := range c.list {
		if !p.PlatformOnly || k == tenant.KindPlatform {
			out = append(out, p)
		}
	}
	return out
}

// RolePermissions returns the names a built-in role holds.
func (c *Catalogue) RolePermissions(role string) []string {
	var out []string
	for _, p := range c.list {
		if slices.Contains(p.Roles, role) {
			out = append(out, p.Name)
		}
	}
	return out
}

// Permissions this module owns.
var (
	PermRolesRead    = Permission{Name: "roles:read", Module: "access", Description: "See roles and the permission catalogue", Roles: []string{PlatformAdmin, TenantOwner, TenantAdmin, Supervisor, VendorManager}}
	PermRolesWrite   = Permission{Name: "roles:write", Module: "access", Description: "Create, change and delete custom roles", Roles: []string{PlatformAdmin, TenantOwner, TenantAdmin, VendorManager}}
	PermAuditRead    = Permission{Name: "audit:read", Module: "access", Description: "Read the organisation's audit log", Roles: []string{PlatformAdmin, TenantOwner, TenantAdmin, VendorManager}}
	PermAuditReadAll = Permission{Name: "audit:read_all", Module: "access", Description: "Read the audit log of every organisation", Roles: []string{PlatformAdmin}, PlatformOnly: true}
)

// Permissions returns this module's catalogue entries.
func Permissions() []Permission {
	return []Permission{PermRolesRead, PermRolesWrite}
}
