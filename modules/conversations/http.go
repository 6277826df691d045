package conversations

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/httpx"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/internal/queue"
	"github.com/switchboard-cloud/switchboard/modules/access"
	"github.com/switchboard-cloud/switchboard/modules/channels"
	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// Permissions of the inbox.
var (
	PermRead   = access.Permission{Name: "conversations:read", Module: "conversations", Description: "Read conversations, messages, notes and attachments", Roles: append([]string{access.Analyst}, access.InboxAgents...)}
	PermWrite  = access.Permission{Name: "conversations:write", Module: "conversations", Description: "Reply, write notes, upload files and change conversations", Roles: access.InboxAgents}
	PermBulk   = access.Permission{Name: "conversations:bulk", Module: "conversations", Description: "Change many conversations at once", Roles: access.InboxLeaders}
	PermCanned = access.Permission{Name: "canned_responses:manage", Module: "conversations", Description: "Write canned responses", Roles: access.InboxLeaders}
)

// Permissions returns the inbox's catalogue entries.
func Permissions() []access.Permission {
	return []access.Permission{PermRead, PermWrite, PermBulk, PermCanned}
}

func perm(p access.Permission, summary string) access.Spec {
	s := access.Perm(p, summary)
	s.Tag = "conversations"
	return s
}

// Module serves the inbox API and the channels' inbound webhooks.
type Module struct {
	svc      *Service
	channels *channels.Service
	val      *httpx.Validator
	isMember MemberCheck
	check    FileCheck
}

// NewModule returns the inbox API.
func NewModule(svc *Service, ch *channels.Service, val *httpx.Validator, isMember MemberCheck, check FileCheck) *Module {
	return &Module{svc: svc, channels: ch, val: val, isMember: isMember, check: check}
}

// Name identifies the module.
func (m *Module) Name() string { return "conversations" }

// Routes registers the inbox API under /api/v1.
func (m *Module) Routes(r *access.Router) {
	r.Get("/conversations", perm(PermRead, "The inbox, newest activity first: ?status=&assignee=me|none|<user id>&channel_id=&contact_id=&tag=&priority=&type=&limit=&cursor="), m.list)
	r.Get("/conversations/unread-counts", perm(PermRead, "How many open, pending or snoozed conversations have unread messages: all, mine, unassigned"), m.unread)
	r.Get("/conversations/:id", perm(PermRead, "One conversation"), m.get)
	r.Patch("/conversations/:id", perm(PermWrite, "Change status (snoozed needs snoozed_until), priority, type, assignee, team, tags, attributes").WithBody(UpdateInput{}), m.update)
	r.Post("/conversations/bulk", perm(PermBulk, "Apply one change to up to 100 conversations, all or nothing").WithBody(BulkInput{}), m.bulk)
	r.Post("/conversations/:id/read", perm(PermRead, "Mark the conversation read (unread count to 0)"), m.read)
	r.Get("/conversations/:id/messages", perm(PermRead, "Messages oldest first (?cursor= the last id seen; ?private=true includes notes)"), m.messages)
	r.Post("/conversations/:id/messages", perm(PermWrite, "Reply to the contact: stored queued, sent by the worker with retries; a failure shows on the message").WithBody(ReplyInput{}), m.reply)
	r.Post("/conversations/:id/messages/:message_id/retry", perm(PermWrite, "Send a failed reply again"), m.retry)
	r.Get("/conversations/:id/notes", perm(PermRead, "Private notes, oldest first"), m.notes)
	r.Post("/conversations/:id/notes", perm(PermWrite, "Write a private note; @{user id} mentions").WithBody(NoteInput{}), m.note)
	r.Get("/conversations/:id/canned-responses/:canned_id", perm(PermRead, "A canned response rendered for this conversation"), m.render)
	r.Get("/canned-responses", perm(PermRead, "Canned responses by shortcut (?q=)"), m.cannedList)
	r.Post("/canned-responses", perm(PermCanned, "Create a canned response; placeholders {{contact.name}}, {{contact.first_name}}, {{agent.name}}, {{conversation.id}}").WithBody(CannedInput{}), m.cannedCreate)
	r.Put("/canned-responses/:id", perm(PermCanned, "Replace a canned response").WithBody(CannedInput{}), m.cannedUpdate)
	r.Delete("/canned-responses/:id", perm(PermCanned, "Delete a canned response"), m.cannedDelete)
	r.Post("/attachments", perm(PermWrite, "Upload a file (multipart field \"file\") for a reply to attach"), m.upload)
	r.Get("/attachments/:id", perm(PermRead, "Download an attachment"), m.download)
}

// RootRoutes registers the inbound webhooks, outside the API prefix.
func (m *Module) RootRoutes(r *access.Router) {
	s := access.Public("Inbound webhook of a channel: the provider's signature is checked (401 and nothing stored when wrong); each message stored once; past the tenant's webhook budget 429 with Retry-After")
	s.Tag = "webhooks"
	r.Get("/hooks/:type/:public_id", s, m.hook)
	r.Post("/hooks/:type/:public_id", s, m.hook)
}

// Jobs registers the send, sweep and media tasks.
func (m *Module) Jobs(mux *asynq.ServeMux) {
	mux.HandleFunc(TaskSend, m.svc.HandleSend)
	mux.HandleFunc(TaskSweep, m.svc.HandleSweep)
	mux.HandleFunc(TaskFetchMedia, m.svc.HandleFetchMedia)
}

// Schedules runs the sweep every minute.
func (m *Module) Schedules() []queue.Schedule {
	return []queue.Schedule{{Cron: "@every 1m", Task: asynq.NewTask(TaskSweep, nil)}}
}

func queryUUID(c *fiber.Ctx, name string) (*uuid.UUID, error) {
	s := c.Query(name)
	if s == "" {
		return nil, nil
	}
	id, ok := ids.Parse(s)
	if !ok {
		return nil, apperr.Invalid(name, "must be a UUID")
	}
	return &id, nil
}

// pageLimit reads ?limit= alone, for lists whose cursor is not an id.
func pageLimit(c *fiber.Ctx) (int, error) {
	limit := httpx.DefaultLimit
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > httpx.MaxLimit {
			return 0, apperr.Invalid("limit", fmt.Sprintf("must be an integer from 1 to %d", httpx.MaxLimit))
		}
		limit = n
	}
	return limit, nil
}

func (m *Module) list(c *fiber.Ctx) error {
	limit, err := pageLimit(c)
	if err != nil {
		return err
	}
	f := Filter{Status: c.Query("status"), Assignee: c.Query("assignee"), Tag: c.Query("tag"), Priority: c.Query("priority"),
		Type: c.Query("type"), Limit: limit, Cursor: c.Query("cursor")}
	if f.ChannelID, err = queryUUID(c, "channel_id"); err != nil {
		return err
	}
	if f.ContactID, err = queryUUID(c, "contact_id"); err != nil {
		return err
	}
	rows, err := m.svc.List(c.UserContext(), f)
	if err != nil {
		return err
	}
	out := httpx.List[Conversation]{Items: rows}
	if len(rows) > limit {
		out.Items = rows[:limit]
		next := EncodeCursor(rows[limit-1])
		out.NextCursor = &next
	}
	return c.JSON(out)
}

func (m *Module) unread(c *fiber.Ctx) error {
	counts, err := m.svc.Unread(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(counts)
}

func (m *Module) get(c *fiber.Ctx) error {
	id, err := httpx.PathUUID(c, "id")
	if err != nil {
		return err
	}
	conv, err := m.svc.Get(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(conv)
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
	conv, err := m.svc.Update(c.UserContext(), id, in, m.isMember)
	if err != nil {
		return err
	}
	return c.JSON(conv)
}

func (m *Module) bulk(c *fiber.Ctx) error {
	var in BulkInput
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	n, err := m.svc.Bulk(c.UserContext(), in, m.isMember)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"updated": n})
}

func (m *Module) read(c *fiber.Ctx) error {
	id, err := httpx.PathUUID(c, "id")
	if err != nil {
		return err
	}
	if err := m.svc.MarkRead(c.UserContext(), id); err != nil {
		return err
	}
	return c.SendStatus(http.StatusNoContent)
}

func (m *Module) messagesPage(c *fiber.Ctx, which Which) error {
	id, err := httpx.PathUUID(c, "id")
	if err != nil {
		return err
	}
	p, err := httpx.ParsePage(c)
	if err != nil {
		return err
	}
	rows, err := m.svc.Messages(c.UserContext(), id, p.Limit, p.Cursor, which)
	if err != nil {
		return err
	}
	return c.JSON(httpx.NewList(rows, p.Limit, func(m Message) string { return m.ID.String() }))
}

func (m *Module) messages(c *fiber.Ctx) error {
	if c.QueryBool("private") {
		return m.messagesPage(c, PublicAndNotes)
	}
	return m.messagesPage(c, Public)
}

// notes filters in the query, so a page of notes is full and its cursor continues after it.
func (m *Module) notes(c *fiber.Ctx) error { return m.messagesPage(c, NotesOnly) }

func (m *Module) reply(c *fiber.Ctx) error {
	id, err := httpx.PathUUID(c, "id")
	if err != nil {
		return err
	}
	var in ReplyInput
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	msg, err := m.svc.Reply(c.UserContext(), id, in)
	if err != nil {
		return err
	}
	return c.Status(http.StatusCreated).JSON(msg)
}

func (m *Module) retry(c *fiber.Ctx) error {
	id, err := httpx.PathUUID(c, "id")
	if err != nil {
		return err
	}
	mid, err := httpx.PathUUID(c, "message_id")
	if err != nil {
		return err
	}
	msg, err := m.svc.Retry(c.UserContext(), id, mid)
	if err != nil {
		return err
	}
	return c.Status(http.StatusAccepted).JSON(msg)
}

func (m *Module) note(c *fiber.Ctx) error {
	id, err := httpx.PathUUID(c, "id")
	if err != nil {
		return err
	}
	var in NoteInput
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	msg, err := m.svc.Note(c.UserContext(), id, in)
	if err != nil {
		return err
	}
	return c.Status(http.StatusCreated).JSON(msg)
}

func (m *Module) render(c *fiber.Ctx) error {
	id, err := httpx.PathUUID(c, "id")
	if err != nil {
		return err
	}
	cid, err := httpx.PathUUID(c, "canned_id")
	if err != nil {
		return err
	}
	text, err := m.svc.Render(c.UserContext(), cid, id, tenant.ActorFrom(c.UserContext()).Email)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"content": text})
}

func (m *Module) cannedList(c *fiber.Ctx) error {
	limit, err := pageLimit(c)
	if err != nil {
		return err
	}
	rows, err := m.svc.CannedList(c.UserContext(), c.Query("q"), limit, c.Query("cursor"))
	if err != nil {
		return err
	}
	return c.JSON(httpx.NewList(rows, limit, func(x Canned) string { return x.Shortcut }))
}

func (m *Module) cannedCreate(c *fiber.Ctx) error {
	var in CannedInput
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	out, err := m.svc.CannedSave(c.UserContext(), nil, in)
	if err != nil {
		return err
	}
	return c.Status(http.StatusCreated).JSON(out)
}

func (m *Module) cannedUpdate(c *fiber.Ctx) error {
	id, err := httpx.PathUUID(c, "id")
	if err != nil {
		return err
	}
	var in CannedInput
	if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	out, err := m.svc.CannedSave(c.UserContext(), &id, in)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (m *Module) cannedDelete(c *fiber.Ctx) error {
	id, err := httpx.PathUUID(c, "id")
	if err != nil {
		return err
	}
	if err := m.svc.CannedDelete(c.UserContext(), id); err != nil {
		return err
	}
	return c.SendStatus(http.StatusNoContent)
}

func (m *Module) upload(c *fiber.Ctx) error {
	fh, err := c.FormFile("file")
	if err != nil {
		return apperr.Invalid("file", "send the file as multipart/form-data field \"file\"")
	}
	f, err := fh.Open()
	if err != nil {
		return fmt.Errorf("conversations: open upload: %w", err)
	}
	defer f.Close()
	a, err := m.svc.Upload(c.UserContext(), fh.Filename, fh.Header.Get("Content-Type"), f, m.check)
	if err != nil {
		return err
	}
	return c.Status(http.StatusCreated).JSON(a)
}

func (m *Module) download(c *fiber.Ctx) error {
	id, err := httpx.PathUUID(c, "id")
	if err != nil {
		return err
	}
	a, rc, err := m.svc.Attachment(c.UserContext(), id)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, a.ContentType)
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("Content-Security-Policy", "sandbox")
	disp := "attachment"
	if strings.HasPrefix(a.ContentType, "image/") {
		disp = "inline"
	}
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf("%s; filename*=UTF-8''%s", disp, urlEscape(a.Filename)))
	return c.SendStream(rc, int(a.Size))
}

func urlEscape(s string) string {
	var b strings.Builder
	for _, r := range []byte(s) {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.IndexByte("-._~", r) >= 0 {
			b.WriteByte(r)
		} else {
			fmt.Fprintf(&b, "%%%02X", r)
		}
	}
	return b.String()
}

// hook is the inbound webhook of every channel type: find the channel by its public id (the
// tenant follows from it), let the adapter check the signature and parse, store, answer.
func (m *Module) hook(c *fiber.Ctx) error {
	typ, publicID := c.Params("type"), c.Params("public_id")
	ctx, ch, err := m.channels.Resolve(c.UserContext(), "hook:"+publicID, typ)
	if err != nil {
		return err
	}
	p, ok := m.channels.Registry().Provider(ch.Type)
	if !ok {
		return fmt.Errorf("channel type %s: %w", ch.Type, apperr.ErrNotFound)
	}
	q := map[string][]string{}
	c.Context().QueryArgs().VisitAll(func(k, v []byte) { q[string(k)] = append(q[string(k)], string(v)) })
	h := http.Header{}
	c.Request().Header.VisitAll(func(k, v []byte) { h.Add(string(k), string(v)) })
	req := provider.Request{Method: c.Method(), URL: m.channels.WebhookURL(typ, publicID) + queryString(c), Query: q, Header: h, Body: append([]byte(nil), c.Body()...)}
	batch, err := p.Webhook(ctx, ch, req)
	switch {
	case errors.Is(err, provider.ErrSignature):
		return &fiber.Error{Code: http.StatusUnauthorized, Message: "missing or invalid signature"}
	case errors.Is(err, provider.ErrPayload):
		return apperr.Malformed("", err.Error())
	case errors.Is(err, provider.ErrUnsupported):
		return fmt.Errorf("hook: %w", apperr.ErrNotFound)
	case err != nil:
		return err
	}
	// Counted once the signature holds, so forged requests cannot spend a tenant's budget, and
	// only for deliveries that store something and that the provider makes again after a 429:
	// a verification handshake is never refused, nor is a delivery that would be lost.
	stores := len(batch.Messages)+len(batch.Statuses)+len(batch.Calls) > 0
	if stores && !p.Spec().DeliversOnce {
		if err := m.svc.allowHook(ctx); err != nil {
			return err
		}
	}
	if _, err := m.svc.Ingest(ctx, ch, batch); err != nil {
		return err // 5xx: the provider delivers again, and what was stored is not stored twice
	}
	resp := batch.Response
	if resp.Status == 0 {
		resp.Status = http.StatusOK
	}
	if resp.Body == nil {
		return c.Status(resp.Status).JSON(fiber.Map{})
	}
	if resp.ContentType != "" {
		c.Set(fiber.HeaderContentType, resp.ContentType)
	}
	return c.Status(resp.Status).Send(resp.Body)
}

func queryString(c *fiber.Ctx) string {
	if q := c.Request().URI().QueryString(); len(q) > 0 {
		return "?" + string(q)
	}
	return ""
}

// IngestTo is what the e-mail receiver and the widget call: store a delivery for a channel
// found by a route key.
func (s *Service) IngestTo(ctx context.Context, routeKey string, b func(ch provider.Channel) (provider.Batch, error)) (IngestResult, error) {
	ctx, ch, err := s.channels.Resolve(ctx, routeKey, "")
	if err != nil {
		return IngestResult{}, err
	}
	batch, err := b(ch)
	if err != nil {
		return IngestResult{}, err
	}
	return s.Ingest(ctx, ch, batch)
}
