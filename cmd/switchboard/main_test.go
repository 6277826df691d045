package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
