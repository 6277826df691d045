package realtime

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/valyala/fasthttp"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/internal/queue"
	"github.com/switchboard-cloud/switchboard/modules/access"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// PermSubscribe admits a console user or an API key to the live event stream.
var PermSubscribe = access.Permission{Name: "realtime:subscribe", Module: "realtime",
	Description: "Receive live inbox events (new messages, status changes, assignment, typing, presence)",
	Roles:       []string{access.TenantOwner, access.TenantAdmin, access.Supervisor, access.Agent}}

// Permissions returns this module's catalogue entries.
func Permissions() []access.Permission { return []access.Permission{PermSubscribe} }

// Kinds of the ephemeral events clients send.
const (
	KindTyping   = "typing"
	KindPresence = "presence"
)

// Module is the console's WebSocket, GET /api/v1/realtime.
type Module struct {
	hub *Hub
	// PingInterval is how often sockets are pinged (30 s when zero).
	PingInterval time.Duration
	// RecheckInterval is how often an open socket asks whether its credentials still admit it
	// (1 minute when zero).
	RecheckInterval time.Duration

	ws       fiber.Handler
	doorOnce sync.Once
	door     *fasthttp.Server
}

// NewModule returns the console's realtime module over hub.
func NewModule(hub *Hub) *Module {
	m := &Module{hub: hub}
	m.ws = websocket.New(m.serve, websocket.Config{
		WriteBufferPool: &sync.Pool{}, // thousands of idle sockets need no buffer each
		RecoverHandler: func(c *websocket.Conn) {
			if r := recover(); r != nil {
				hub.log.Error("realtime socket panicked", "panic", r)
				_ = c.Close()
			}
		},
	})
	return m
}

// Name identifies the module.
func (m *Module) Name() string { return "realtime" }

// Routes registers the socket.
func (m *Module) Routes(r *access.Router) {
	s := access.Perm(PermSubscribe, "Live inbox events over a WebSocket: new messages, status changes, assignment, typing, presence. "+
		"?since=<last event id seen> first sends what was missed. Send {\"type\":\"typing\",\"conversation_id\":…} or "+
		"{\"type\":\"presence\",\"status\":\"online|away\"}.")
	s.Tag = "realtime"
	r.Get("/realtime", s, m.handle)
}

// Jobs registers the journal's pruning task.
func (m *Module) Jobs(mux *asynq.ServeMux) { m.hub.Jobs(mux) }

// Schedules lists the pruning schedule.
func (m *Module) Schedules() []queue.Schedule { return m.hub.Schedules() }

const socketKey = "realtime.socket"

// socket is what a connection keeps from the request that opened it.
type socket struct {
	ctx    context.Context // tenant and actor, outliving the HTTP request
	tenant uuid.UUID
	actor  tenant.Actor
	sub    *Subscription
	orphan *time.Timer // closes sub if no handler takes it
	// recheck is the opening request without its upgrade headers, and remote its client's
	// address: replayed through the app, it answers 426 for as long as the guard still admits
	// the credentials it carries.
	recheck *fasthttp.Request
	remote  net.Addr
}

func (m *Module) handle(c *fiber.Ctx) error {
	if !websocket.IsWebSocketUpgrade(c) {
		return fiber.NewError(fiber.StatusUpgradeRequired, "this is a WebSocket endpoint: connect with Upgrade: websocket")
	}
	ctx := c.UserContext()
	org, ok := tenant.OrgFrom(ctx)
	if !ok {
		return apperr.ErrNotFound
	}
	if err := sameOrigin(c); err != nil {
		return err
	}
	var since uuid.UUID
	if q := c.Query("since"); q != "" {
		id, ok := ids.Parse(q)
		if !ok {
			return apperr.Malformed("since", "must be an event id")
		}
		since = id
	}
	// Subscribed before the handshake is answered: once a client's dial returns, nothing
	// published later can pass it by, so it may load its state over REST right after.
	sub, err := m.hub.Subscribe(context.WithoutCancel(ctx), org.ID, since, nil)
	if err != nil {
		return httpError(c, err)
	}
	st := &socket{ctx: context.WithoutCancel(ctx), tenant: org.ID, actor: tenant.ActorFrom(ctx), sub: sub,
		remote: c.Context().RemoteAddr()}
	// Should the connection fail between the answer and the handler, nobody would read it.
	st.orphan = time.AfterFunc(30*time.Second, sub.Close)
	m.doorOnce.Do(func() {
		m.door = &fasthttp.Server{Handler: c.App().Handler(), ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second,
			NoDefaultServerHeader: true}
	})
	req := &fasthttp.Request{}
	c.Request().CopyTo(req)
	for _, h := range []string{fiber.HeaderUpgrade, fiber.HeaderConnection, fiber.HeaderSecWebSocketKey, fiber.HeaderSecWebSocketVersion,
		fiber.HeaderSecWebSocketExtensions, fiber.HeaderSecWebSocketProtocol} {
		req.Header.Del(h)
	}
	req.Header.SetConnectionClose()
	st.recheck = req
	c.Locals(socketKey, st)
	if err := m.ws(c); err != nil {
		st.orphan.Stop()
		sub.Close()
		return err
	}
	return nil
}

func httpError(c *fiber.Ctx, err error) error {
	if errors.Is(err, ErrUnavailable) {
		c.Set(fiber.HeaderRetryAfter, "2")
	}
	return err
}

// sameOrigin refuses a cookie-authenticated handshake from another site's page. The WebSocket
// handshake is not subject to CORS and carries the session cookie (SameSite=Lax does not stop a
// sibling subdomain), so without this any page could read a logged-in agent's inbox. Bearer
// keys are never attached by a browser on its own, and non-browsers send no Origin.
func sameOrigin(c *fiber.Ctx) error {
	if c.Get(fiber.HeaderAuthorization) != "" {
		return nil
	}
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" {
		return nil
	}
	if u, err := url.Parse(origin); err == nil && strings.EqualFold(u.Host, string(c.Request().Host())) {
		return nil
	}
	return fmt.Errorf("cross-origin WebSocket handshake from %q: %w", origin, apperr.ErrForbidden)
}

func (m *Module) serve(conn *websocket.Conn) {
	st, _ := conn.Locals(socketKey).(*socket)
	if st == nil {
		_ = conn.Close()
		return
	}
	sub := st.sub
	if !st.orphan.Stop() {
		_ = conn.Close()
		return
	}
	stop := make(chan struct{})
	defer close(stop)
	go m.watch(st, sub, stop)
	lim := &bucket{tokens: frameBurst, last: time.Now()}
	ConnOptions{PingInterval: m.PingInterval}.Serve(conn, sub, func(frame []byte) { m.clientFrame(st, lim, frame) })
}

// watch closes sub once the credentials that opened the socket stop admitting it (logged out,
// membership or key revoked, role changed, organisation cancelled). It asks the app's own front
// door again — authentication, the route guard — so it judges exactly as a new request would.
// Each ask is one internal request, logged and counted by the API's rate limits like any other;
// an answer other than yes or no (a rate limit, an error) is asked again next time.
func (m *Module) watch(st *socket, sub *Subscription, stop <-chan struct{}) {
	every := m.RecheckInterval
	if every <= 0 {
		every = time.Minute
	}
	// Sockets opened together (a node restart) would otherwise all ask at the same moment.
	t := time.NewTimer(every/2 + rand.N(every/2+1))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-sub.Done():
			return
		case <-t.C:
		}
		if admitted, sure := m.admitted(st); sure && !admitted {
			sub.CloseWithError(ErrAuthLost)
			return
		}
		t.Reset(every)
	}
}

// admitted replays the opening request through the app over an in-memory connection.
func (m *Module) admitted(st *socket) (admitted, sure bool) {
	client, server := net.Pipe()
	defer client.Close()
	go func() { _ = m.door.ServeConn(remoteConn{Conn: server, remote: st.remote}) }()
	_ = client.SetDeadline(time.Now().Add(5 * time.Second))
	w := bufio.NewWriter(client)
	if err := st.recheck.Write(w); err != nil || w.Flush() != nil {
		return false, false
	}
	var res fasthttp.Response
	if err := res.Read(bufio.NewReader(client)); err != nil {
		return false, false
	}
	switch res.StatusCode() {
	case fiber.StatusUpgradeRequired:
		return true, true
	case fiber.StatusUnauthorized, fiber.StatusForbidden, fiber.StatusNotFound:
		return false, true
	}
	return false, false
}

// remoteConn gives the replayed request the client's address, so it is judged (and rate
// limited) as the client's.
type remoteConn struct {
	net.Conn
	remote net.Addr
}

func (c remoteConn) RemoteAddr() net.Addr { return c.remote }

// Client frames are typing and presence signals: a few per second from a person at most.
const (
	frameRate  = 10.0
	frameBurst = 20.0
)

// bucket limits one socket's client frames; only its reader uses it.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) allow(now time.Time) bool {
	b.tokens = min(frameBurst, b.tokens+now.Sub(b.last).Seconds()*frameRate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// ClientFrame is what a console client may send.
type ClientFrame struct {
	Type           string `json:"type"` // typing | presence
	ConversationID string `json:"conversation_id,omitempty"`
	Status         string `json:"status,omitempty"` // online | away
}

// Signal is the payload of typing and presence events: who, and for presence their status.
type Signal struct {
	UserID   *uuid.UUID `json:"user_id,omitempty"`
	APIKeyID *uuid.UUID `json:"api_key_id,omitempty"`
	Status   string     `json:"status,omitempty"`
}

// clientFrame broadcasts a well-formed typing or presence frame and ignores anything else: the
// socket is a one-way stream with two small signals on the side, not a command channel.
func (m *Module) clientFrame(st *socket, lim *bucket, b []byte) {
	// An impersonating platform admin reads the console and must not appear to act in it.
	if st.actor.Impersonating || !lim.allow(time.Now()) {
		return
	}
	var f ClientFrame
	if json.Unmarshal(b, &f) != nil {
		return
	}
	var sig Signal
	switch st.actor.Kind {
	case tenant.ActorUser:
		sig.UserID = &st.actor.UserID
	case tenant.ActorAPIKey:
		sig.APIKeyID = &st.actor.APIKeyID
	default:
		return
	}
	var err error
	switch f.Type {
	case KindTyping:
		conv, ok := ids.Parse(f.ConversationID)
		if !ok {
			return
		}
		err = m.hub.Broadcast(st.ctx, KindTyping, conv, sig)
	case KindPresence:
		if f.Status != "online" && f.Status != "away" {
			return
		}
		sig.Status = f.Status
		err = m.hub.Broadcast(st.ctx, KindPresence, uuid.Nil, sig)
	default:
		return
	}
	if err != nil {
		m.hub.log.Warn("broadcast client signal", "err", err, "kind", f.Type, "tenant_id", st.tenant)
	}
}
