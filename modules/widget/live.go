package widget

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/switchboard-cloud/switchboard/modules/realtime"
)

// HubLive serves the visitor's socket from the realtime hub.
type HubLive struct{ Hub *realtime.Hub }

// Broadcast passes typing notices on.
func (l HubLive) Broadcast(ctx context.Context, kind string, conversationID uuid.UUID, payload any) error {
	return l.Hub.Broadcast(ctx, kind, conversationID, payload)
}

// visitorKinds are the events a visitor's widget is told about.
var visitorKinds = map[string]bool{"message.created": true, "message.updated": true, "typing": true, "conversation.updated": true}

// ServeVisitor upgrades to a WebSocket carrying the events of the visitor's conversations on
// the channel: the ones they have, and any opened for them while connected. Notes never reach
// it (they are note.created, and a private message is dropped as well).
func (l HubLive) ServeVisitor(c *fiber.Ctx, tenantID, since, channelID, contactID uuid.UUID, initial []uuid.UUID) error {
	if !websocket.IsWebSocketUpgrade(c) {
		return fiber.NewError(fiber.StatusUpgradeRequired, "this is a WebSocket endpoint: connect with Upgrade: websocket")
	}
	if err := l.Hub.CheckSubscribe(since); err != nil {
		return err
	}
	ctx := context.WithoutCancel(c.UserContext())
	var mu sync.Mutex
	known := map[uuid.UUID]bool{}
	for _, id := range initial {
		known[id] = true
	}
	filter := func(ev realtime.Event) bool {
		if ev.ConversationID == nil {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		if ev.Kind == "conversation.created" {
			var p struct {
				ContactID uuid.UUID `json:"contact_id"`
				ChannelID uuid.UUID `json:"channel_id"`
			}
			if json.Unmarshal(ev.Payload, &p) == nil && p.ContactID == contactID && p.ChannelID == channelID {
				known[*ev.ConversationID] = true
			}
			return false
		}
		if !known[*ev.ConversationID] || !visitorKinds[ev.Kind] {
			return false
		}
		if ev.Kind == "message.created" {
			var p struct {
				Private bool `json:"private"`
			}
			if json.Unmarshal(ev.Payload, &p) != nil || p.Private {
				return false
			}
		}
		return true
	}
	// Subscribed before the handshake is answered: once the script's socket is open, nothing
	// published afterwards can slip between its REST reload and the stream.
	sub, err := l.Hub.Subscribe(ctx, tenantID, since, filter)
	if err != nil {
		return err
	}
	err = websocket.New(func(conn *websocket.Conn) { realtime.ServeConn(conn, sub, nil) })(c)
	if err != nil {
		sub.Close()
	}
	return err
}
