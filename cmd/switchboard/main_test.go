package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-cloud/switchboard/app"
	"github.com/switchboard-cloud/switchboard/billing"
	"github.com/switchboard-cloud/switchboard/internal/config"
	"github.com/switchboard-cloud/switchboard/tenant"
)

func TestMigrateDemoAndVersion(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SWITCHBOARD_DATA_DIR", dir)
	t.Setenv("SWITCHBOARD_LOG_LEVEL", "error")
	for _, args := range [][]string{{"version"}, {"migrate", "up"}, {"migrate", "status"}, {"demo"}, {"demo"}, {"migrate", "down"}, {"migrate", "up"}} {
		if err := run(args); err != nil {
			t.Fatalf("switchboard %s: %v", strings.Join(args, " "), err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "switchboard.db")); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"migrate", "sideways"}); err == nil {
		t.Fatal("unknown migrate direction accepted")
	}
	if err := run([]string{"frobnicate"}); err == nil {
		t.Fatal("unknown command accepted")
	}
}

func TestDemoRefusedInProduction(t *testing.T) {
	t.Setenv("SWITCHBOARD_DATA_DIR", t.TempDir())
	t.Setenv("SWITCHBOARD_ENV", "production")
	t.Setenv("SWITCHBOARD_SECRET_KEY", strings.Repeat("ab", 32))
	t.Setenv("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
	t.Setenv("REDIS_URL", "redis://127.0.0.1:1/0")
	err := run([]string{"serve", "--demo"})
	if err == nil || !strings.Contains(err.Error(), "demo data is refused") {
		t.Fatalf("serve --demo in production: %v", err)
	}
}

func TestCreatePlatformAdmin(t *testing.T) {
	t.Setenv("SWITCHBOARD_DATA_DIR", t.TempDir())
	t.Setenv("SWITCHBOARD_LOG_LEVEL", "error")
	t.Setenv("SWITCHBOARD_ADMIN_PASSWORD", "short")
	if err := run([]string{"admin", "create-platform-admin", "--email", "ops@example.com", "--name", "Ops"}); err == nil {
		t.Fatal("a short password was accepted")
	}
	t.Setenv("SWITCHBOARD_ADMIN_PASSWORD", "a-long-enough-password")
	for i := 0; i < 2; i++ { // idempotent
		if err := run([]string{"admin", "create-platform-admin", "--email", "Ops@Example.com", "--name", "Ops"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := run([]string{"admin", "frobnicate"}); err == nil {
		t.Fatal("unknown admin command accepted")
	}
}

// switchboard admin billing run: a bad period is refused; a month previews and finalises (once)
// the invoices of tenants on a plan, here Acme of the demo on a plan from two months ago.
func TestAdminBillingRun(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SWITCHBOARD_DATA_DIR", dir)
	t.Setenv("SWITCHBOARD_LOG_LEVEL", "error")
	if err := run([]string{"admin", "billing", "run", "--period", "November"}); err == nil {
		t.Fatal("a bad period was accepted")
	}
	if err := run([]string{"demo"}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(ctx, cfg, slog.New(slog.DiscardHandler), app.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	acme, err := a.OrgBySlug(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Plans.Save(ctx, billing.PlanInput{Code: "cli", Name: "CLI", Currency: "USD", BaseFee: 4900}); err != nil {
		t.Fatal(err)
	}
	start := time.Now().UTC().AddDate(0, -2, 0).Truncate(24 * time.Hour)
	if start.Day() > 28 {
		start = start.AddDate(0, 0, -3)
	}
	if _, err := a.Plans.Subscribe(tenant.WithOrg(ctx, acme), "cli", 0, start); err != nil {
		t.Fatal(err)
	}
	a.Close()
	month := start.Format("2006-01")
	for _, args := range [][]string{
		{"admin", "billing", "run", "--period", month},
		{"admin", "billing", "run", "--period", month, "--finalize"},
		{"admin", "billing", "run", "--period", month, "--finalize"},
		{"admin", "billing", "retry-pushes"},
	} {
		if err := run(args); err != nil {
			t.Fatalf("switchboard %s: %v", strings.Join(args, " "), err)
		}
	}
	a, err = app.New(ctx, cfg, slog.New(slog.DiscardHandler), app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	invs, err := a.Invoicer.List(tenant.WithOrg(ctx, acme), 10, "")
	if err != nil || len(invs) != 1 || invs[0].Total != 4900 || invs[0].PushStatus != "skipped" {
		t.Fatalf("invoices after two finalising runs: %+v %v", invs, err)
	}
}
