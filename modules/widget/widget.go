// Package widget is the web chat widget: the embeddable script (/widget.js) and the public API
// it talks to. A visitor gets a signed visitor token that keeps their thread across reloads; a
// brand that signs its user id with the channel's identity_secret (HMAC-SHA256) makes the
// visitor a verified contact. Messages go through the inbox's Ingest like every channel's.
package widget

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/httpx"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/modules/access"
	"github.com/switchboard-cloud/switchboard/modules/channels"
	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
	"github.com/switchboard-cloud/switchboard/modules/contacts"
	"github.com/switchboard-cloud/switchboard/modules/conversations"
	"github.com/switchboard-cloud/switchboard/tenant"
)

//go:embed widget.js
var script []byte

// Module serves the widget.
type Module struct {
	channels *channels.Service
	contacts *contacts.Service
	inbox    *conversations.Service
	live     Live
	val      *httpx.Validator
	key      []byte
	check    conversations.FileCheck
	maxFile  int64
}

// Live is the realtime side the widget needs: typing notices and the visitor's socket.
type Live interface {
	Broadcast(ctx context.Context, kind string, conversationID uuid.UUID, payload any) error
	ServeVisitor(c *fiber.Ctx, tenantID, since, channelID, contactID uuid.UUID, initial []uuid.UUID) error
}

// NewModule returns the widget; secretKey signs visitor tokens.
func NewModule(ch *channels.Service, ct *contacts.Service, inbox *conversations.Service, live Live, val *httpx.Validator,
	secretKey []byte, check conversations.FileCheck, maxFile int64) *Module {
	m := hmac.New(sha256.New, secretKey)
	m.Write([]byte("switchboard widget visitor tokens v1"))
	return &Module{channels: ch, contacts: ct, inbox: inbox, live: live, val: val, key: m.Sum(nil), check: check, maxFile: maxFile}
}

// Name identifies the module.
func (m *Module) Name() string { return "widget" }

func public(summary string) access.Spec {
	s := access.Public(summary)
	s.Tag = "widget"
	return s
}

// RootRoutes serves the script.
func (m *Module) RootRoutes(r *access.Router) {
	r.Get("/widget.js", public("The embeddable chat widget script"), m.serveScript)
}

// Routes registers the widget's public API under /api/v1/widget/:public_id.
func (m *Module) Routes(r *access.Router) {
	r.Get("/widget/:public_id/config", public("The widget's settings: name, locale, welcome text, pre-chat form"), m.config)
	r.Post("/widget/:public_id/sessions", public("Start or resume a visitor session; with user_id and user_hash (HMAC-SHA256 of user_id with the channel's identity_secret) the visitor is verified").WithBody(SessionInput{}), m.session)
	r.Get("/widget/:public_id/messages", public("The visitor's thread, oldest first (?cursor= the last id seen): the polling fallback"), m.messages)
	r.Post("/widget/:public_id/messages", public("The visitor writes (JSON {content, client_id} or multipart with a file)"), m.post)
	r.Post("/widget/:public_id/typing", public("The visitor is typing"), m.typing)
	r.Get("/widget/:public_id/ws", public("WebSocket of the visitor's thread (?token=&since=)"), m.ws)
}

func (m *Module) serveScript(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, "application/javascript; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	c.Set("Access-Control-Allow-Origin", "*")
	return c.Send(script)
}

// cors lets the brand's pages call the widget API, limited to allowed_origins when set.
func cors(c *fiber.Ctx, ch provider.Channel) error {
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" {
		return nil
	}
	if allowed := ch.Config["allowed_origins"]; allowed != "" {
		ok := false
		for _, o := range strings.Split(allowed, ",") {
			ok = ok || strings.TrimRight(strings.TrimSpace(o), "/") == origin
		}
		if !ok {
			return fmt.Errorf("origin %s may not embed this widget: %w", origin, apperr.ErrNotFound)
		}
	}
	c.Set("Access-Control-Allow-Origin", origin)
	c.Set("Vary", "Origin")
	return nil
}

func (m *Module) channel(c *fiber.Ctx) (context.Context, provider.Channel, error) {
	ctx, ch, err := m.channels.Resolve(c.UserContext(), "hook:"+c.Params("public_id"), "webchat")
	if err != nil {
		return nil, provider.Channel{}, err
	}
	if err := cors(c, ch); err != nil {
		return nil, provider.Channel{}, err
	}
	return ctx, ch, nil
}

func (m *Module) config(c *fiber.Ctx) error {
	_, ch, err := m.channel(c)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"name": ch.Name, "locale": ch.Get("locale", "en"), "welcome_text": ch.Config["welcome_text"],
		"color": ch.Get("color", "#2563eb"), "pre_chat_form": strings.Split(ch.Get("pre_chat_form", ""), ","),
		"identity_verification": ch.Config["identity_secret"] != ""})
}

// token is "<channel id>.<visitor id>.<contact id>.<mac>" in URL-safe base64.
func (m *Module) token(channelID, visitorID, contactID uuid.UUID) string {
	body := channelID.String() + "." + visitorID.String() + "." + contactID.String()
	mac := hmac.New(sha256.New, m.key)
	mac.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString([]byte(body + "." + hex.EncodeToString(mac.Sum(nil))))
}

type visitor struct {
	ID, ContactID uuid.UUID
}

var errBadToken = errors.New("widget: visitor token is invalid")

func (m *Module) parse(tok string, channelID uuid.UUID) (visitor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return visitor{}, errBadToken
	}
	parts := strings.Split(string(raw), ".")
	if len(parts) != 4 {
		return visitor{}, errBadToken
	}
	mac := hmac.New(sha256.New, m.key)
	mac.Write([]byte(strings.Join(parts[:3], ".")))
	got, err := hex.DecodeString(parts[3])
	if err != nil || !hmac.Equal(got, mac.Sum(nil)) || parts[0] != channelID.String() {
		return visitor{}, errBadToken
	}
	v, ok1 := ids.Parse(parts[1])
	ct, ok2 := ids.Parse(parts[2])
	if !ok1 || !ok2 {
		return visitor{}, errBadToken
	}
	return visitor{ID: v, ContactID: ct}, nil
}

func (m *Module) visitor(c *fiber.Ctx, ch provider.Channel) (visitor, error) {
	tok := c.Get("X-Visitor-Token")
	if tok == "" {
		tok = c.Query("token")
	}
	v, err := m.parse(tok, ch.ID)
	if err != nil {
		return visitor{}, &fiber.Error{Code: http.StatusUnauthorized, Message: "a valid visitor token is required; start a session first"}
	}
	return v, nil
}

// SessionInput starts or resumes a visitor session.
type SessionInput struct {
	VisitorToken string `json:"visitor_token"`
	Name         string `json:"name" validate:"max=200"`
	Email        string `json:"email" validate:"omitempty,email,max=320"`
	Locale       string `json:"locale" validate:"omitempty,oneof=en zh-CN"`
	UserID       string `json:"user_id" validate:"max=200"`
	UserHash     string `json:"user_hash" validate:"max=200"`
}

func (m *Module) session(c *fiber.Ctx) error {
	ctx, ch, err := m.channel(c)
	if err != nil {
		return err
	}
	var in SessionInput
	if len(c.Body()) > 0 {
		if err := httpx.Decode(c, m.val, &in); err != nil {
			return err
		}
	}
	var from []provider.Identity
	if in.UserID != "" {
		secret := ch.Config["identity_secret"]
		if secret == "" {
			return apperr.Invalid("user_id", "this widget does not verify identities (no identity_secret on the channel)")
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(in.UserID))
		want := hex.EncodeToString(mac.Sum(nil))
		if !hmac.Equal([]byte(strings.ToLower(in.UserHash)), []byte(want)) {
			return &fiber.Error{Code: http.StatusUnauthorized, Message: "user_hash does not match user_id"}
		}
		from = append(from, provider.Identity{Kind: provider.IdentityExternal, Value: in.UserID})
	}
	v, err := m.parse(in.VisitorToken, ch.ID)
	if err != nil {
		v = visitor{ID: ids.New()}
	}
	from = append(from, provider.Identity{Kind: provider.IdentityVisitor, Value: v.ID.String()})
	if in.Email != "" {
		from = append(from, provider.Identity{Kind: provider.IdentityEmail, Value: in.Email})
	}
	contactID, _, err := m.contacts.Resolve(ctx, from, in.Name, in.Locale)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"visitor_token": m.token(ch.ID, v.ID, contactID), "visitor_id": v.ID, "verified": in.UserID != ""})
}

func (m *Module) messages(c *fiber.Ctx) error {
	ctx, ch, err := m.channel(c)
	if err != nil {
		return err
	}
	v, err := m.visitor(c, ch)
	if err != nil {
		return err
	}
	p, err := httpx.ParsePage(c)
	if err != nil {
		return err
	}
	rows, err := m.inbox.ContactMessages(ctx, ch.ID, v.ContactID, p.Limit, p.Cursor)
	if err != nil {
		return err
	}
	out := make([]View, 0, len(rows))
	for _, r := range rows {
		out = append(out, view(r))
	}
	return c.JSON(httpx.NewList(out, p.Limit, func(x View) string { return x.ID.String() }))
}

// View is a message as the visitor sees it: no author ids, no provider details.
type View struct {
	ID          uuid.UUID        `json:"id"`
	Direction   string           `json:"direction"`
	AuthorKind  string           `json:"author_kind"`
	Content     string           `json:"content"`
	ContentType string           `json:"content_type"`
	Status      string           `json:"status"`
	Attachments []AttachmentView `json:"attachments"`
	CreatedAt   time.Time        `json:"created_at"`
}

// AttachmentView is an attachment as the visitor sees it.
type AttachmentView struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
}

func view(r conversations.Message) View {
	v := View{ID: r.ID, Direction: r.Direction, AuthorKind: r.AuthorKind, Content: r.Content, ContentType: r.ContentType,
		Status: r.Status, CreatedAt: r.CreatedAt, Attachments: []AttachmentView{}}
	for _, a := range r.Attachments {
		v.Attachments = append(v.Attachments, AttachmentView{Filename: a.Filename, ContentType: a.ContentType, Size: a.Size})
	}
	return v
}

// PostInput is a visitor's message.
type PostInput struct {
	Content  string `json:"content" validate:"max=10000"`
	ClientID string `json:"client_id" validate:"required,max=64"`
}

func (m *Module) post(c *fiber.Ctx) error {
	ctx, ch, err := m.channel(c)
	if err != nil {
		return err
	}
	v, err := m.visitor(c, ch)
	if err != nil {
		return err
	}
	var in PostInput
	msg := provider.InboundMessage{From: []provider.Identity{{Kind: provider.IdentityVisitor, Value: v.ID.String()}},
		ContentType: provider.ContentText, OccurredAt: time.Now().UTC()}
	if fh, ferr := c.FormFile("file"); ferr == nil {
		in.ClientID, in.Content = c.FormValue("client_id"), c.FormValue("content")
		if in.ClientID == "" || len(in.ClientID) > 64 {
			return apperr.Invalid("client_id", "is required, at most 64 bytes")
		}
		if fh.Size > m.maxFile {
			return apperr.Invalid("file", fmt.Sprintf("is larger than %d bytes", m.maxFile))
		}
		f, err := fh.Open()
		if err != nil {
			return fmt.Errorf("widget: open upload: %w", err)
		}
		data := make([]byte, fh.Size)
		_, err = f.Read(data)
		f.Close()
		if err != nil && fh.Size > 0 {
			return fmt.Errorf("widget: read upload: %w", err)
		}
		ct, err := m.check(fh.Filename, fh.Header.Get("Content-Type"), data[:min(len(data), 512)])
		if err != nil {
			return apperr.Invalid("file", err.Error())
		}
		msg.Media = []provider.Media{{Filename: fh.Filename, ContentType: ct, Size: int64(len(data)), Data: data}}
		msg.ContentType = provider.ContentFile
		if strings.HasPrefix(ct, "image/") {
			msg.ContentType = provider.ContentImage
		}
	} else if err := httpx.Decode(c, m.val, &in); err != nil {
		return err
	}
	if strings.TrimSpace(in.Content) == "" && len(msg.Media) == 0 {
		return apperr.Invalid("content", "is required")
	}
	msg.Text = in.Content
	// The client id makes a retried POST (a flaky mobile connection) one message.
	msg.ProviderID = "w:" + v.ID.String() + ":" + in.ClientID
	res, err := m.inbox.Ingest(ctx, ch, provider.Batch{Messages: []provider.InboundMessage{msg}})
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if res.Stored == 0 {
		status = http.StatusOK
	}
	var id uuid.UUID
	if len(res.MessageIDs) > 0 {
		id = res.MessageIDs[0]
	}
	return c.Status(status).JSON(fiber.Map{"id": id, "duplicate": res.Duplicates > 0})
}

func (m *Module) typing(c *fiber.Ctx) error {
	ctx, ch, err := m.channel(c)
	if err != nil {
		return err
	}
	v, err := m.visitor(c, ch)
	if err != nil {
		return err
	}
	convs, err := m.inbox.ContactConversations(ctx, ch.ID, v.ContactID)
	if err != nil {
		return err
	}
	for _, id := range convs {
		if err := m.live.Broadcast(ctx, "typing", id, fiber.Map{"author_kind": "contact", "contact_id": v.ContactID}); err != nil {
			return err
		}
	}
	return c.SendStatus(http.StatusNoContent)
}

func (m *Module) ws(c *fiber.Ctx) error {
	ctx, ch, err := m.channel(c)
	if err != nil {
		return err
	}
	v, err := m.visitor(c, ch)
	if err != nil {
		return err
	}
	since := uuid.Nil
	if s := c.Query("since"); s != "" {
		id, ok := ids.Parse(s)
		if !ok {
			return apperr.Invalid("since", "must be an event id")
		}
		since = id
	}
	tid, _ := tenant.ID(ctx)
	convs, err := m.inbox.ContactConversations(ctx, ch.ID, v.ContactID)
	if err != nil {
		return err
	}
	c.SetUserContext(ctx)
	return m.live.ServeVisitor(c, tid, since, ch.ID, v.ContactID, convs)
}

// Preflight answers the browser's CORS preflight for the widget API (its JSON posts and the
// X-Visitor-Token header need one). It grants nothing by itself: each request is checked
// against the channel's allowed_origins when it arrives.
func Preflight(c *fiber.Ctx) error {
	if c.Method() != fiber.MethodOptions {
		return c.Next()
	}
	if o := c.Get(fiber.HeaderOrigin); o != "" {
		c.Set("Access-Control-Allow-Origin", o)
		c.Set("Vary", "Origin")
	}
	c.Set("Access-Control-Allow-Methods", "GET, POST")
	c.Set("Access-Control-Allow-Headers", "Content-Type, X-Visitor-Token")
	c.Set("Access-Control-Max-Age", "600")
	return c.SendStatus(fiber.StatusNoContent)
}
