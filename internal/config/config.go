// Package config reads Switchboard's settings from the environment.
//
// Every setting has a documented default that runs the embedded mode on one machine; production
// refuses to start without the settings that must not be guessed (see Validate).
package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Environments.
const (
	EnvDevelopment = "development"
	EnvTest        = "test"
	EnvProduction  = "production"
)

// Config is the whole runtime configuration. It is read once in cmd and passed down.
type Config struct {
	Env     string // SWITCHBOARD_ENV
	Addr    string // SWITCHBOARD_ADDR
	DataDir string // SWITCHBOARD_DATA_DIR
	// PublicURL is the base URL put into mail links (SWITCHBOARD_PUBLIC_URL).
	PublicURL string
	// DatabaseURL is the application's connection (a role that does not own the tables).
	// Empty selects the embedded SQLite file under DataDir.
	DatabaseURL string
	// MigrateDatabaseURL is the owner role's connection used for migrations
	// (DATABASE_MIGRATE_URL; defaults to DatabaseURL).
	MigrateDatabaseURL string
	// RedisURL selects a real Redis; empty starts the in-process Redis-compatible server.
	RedisURL  string
	SecretKey []byte // SWITCHBOARD_SECRET_KEY (hex, ≥32 bytes)

	SMTPURL  string // SWITCHBOARD_SMTP_URL, e.g. smtp://user:pass@mail.example.com:587
	MailFrom string // SWITCHBOARD_MAIL_FROM

	BodyLimit        int           // SWITCHBOARD_BODY_LIMIT bytes
	RatePerIP        int           // SWITCHBOARD_RATE_PER_IP requests per minute
	RatePerTenant    int           // SWITCHBOARD_RATE_PER_TENANT requests per minute
	HookRate         int           // SWITCHBOARD_HOOK_RATE_PER_TENANT inbound webhook deliveries per second per process
	SessionTTL       time.Duration // SWITCHBOARD_SESSION_TTL
	LogLevel         string        // SWITCHBOARD_LOG_LEVEL
	DemoPassword     string        // SWITCHBOARD_DEMO_PASSWORD
	ShutdownTimeout  time.Duration // SWITCHBOARD_SHUTDOWN_TIMEOUT
	LoginMaxFailures int           // SWITCHBOARD_LOGIN_MAX_FAILURES before lockout
	LoginLockout     time.Duration // SWITCHBOARD_LOGIN_LOCKOUT

	// Stripe: the secret API key, the webhook endpoint's signing secret and, for tests against
	// stripe-mock, another API base URL (STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET, STRIPE_API_BASE).
	StripeSecretKey, StripeWebhookSecret, StripeAPIBase string
	// StorageURL says where attachments are kept: empty for the data directory, or
	// s3://ACCESS:SECRET@host:port/bucket?region=&ssl=&path_style= (SWITCHBOARD_STORAGE_URL).
	StorageURL string
	// SMTPListen is the address of the inbound SMTP receiver for e-mail channels; empty turns
	// it off (SWITCHBOARD_SMTP_LISTEN, e.g. :2525).
	SMTPListen string
	// QueueRetryBase shortens the backoff of failed background tasks (SWITCHBOARD_QUEUE_RETRY_BASE,
	// e.g. 200ms; empty keeps asynq's default of seconds growing to hours).
	QueueRetryBase time.Duration
	// DunningGrace is how long a tenant stays past_due after a failed payment before it is
	// suspended (SWITCHBOARD_DUNNING_GRACE).
	DunningGrace time.Duration
}

// Production reports whether the service runs in production mode.
func (c Config) Production() bool { return c.Env == EnvProduction }

// Embedded reports whether the embedded SQLite store is used.
func (c Config) Embedded() bool { return c.DatabaseURL == "" }

// Load reads the configuration through getenv (os.Getenv in main, a map in tests) and prepares
// the data directory. In non-production modes a missing secret key is generated once into the
// data directory so restarts keep sessions and encrypted credentials readable.
func Load(getenv func(string) string) (Config, error) {
	c := Config{
		Env:                 or(getenv("SWITCHBOARD_ENV"), EnvDevelopment),
		Addr:                or(getenv("SWITCHBOARD_ADDR"), ":8080"),
		DataDir:             or(getenv("SWITCHBOARD_DATA_DIR"), "./data"),
		PublicURL:           strings.TrimRight(getenv("SWITCHBOARD_PUBLIC_URL"), "/"),
		DatabaseURL:         getenv("DATABASE_URL"),
		MigrateDatabaseURL:  or(getenv("DATABASE_MIGRATE_URL"), getenv("DATABASE_URL")),
		RedisURL:            getenv("REDIS_URL"),
		SMTPURL:             getenv("SWITCHBOARD_SMTP_URL"),
		MailFrom:            or(getenv("SWITCHBOARD_MAIL_FROM"), "Switchboard <no-reply@switchboard.local>"),
		LogLevel:            or(getenv("SWITCHBOARD_LOG_LEVEL"), "info"),
		DemoPassword:        or(getenv("SWITCHBOARD_DEMO_PASSWORD"), "switchboard-demo"),
		StripeSecretKey:     getenv("STRIPE_SECRET_KEY"),
		StripeWebhookSecret: getenv("STRIPE_WEBHOOK_SECRET"),
		StripeAPIBase:       getenv("STRIPE_API_BASE"),
		StorageURL:          getenv("SWITCHBOARD_STORAGE_URL"),
		SMTPListen:          getenv("SWITCHBOARD_SMTP_LISTEN"),
	}
	var err error
	if c.BodyLimit, err = intVar(getenv, "SWITCHBOARD_BODY_LIMIT", 1<<20); err != nil {
		return c, err
	}
	if c.RatePerIP, err = intVar(getenv, "SWITCHBOARD_RATE_PER_IP", 600); err != nil {
		return c, err
	}
	if c.RatePerTenant, err = intVar(getenv, "SWITCHBOARD_RATE_PER_TENANT", 3000); err != nil {
		return c, err
	}
	if c.HookRate, err = intVar(getenv, "SWITCHBOARD_HOOK_RATE_PER_TENANT", 1000); err != nil {
		return c, err
	}
	if c.LoginMaxFailures, err = intVar(getenv, "SWITCHBOARD_LOGIN_MAX_FAILURES", 5); err != nil {
		return c, err
	}
	if c.SessionTTL, err = durVar(getenv, "SWITCHBOARD_SESSION_TTL", 14*24*time.Hour); err != nil {
		return c, err
	}
	if c.ShutdownTimeout, err = durVar(getenv, "SWITCHBOARD_SHUTDOWN_TIMEOUT", 20*time.Second); err != nil {
		return c, err
	}
	if c.LoginLockout, err = durVar(getenv, "SWITCHBOARD_LOGIN_LOCKOUT", 15*time.Minute); err != nil {
		return c, err
	}
	if c.DunningGrace, err = durVar(getenv, "SWITCHBOARD_DUNNING_GRACE", 7*24*time.Hour); err != nil {
		return c, err
	}
	if getenv("SWITCHBOARD_QUEUE_RETRY_BASE") != "" {
		if c.QueueRetryBase, err = durVar(getenv, "SWITCHBOARD_QUEUE_RETRY_BASE", 0); err != nil {
			return c, err
		}
	}
	switch c.Env {
	case EnvDevelopment, EnvTest, EnvProduction:
	default:
		return c, fmt.Errorf("config: SWITCHBOARD_ENV must be development, test or production, got %q", c.Env)
	}
	if c.PublicURL == "" {
		host := c.Addr
		if strings.HasPrefix(host, ":") {
			host = "localhost" + host
		}
		c.PublicURL = "http://" + host
	}
	if key := getenv("SWITCHBOARD_SECRET_KEY"); key != "" {
		if c.SecretKey, err = decodeKey(key); err != nil {
			return c, err
		}
	} else if c.Production() {
		return c, errors.New("config: SWITCHBOARD_SECRET_KEY is required in production")
	} else if c.SecretKey, err = loadOrCreateKey(c.DataDir); err != nil {
		return c, err
	}
	if c.Production() && c.DatabaseURL == "" {
		return c, errors.New("config: DATABASE_URL is required in production")
	}
	if c.Production() && c.RedisURL == "" {
		return c, errors.New("config: REDIS_URL is required in production")
	}
	return c, nil
}

func decodeKey(s string) ([]byte, error) {
	k, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(k) < 32 {
		return nil, errors.New("config: SWITCHBOARD_SECRET_KEY must be at least 32 bytes written as hex (openssl rand -hex 32)")
	}
	return k, nil
}

func loadOrCreateKey(dir string) ([]byte, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("config: create data dir: %w", err)
	}
	path := filepath.Join(dir, "secret.key")
	if b, err := os.ReadFile(path); err == nil {
		return decodeKey(string(b))
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("config: write %s: %w", path, err)
	}
	return k, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func intVar(getenv func(string) string, name string, def int) (int, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("config: %s must be a positive integer, got %q", name, v)
	}
	return n, nil
}

func durVar(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("config: %s must be a positive duration like 15m, got %q", name, v)
	}
	return d, nil
}
