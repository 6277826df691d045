// Package app assembles Switchboard: it opens the stores, lists the modules once, and builds
// the HTTP app and the background worker from them. cmd/switchboard only parses flags and
// calls it; tests build the same App.
package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver for the migration connection
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/admin"
	"github.com/switchboard-cloud/switchboard/billing"
	"github.com/switchboard-cloud/switchboard/billing/billingapi"
	"github.com/switchboard-cloud/switchboard/billing/stripesync"
	"github.com/switchboard-cloud/switchboard/internal/config"
	"github.com/switchboard-cloud/switchboard/internal/db"
	"github.com/switchboard-cloud/switchboard/internal/events"
	"github.com/switchboard-cloud/switchboard/internal/httpx"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/internal/queue"
	"github.com/switchboard-cloud/switchboard/internal/storage"
	"github.com/switchboard-cloud/switchboard/modules/access"
	"github.com/switchboard-cloud/switchboard/modules/audit"
	"github.com/switchboard-cloud/switchboard/modules/channels"
	"github.com/switchboard-cloud/switchboard/modules/channels/apichannel"
	"github.com/switchboard-cloud/switchboard/modules/channels/email"
	"github.com/switchboard-cloud/switchboard/modules/channels/meta"
	"github.com/switchboard-cloud/switchboard/modules/channels/telegram"
	"github.com/switchboard-cloud/switchboard/modules/channels/voice"
	"github.com/switchboard-cloud/switchboard/modules/channels/wechat"
	"github.com/switchboard-cloud/switchboard/modules/contacts"
	"github.com/switchboard-cloud/switchboard/modules/conversations"
	"github.com/switchboard-cloud/switchboard/modules/identity"
	"github.com/switchboard-cloud/switchboard/modules/mail"
	"github.com/switchboard-cloud/switchboard/modules/mailin"
	"github.com/switchboard-cloud/switchboard/modules/realtime"
	"github.com/switchboard-cloud/switchboard/modules/widget"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// Module is what a business capability gives the app.
type Module interface {
	Name() string
	Routes(r *access.Router)
}

// RootModule is a module with routes outside the API prefix (the channels' inbound webhooks).
type RootModule interface {
	RootRoutes(r *access.Router)
}

// JobModule is a module with background work.
type JobModule interface {
	Jobs(mux *asynq.ServeMux)
	Schedules() []queue.Schedule
}

// Options tune New beyond the configuration.
type Options struct {
	// Migrate applies pending migrations before starting (serve does; worker does not).
	Migrate bool
}

// App is a running Switchboard.
type App struct {
	Cfg      config.Config
	Log      *slog.Logger
	DB       *tenant.DB
	Queue    *queue.Queue
	HTTP     *fiber.App
	Registry *access.Registry
	Ledger   *billing.Ledger
	Payments *billing.Payments
	Plans    *billing.Plans
	Invoicer *billing.Invoicer
	Access   *access.Service
	Identity *identity.Service
	Outbox   *mail.Outbox
	Bus      *events.Bus
	Channels *channels.Service
	Contacts *contacts.Service
	Inbox    *conversations.Service
	Realtime *realtime.Hub
	Modules  []Module

	MailIn      *mailin.Service
	mail        *email.Provider
	platformOrg atomic.Value // uuid.UUID
	fileLimits  storage.Limits
	stopSync    context.CancelFunc
	stopRT      context.CancelFunc
	sqlDB       *sql.DB
}

const reloadChannel = "switchboard:access:changed"

// New opens everything and builds the HTTP app; it starts nothing in the background.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opts Options) (*App, error) {
	a := &App{Cfg: cfg, Log: log}
	gdb, dialect, err := db.Open(db.Options{URL: cfg.DatabaseURL, SQLitePath: filepath.Join(cfg.DataDir, "switchboard.db")})
	if err != nil {
		return nil, err
	}
	a.sqlDB, _ = gdb.DB()
	if opts.Migrate {
		if err := Migrate(ctx, cfg, gdb, dialect, log, "up"); err != nil {
			return nil, err
		}
	}
	if a.DB, err = tenant.New(gdb, dialect, log); err != nil {
		return nil, err
	}
	if dialect == tenant.Postgres {
		a.DB.BeginSetsSettings() // db.Open's connector pipelines them with BEGIN
	}
	if len(a.DB.TenantTables()) == 0 {
		return nil, errors.New("app: the database has no schema; run `switchboard migrate up`")
	}
	if a.Queue, err = queue.Open(queue.Options{RedisURL: cfg.RedisURL, Log: log, RetryBase: cfg.QueueRetryBase}); err != nil {
		return nil, err
	}
	if err := a.bootstrap(ctx); err != nil {
		return nil, err
	}
	if a.Outbox, err = mail.NewOutbox(a.DB, a.Queue, log, cfg.SMTPURL, cfg.MailFrom); err != nil {
		return nil, err
	}
	cat, err := access.NewCatalogue(access.Permissions(), identity.Permissions(), audit.Permissions(), billingapi.Permissions(), admin.Permissions(),
		channels.Permissions(), contacts.Permissions(), conversations.Permissions(), realtime.Permissions())
	if err != nil {
		return nil, err
	}
	val := httpx.NewValidator()
	// identity's memberships are access's grants, and identity asks access about roles; the
	// access service is built first and given identity as its grant source once that exists.
	grants := &lateGrants{}
	a.Access = access.NewService(a.DB, cat, grants)
	if a.Identity, err = identity.NewService(a.DB, a.Outbox, a.Access, log, identity.Options{
		PublicURL: cfg.PublicURL, SessionTTL: cfg.SessionTTL, LoginMaxFailures: cfg.LoginMaxFailures, LoginLockout: cfg.LoginLockout,
		PlatformOrg: a.PlatformOrgID,
	}); err != nil {
		return nil, err
	}
	grants.GrantSource = a.Identity
	meters, err := billing.NewMeters()
	if err != nil {
		return nil, err
	}
	a.Ledger = billing.NewLedger(a.DB, meters, log)
	a.Payments = billing.NewPayments(a.DB, billing.PaymentsConfig{
		Stripe:    stripesync.Config{SecretKey: cfg.StripeSecretKey, WebhookSecret: cfg.StripeWebhookSecret, APIBase: cfg.StripeAPIBase},
		Grace:     cfg.DunningGrace,
		PublicURL: cfg.PublicURL,
	}, a.Outbox, a.ownerEmails, log)
	a.Plans = billing.NewPlans(a.DB, meters)
	a.Invoicer = billing.NewInvoicer(a.DB, a.Ledger, a.Plans, a.Payments, log)
	a.DB.OnOrgChange(func(uuid.UUID) {
		a.Identity.ForgetSessions()
		a.publishPolicyChange(context.Background())
	})
	if _, err := a.Access.Start(ctx, log, a.publishPolicyChange); err != nil {
		return nil, err
	}
	if err := a.buildInbox(); err != nil {
		return nil, err
	}
	a.Modules = []Module{
		identity.NewModule(a.Identity, a.Access, val, strings.HasPrefix(cfg.PublicURL, "https://")),
		access.NewModule(a.Access, val),
		audit.NewModule(a.DB, a.Access.Enforcer),
		mail.NewModule(a.Outbox, !cfg.Production()),
		billingapi.NewModule(a.Ledger, a.Payments, a.Plans, a.Invoicer, val),
		admin.NewModule(a.Access.Enforcer, a.PlatformOrgID, a.DB, a.Ledger, a.Plans, a.Invoicer, a.Payments, val),
		channels.NewModule(a.Channels, val),
		contacts.NewModule(a.Contacts, val, a.Inbox.Timeline, func(t conversations.TimelineItem) string { return t.ID.String() }),
		conversations.NewModule(a.Inbox, a.Channels, val, a.isMember, a.fileLimits.Check),
		realtime.NewModule(a.Realtime),
		widget.NewModule(a.Channels, a.Contacts, a.Inbox, widget.HubLive{Hub: a.Realtime}, val, a.Cfg.SecretKey, a.fileLimits.Check, a.fileLimits.MaxBytes),
		mailin.NewModule(a.MailIn),
	}
	a.HTTP = a.buildHTTP()
	return a, nil
}

// buildInbox assembles omnichannel contact: the channel adapters, contacts, the inbox and the
// realtime hub. Every channel type is listed here, once.
func (a *App) buildInbox() error {
	client := &http.Client{Timeout: 30 * time.Second}
	now := func() time.Time { return time.Now().UTC() }
	a.mail = email.New(email.Options{Now: now})
	reg, err := channels.NewRegistry(
		channels.WebChat{},
		apichannel.New(client, now),
		voice.New(client, now),
		meta.NewWhatsApp(client),
		meta.NewMessenger(client),
		telegram.New(client),
		wechat.New(client, now),
		a.mail,
	)
	if err != nil {
		return err
	}
	seal, err := channels.NewSealer(a.Cfg.SecretKey)
	if err != nil {
		return err
	}
	blobs, err := storage.Open(a.Cfg.StorageURL, a.Cfg.DataDir)
	if err != nil {
		return err
	}
	a.fileLimits = storage.DefaultLimits()
	a.Bus = events.NewBus(a.Log)
	a.Channels = channels.NewService(a.DB, reg, seal, a.Cfg.PublicURL, a.Log)
	a.Contacts = contacts.NewService(a.DB, a.Log)
	a.Realtime = realtime.NewHub(a.DB, a.Queue.Redis(), a.Log)
	a.Inbox = conversations.NewService(a.DB, a.Channels, a.Contacts, a.Ledger, a.Realtime, a.Bus, a.Queue, blobs, a.Log,
		conversations.Options{MaxAttachmentBytes: a.fileLimits.MaxBytes, HookRate: a.Cfg.HookRate})
	a.MailIn = mailin.New(a.DB, a.Channels, a.Inbox, a.mail, a.Queue, a.Log)
	return nil
}

// isMember says whether a user is an active member of the tenant in ctx (who may be assigned).
func (a *App) isMember(ctx context.Context, userID uuid.UUID) (bool, error) {
	org, ok := tenant.ID(ctx)
	if !ok {
		return false, tenant.ErrNoTenant
	}
	var n int64
	err := a.DB.Global(ctx, func(tx *gorm.DB) error {
		return tx.Table("memberships").Where("org_id = ? AND user_id = ? AND status = 'active'", org, userID).Count(&n).Error
	})
	return n > 0, err
}

// ownerEmails are the addresses billing mail goes to: the organisation's active owners.
func (a *App) ownerEmails(ctx context.Context, orgID uuid.UUID) ([]string, error) {
	var to []string
	err := a.DB.Global(ctx, func(tx *gorm.DB) error {
		return tx.Table("memberships m").Joins("JOIN users u ON u.id = m.user_id").
			Where("m.org_id = ? AND m.role = ? AND m.status = 'active'", orgID, access.TenantOwner).
			Order("u.email").Pluck("u.email", &to).Error
	})
	return to, err
}

// lateGrants breaks the construction cycle between access and identity.
type lateGrants struct{ access.GrantSource }

// Migrate runs goose in direction "up", "down" or "status" as the tables' owner, then grants the
// application role its rights.
func Migrate(ctx context.Context, cfg config.Config, gdb *gorm.DB, dialect tenant.Dialect, log *slog.Logger, direction string) error {
	sqlDB, err := gdb.DB()
	if err != nil {
		return err
	}
	if dialect == tenant.Postgres && cfg.MigrateDatabaseURL != cfg.DatabaseURL {
		owner, err := sql.Open("pgx", cfg.MigrateDatabaseURL)
		if err != nil {
			return fmt.Errorf("app: open migration connection: %w", err)
		}
		defer owner.Close()
		sqlDB = owner
	}
	m, err := db.NewMigrator(sqlDB, dialect)
	if err != nil {
		return err
	}
	switch direction {
	case "up":
		if err := m.Up(ctx, log); err != nil {
			return err
		}
		if app := db.UserOf(cfg.DatabaseURL); dialect == tenant.Postgres && app != db.UserOf(cfg.MigrateDatabaseURL) {
			return m.GrantApp(ctx, app)
		}
		return nil
	case "down":
		return m.Down(ctx)
	case "status":
		lines, err := m.Status(ctx)
		for _, l := range lines {
			fmt.Println(l)
		}
		return err
	default:
		return fmt.Errorf("app: unknown migrate direction %q (up, down, status)", direction)
	}
}

// bootstrap makes sure the platform organisation exists; it is the domain of platform roles
// and the log of events that belong to no tenant.
func (a *App) bootstrap(ctx context.Context) error {
	ctx = a.DB.AsPlatform(ctx, "bootstrap the platform organisation")
	var org tenant.Org
	err := a.DB.Run(ctx, func(tx *gorm.DB) error {
		err := tx.Where("kind = ?", tenant.KindPlatform).Order("created_at").Take(&org).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			now := time.Now().UTC()
			org = tenant.Org{ID: ids.New(), Kind: tenant.KindPlatform, Name: "Switchboard Platform", Slug: "platform",
				Status: tenant.StatusActive, Locale: "en", StatusChangedAt: now, CreatedAt: now, UpdatedAt: now}
			return tx.Create(&org).Error
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("app: bootstrap platform org: %w", err)
	}
	a.platformOrg.Store(org.ID)
	return nil
}

// PlatformOrgID is the platform organisation's id.
func (a *App) PlatformOrgID() uuid.UUID { return a.platformOrg.Load().(uuid.UUID) }

// publishPolicyChange tells the other nodes to reload their policies.
func (a *App) publishPolicyChange(ctx context.Context) {
	if err := a.Queue.Redis().Publish(ctx, reloadChannel, "reload").Err(); err != nil {
		a.Log.WarnContext(ctx, "publish policy change", "err", err)
	}
}

// StartRealtime subscribes to every node's realtime events, for the WebSockets this process
// serves. Only `serve` needs it: a worker publishes events, and receiving every tenant's
// events with no socket to give them to would be work for nothing.
func (a *App) StartRealtime(ctx context.Context) {
	ctx, a.stopRT = context.WithCancel(ctx)
	if err := a.Realtime.Start(ctx); err != nil {
		a.Log.ErrorContext(ctx, "start realtime fan-out", "err", err)
	}
}

// StartSync follows other nodes' policy changes (and reloads every five minutes regardless, in
// case a message was missed).
func (a *App) StartSync(ctx context.Context) {
	ctx, a.stopSync = context.WithCancel(ctx)
	sub := a.Queue.Redis().Subscribe(ctx, reloadChannel)
	go func() {
		defer sub.Close()
		tick := time.NewTicker(5 * time.Minute)
		defer tick.Stop()
		ch := sub.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
			case <-tick.C:
			}
			a.Identity.ForgetSessions()
			if err := a.Access.Enforcer().Reload(ctx); err != nil && ctx.Err() == nil {
				a.Log.ErrorContext(ctx, "reload access policies", "err", err)
			}
		}
	}()
}

// NewWorker builds the asynq worker with every module's handlers and schedules.
func (a *App) NewWorker() (*queue.Worker, *asynq.ServeMux, error) {
	mux := asynq.NewServeMux()
	var sched []queue.Schedule
	for _, m := range a.Modules {
		if jm, ok := m.(JobModule); ok {
			jm.Jobs(mux)
			sched = append(sched, jm.Schedules()...)
		}
	}
	w, err := a.Queue.NewWorker(sched)
	return w, mux, err
}

// Close releases the queue and the database.
func (a *App) Close() error {
	for _, stop := range []context.CancelFunc{a.stopSync, a.stopRT} {
		if stop != nil {
			stop()
		}
	}
	err := a.Queue.Close()
	if a.sqlDB != nil {
		err = errors.Join(err, a.sqlDB.Close())
	}
	return err
}
