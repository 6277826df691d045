package app_test

import (
	"fmt"

	"github.com/google/uuid"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/modules/channels/apichannel"
	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

// acmeChannel creates an API channel in Acme; its webhook_url is never called by these tests.
func acmeChannel(e *apptest.Env, owner *apptest.Client) (provider.Channel, string) {
	f := apichannel.Fixture()
	cfg := f.Config("http://127.0.0.1:9")
	j := owner.Do("POST", "/api/v1/channels", map[string]any{"type": "api", "name": "Probe", "config": cfg}).Want(201).JSON()
	pub := j["public_id"].(string)
	return provider.Channel{Type: "api", PublicID: pub, Config: cfg, WebhookURL: "http://switchboard.test/hooks/api/" + pub}, j["id"].(string)
}

// acmeConversation stores an inbound message in a new Acme channel and returns the conversation,
// its contact and its message.
func acmeConversation(e *apptest.Env, owner *apptest.Client) (conv, contact, msg string) {
	ch, chID := acmeChannel(e, owner)
	e.Deliver(apichannel.Fixture().Inbound(ch, "probe-1", "probe-customer", "你好")).Want(200)
	items := owner.Do("GET", "/api/v1/conversations?channel_id="+chID, nil).Want(200).Items()
	if len(items) != 1 {
		e.T.Fatalf("probe conversation: %d", len(items))
	}
	conv, contact = items[0]["id"].(string), items[0]["contact_id"].(string)
	m := owner.Do("GET", "/api/v1/conversations/"+conv+"/messages", nil).Want(200).Items()
	return conv, contact, m[0]["id"].(string)
}

func convUnchanged(e *apptest.Env, owner *apptest.Client, id string) bool {
	c := owner.Do("GET", "/api/v1/conversations/"+id, nil).Want(200).JSON()
	msgs := owner.Do("GET", "/api/v1/conversations/"+id+"/messages?private=true", nil).Want(200).Items()
	return c["status"] == "open" && c["assignee_id"] == nil && len(c["tags"].([]any)) == 0 && c["unread"] == float64(1) && len(msgs) == 1
}

var convFixture = fixture{
	create: func(e *apptest.Env, owner *apptest.Client) string {
		c, _, _ := acmeConversation(e, owner)
		return c
	},
	unchanged: convUnchanged,
}

func init() {
	objectRoutes["/api/v1/channels/:id"] = fixture{
		create: func(e *apptest.Env, owner *apptest.Client) string { _, id := acmeChannel(e, owner); return id },
		body:   map[string]any{"name": "taken", "status": "disabled"},
		unchanged: func(e *apptest.Env, owner *apptest.Client, id string) bool {
			c := owner.Do("GET", "/api/v1/channels/"+id, nil).Want(200).JSON()
			return c["name"] == "Probe" && c["status"] == "active"
		},
	}
	objectRoutes["/api/v1/channels/:id/test"] = objectRoutes["/api/v1/channels/:id"]
	contact := fixture{
		create: func(e *apptest.Env, owner *apptest.Client) string {
			return owner.Do("POST", "/api/v1/contacts", map[string]any{"name": "Probe Person",
				"identities": []map[string]string{{"kind": "email", "value": "probe-" + uuid.NewString()[:8] + "@example.com"}}}).Want(201).JSON()["id"].(string)
		},
		body: map[string]any{"name": "taken"},
		unchanged: func(e *apptest.Env, owner *apptest.Client, id string) bool {
			c := owner.Do("GET", "/api/v1/contacts/"+id, nil).Want(200).JSON()
			return c["name"] == "Probe Person" && len(c["identities"].([]any)) == 1 && c["merged_into"] == nil
		},
	}
	objectRoutes["/api/v1/contacts/:id"] = contact
	objectRoutes["/api/v1/contacts/:id/timeline"] = contact
	objectRoutes["/api/v1/contacts/:id/identities/:identity_id"] = contact
	objectRoutes["/api/v1/contact-fields/:key"] = fixture{
		create: func(e *apptest.Env, owner *apptest.Client) string {
			owner.Do("POST", "/api/v1/contact-fields", map[string]any{"key": "tier", "label": "Tier", "type": "select", "options": []string{"gold", "silver"}}).Want(201)
			return "tier"
		},
		body: map[string]any{"label": "taken", "type": "text"},
		unchanged: func(e *apptest.Env, owner *apptest.Client, key string) bool {
			for _, f := range owner.Do("GET", "/api/v1/contact-fields", nil).Want(200).JSON()["items"].([]any) {
				if m := f.(map[string]any); m["key"] == key {
					return m["label"] == "Tier" && m["type"] == "select"
				}
			}
			return false
		},
	}
	withBody := func(body any) fixture { f := convFixture; f.body = body; return f }
	objectRoutes["/api/v1/conversations/:id"] = withBody(map[string]any{"status": "resolved", "tags": []string{"probe"}, "assignee_id": ""})
	objectRoutes["/api/v1/conversations/:id/read"] = convFixture
	objectRoutes["/api/v1/conversations/:id/messages"] = withBody(map[string]any{"content": "probe reply"})
	objectRoutes["/api/v1/conversations/:id/notes"] = withBody(map[string]any{"content": "probe note"})
	objectRoutes["/api/v1/conversations/:id/messages/:message_id/retry"] = convFixture
	objectRoutes["/api/v1/conversations/:id/canned-responses/:canned_id"] = convFixture
	canned := fixture{
		create: func(e *apptest.Env, owner *apptest.Client) string {
			return owner.Do("POST", "/api/v1/canned-responses", map[string]any{"shortcut": "probe", "title": "Probe", "content": "Hello {{contact.name}}"}).Want(201).JSON()["id"].(string)
		},
		body: map[string]any{"shortcut": "taken", "title": "taken", "content": "taken"},
		unchanged: func(e *apptest.Env, owner *apptest.Client, id string) bool {
			for _, c := range owner.Do("GET", "/api/v1/canned-responses", nil).Want(200).Items() {
				if c["id"] == id {
					return c["content"] == "Hello {{contact.name}}"
				}
			}
			return false
		},
	}
	objectRoutes["/api/v1/canned-responses/:id"] = canned
	objectRoutes["/api/v1/attachments/:id"] = fixture{
		create: func(e *apptest.Env, owner *apptest.Client) string {
			res := owner.Do("POST", "/api/v1/attachments", multipartFile("probe.txt", "hello probe"), "Content-Type", multipartType)
			res.Want(201)
			return res.JSON()["id"].(string)
		},
		unchanged: func(e *apptest.Env, owner *apptest.Client, id string) bool {
			return string(owner.Do("GET", "/api/v1/attachments/"+id, nil).Want(200).Body) == "hello probe"
		},
	}
}

const multipartBoundary = "switchboardprobe"

var multipartType = "multipart/form-data; boundary=" + multipartBoundary

func multipartFile(name, content string) []byte {
	return []byte(fmt.Sprintf("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\nContent-Type: text/plain\r\n\r\n%s\r\n--%s--\r\n",
		multipartBoundary, name, content, multipartBoundary))
}
