package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/httpx"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/modules/access"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// API keys look like "sbk_<org id, 32 hex>_<secret>": the organisation rides in the key so it
// is found inside that tenant's scope (and under its RLS policy) without a cross-tenant lookup.
const keyPrefix = "sbk_"

// newAPIKey returns a key and its secret part. The secret is base64url and may itself hold
// underscores, so parsing splits at the first one after the org.
func newAPIKey(org uuid.UUID) (key, secret string) {
	secret = ids.Secret(32)
	return keyPrefix + strings.ReplaceAll(org.String(), "-", "") + "_" + secret, secret
}

func parseAPIKey(key string) (uuid.UUID, bool) {
	rest, ok := strings.CutPrefix(key, keyPrefix)
	if !ok {
		return uuid.Nil, false
	}
	hexOrg, secret, ok := strings.Cut(rest, "_")
	if !ok || len(hexOrg) != 32 || len(secret) < 32 {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(hexOrg)
	return id, err == nil
}

// APIKeyInput creates a key.
type APIKeyInput struct {
	Name string `json:"name" validate:"required,max=100"`
	Role string `json:"role" validate:"required,min=2,max=40"`
}

// CreatedAPIKey is the only answer that carries the key itself.
type CreatedAPIKey struct {
	APIKey
	Key string `json:"key"`
}

// CreateAPIKey issues a key for a role of the current organisation. Keys cannot own.
func (s *Service) CreateAPIKey(ctx context.Context, in APIKeyInput) (CreatedAPIKey, error) {
	org, err := mustOrg(ctx)
	if err != nil {
		return CreatedAPIKey{}, err
	}
	if in.Role == access.TenantOwner {
		return CreatedAPIKey{}, apperr.Invalid("role", "an API key cannot hold the owner role")
	}
	if err := s.checkGrant(ctx, in.Role); err != nil {
		return CreatedAPIKey{}, err
	}
	key, secret := newAPIKey(org.ID)
	k := APIKey{ID: ids.New(), Name: strings.TrimSpace(in.Name), Role: in.Role, Prefix: keyPrefix + "…" + secret[:6],
		KeyHash: ids.Hash(key), CreatedAt: s.now()}
	if a := tenant.ActorFrom(ctx); a.Kind == tenant.ActorUser {
		k.CreatedBy = &a.UserID
	}
	err = s.db.Tx(ctx, func(ctx context.Context) error {
		if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Create(&k).Error }); err != nil {
			return fmt.Errorf("create api key: %w", err)
		}
		return s.db.Record(ctx, tenant.Audit{Action: "api_key.created", ObjectType: "api_key", ObjectID: k.ID.String(), Data: map[string]any{"name": k.Name, "role": k.Role}})
	})
	if err != nil {
		return CreatedAPIKey{}, err
	}
	return CreatedAPIKey{APIKey: k, Key: key}, nil
}

// ListAPIKeys lists the organisation's keys, newest first.
func (s *Service) ListAPIKeys(ctx context.Context, p httpx.PageParams) (httpx.List[APIKey], error) {
	var rows []APIKey
	err := s.db.Run(ctx, func(tx *gorm.DB) error {
		q := tx.Order("id DESC").Limit(p.Limit + 1)
		if p.Cursor != "" {
			q = q.Where("id < ?", p.Cursor)
		}
		return q.Find(&rows).Error
	})
	return httpx.NewList(rows, p.Limit, func(k APIKey) string { return k.ID.String() }), err
}

// GetAPIKey returns one key of the organisation.
func (s *Service) GetAPIKey(ctx context.Context, id uuid.UUID) (APIKey, error) {
	var k APIKey
	err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Where("id = ?", id).Take(&k).Error })
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return k, apperr.ErrNotFound
	}
	return k, err
}

// RevokeAPIKey revokes a key; it stops working at once.
func (s *Service) RevokeAPIKey(ctx context.Context, id uuid.UUID) error {
	return s.db.Tx(ctx, func(ctx context.Context) error {
		k, err := s.GetAPIKey(ctx, id)
		if err != nil {
			return err
		}
		if k.RevokedAt != nil {
			return nil
		}
		s.changed(ctx)
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Model(&APIKey{}).Where("id = ?", id).Update("revoked_at", s.now()).Error
		}); err != nil {
			return err
		}
		return s.db.Record(ctx, tenant.Audit{Action: "api_key.revoked", ObjectType: "api_key", ObjectID: id.String(), Data: map[string]any{"name": k.Name}})
	})
}

// KeyPrincipal is who a valid API key authenticates as.
type KeyPrincipal struct {
	Org tenant.Org
	Key APIKey
}

// AuthenticateKey checks a bearer key and records when it was last used (at most once a minute).
func (s *Service) AuthenticateKey(ctx context.Context, key string) (KeyPrincipal, error) {
	orgID, ok := parseAPIKey(key)
	if !ok {
		return KeyPrincipal{}, fmt.Errorf("malformed API key: %w", apperr.ErrUnauthenticated)
	}
	hash := ids.Hash(key)
	now := s.now()
	p, gen, hit := s.keys.get(hash, now)
	if hit {
		return p, nil
	}
	org, err := s.Org(ctx, orgID)
	if errors.Is(err, apperr.ErrNotFound) {
		return KeyPrincipal{}, fmt.Errorf("unknown API key: %w", apperr.ErrUnauthenticated)
	}
	if err != nil {
		return KeyPrincipal{}, err
	}
	ctx = tenant.WithOrg(ctx, org)
	var k APIKey
	err = s.db.Run(ctx, func(tx *gorm.DB) error {
		return tx.Where("key_hash = ? AND revoked_at IS NULL", hash).Take(&k).Error
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return KeyPrincipal{}, fmt.Errorf("unknown or revoked API key: %w", apperr.ErrUnauthenticated)
	}
	if err != nil {
		return KeyPrincipal{}, err
	}
	if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) > time.Minute {
		_ = s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Model(&APIKey{}).Where("id = ?", k.ID).Update("last_used_at", now).Error
		})
	}
	p = KeyPrincipal{Org: org, Key: k}
	s.keys.put(hash, p, now, gen)
	return p, nil
}
