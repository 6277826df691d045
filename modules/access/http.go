package access

import (
	"github.com/gofiber/fiber/v2"

	"github.com/switchboard-cloud/switchboard/internal/httpx"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// Module is the access module as the app registers it.
type Module struct {
	svc *Service
	val *httpx.Validator
}

// NewModule returns the access module.
func NewModule(svc *Service, val *httpx.Validator) *Module { return &Module{svc: svc, val: val} }

// Name identifies the module.
func (m *Module) Name() string { return "access" }

// Routes registers the roles API.
func (m *Module) Routes(r *Router) {
	r.Get("/roles", Perm(PermRolesRead, "List built-in and custom roles").tag("roles"), m.listRoles)
	r.Post("/roles", Perm(PermRolesWrite, "Create a custom role").tag("roles").WithBody(RoleInput{}), m.createRole)
	r.Patch("/roles/:name", Perm(PermRolesWrite, "Change a custom role").tag("roles").WithBody(RolePatch{}), m.updateRole)
	r.Delete("/roles/:name", Perm(PermRolesWrite, "Delete a custom role").tag("roles"), m.deleteRole)
	r.Get("/permissions", Perm(PermRolesRead, "List the permissions a custom role can hold").tag("roles"), m.listPermissions)
}

func (s Spec) tag(t string) Spec { s.Tag = t; return s }

func (m *Module) listRoles(c *fiber.Ctx) error {
	roles, err := m.svc.ListRoles(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(httpx.List[Role]{Items: roles})
}

func (m *Module) createRole(c *fiber.Ctx) error {
	var in RoleInput
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	role, err := m.svc.CreateRole(c.UserContext(), in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(role)
}

func (m *Module) updateRole(c *fiber.Ctx) error {
	var in RolePatch
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	role, err := m.svc.UpdateRole(c.UserContext(), c.Params("name"), in)
	if err != nil {
		return err
	}
	return c.JSON(role)
}

func (m *Module) deleteRole(c *fiber.Ctx) error {
	if err := m.svc.DeleteRole(c.UserContext(), c.Params("name")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (m *Module) listPermissions(c *fiber.Ctx) error {
	org, _ := tenant.OrgFrom(c.UserContext())
	return c.JSON(httpx.List[Permission]{Items: m.svc.cat.Grantable(org.Kind)})
}
