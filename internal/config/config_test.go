package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-cloud/switchboard/internal/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	dir := t.TempDir()
	c, err := config.Load(env(map[string]string{"SWITCHBOARD_DATA_DIR": dir}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.Env != config.EnvDevelopment || !c.Embedded() || c.BodyLimit != 1<<20 ||
		c.SessionTTL != 14*24*time.Hour || c.PublicURL != "http://localhost:8080" {
		t.Fatalf("unexpected defaults: %+v", c)
	}
	if len(c.SecretKey) != 32 {
		t.Fatalf("generated key has %d bytes", len(c.SecretKey))
	}
	// The generated key is kept: a restart reads the same one.
	c2, err := config.Load(env(map[string]string{"SWITCHBOARD_DATA_DIR": dir}))
	if err != nil {
		t.Fatal(err)
	}
	if string(c2.SecretKey) != string(c.SecretKey) {
		t.Fatal("secret key changed between loads")
	}
	st, err := os.Stat(filepath.Join(dir, "secret.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret.key: %v %v", st, err)
	}
}

func TestRejects(t *testing.T) {
	key := strings.Repeat("ab", 32)
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"production without key":   {map[string]string{"SWITCHBOARD_ENV": "production", "DATABASE_URL": "postgres://x", "REDIS_URL": "redis://x"}, "SWITCHBOARD_SECRET_KEY is required"},
		"production without db":    {map[string]string{"SWITCHBOARD_ENV": "production", "SWITCHBOARD_SECRET_KEY": key, "REDIS_URL": "redis://x"}, "DATABASE_URL is required"},
		"production without redis": {map[string]string{"SWITCHBOARD_ENV": "production", "SWITCHBOARD_SECRET_KEY": key, "DATABASE_URL": "postgres://x"}, "REDIS_URL is required"},
		"short key":                {map[string]string{"SWITCHBOARD_SECRET_KEY": "abcd"}, "at least 32 bytes"},
		"unknown env":              {map[string]string{"SWITCHBOARD_ENV": "staging"}, "SWITCHBOARD_ENV must be"},
		"bad number":               {map[string]string{"SWITCHBOARD_BODY_LIMIT": "lots"}, "SWITCHBOARD_BODY_LIMIT"},
		"bad duration":             {map[string]string{"SWITCHBOARD_SESSION_TTL": "-1h"}, "SWITCHBOARD_SESSION_TTL"},
	} {
		t.Run(name, func(t *testing.T) {
			tc.env["SWITCHBOARD_DATA_DIR"] = t.TempDir()
			_, err := config.Load(env(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	c, err := config.Load(env(map[string]string{"SWITCHBOARD_ENV": "production", "SWITCHBOARD_SECRET_KEY": key, "DATABASE_URL": "postgres://x", "REDIS_URL": "redis://x"}))
	if err != nil || !c.Production() || c.MigrateDatabaseURL != "postgres://x" {
		t.Fatalf("complete production config: %v %+v", err, c)
	}
}
