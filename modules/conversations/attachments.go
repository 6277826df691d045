package conversations

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// FileCheck decides whether a file may be stored and what its content type is (the storage
// limits: size, sniffed type, no executables).
type FileCheck func(filename, declaredType string, head []byte) (string, error)

// Upload stores a file for a reply to claim (POST /attachments); an upload no reply claims
// stays unattached.
func (s *Service) Upload(ctx context.Context, filename, declared string, r io.Reader, check FileCheck) (Attachment, error) {
	tid, ok := tenant.ID(ctx)
	if !ok {
		return Attachment{}, tenant.ErrNoTenant
	}
	data, err := io.ReadAll(io.LimitReader(r, s.opts.MaxAttachmentBytes+1))
	if err != nil {
		return Attachment{}, fmt.Errorf("conversations: read upload: %w", err)
	}
	if int64(len(data)) > s.opts.MaxAttachmentBytes {
		return Attachment{}, apperr.Invalid("file", fmt.Sprintf("is larger than %d bytes", s.opts.MaxAttachmentBytes))
	}
	if len(data) == 0 {
		return Attachment{}, apperr.Invalid("file", "is empty")
	}
	filename = clipText(filepath.Base(strings.ReplaceAll(filename, "\\", "/")), 255)
	ct, err := check(filename, declared, data[:min(len(data), 512)])
	if err != nil {
		return Attachment{}, apperr.Invalid("file", err.Error())
	}
	sum := sha256.Sum256(data)
	a := Attachment{TenantID: tid, ID: ids.New(), Filename: filename, ContentType: ct, Size: int64(len(data)),
		SHA256: hex.EncodeToString(sum[:]), Status: "stored", CreatedAt: s.now()}
	a.StorageKey = fmt.Sprintf("%s/%s", tid, a.ID)
	if err := s.blobs.Put(ctx, a.StorageKey, bytes.NewReader(data), a.Size, ct); err != nil {
		return Attachment{}, fmt.Errorf("conversations: store upload: %w", err)
	}
	if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Create(&a).Error }); err != nil {
		return Attachment{}, fmt.Errorf("conversations: store upload row: %w", err)
	}
	return a, nil
}

// Attachment returns an attachment's row and its bytes.
func (s *Service) Attachment(ctx context.Context, id uuid.UUID) (Attachment, io.ReadCloser, error) {
	var a Attachment
	err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Where("id = ?", id).Take(&a).Error })
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return a, nil, fmt.Errorf("attachment %s: %w", id, apperr.ErrNotFound)
	}
	if err != nil {
		return a, nil, fmt.Errorf("conversations: attachment: %w", err)
	}
	if a.Status != "stored" {
		return a, nil, fmt.Errorf("attachment %s is %s: %w", id, a.Status, apperr.ErrConflict)
	}
	rc, err := s.blobs.Get(ctx, a.StorageKey)
	if err != nil {
		return a, nil, fmt.Errorf("conversations: read attachment: %w", err)
	}
	return a, rc, nil
}

// HandleFetchMedia downloads an inbound attachment from the provider and stores it.
func (s *Service) HandleFetchMedia(ctx context.Context, t *asynq.Task) error {
	var p fetchPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("conversations: fetch payload: %w: %w", err, asynq.SkipRetry)
	}
	ctx, _, err := s.db.InOrg(ctx, p.TenantID)
	if err != nil {
		return err
	}
	var a Attachment
	if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Where("id = ?", p.AttachmentID).Take(&a).Error }); err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil
		}
		return fmt.Errorf("conversations: load attachment: %w", err)
	}
	if a.Status != "pending" || a.MessageID == nil {
		return nil
	}
	var msg Message
	if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Where("id = ?", *a.MessageID).Take(&msg).Error }); err != nil {
		return fmt.Errorf("conversations: attachment message: %w", err)
	}
	ch, _, err := s.channels.Open(ctx, msg.ChannelID)
	if err != nil {
		return err
	}
	p2, _ := s.channels.Registry().Provider(ch.Type)
	fetcher, ok := p2.(provider.MediaFetcher)
	if !ok {
		return s.markAttachment(ctx, a.ID, map[string]any{"status": "failed"})
	}
	data, ct, err := fetcher.FetchMedia(ctx, ch, provider.Media{Ref: a.ProviderRef, URL: a.URL, ContentType: a.ContentType, Filename: a.Filename})
	if err != nil {
		retry, _ := asynq.GetRetryCount(ctx)
		maxRetry, _ := asynq.GetMaxRetry(ctx)
		if provider.Permanent(err) || retry >= maxRetry {
			return s.markAttachment(ctx, a.ID, map[string]any{"status": "failed"})
		}
		return fmt.Errorf("conversations: fetch media %s: %w", a.ID, err)
	}
	if int64(len(data)) > s.opts.MaxAttachmentBytes {
		return s.markAttachment(ctx, a.ID, map[string]any{"status": "failed"})
	}
	key := fmt.Sprintf("%s/%s", a.TenantID, a.ID)
	if err := s.blobs.Put(ctx, key, bytes.NewReader(data), int64(len(data)), or(ct, a.ContentType)); err != nil {
		return fmt.Errorf("conversations: store media: %w", err)
	}
	sum := sha256.Sum256(data)
	return s.markAttachment(ctx, a.ID, map[string]any{"status": "stored", "storage_key": key, "size": int64(len(data)),
		"sha256": hex.EncodeToString(sum[:]), "content_type": or(ct, a.ContentType)})
}

func (s *Service) markAttachment(ctx context.Context, id uuid.UUID, upd map[string]any) error {
	return s.db.Tx(ctx, func(ctx context.Context) error {
		var a Attachment
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			if err := tx.Model(&Attachment{}).Where("id = ?", id).Updates(upd).Error; err != nil {
				return err
			}
			return tx.Where("id = ?", id).Take(&a).Error
		}); err != nil {
			return fmt.Errorf("conversations: update attachment: %w", err)
		}
		conv := uuid.Nil
		if a.ConversationID != nil {
			conv = *a.ConversationID
		}
		return s.notify.Append(ctx, "attachment.updated", conv, a)
	})
}
