package conversations_test

import (
	"fmt"
	"testing"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/modules/channels/apichannel"
)

// TestUnreadCounts: the console's badge and view counts come from the server, whatever the
// size of the inbox: conversations with unread messages that are not closed, all of them,
// the caller's and the unassigned ones. Read and closed conversations do not count, and
// another tenant's inbox never does.
func TestUnreadCounts(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := scenarioEnv(t, d)
			owner := e.Login("owner@acme.test")
			ch, chB := apiChannels(t, e)
			f := apichannel.Fixture()
			conv := map[string]string{}
			for _, who := range []string{"unassigned", "mine", "agents", "read", "closed"} {
				e.Deliver(f.Inbound(ch, "unread-"+who, "unread-"+who, "hello")).Want(200)
				items := owner.Do("GET", "/api/v1/conversations?limit=100", nil).Want(200).Items()
				for _, c := range items {
					if c["preview"] == "hello" && conv[fmt.Sprint(c["contact_id"])] == "" {
						conv[fmt.Sprint(c["contact_id"])] = who
						conv[who] = c["id"].(string)
					}
				}
			}
			e.Deliver(f.Inbound(chB, "unread-globex", "unread-globex", "hello")).Want(200)
			counts := func(c *apptest.Client) map[string]any {
				return c.Do("GET", "/api/v1/conversations/unread-counts", nil).Want(200).JSON()
			}
			if got := counts(owner); got["all"] != float64(5) || got["mine"] != float64(0) || got["unassigned"] != float64(5) {
				t.Fatalf("before any change: %v", got)
			}

			me := owner.Do("GET", "/api/v1/me", nil).Want(200).JSON()["user"].(map[string]any)["id"]
			agent := e.Login("agent1@acme.test")
			agentID := agent.Do("GET", "/api/v1/me", nil).Want(200).JSON()["user"].(map[string]any)["id"]
			owner.Do("PATCH", "/api/v1/conversations/"+conv["mine"], map[string]any{"assignee_id": me}).Want(200)
			owner.Do("PATCH", "/api/v1/conversations/"+conv["agents"], map[string]any{"assignee_id": agentID}).Want(200)
			owner.Do("POST", "/api/v1/conversations/"+conv["read"]+"/read", nil).Want(200, 204)
			owner.Do("PATCH", "/api/v1/conversations/"+conv["closed"], map[string]any{"status": "closed"}).Want(200)

			for _, c := range []struct {
				who                   *apptest.Client
				all, mine, unassigned float64
			}{{owner, 3, 1, 1}, {agent, 3, 1, 1}, {e.Login("owner@globex.test"), 1, 0, 1}} {
				if got := counts(c.who); got["all"] != c.all || got["mine"] != c.mine || got["unassigned"] != c.unassigned {
					t.Errorf("counts %v, want all %v, mine %v, unassigned %v", got, c.all, c.mine, c.unassigned)
				}
			}
		})
	}
}
