package app_test

import (
	"testing"

	"github.com/switchboard-cloud/switchboard/app/apptest"
)

func TestLoginAndMe(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(string(d), func(t *testing.T) {
			e := apptest.New(t, d)
			me := e.Login("owner@acme.test").Do("GET", "/api/v1/me", nil).Want(200).JSON()
			if me["current_org"].(map[string]any)["name"] != "Acme" {
				t.Fatalf("current org: %v", me["current_org"])
			}
		})
	}
}
