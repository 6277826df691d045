package app

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-cloud/switchboard/modules/channels"
	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// SeedDemoInbox gives Acme a web chat channel with two conversations (one in Chinese, one in
// English), once: the demo shows a working inbox and a widget to try. It returns the
// widget's public id.
func (a *App) SeedDemoInbox(ctx context.Context) (string, error) {
	org, err := a.OrgBySlug(ctx, "acme")
	if err != nil {
		return "", err
	}
	ctx = tenant.WithActor(tenant.WithOrg(ctx, org), tenant.Actor{Kind: tenant.ActorSystem})
	existing, err := a.Channels.List(ctx, "webchat", 1, "")
	if err != nil {
		return "", err
	}
	if len(existing) > 0 {
		return existing[0].PublicID, nil
	}
	ch, err := a.Channels.Create(ctx, channels.CreateInput{Type: "webchat", Name: "Acme 官网客服",
		Config: map[string]string{"locale": "zh-CN", "welcome_text": "您好！有什么可以帮您？ / Hi! How can we help?"}})
	if err != nil {
		return "", fmt.Errorf("demo web chat channel: %w", err)
	}
	pc, _, err := a.Channels.Open(ctx, ch.ID)
	if err != nil {
		return "", err
	}
	now := time.Now().UTC()
	msgs := []provider.InboundMessage{
		{ProviderID: "demo-1", From: []provider.Identity{{Kind: provider.IdentityVisitor, Value: "demo-visitor-1"}, {Kind: provider.IdentityEmail, Value: "wang.fang@example.com"}},
			Name: "王芳", Locale: "zh-CN", Text: "你好，我上周下的订单还没有发货，能帮我查一下吗？", OccurredAt: now.Add(-20 * time.Minute)},
		{ProviderID: "demo-2", From: []provider.Identity{{Kind: provider.IdentityVisitor, Value: "demo-visitor-2"}, {Kind: provider.IdentityEmail, Value: "sam.lee@example.com"}},
			Name: "Sam Lee", Locale: "en", Text: "Hi, can I change the delivery address of order #10482?", OccurredAt: now.Add(-5 * time.Minute)},
	}
	if _, err := a.Inbox.Ingest(ctx, pc, provider.Batch{Messages: msgs}); err != nil {
		return "", fmt.Errorf("demo conversations: %w", err)
	}
	return ch.PublicID, nil
}
