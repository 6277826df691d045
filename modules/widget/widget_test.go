package widget_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/tenant"
)

func widgetEnv(t *testing.T, d tenant.Dialect) (*apptest.Env, *apptest.Client, map[string]any) {
	t.Helper()
	e := apptest.New(t, d)
	w, mux, err := e.App.NewWorker()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	owner := e.Login("owner@acme.test")
	ch := owner.Do("POST", "/api/v1/channels", map[string]any{"type": "webchat", "name": "官网客服",
		"config": map[string]string{"identity_secret": "brand-signing-secret", "locale": "zh-CN", "allowed_origins": "https://www.acme.test"}}).Want(201).JSON()
	return e, owner, ch
}

func TestWidgetVisitorThread(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e, owner, ch := widgetEnv(t, d)
			pub := ch["public_id"].(string)
			base := "/api/v1/widget/" + pub
			anon := e.Anon()

			js := anon.Do("GET", "/widget.js", nil).Want(200)
			if !strings.Contains(js.Header.Get("Content-Type"), "javascript") || len(js.Body) > 20<<10 || !strings.Contains(string(js.Body), "data-channel") {
				t.Fatalf("widget.js: %s, %d bytes", js.Header.Get("Content-Type"), len(js.Body))
			}
			cfg := anon.Do("GET", base+"/config", nil).Want(200).JSON()
			if cfg["name"] != "官网客服" || cfg["locale"] != "zh-CN" || cfg["identity_verification"] != true {
				t.Fatalf("config: %v", cfg)
			}
			if strings.Contains(string(anon.Do("GET", base+"/config", nil).Body), "brand-signing-secret") {
				t.Fatal("config leaks the identity secret")
			}
			// The browser's preflight for the JSON posts and the visitor token header.
			pre := anon.Do("OPTIONS", base+"/messages", nil, "Origin", "https://www.acme.test", "Access-Control-Request-Method", "POST").Want(204)
			if !strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "X-Visitor-Token") || pre.Header.Get("Access-Control-Allow-Origin") != "https://www.acme.test" {
				t.Fatalf("preflight headers: %v", pre.Header)
			}
			// A page of another site may not use the widget; the brand's may.
			anon.Do("GET", base+"/config", nil, "Origin", "https://evil.test").Want(404)
			if got := anon.Do("GET", base+"/config", nil, "Origin", "https://www.acme.test").Want(200).Header.Get("Access-Control-Allow-Origin"); got != "https://www.acme.test" {
				t.Fatalf("CORS origin %q", got)
			}

			// An anonymous visitor with the pre-chat form.
			s := anon.Do("POST", base+"/sessions", map[string]any{"name": "王小明", "email": "xiaoming@example.com"}).Want(200).JSON()
			tok := s["visitor_token"].(string)
			vt := []string{"X-Visitor-Token", tok}
			anon.Do("POST", base+"/messages", map[string]any{"content": "你好，我想查询订单", "client_id": "c1"}, vt...).Want(201)
			again := anon.Do("POST", base+"/messages", map[string]any{"content": "你好，我想查询订单", "client_id": "c1"}, vt...).Want(200).JSON()
			if again["duplicate"] != true {
				t.Fatalf("a retried post is not recognised: %v", again)
			}
			anon.Do("POST", base+"/messages", map[string]any{"content": "x", "client_id": "c2"}).Want(401)
			anon.Do("POST", base+"/messages", map[string]any{"content": "x", "client_id": "c2"}, "X-Visitor-Token", tok+"x").Want(401)

			// The agent sees it, with the contact from the pre-chat form, and answers.
			convs := owner.Do("GET", "/api/v1/conversations?channel_id="+ch["id"].(string), nil).Want(200).Items()
			if len(convs) != 1 || convs[0]["contact_name"] != "王小明" || convs[0]["preview"] != "你好，我想查询订单" {
				t.Fatalf("inbox: %v", convs)
			}
			conv := convs[0]["id"].(string)
			owner.Do("POST", "/api/v1/conversations/"+conv+"/notes", map[string]any{"content": "VIP customer, internal only"}).Want(201)
			owner.Do("POST", "/api/v1/conversations/"+conv+"/messages", map[string]any{"content": "您好，请提供订单号"}).Want(201)

			// The visitor's thread (what a reload shows) has both messages, never the note.
			var thread []map[string]any
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				thread = anon.Do("GET", base+"/messages", nil, vt...).Want(200).Items()
				if len(thread) == 2 && thread[1]["status"] == "sent" {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if len(thread) != 2 || thread[0]["content"] != "你好，我想查询订单" || thread[1]["content"] != "您好，请提供订单号" || thread[1]["status"] != "sent" {
				t.Fatalf("visitor thread: %v", thread)
			}
			if strings.Contains(string(anon.Do("GET", base+"/messages", nil, vt...).Body), "VIP") {
				t.Fatal("the visitor sees a private note")
			}
			// Resuming with the token keeps the same contact and thread.
			s2 := anon.Do("POST", base+"/sessions", map[string]any{"visitor_token": tok}).Want(200).JSON()
			if n := len(anon.Do("GET", base+"/messages", nil, "X-Visitor-Token", s2["visitor_token"].(string)).Want(200).Items()); n != 2 {
				t.Fatalf("resumed thread has %d messages", n)
			}
			// A token of this channel does not open another channel's thread.
			other := owner.Do("POST", "/api/v1/channels", map[string]any{"type": "webchat", "name": "Other", "config": map[string]string{}}).Want(201).JSON()
			anon.Do("GET", "/api/v1/widget/"+other["public_id"].(string)+"/messages", nil, vt...).Want(401)
			// Unknown channel ids are not found; a channel of another type is not a widget.
			anon.Do("GET", "/api/v1/widget/nosuchchannel/config", nil).Want(404)
		})
	}
}

func TestWidgetIdentityVerification(t *testing.T) {
	e, owner, ch := widgetEnv(t, tenant.SQLite)
	base := "/api/v1/widget/" + ch["public_id"].(string)
	sign := func(uid string) string {
		m := hmac.New(sha256.New, []byte("brand-signing-secret"))
		m.Write([]byte(uid))
		return hex.EncodeToString(m.Sum(nil))
	}
	e.Anon().Do("POST", base+"/sessions", map[string]any{"user_id": "crm-42", "user_hash": sign("crm-41")}).Want(401)
	s := e.Anon().Do("POST", base+"/sessions", map[string]any{"user_id": "crm-42", "user_hash": sign("crm-42"), "name": "Li Lei"}).Want(200).JSON()
	if s["verified"] != true {
		t.Fatalf("session: %v", s)
	}
	// The verified user id is the contact's external identity: the same person from another
	// browser is the same contact.
	s2 := e.Anon().Do("POST", base+"/sessions", map[string]any{"user_id": "crm-42", "user_hash": sign("crm-42")}).Want(200).JSON()
	for _, tok := range []string{s["visitor_token"].(string), s2["visitor_token"].(string)} {
		e.Anon().Do("POST", base+"/messages", map[string]any{"content": "hello", "client_id": tok[:10]}, "X-Visitor-Token", tok).Want(201)
	}
	found := owner.Do("GET", "/api/v1/contacts?q=li+lei", nil).Want(200).Items()
	if len(found) != 1 {
		t.Fatalf("contacts named Li Lei: %d", len(found))
	}
	kinds := map[string]bool{}
	for _, i := range found[0]["identities"].([]any) {
		kinds[i.(map[string]any)["kind"].(string)+":"+i.(map[string]any)["value"].(string)] = true
	}
	if !kinds["external:crm-42"] {
		t.Fatalf("identities: %v", kinds)
	}
	if n := len(owner.Do("GET", "/api/v1/conversations?channel_id="+ch["id"].(string), nil).Want(200).Items()); n != 1 {
		t.Fatalf("one verified person in two browsers has %d conversations", n)
	}
}

// TestWidgetSocketDeliversAgentReplies: the visitor's WebSocket receives the agent's reply as
// it is written, and only events of the visitor's own conversations.
func TestWidgetSocketDeliversAgentReplies(t *testing.T) {
	e, owner, ch := widgetEnv(t, tenant.SQLite)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.App.StartRealtime(ctx)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = e.App.HTTP.Listener(ln) }()
	base := "/api/v1/widget/" + ch["public_id"].(string)
	visitor := func(name string) (string, string) {
		tok := e.Anon().Do("POST", base+"/sessions", map[string]any{"name": name}).Want(200).JSON()["visitor_token"].(string)
		e.Anon().Do("POST", base+"/messages", map[string]any{"content": "hi from " + name, "client_id": "1"}, "X-Visitor-Token", tok).Want(201)
		for _, c := range owner.Do("GET", "/api/v1/conversations?channel_id="+ch["id"].(string), nil).Want(200).Items() {
			if c["contact_name"] == name {
				return tok, c["id"].(string)
			}
		}
		t.Fatalf("no conversation for %s", name)
		return "", ""
	}
	tokA, convA := visitor("A")
	_, convB := visitor("B")

	var conn *websocket.Conn
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, _, err = websocket.DefaultDialer.Dial("ws://"+ln.Addr().String()+base+"/ws?token="+tokA, http.Header{})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // the hub's stream may still be starting
	}
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	owner.Do("POST", "/api/v1/conversations/"+convB+"/messages", map[string]any{"content": "for B only"}).Want(201)
	owner.Do("POST", "/api/v1/conversations/"+convA+"/notes", map[string]any{"content": "secret note"}).Want(201)
	owner.Do("POST", "/api/v1/conversations/"+convA+"/messages", map[string]any{"content": "给A的回复"}).Want(201)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("no reply on the socket: %v", err)
		}
		var ev struct {
			Kind    string          `json:"kind"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "for B only") || strings.Contains(string(data), "secret note") {
			t.Fatalf("visitor A received %s", data)
		}
		if ev.Kind == "message.created" && strings.Contains(string(ev.Payload), "给A的回复") {
			return
		}
	}
}
