package contacts

import (
	"context"
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/httpx"
	"github.com/switchboard-cloud/switchboard/modules/access"
)

// Permissions of the contacts API.
var (
	PermRead   = access.Permission{Name: "contacts:read", Module: "contacts", Description: "Read contacts, their identities and timeline", Roles: append([]string{access.Analyst}, access.InboxAgents...)}
	PermWrite  = access.Permission{Name: "contacts:write", Module: "contacts", Description: "Create and edit contacts", Roles: access.InboxAgents}
	PermManage = access.Permission{Name: "contacts:manage", Module: "contacts", Description: "Merge, import and export contacts; define custom fields", Roles: access.InboxLeaders}
)

// Permissions returns the contacts catalogue entries.
func Permissions() []access.Permission { return []access.Permission{PermRead, PermWrite, PermManage} }

func perm(p access.Permission, summary string) access.Spec {
	s := access.Perm(p, summary)
	s.Tag = "contacts"
	return s
}

// Timeline is what the inbox tells about a contact, newest first (limit+1 rows).
type Timeline[T any] func(ctx context.Context, contactID uuid.UUID, limit int, cursor string) ([]T, error)

// Module serves the contacts API.
type Module[T any] struct {
	svc      *Service
	val      *httpx.Validator
	timeline Timeline[T]
	id       func(T) string
}

// NewModule returns the contacts API; timeline reads the contact's history from the inbox.
func NewModule[T any](svc *Service, val *httpx.Validator, timeline Timeline[T], id func(T) string) *Module[T] {
	return &Module[T]{svc: svc, val: val, timeline: timeline, id: id}
}

// Name identifies the module.
func (m *Module[T]) Name() string { return "contacts" }

// MergeInput is the body of POST /contacts/merge.
type MergeInput struct {
	WinnerID uuid.UUID `json:"winner_id" validate:"required"`
	LoserID  uuid.UUID `json:"loser_id" validate:"required"`
}

// Routes registers the contacts API.
func (m *Module[T]) Routes(r *access.Router) {
	r.Get("/contacts", perm(PermRead, "Contacts, newest first; ?q= searches name, e-mail, phone and company; ?tag="), m.list)
	r.Post("/contacts", perm(PermWrite, "Create a contact with identities (e-mail, phone in E.164, messaging ids, external id)").WithBody(Input{}), m.create)
	r.Get("/contacts/export", perm(PermManage, "Export contacts as CSV"), m.export)
	r.Post("/contacts/import", perm(PermManage, "Import contacts from CSV (multipart field \"file\" or a text/csv body); per-row errors"), m.importCSV)
	r.Post("/contacts/merge", perm(PermManage, "Merge the loser into the winner: identities, conversations and history move; the loser points at the winner").WithBody(MergeInput{}), m.merge)
	r.Get("/contacts/:id", perm(PermRead, "One contact; a merged one answers with merged_into"), m.get)
	r.Patch("/contacts/:id", perm(PermWrite, "Change a contact; identities given are added").WithBody(Input{}), m.update)
	r.Delete("/contacts/:id/identities/:identity_id", perm(PermWrite, "Remove an identity from a contact"), m.removeIdentity)
	r.Get("/contacts/:id/timeline", perm(PermRead, "Every message and note of the contact across channels, newest first"), m.timelineRoute)
	r.Get("/contact-fields", perm(PermRead, "The tenant's custom contact fields"), m.fields)
	r.Post("/contact-fields", perm(PermManage, "Define a custom contact field {key, label, type: text|number|boolean|date|select, options}").WithBody(Field{}), m.createField)
	r.Put("/contact-fields/:key", perm(PermManage, "Change a custom contact field's label, type or options").WithBody(Field{}), m.saveField)
	r.Delete("/contact-fields/:key", perm(PermManage, "Remove a custom field definition"), m.deleteField)
}

func (m *Module[T]) list(c *fiber.Ctx) error {
	p, err := httpx.ParsePage(c)
	if err != nil {
		return err
	}
	rows, err := m.svc.List(c.UserContext(), Filter{Query: c.Query("q"), Tag: c.Query("tag"), Limit: p.Limit, Cursor: p.Cursor})
	if err != nil {
		return err
	}
	return c.JSON(httpx.NewList(rows, p.Limit, func(x Contact) string { return x.ID.String() }))
}

func (m *Module[T]) create(c *fiber.Ctx) error {
	var in Input
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	out, err := m.svc.Create(c.UserContext(), in)
	if err != nil {
		return err
	}
	return c.Status(http.StatusCreated).JSON(out)
}

func (m *Module[T]) get(c *fiber.Ctx) error {
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

func (m *Module[T]) update(c *fiber.Ctx) error {
	id, err := httpx.PathUUID(c, "id")
	if err != nil {
		return err
	}
	var in Input
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	out, err := m.svc.Update(c.UserContext(), id, in)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (m *Module[T]) removeIdentity(c *fiber.Ctx) error {
	id, err := httpx.PathUUID(c, "id")
	if err != nil {
		return err
	}
	iid, err := httpx.PathUUID(c, "identity_id")
	if err != nil {
		return err
	}
	if err := m.svc.RemoveIdentity(c.UserContext(), id, iid); err != nil {
		return err
	}
	return c.SendStatus(http.StatusNoContent)
}

func (m *Module[T]) merge(c *fiber.Ctx) error {
	var in MergeInput
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	out, err := m.svc.Merge(c.UserContext(), in.WinnerID, in.LoserID)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (m *Module[T]) timelineRoute(c *fiber.Ctx) error {
	id, err := httpx.PathUUID(c, "id")
	if err != nil {
		return err
	}
	p, err := httpx.ParsePage(c)
	if err != nil {
		return err
	}
	if _, err := m.svc.Get(c.UserContext(), id); err != nil {
		return err
	}
	rows, err := m.timeline(c.UserContext(), id, p.Limit, p.Cursor)
	if err != nil {
		return err
	}
	return c.JSON(httpx.NewList(rows, p.Limit, m.id))
}

func (m *Module[T]) fields(c *fiber.Ctx) error {
	rows, err := m.svc.Fields(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": rows})
}

func (m *Module[T]) createField(c *fiber.Ctx) error {
	var in Field
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	out, err := m.svc.SaveField(c.UserContext(), in, true)
	if err != nil {
		return err
	}
	return c.Status(http.StatusCreated).JSON(out)
}

func (m *Module[T]) saveField(c *fiber.Ctx) error {
	var in Field
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	if in.Key != "" && in.Key != c.Params("key") {
		return apperr.Invalid("key", "must match the path (keys cannot be renamed)")
	}
	in.Key = c.Params("key")
	out, err := m.svc.SaveField(c.UserContext(), in, false)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (m *Module[T]) deleteField(c *fiber.Ctx) error {
	if err := m.svc.DeleteField(c.UserContext(), c.Params("key")); err != nil {
		return err
	}
	return c.SendStatus(http.StatusNoContent)
}
