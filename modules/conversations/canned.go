package conversations

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// CannedInput is the body of POST/PUT /canned-responses.
type CannedInput struct {
	Shortcut string `json:"shortcut"`
	Title    string `json:"title"`
	Content  string `json:"content"`
}

var shortcutRE = regexp.MustCompile(`^[\p{L}\p{N}_-]{1,40}$`)

// Placeholders a canned response may use; Render fills them from the conversation.
var Placeholders = []string{"{{contact.name}}", "{{contact.first_name}}", "{{agent.name}}", "{{conversation.id}}"}

var placeholderRE = regexp.MustCompile(`\{\{\s*([a-z_.]+)\s*\}\}`)

func checkCanned(in CannedInput) error {
	var bad apperr.Fields
	if !shortcutRE.MatchString(in.Shortcut) {
		bad.Add("shortcut", "must be 1 to 40 letters, digits, _ or -")
	}
	if t := strings.TrimSpace(in.Title); t == "" || len(t) > 200 {
		bad.Add("title", "is required, at most 200 bytes")
	}
	if c := strings.TrimSpace(in.Content); c == "" || len(c) > 10000 {
		bad.Add("content", "is required, at most 10000 bytes")
	}
	for _, m := range placeholderRE.FindAllStringSubmatch(in.Content, -1) {
		known := false
		for _, p := range Placeholders {
			if p == "{{"+m[1]+"}}" {
				known = true
			}
		}
		if !known {
			bad.Add("content", "unknown placeholder {{"+m[1]+"}}; known: "+strings.Join(Placeholders, " "))
		}
	}
	return bad.Err()
}

// CannedList returns the canned responses, by shortcut, optionally those whose shortcut or title
// contains q.
func (s *Service) CannedList(ctx context.Context, q string, limit int, after string) ([]Canned, error) {
	var rows []Canned
	err := s.db.Run(ctx, func(tx *gorm.DB) error {
		qq := tx.Order("shortcut").Limit(limit + 1)
		if q != "" {
			like := "%" + strings.ToLower(q) + "%"
			qq = qq.Where("LOWER(shortcut) LIKE ? OR LOWER(title) LIKE ?", like, like)
		}
		if after != "" {
			qq = qq.Where("shortcut > ?", after)
		}
		return qq.Find(&rows).Error
	})
	if err != nil {
		return nil, fmt.Errorf("conversations: canned list: %w", err)
	}
	return rows, nil
}

// CannedSave creates (id nil) or replaces a canned response.
func (s *Service) CannedSave(ctx context.Context, id *uuid.UUID, in CannedInput) (Canned, error) {
	if err := checkCanned(in); err != nil {
		return Canned{}, err
	}
	tid, ok := tenant.ID(ctx)
	if !ok {
		return Canned{}, tenant.ErrNoTenant
	}
	now := s.now()
	var c Canned
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		err := s.db.Run(ctx, func(tx *gorm.DB) error {
			if id == nil {
				c = Canned{TenantID: tid, ID: ids.New(), Shortcut: in.Shortcut, Title: strings.TrimSpace(in.Title),
					Content: in.Content, CreatedBy: authorID(ctx), CreatedAt: now, UpdatedAt: now}
				return tx.Create(&c).Error
			}
			if err := tx.Where("id = ?", *id).Take(&c).Error; err != nil {
				return err
			}
			c.Shortcut, c.Title, c.Content, c.UpdatedAt = in.Shortcut, strings.TrimSpace(in.Title), in.Content, now
			return tx.Model(&Canned{}).Where("id = ?", c.ID).Updates(map[string]any{"shortcut": c.Shortcut, "title": c.Title, "content": c.Content, "updated_at": now}).Error
		})
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
			return fmt.Errorf("canned response: %w", apperr.ErrNotFound)
		case errors.Is(err, gorm.ErrDuplicatedKey):
			return apperr.Invalid("shortcut", "is already used by another canned response")
		case err != nil:
			return fmt.Errorf("conversations: save canned: %w", err)
		}
		return s.db.Record(ctx, tenant.Audit{Action: "canned_response.saved", ObjectType: "canned_response", ObjectID: c.ID.String()})
	})
	return c, err
}

// CannedDelete removes a canned response.
func (s *Service) CannedDelete(ctx context.Context, id uuid.UUID) error {
	return s.db.Tx(ctx, func(ctx context.Context) error {
		var n int64
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			r := tx.Where("id = ?", id).Delete(&Canned{})
			n = r.RowsAffected
			return r.Error
		}); err != nil {
			return fmt.Errorf("conversations: delete canned: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("canned response %s: %w", id, apperr.ErrNotFound)
		}
		return s.db.Record(ctx, tenant.Audit{Action: "canned_response.deleted", ObjectType: "canned_response", ObjectID: id.String()})
	})
}

// Render fills a canned response's placeholders for a conversation.
func (s *Service) Render(ctx context.Context, cannedID, convID uuid.UUID, agentName string) (string, error) {
	var c Canned
	if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Where("id = ?", cannedID).Take(&c).Error }); err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return "", fmt.Errorf("canned response: %w", apperr.ErrNotFound)
		}
		return "", fmt.Errorf("conversations: render: %w", err)
	}
	conv, err := s.conversation(ctx, convID)
	if err != nil {
		return "", err
	}
	names, err := s.contacts.Names(ctx, []uuid.UUID{conv.ContactID})
	if err != nil {
		return "", err
	}
	name := names[conv.ContactID]
	first := name
	if f := strings.Fields(name); len(f) > 0 {
		first = f[0]
	}
	vals := map[string]string{"contact.name": name, "contact.first_name": first, "agent.name": agentName, "conversation.id": conv.ID.String()}
	return placeholderRE.ReplaceAllStringFunc(c.Content, func(m string) string {
		return vals[placeholderRE.FindStringSubmatch(m)[1]]
	}), nil
}
