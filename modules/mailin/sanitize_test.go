package mailin_test

import (
	"strings"
	"testing"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/modules/channels/email"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// TestDeliveredHTMLIsSanitisedBeforeStorage: the HTML part of a received mail is stored without
// scripts, event handlers or javascript: links, so no reader of the inbox can run them.
func TestDeliveredHTMLIsSanitisedBeforeStorage(t *testing.T) {
	e := apptest.New(t, tenant.SQLite)
	owner := e.Login("owner@acme.test")
	owner.Do("POST", "/api/v1/channels", map[string]any{"type": "email", "name": "Support",
		"config": map[string]string{"address": "help@acme.test", "smtp_host": "127.0.0.1", "smtp_port": "2525", "smtp_tls": "none"}}).Want(201)
	html := `<p onclick="steal()">Hello <b>team</b><script>alert(1)</script><a href="javascript:alert(2)">x</a><img src="https://cdn.example.com/a.png" onerror="bad()"></p>`
	raw := email.TestMessage("Ann <ann@example.com>", "help@acme.test", "HTML", html, map[string]string{"Content-Type": "text/html; charset=utf-8"})
	if err := e.App.MailIn.Deliver(e.Ctx, []string{"help@acme.test"}, raw); err != nil {
		t.Fatal(err)
	}
	conv := owner.Do("GET", "/api/v1/conversations", nil).Want(200).Items()
	var stored string
	for _, c := range conv {
		if c["channel_type"] == "email" {
			stored = owner.Do("GET", "/api/v1/conversations/"+c["id"].(string)+"/messages", nil).Want(200).Items()[0]["html"].(string)
		}
	}
	for _, bad := range []string{"<script", "onclick", "onerror", "javascript:"} {
		if strings.Contains(stored, bad) {
			t.Fatalf("stored HTML keeps %q: %s", bad, stored)
		}
	}
	if !strings.Contains(stored, "<b>team</b>") || !strings.Contains(stored, "https://cdn.example.com/a.png") {
		t.Fatalf("sanitising lost the harmless markup: %s", stored)
	}
}
