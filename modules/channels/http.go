package channels

import (
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard-cloud/switchboard/internal/httpx"
	"github.com/switchboard-cloud/switchboard/modules/access"
)

// Permissions of the channels API: everyone in the inbox sees the channels; admins set them up.
var (
	PermRead   = access.Permission{Name: "channels:read", Module: "channels", Description: "See the channels (inboxes) and their webhook URLs", Roles: []string{access.TenantOwner, access.TenantAdmin, access.Supervisor, access.Agent, access.Analyst}}
	PermManage = access.Permission{Name: "channels:manage", Module: "channels", Description: "Connect, change and disable channels", Roles: []string{access.TenantOwner, access.TenantAdmin}}
)

// Permissions returns the channels catalogue entries.
func Permissions() []access.Permission { return []access.Permission{PermRead, PermManage} }

func perm(p access.Permission, summary string) access.Spec {
	s := access.Perm(p, summary)
	s.Tag = "channels"
	return s
}

// Module serves the channels API.
type Module struct {
	svc *Service
	val *httpx.Validator
}

// NewModule returns the channels API.
func NewModule(svc *Service, val *httpx.Validator) *Module { return &Module{svc: svc, val: val} }

// Name identifies the module.
func (m *Module) Name() string { return "channels" }

// TypeInfo describes a channel type for the set-up pages.
type TypeInfo struct {
	Type     string            `json:"type"`
	Required []string          `json:"required"`
	Optional []string          `json:"optional"`
	Secret   []string          `json:"secret"`
	Defaults map[string]string `json:"defaults"`
}

// Routes registers the channels API.
func (m *Module) Routes(r *access.Router) {
	r.Get("/channels", perm(PermRead, "The tenant's channels, newest first (?type=); secrets are never shown, only which are set"), m.list)
	r.Post("/channels", perm(PermManage, "Connect a channel {type, name, config}; config keys are the provider's own names").WithBody(CreateInput{}), m.create)
	r.Get("/channel-types", perm(PermRead, "The channel types and their configuration keys"), m.types)
	r.Get("/channels/:id", perm(PermRead, "One channel"), m.get)
	r.Patch("/channels/:id", perm(PermManage, "Rename, disable or re-configure a channel; secrets not named keep their value").WithBody(UpdateInput{}), m.update)
	r.Post("/channels/:id/test", perm(PermManage, "Check the channel with its provider (re-runs the set-up, e.g. Telegram's setWebhook) and record the outcome"), m.test)
}

func (m *Module) list(c *fiber.Ctx) error {
	p, err := httpx.ParsePage(c)
	if err != nil {
		return err
	}
	rows, err := m.svc.List(c.UserContext(), c.Query("type"), p.Limit, p.Cursor)
	if err != nil {
		return err
	}
	return c.JSON(httpx.NewList(rows, p.Limit, func(x Channel) string { return x.ID.String() }))
}

func (m *Module) types(c *fiber.Ctx) error {
	out := []TypeInfo{}
	for _, t := range m.svc.reg.Types() {
		p, _ := m.svc.reg.Provider(t)
		s := p.Spec()
		out = append(out, TypeInfo{Type: t, Required: nonNil(s.Required), Optional: nonNil(s.Optional), Secret: nonNil(s.Secret), Defaults: s.Defaults})
	}
	return c.JSON(fiber.Map{"items": out})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (m *Module) create(c *fiber.Ctx) error {
	var in CreateInput
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	out, err := m.svc.Create(c.UserContext(), in)
	if err != nil {
		return err
	}
	return c.Status(http.StatusCreated).JSON(out)
}

func (m *Module) get(c *fiber.Ctx) error {
	id, err := httpx.PathUUID(c, "id")
	if err != nil {
		return err
	}
	out, err := m.svc.Get(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (m *Module) update(c *fiber.Ctx) error {
	id, err := httpx.PathUUID(c, "id")
	if err != nil {
		return err
	}
	var in UpdateInput
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	out, err := m.svc.Update(c.UserContext(), id, in)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (m *Module) test(c *fiber.Ctx) error {
	id, err := httpx.PathUUID(c, "id")
	if err != nil {
		return err
	}
	out, err := m.svc.Test(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(out)
}
