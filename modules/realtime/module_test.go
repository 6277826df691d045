package realtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/modules/realtime"
	"github.com/switchboard-cloud/switchboard/modules/realtime/realtimetest"
	"github.com/switchboard-cloud/switchboard/tenant"
)

func sessionHeader(c *apptest.Client) http.Header {
	h := http.Header{}
	h.Set("Cookie", "sb_session="+c.Cookie)
	return h
}

type socket struct {
	t    *testing.T
	conn *websocket.Conn
}

func dialStatus(t *testing.T, url string, h http.Header) (*websocket.Conn, int) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, res, err := d.Dial(url, h)
	if err != nil {
		if res == nil {
			t.Fatalf("dial %s: %v", url, err)
		}
		return nil, res.StatusCode
	}
	t.Cleanup(func() { conn.Close() })
	return conn, res.StatusCode
}

func open(t *testing.T, url string, h http.Header) *socket {
	t.Helper()
	conn, status := dialStatus(t, url, h)
	if conn == nil {
		t.Fatalf("dial %s: status %d, want 101", url, status)
	}
	return &socket{t: t, conn: conn}
}

// next returns the next event, or the close error that ended the socket.
func (s *socket) next(within time.Duration) (realtime.Event, error) {
	s.t.Helper()
	_ = s.conn.SetReadDeadline(time.Now().Add(within))
	typ, b, err := s.conn.ReadMessage()
	if err != nil {
		return realtime.Event{}, err
	}
	if typ != websocket.TextMessage {
		s.t.Fatalf("frame type %d, want text", typ)
	}
	var ev realtime.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		s.t.Fatalf("frame %s: %v", b, err)
	}
	return ev, nil
}

// until returns the events before the first of kind.
func (s *socket) until(kind string) []realtime.Event {
	s.t.Helper()
	var got []realtime.Event
	for {
		ev, err := s.next(20 * time.Second)
		if err != nil {
			s.t.Fatalf("socket ended before %q (%d events): %v", kind, len(got), err)
		}
		if ev.Kind == kind {
			return got
		}
		got = append(got, ev)
	}
}

func (s *socket) send(frame string) {
	s.t.Helper()
	if err := s.conn.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		s.t.Fatal(err)
	}
}

func TestConsoleSocket(t *testing.T) {
	e := apptest.New(t, tenant.SQLite)
	srv := realtimetest.New(t, e, func(m *realtime.Module) { m.RecheckInterval = 200 * time.Millisecond })
	ctx := context.Background()
	appendTo := func(o tenant.Org, kind string, payload any) {
		t.Helper()
		if err := srv.Hub.Append(tenant.WithOrg(ctx, o), kind, uuid.Nil, payload); err != nil {
			t.Fatal(err)
		}
	}
	owner := e.Login("owner@acme.test")

	t.Run("refusals come before the upgrade as problems", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			header http.Header
			query  string
			status int
		}{
			{"anonymous", http.Header{}, "", http.StatusUnauthorized},
			{"vendor manager without the permission", sessionHeader(e.Login("manager@northwind.test")), "", http.StatusForbidden},
			{"malformed since", sessionHeader(owner), "?since=42", http.StatusBadRequest},
			{"since older than the journal", sessionHeader(owner), "?since=" + v7At(time.Now().Add(-8*24*time.Hour)).String(), http.StatusGone},
			{"cookie from another site's page", func() http.Header {
				h := sessionHeader(owner)
				h.Set("Origin", "https://evil.example")
				return h
			}(), "", http.StatusForbidden},
		} {
			if _, status := dialStatus(t, srv.URL+c.query, c.header); status != c.status {
				t.Errorf("%s: status %d, want %d", c.name, status, c.status)
			}
		}
		req, _ := http.NewRequest("GET", srv.Base+"/api/v1/realtime", nil)
		req.Header = sessionHeader(owner)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var p struct{ Status int }
		if res.StatusCode != http.StatusUpgradeRequired || res.Header.Get("Content-Type") != "application/problem+json" ||
			json.Unmarshal(body, &p) != nil || p.Status != 426 {
			t.Fatalf("plain GET: %d %s %s, want a 426 problem", res.StatusCode, res.Header.Get("Content-Type"), body)
		}
	})

	t.Run("catch-up, live, tenant isolation", func(t *testing.T) {
		for i := range 3 {
			appendTo(e.Acme, "message.created", map[string]int{"i": i})
		}
		var journal []uuid.UUID
		if err := e.App.DB.Run(tenant.WithOrg(ctx, e.Acme), func(tx *gorm.DB) error {
			return tx.Table("realtime_events").Order("id").Pluck("id", &journal).Error
		}); err != nil {
			t.Fatal(err)
		}
		h := sessionHeader(owner)
		h.Set("Origin", srv.Base) // the console's own page
		acme := open(t, srv.URL+"?since="+journal[len(journal)-3].String(), h)
		globex := open(t, srv.URL, sessionHeader(e.Login("owner@globex.test")))
		appendTo(e.Acme, "message.created", map[string]int{"i": 3})
		appendTo(e.Acme, "barrier", nil)
		appendTo(e.Globex, "barrier", nil)
		got := acme.until("barrier")
		if len(got) != 3 || got[0].ID != journal[len(journal)-2] || got[1].ID != journal[len(journal)-1] || string(got[2].Payload) != `{"i":3}` {
			t.Fatalf("acme socket got %+v, want the two events after since then the live one", got)
		}
		if got := globex.until("barrier"); len(got) != 0 {
			t.Fatalf("globex socket got acme's events: %+v", got)
		}
	})

	t.Run("typing and presence from clients, with their sender", func(t *testing.T) {
		watcher := open(t, srv.URL, sessionHeader(owner))
		agent := open(t, srv.URL, sessionHeader(e.Login("agent1@acme.test")))
		agentID, err := e.App.UserID(ctx, "agent1@acme.test")
		if err != nil {
			t.Fatal(err)
		}
		conv := uuid.New()
		agent.send(`not json`)
		agent.send(`{"type":"typing","conversation_id":"nope"}`)
		agent.send(`{"type":"presence","status":"busy"}`)
		agent.send(`{"type":"launch","conversation_id":"` + conv.String() + `"}`)
		agent.send(`{"type":"typing","conversation_id":"` + conv.String() + `"}`)
		agent.send(`{"type":"presence","status":"away"}`)
		for _, want := range []struct{ kind, payload string }{
			{realtime.KindTyping, `{"user_id":"` + agentID.String() + `"}`},
			{realtime.KindPresence, `{"user_id":"` + agentID.String() + `","status":"away"}`},
		} {
			ev, err := watcher.next(10 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind != want.kind || string(ev.Payload) != want.payload {
				t.Fatalf("got %s %s, want %s %s", ev.Kind, ev.Payload, want.kind, want.payload)
			}
			if want.kind == realtime.KindTyping && (ev.ConversationID == nil || *ev.ConversationID != conv) {
				t.Fatalf("typing for conversation %v, want %s", ev.ConversationID, conv)
			}
		}
	})

	t.Run("an API key subscribes with its bearer header", func(t *testing.T) {
		key, _ := owner.Do("POST", "/api/v1/api-keys", map[string]any{"name": "wall board", "role": "agent"}).Want(201).JSON()["key"].(string)
		h := http.Header{}
		h.Set("Authorization", "Bearer "+key)
		h.Set("Origin", "https://elsewhere.example") // no cookie: the origin does not matter
		s := open(t, srv.URL, h)
		appendTo(e.Acme, "barrier", nil)
		if got := s.until("barrier"); len(got) != 0 {
			t.Fatalf("unexpected events %+v", got)
		}
	})

	t.Run("logging out closes the socket", func(t *testing.T) {
		session := e.Login("owner@acme.test")
		s := open(t, srv.URL, sessionHeader(session))
		session.Do("POST", "/api/v1/auth/logout", nil).Want(204)
		var ce *websocket.CloseError
		for {
			_, err := s.next(10 * time.Second)
			if err == nil {
				continue // events of the other subtests' tenant may still arrive
			}
			if !errors.As(err, &ce) || ce.Code != realtime.ClosePolicy || !strings.Contains(ce.Text, "authentication") {
				t.Fatalf("socket ended with %v, want close %d", err, realtime.ClosePolicy)
			}
			break
		}
	})
}
