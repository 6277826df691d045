// Package channels owns the inboxes a tenant connects: one channel per web chat widget, e-mail
// address, WhatsApp number, Messenger page, Telegram bot, WeChat account, phone line or API
// integration. It stores each channel's configuration with the credentials sealed at rest, routes
// inbound webhooks and mail to their channel before the tenant is known, and hands the
// conversations module a provider.Channel (credentials opened) and its adapter.
package channels

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// Channel is a stored channel as the API shows it: never its secrets, only which are set.
type Channel struct {
	TenantID   uuid.UUID         `json:"-" gorm:"type:uuid;primaryKey"`
	ID         uuid.UUID         `json:"id" gorm:"type:uuid;primaryKey"`
	Type       string            `json:"type"`
	Name       string            `json:"name"`
	PublicID   string            `json:"public_id"`
	ConfigRaw  string            `json:"-" gorm:"column:config"`
	Secrets    []byte            `json:"-"`
	Status     string            `json:"status"`
	LastError  string            `json:"last_error"`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
	Config     map[string]string `json:"config" gorm:"-"`
	SecretsSet []string          `json:"secrets_set" gorm:"-"`
	WebhookURL string            `json:"webhook_url,omitempty" gorm:"-"`
}

// route maps a webhook's public id or an inbound e-mail address to its channel.
type route struct {
	Key       string    `gorm:"primaryKey"`
	OrgID     uuid.UUID `gorm:"type:uuid"`
	ChannelID uuid.UUID `gorm:"type:uuid"`
	Type      string
}

func (route) TableName() string { return "channel_routes" }

// Channel statuses.
const (
	StatusActive   = "active"
	StatusDisabled = "disabled"
)

// Registry holds the adapter of each channel type.
type Registry struct {
	byType map[string]provider.Provider
	types  []string
}

// NewRegistry lists the channel types the service speaks.
func NewRegistry(providers ...provider.Provider) (*Registry, error) {
	r := &Registry{byType: map[string]provider.Provider{}}
	for _, p := range providers {
		t := p.Spec().Type
		if _, dup := r.byType[t]; dup || t == "" {
			return nil, fmt.Errorf("channels: channel type %q registered twice or unnamed", t)
		}
		r.byType[t] = p
		r.types = append(r.types, t)
	}
	sort.Strings(r.types)
	return r, nil
}

// Provider returns the adapter of a type.
func (r *Registry) Provider(typ string) (provider.Provider, bool) {
	p, ok := r.byType[typ]
	return p, ok
}

// Types lists the registered types.
func (r *Registry) Types() []string { return slices.Clone(r.types) }

// Service manages channels.
type Service struct {
	db        *tenant.DB
	reg       *Registry
	seal      *Sealer
	publicURL string
	log       *slog.Logger
	now       func() time.Time

	// cache of opened channels by id: webhooks arrive thousands of times a second for the same
	// few channels, and opening one costs two reads and a decryption. Entries expire quickly
	// and are dropped on every change made through this node.
	mu     sync.RWMutex
	cache  map[uuid.UUID]cached
	routes map[string]cachedRoute // Resolve's route and organisation lookups, by route key
	// gen counts the drops: a lookup that began before one does not fill the cache with what
	// it read, which may be the state the change just replaced.
	gen uint64
}

// cachedRoute is a route key's organisation and channel, as Resolve found them.
type cachedRoute struct {
	org       tenant.Org
	channelID uuid.UUID
	typ       string
	expires   time.Time
}

type cached struct {
	ch      provider.Channel
	status  string
	expires time.Time
}

const cacheTTL = 30 * time.Second

// maxCachedRoutes bounds Resolve's route cache.
const maxCachedRoutes = 100_000

// NewService returns the channel service. publicURL is the base of the webhook URLs.
func NewService(db *tenant.DB, reg *Registry, seal *Sealer, publicURL string, log *slog.Logger) *Service {
	s := &Service{db: db, reg: reg, seal: seal, publicURL: strings.TrimRight(publicURL, "/"), log: log,
		now: func() time.Time { return time.Now().UTC() }, cache: map[uuid.UUID]cached{}, routes: map[string]cachedRoute{}}
	db.OnOrgChange(s.forgetOrg)
	return s
}

// Registry returns the adapters.
func (s *Service) Registry() *Registry { return s.reg }

// WebhookURL is where a channel's provider posts.
func (s *Service) WebhookURL(typ, publicID string) string {
	return s.publicURL + "/hooks/" + typ + "/" + publicID
}

// CreateInput is the body of POST /channels.
type CreateInput struct {
	Type   string            `json:"type"`
	Name   string            `json:"name"`
	Config map[string]string `json:"config"`
}

// UpdateInput is the body of PATCH /channels/:id; absent fields stay. A config key set to ""
// removes an optional key; secrets not named keep their value.
type UpdateInput struct {
	Name   *string           `json:"name"`
	Status *string           `json:"status"`
	Config map[string]string `json:"config"`
}

const (
	maxConfigKeys  = 30
	maxConfigValue = 4096
)

// checkConfig validates a full configuration against the type's spec and adapter.
func checkConfig(p provider.Provider, cfg map[string]string) error {
	spec := p.Spec()
	known := map[string]bool{}
	for _, k := range slices.Concat(spec.Required, spec.Optional, spec.Secret) {
		known[k] = true
	}
	var bad apperr.Fields
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > maxConfigKeys {
		bad.Add("config", fmt.Sprintf("at most %d keys", maxConfigKeys))
	}
	for _, k := range keys {
		switch {
		case !known[k]:
			bad.Add("config."+k, "is not a setting of a "+spec.Type+" channel")
		case len(cfg[k]) > maxConfigValue || !utf8.ValidString(cfg[k]):
			bad.Add("config."+k, fmt.Sprintf("must be valid text of at most %d bytes", maxConfigValue))
		}
	}
	for _, k := range spec.Required {
		if strings.TrimSpace(cfg[k]) == "" {
			bad.Add("config."+k, "is required")
		}
	}
	if err := bad.Err(); err != nil {
		return err
	}
	if err := p.Validate(cfg); err != nil {
		var ve *apperr.ValidationError
		if errors.As(err, &ve) {
			return err
		}
		return apperr.Invalid("config", err.Error())
	}
	return nil
}

func checkName(name string) error {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 100 {
		return apperr.Invalid("name", "is required, at most 100 characters")
	}
	return nil
}

// split separates a configuration into its public and secret parts, with defaults applied.
func split(spec provider.Spec, cfg map[string]string) (public, secret map[string]string) {
	public, secret = map[string]string{}, map[string]string{}
	for k, v := range cfg {
		if v == "" {
			continue
		}
		if slices.Contains(spec.Secret, k) {
			secret[k] = v
		} else {
			public[k] = v
		}
	}
	return public, secret
}

// routeKeys are the global routes of a channel: its webhook, and its address for e-mail.
func routeKeys(typ, publicID string, public map[string]string) []string {
	keys := []string{"hook:" + publicID}
	if typ == "email" && public["address"] != "" {
		keys = append(keys, EmailRouteKey(public["address"]))
	}
	return keys
}

// EmailRouteKey is the route key of an inbound e-mail address.
func EmailRouteKey(addr string) string {
	if a, err := mail.ParseAddress(addr); err == nil {
		addr = a.Address
	}
	return "email:" + strings.ToLower(strings.TrimSpace(addr))
}

// Create checks and stores a new channel, running its adapter's setup first (Telegram
// registers its webhook), so a channel that cannot work is never saved.
func (s *Service) Create(ctx context.Context, in CreateInput) (Channel, error) {
	tid, ok := tenant.ID(ctx)
	if !ok {
		return Channel{}, fmt.Errorf("channels: create: %w", tenant.ErrNoTenant)
	}
	p, ok := s.reg.Provider(in.Type)
	if !ok {
		return Channel{}, apperr.Invalid("type", "must be one of "+strings.Join(s.reg.Types(), ", "))
	}
	if err := checkName(in.Name); err != nil {
		return Channel{}, err
	}
	spec := p.Spec()
	cfg := map[string]string{}
	for k, v := range spec.Defaults {
		cfg[k] = v
	}
	for k, v := range in.Config {
		cfg[k] = strings.TrimSpace(v)
	}
	if err := checkConfig(p, cfg); err != nil {
		return Channel{}, err
	}
	now := s.now()
	ch := Channel{TenantID: tid, ID: ids.New(), Type: in.Type, Name: strings.TrimSpace(in.Name),
		PublicID: strings.ToLower(ids.Secret(12)), Status: StatusActive, CreatedAt: now, UpdatedAt: now}
	ch.PublicID = strings.NewReplacer("-", "x", "_", "y").Replace(ch.PublicID)
	public, secret := split(spec, cfg)
	pc := provider.Channel{ID: ch.ID, TenantID: tid, Type: ch.Type, PublicID: ch.PublicID, Name: ch.Name, Config: cfg,
		WebhookURL: s.WebhookURL(ch.Type, ch.PublicID)}
	if err := p.Setup(ctx, pc); err != nil {
		return Channel{}, apperr.Invalid("config", "the provider refused the set-up: "+err.Error())
	}
	if err := s.store(&ch, public, secret); err != nil {
		return Channel{}, err
	}
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Create(&ch).Error }); err != nil {
			return fmt.Errorf("channels: create: %w", err)
		}
		if err := s.addRoutes(ctx, tid, ch.ID, ch.Type, routeKeys(ch.Type, ch.PublicID, public)); err != nil {
			return err
		}
		return s.db.Record(ctx, tenant.Audit{Action: "channel.created", ObjectType: "channel", ObjectID: ch.ID.String(),
			Data: map[string]any{"type": ch.Type, "name": ch.Name}})
	})
	if err != nil {
		return Channel{}, err
	}
	return s.present(ch)
}

func (s *Service) addRoutes(ctx context.Context, org, channelID uuid.UUID, typ string, keys []string) error {
	for _, k := range keys {
		err := s.db.Global(ctx, func(tx *gorm.DB) error {
			return tx.Create(&route{Key: k, OrgID: org, ChannelID: channelID, Type: typ}).Error
		})
		if errors.Is(err, gorm.ErrDuplicatedKey) {
			if strings.HasPrefix(k, "email:") {
				return apperr.Invalid("config.address", "is already the address of another channel")
			}
			return fmt.Errorf("channels: route %s taken: %w", k, apperr.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("channels: add route: %w", err)
		}
	}
	return nil
}

// store fills the row's config and sealed secrets.
func (s *Service) store(ch *Channel, public, secret map[string]string) error {
	pub, err := json.Marshal(public)
	if err != nil {
		return err
	}
	ch.ConfigRaw = string(pub)
	ch.Secrets = nil
	if len(secret) > 0 {
		sec, err := json.Marshal(secret)
		if err != nil {
			return err
		}
		ch.Secrets = s.seal.Seal(ch.TenantID, ch.ID, sec)
	}
	return nil
}

// open returns a row's full configuration, secrets included.
func (s *Service) open(ch Channel) (public, secret map[string]string, err error) {
	public, secret = map[string]string{}, map[string]string{}
	if ch.ConfigRaw != "" {
		if err := json.Unmarshal([]byte(ch.ConfigRaw), &public); err != nil {
			return nil, nil, fmt.Errorf("channels: read config of %s: %w", ch.ID, err)
		}
	}
	if len(ch.Secrets) > 0 {
		plain, err := s.seal.Open(ch.TenantID, ch.ID, ch.Secrets)
		if err != nil {
			return nil, nil, err
		}
		if err := json.Unmarshal(plain, &secret); err != nil {
			return nil, nil, fmt.Errorf("channels: read secrets of %s: %w", ch.ID, err)
		}
	}
	return public, secret, nil
}

// present fills the API view: public config, the names of the secrets that are set, the URL.
func (s *Service) present(ch Channel) (Channel, error) {
	public, secret, err := s.open(ch)
	if err != nil {
		return Channel{}, err
	}
	ch.Config = public
	ch.SecretsSet = make([]string, 0, len(secret))
	for k := range secret {
		ch.SecretsSet = append(ch.SecretsSet, k)
	}
	sort.Strings(ch.SecretsSet)
	if ch.Type != "email" {
		ch.WebhookURL = s.WebhookURL(ch.Type, ch.PublicID)
	}
	return ch, nil
}

func (s *Service) get(ctx context.Context, id uuid.UUID) (Channel, error) {
	var ch Channel
	err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Where("id = ?", id).Take(&ch).Error })
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Channel{}, fmt.Errorf("channel %s: %w", id, apperr.ErrNotFound)
	}
	if err != nil {
		return Channel{}, fmt.Errorf("channels: get: %w", err)
	}
	return ch, nil
}

// Get returns one channel of the tenant in ctx.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (Channel, error) {
	ch, err := s.get(ctx, id)
	if err != nil {
		return Channel{}, err
	}
	return s.present(ch)
}

// List returns the tenant's channels, newest first, optionally of one type.
func (s *Service) List(ctx context.Context, typ string, limit int, cursor string) ([]Channel, error) {
	var rows []Channel
	err := s.db.Run(ctx, func(tx *gorm.DB) error {
		q := tx.Order("id DESC").Limit(limit + 1)
		if typ != "" {
			q = q.Where("type = ?", typ)
		}
		if cursor != "" {
			q = q.Where("id < ?", cursor)
		}
		return q.Find(&rows).Error
	})
	if err != nil {
		return nil, fmt.Errorf("channels: list: %w", err)
	}
	for i := range rows {
		if rows[i], err = s.present(rows[i]); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

// Update changes a channel's name, status or configuration.
func (s *Service) Update(ctx context.Context, id uuid.UUID, in UpdateInput) (Channel, error) {
	var out Channel
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		ch, err := s.get(ctx, id)
		if err != nil {
			return err
		}
		p, ok := s.reg.Provider(ch.Type)
		if !ok {
			return fmt.Errorf("channels: channel %s has unknown type %q", id, ch.Type)
		}
		changed := map[string]any{}
		if in.Name != nil {
			if err := checkName(*in.Name); err != nil {
				return err
			}
			ch.Name = strings.TrimSpace(*in.Name)
			changed["name"] = ch.Name
		}
		if in.Status != nil {
			if *in.Status != StatusActive && *in.Status != StatusDisabled {
				return apperr.Invalid("status", "must be active or disabled")
			}
			ch.Status = *in.Status
			changed["status"] = ch.Status
		}
		if in.Config != nil {
			public, secret, err := s.open(ch)
			if err != nil {
				return err
			}
			cfg := map[string]string{}
			for k, v := range public {
				cfg[k] = v
			}
			for k, v := range secret {
				cfg[k] = v
			}
			keys := []string{}
			for k, v := range in.Config {
				cfg[k] = strings.TrimSpace(v)
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if err := checkConfig(p, cfg); err != nil {
				return err
			}
			oldKeys := routeKeys(ch.Type, ch.PublicID, public)
			public, secret = split(p.Spec(), cfg)
			if err := s.store(&ch, public, secret); err != nil {
				return err
			}
			if newKeys := routeKeys(ch.Type, ch.PublicID, public); !slices.Equal(oldKeys, newKeys) {
				if err := s.db.Global(ctx, func(tx *gorm.DB) error {
					return tx.Where("channel_id = ? AND key LIKE 'email:%'", ch.ID).Delete(&route{}).Error
				}); err != nil {
					return fmt.Errorf("channels: drop routes: %w", err)
				}
				if err := s.addRoutes(ctx, ch.TenantID, ch.ID, ch.Type, newKeys[1:]); err != nil {
					return err
				}
			}
			changed["config_keys"] = keys // names only: values may be secrets
		}
		ch.UpdatedAt = s.now()
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Model(&Channel{}).Where("id = ?", ch.ID).Updates(map[string]any{
				"name": ch.Name, "status": ch.Status, "config": ch.ConfigRaw, "secrets": ch.Secrets, "updated_at": ch.UpdatedAt}).Error
		}); err != nil {
			return fmt.Errorf("channels: update: %w", err)
		}
		out = ch
		return s.db.Record(ctx, tenant.Audit{Action: "channel.updated", ObjectType: "channel", ObjectID: ch.ID.String(), Data: changed})
	})
	if err != nil {
		return Channel{}, err
	}
	s.forget(id)
	return s.present(out)
}

func (s *Service) forget(id uuid.UUID) {
	s.mu.Lock()
	s.gen++
	delete(s.cache, id)
	for k, r := range s.routes {
		if r.channelID == id {
			delete(s.routes, k)
		}
	}
	s.mu.Unlock()
}

// forgetOrg drops the routes of an organisation whose state changed (suspended, closed).
func (s *Service) forgetOrg(orgID uuid.UUID) {
	s.mu.Lock()
	s.gen++
	for k, r := range s.routes {
		if r.org.ID == orgID {
			delete(s.routes, k)
		}
	}
	s.mu.Unlock()
}

// Route finds the organisation and channel a route key (hook:<public_id>, email:<address>)
// belongs to. It crosses tenants by nature: the key is all an inbound request carries.
func (s *Service) Route(ctx context.Context, key string) (org, channelID uuid.UUID, typ string, err error) {
	var r route
	err = s.db.Global(ctx, func(tx *gorm.DB) error { return tx.Where("key = ?", key).Take(&r).Error })
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return uuid.Nil, uuid.Nil, "", fmt.Errorf("channel route %q: %w", key, apperr.ErrNotFound)
	}
	if err != nil {
		return uuid.Nil, uuid.Nil, "", fmt.Errorf("channels: route: %w", err)
	}
	return r.OrgID, r.ChannelID, r.Type, nil
}

// Open returns the channel with its credentials for the adapter, and its status, for the
// tenant in ctx.
func (s *Service) Open(ctx context.Context, id uuid.UUID) (provider.Channel, string, error) {
	tid, _ := tenant.ID(ctx)
	s.mu.RLock()
	c, ok := s.cache[id]
	gen := s.gen
	s.mu.RUnlock()
	if ok && c.ch.TenantID == tid && s.now().Before(c.expires) {
		return c.ch, c.status, nil
	}
	ch, err := s.get(ctx, id)
	if err != nil {
		return provider.Channel{}, "", err
	}
	public, secret, err := s.open(ch)
	if err != nil {
		return provider.Channel{}, "", err
	}
	cfg := map[string]string{}
	for k, v := range public {
		cfg[k] = v
	}
	for k, v := range secret {
		cfg[k] = v
	}
	pc := provider.Channel{ID: ch.ID, TenantID: ch.TenantID, Type: ch.Type, PublicID: ch.PublicID, Name: ch.Name,
		Config: cfg, WebhookURL: s.WebhookURL(ch.Type, ch.PublicID)}
	s.mu.Lock()
	if s.gen == gen {
		s.cache[id] = cached{ch: pc, status: ch.Status, expires: s.now().Add(cacheTTL)}
	}
	s.mu.Unlock()
	return pc, ch.Status, nil
}

// Test runs the adapter's set-up again (Telegram re-registers its webhook) and reports the
// outcome on the channel, so the console's test button says whether the provider accepts it.
func (s *Service) Test(ctx context.Context, id uuid.UUID) (Channel, error) {
	pc, _, err := s.Open(ctx, id)
	if err != nil {
		return Channel{}, err
	}
	p, _ := s.reg.Provider(pc.Type)
	msg := ""
	if err := p.Setup(ctx, pc); err != nil {
		msg = err.Error()
	}
	err = s.db.Run(ctx, func(tx *gorm.DB) error {
		return tx.Model(&Channel{}).Where("id = ?", id).Update("last_error", msg).Error
	})
	if err != nil {
		return Channel{}, fmt.Errorf("channels: test: %w", err)
	}
	return s.Get(ctx, id)
}

// Resolve finds an active channel of the given type by its public id, for requests that arrive
// without credentials (webhooks, the widget): it returns a context naming the channel's
// tenant and the channel opened for its adapter. Anything unknown, of another type or
// disabled is not found.
func (s *Service) Resolve(ctx context.Context, routeKey, typ string) (context.Context, provider.Channel, error) {
	// Every inbound request starts here, so the route and its organisation are cached like the
	// channel (cacheTTL, dropped on changes made through this node); a route key that is not
	// found is not cached, so a new channel answers at once.
	s.mu.RLock()
	r, ok := s.routes[routeKey]
	gen := s.gen
	s.mu.RUnlock()
	if !ok || !s.now().Before(r.expires) {
		org, channelID, routeType, err := s.Route(ctx, routeKey)
		if err != nil {
			return nil, provider.Channel{}, err
		}
		_, o, err := s.db.InOrg(ctx, org)
		if err != nil {
			return nil, provider.Channel{}, err
		}
		r = cachedRoute{org: o, channelID: channelID, typ: routeType, expires: s.now().Add(cacheTTL)}
		s.mu.Lock()
		if len(s.routes) >= maxCachedRoutes {
			clear(s.routes) // crude, and rare: a node with that many live channels re-reads them
		}
		if s.gen == gen {
			s.routes[routeKey] = r
		}
		s.mu.Unlock()
	}
	if typ != "" && r.typ != typ {
		return nil, provider.Channel{}, fmt.Errorf("channel route %q is not a %s channel: %w", routeKey, typ, apperr.ErrNotFound)
	}
	ctx = tenant.WithOrg(ctx, r.org)
	ch, status, err := s.Open(ctx, r.channelID)
	if err != nil {
		return nil, provider.Channel{}, err
	}
	if status != StatusActive {
		return nil, provider.Channel{}, fmt.Errorf("channel %s is disabled: %w", r.channelID, apperr.ErrNotFound)
	}
	return ctx, ch, nil
}
