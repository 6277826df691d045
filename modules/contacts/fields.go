package contacts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/google/uuid"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// Field is a custom contact field the tenant defines: attribute values under its key are
// checked against its type.
type Field struct {
	TenantID   uuid.UUID `json:"-" gorm:"type:uuid;primaryKey"`
	Key        string    `json:"key" gorm:"primaryKey"`
	Label      string    `json:"label"`
	Type       string    `json:"type"`
	OptionsRaw string    `json:"-" gorm:"column:options"`
	Options    []string  `json:"options" gorm:"-"`
	CreatedAt  time.Time `json:"created_at"`
}

// TableName pins the table.
func (Field) TableName() string { return "contact_fields" }

var fieldKey = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// FieldTypes are the types a custom field can have.
var FieldTypes = []string{"text", "number", "boolean", "date", "select"}

// Fields returns the tenant's custom fields.
func (s *Service) Fields(ctx context.Context) ([]Field, error) {
	var rows []Field
	if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Order("key").Find(&rows).Error }); err != nil {
		return nil, fmt.Errorf("contacts: fields: %w", err)
	}
	for i := range rows {
		rows[i].Options = []string{}
		_ = json.Unmarshal([]byte(rows[i].OptionsRaw), &rows[i].Options)
	}
	return rows, nil
}

// SaveField creates a custom field (create) or changes an existing one.
func (s *Service) SaveField(ctx context.Context, f Field, create bool) (Field, error) {
	tid, ok := tenant.ID(ctx)
	if !ok {
		return Field{}, fmt.Errorf("contacts: save field: %w", tenant.ErrNoTenant)
	}
	var bad apperr.Fields
	if !fieldKey.MatchString(f.Key) {
		bad.Add("key", "must be 1 to 40 lower-case letters, digits or _, starting with a letter")
	}
	if f.Label == "" || len(f.Label) > 100 {
		bad.Add("label", "is required, at most 100 bytes")
	}
	if !slices.Contains(FieldTypes, f.Type) {
		bad.Add("type", "must be one of text, number, boolean, date, select")
	}
	if f.Type == "select" && (len(f.Options) == 0 || len(f.Options) > 100) {
		bad.Add("options", "a select field needs 1 to 100 options")
	}
	if err := bad.Err(); err != nil {
		return Field{}, err
	}
	if f.Options == nil {
		f.Options = []string{}
	}
	raw, _ := json.Marshal(f.Options)
	f.TenantID, f.OptionsRaw, f.CreatedAt = tid, string(raw), s.now()
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		var n int64
		err := s.db.Run(ctx, func(tx *gorm.DB) error {
			if create {
				return tx.Create(&f).Error
			}
			r := tx.Model(&Field{}).Where("key = ?", f.Key).Updates(map[string]any{"label": f.Label, "type": f.Type, "options": f.OptionsRaw})
			n = r.RowsAffected
			return r.Error
		})
		switch {
		case errors.Is(err, gorm.ErrDuplicatedKey):
			return apperr.Invalid("key", "a field with this key exists; change it with PUT /contact-fields/"+f.Key)
		case err != nil:
			return fmt.Errorf("contacts: save field: %w", err)
		case !create && n == 0:
			return fmt.Errorf("contact field %q: %w", f.Key, apperr.ErrNotFound)
		}
		return s.db.Record(ctx, tenant.Audit{Action: "contact_field.saved", ObjectType: "contact_field", ObjectID: f.Key,
			Data: map[string]any{"type": f.Type}})
	})
	return f, err
}

// DeleteField removes a custom field definition; values already stored stay as free-form.
func (s *Service) DeleteField(ctx context.Context, key string) error {
	return s.db.Tx(ctx, func(ctx context.Context) error {
		var n int64
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			r := tx.Where("key = ?", key).Delete(&Field{})
			n = r.RowsAffected
			return r.Error
		}); err != nil {
			return fmt.Errorf("contacts: delete field: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("contact field %q: %w", key, apperr.ErrNotFound)
		}
		return s.db.Record(ctx, tenant.Audit{Action: "contact_field.deleted", ObjectType: "contact_field", ObjectID: key})
	})
}

// checkAttribute checks a value against the field of its key; keys without a field are free-form
// but must be sane names.
func checkAttribute(fields []Field, key string, v any) error {
	if !fieldKey.MatchString(key) {
		return errors.New("attribute names are 1 to 40 lower-case letters, digits or _")
	}
	i := slices.IndexFunc(fields, func(f Field) bool { return f.Key == key })
	if i < 0 {
		return nil
	}
	f := fields[i]
	switch f.Type {
	case "text":
		if s, ok := v.(string); !ok || len(s) > 1000 {
			return errors.New("must be text of at most 1000 bytes")
		}
	case "number":
		if _, ok := v.(float64); !ok {
			if _, ok := v.(json.Number); !ok {
				return errors.New("must be a number")
			}
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return errors.New("must be true or false")
		}
	case "date":
		s, ok := v.(string)
		if !ok {
			return errors.New("must be a date YYYY-MM-DD")
		}
		if _, err := time.Parse("2006-01-02", s); err != nil {
			return errors.New("must be a date YYYY-MM-DD")
		}
	case "select":
		s, ok := v.(string)
		if !ok || !slices.Contains(f.Options, s) {
			return fmt.Errorf("must be one of the field's options")
		}
	}
	return nil
}
