// Package contacts owns the customers a tenant talks to: one contact with many identities
// (e-mail, phone, messaging ids, widget visitor, external id), tags, typed custom attributes and
// a merge history. Inbound messages find their contact by identity through Resolve; merging moves
// everything to the winner and leaves the loser pointing at it.
package contacts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// Contact is a customer.
type Contact struct {
	TenantID       uuid.UUID      `json:"-" gorm:"type:uuid;primaryKey"`
	ID             uuid.UUID      `json:"id" gorm:"type:uuid;primaryKey"`
	Name           string         `json:"name"`
	Locale         string         `json:"locale"`
	Company        string         `json:"company"`
	AttributesRaw  string         `json:"-" gorm:"column:attributes"`
	Search         string         `json:"-"`
	MergedInto     *uuid.UUID     `json:"merged_into" gorm:"type:uuid"`
	LastActivityAt *time.Time     `json:"last_activity_at"`
	CreatedAt      time.Time      `json:"created_at"`
	UpdatedAt      time.Time      `json:"updated_at"`
	Attributes     map[string]any `json:"attributes" gorm:"-"`
	Tags           []string       `json:"tags" gorm:"-"`
	Identities     []Identity     `json:"identities" gorm:"-"`
}

// Identity is one way a contact is known.
type Identity struct {
	TenantID  uuid.UUID `json:"-" gorm:"type:uuid;primaryKey"`
	ID        uuid.UUID `json:"id" gorm:"type:uuid;primaryKey"`
	ContactID uuid.UUID `json:"-" gorm:"type:uuid"`
	Kind      string    `json:"kind"`
	Value     string    `json:"value"`
	CreatedAt time.Time `json:"created_at"`
}

// TableName pins the table.
func (Identity) TableName() string { return "contact_identities" }

type contactTag struct {
	TenantID  uuid.UUID `gorm:"type:uuid;primaryKey"`
	ContactID uuid.UUID `gorm:"type:uuid;primaryKey"`
	Tag       string    `gorm:"primaryKey"`
}

func (contactTag) TableName() string { return "contact_tags" }

// MergeHook moves what another module keeps about the loser to the winner, inside the merge's
// transaction (conversations register one).
type MergeHook func(ctx context.Context, winner, loser uuid.UUID) error

// Service manages contacts.
type Service struct {
	db      *tenant.DB
	log     *slog.Logger
	now     func() time.Time
	onMerge []MergeHook
}

// NewService returns the contact service.
func NewService(db *tenant.DB, log *slog.Logger) *Service {
	return &Service{db: db, log: log, now: func() time.Time { return time.Now().UTC() }}
}

// OnMerge registers a hook run inside every merge.
func (s *Service) OnMerge(h MergeHook) { s.onMerge = append(s.onMerge, h) }

var (
	e164     = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	phoneSep = strings.NewReplacer(" ", "", "-", "", "(", "", ")", "", ".", "")
)

// NormalizeIdentity checks an identity and puts its value in the one form it is stored in.
func NormalizeIdentity(id provider.Identity) (provider.Identity, error) {
	v := strings.TrimSpace(id.Value)
	switch id.Kind {
	case provider.IdentityEmail:
		a, err := mail.ParseAddress(v)
		if err != nil {
			return id, errors.New("is not an e-mail address")
		}
		v = strings.ToLower(a.Address)
	case provider.IdentityPhone:
		v = phoneSep.Replace(v)
		if strings.HasPrefix(v, "00") {
			v = "+" + v[2:]
		}
		if !e164.MatchString(v) {
			return id, errors.New("must be a phone number in E.164 form, such as +8613800138000")
		}
	case provider.IdentityWhatsApp:
		v = strings.TrimPrefix(v, "+")
	default:
		if !slices.Contains(provider.IdentityKinds, id.Kind) {
			return id, errors.New("kind must be one of " + strings.Join(provider.IdentityKinds, ", "))
		}
	}
	if v == "" || len(v) > 320 || !utf8.ValidString(v) {
		return id, errors.New("value must be 1 to 320 bytes of text")
	}
	return provider.Identity{Kind: id.Kind, Value: v}, nil
}

// Resolve returns the contact an inbound message comes from, creating it or attaching
// identities it did not know yet. The first identity that matches names the contact (WhatsApp's
// phone identity finds the contact that wrote by e-mail and gave that number). Call it inside
// the ingest transaction.
func (s *Service) Resolve(ctx context.Context, from []provider.Identity, name, locale string) (uuid.UUID, bool, error) {
	tid, ok := tenant.ID(ctx)
	if !ok {
		return uuid.Nil, false, fmt.Errorf("contacts: resolve: %w", tenant.ErrNoTenant)
	}
	var norm []provider.Identity
	for _, id := range from {
		n, err := NormalizeIdentity(id)
		if err != nil {
			continue // a provider value we cannot use as an identity; the others still match
		}
		norm = append(norm, n)
	}
	if len(norm) == 0 {
		return uuid.Nil, false, apperr.Invalid("from", "the sender has no usable identity")
	}
	var contactID uuid.UUID
	created := false
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		// The contacts the identities name, with what markActive needs: a returning sender is
		// found and, at most, touched, in two statements.
		found, err := s.knownBy(ctx, tid, norm)
		if err != nil {
			return err
		}
		var known Contact
		for _, id := range norm {
			if c, ok := found[id]; ok {
				known, contactID = c, c.ID
				break
			}
		}
		now := s.now()
		if contactID == uuid.Nil {
			c := Contact{TenantID: tid, ID: ids.New(), Name: clip(name, 200), Locale: clip(locale, 20), AttributesRaw: "{}",
				CreatedAt: now, UpdatedAt: now, LastActivityAt: &now}
			if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Create(&c).Error }); err != nil {
				return fmt.Errorf("contacts: create: %w", err)
			}
			contactID, created = c.ID, true
		}
		for _, id := range norm {
			if _, ok := found[id]; ok {
				continue
			}
			row := Identity{TenantID: tid, ID: ids.New(), ContactID: contactID, Kind: id.Kind, Value: id.Value, CreatedAt: now}
			var n int64
			if err := s.db.Run(ctx, func(tx *gorm.DB) error {
				r := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
				n = r.RowsAffected
				return r.Error
			}); err != nil {
				return fmt.Errorf("contacts: add identity: %w", err)
			}
			if n == 0 && created {
				// Another delivery created this sender a moment ago: use that contact and drop ours.
				again, err := s.lookup(ctx, []provider.Identity{id})
				if err != nil {
					return err
				}
				if err := s.db.Run(ctx, func(tx *gorm.DB) error {
					if err := tx.Where("contact_id = ?", contactID).Delete(&Identity{}).Error; err != nil {
						return err
					}
					return tx.Where("id = ?", contactID).Delete(&Contact{}).Error
				}); err != nil {
					return fmt.Errorf("contacts: drop duplicate contact: %w", err)
				}
				contactID, created = again[id], false
				return nil
			}
		}
		if !created {
			return s.markActive(ctx, known, name)
		}
		return s.reindex(ctx, contactID)
	})
	return contactID, created, err
}

// Sender is who an inbound message comes from, as Resolve takes it.
type Sender struct {
	From   []provider.Identity
	Name   string
	Locale string
}

// ResolveAll returns the contact of each sender, in order, as calling Resolve for each in turn
// would, in fewer statements: when every sender has one identity, those known (the returning
// customers that make up most of a busy inbox) are found in one query and their activity marked
// in one update, and the new ones go through Resolve one by one. A group with a sender of
// several identities goes through Resolve in order. Call it inside the ingest transaction.
func (s *Service) ResolveAll(ctx context.Context, senders []Sender) ([]uuid.UUID, error) {
	tid, ok := tenant.ID(ctx)
	if !ok {
		return nil, fmt.Errorf("contacts: resolve: %w", tenant.ErrNoTenant)
	}
	// A sender of several identities may, through Resolve, give a known contact a name or more
	// identities, which what was read of it beforehand would not show: a group with one goes
	// through Resolve in order.
	single := make([]provider.Identity, len(senders)) // the one identity of each sender, if batched
	var keys []provider.Identity
	if !slices.ContainsFunc(senders, func(sd Sender) bool { return len(sd.From) != 1 }) {
		for i, sd := range senders {
			if n, err := NormalizeIdentity(sd.From[0]); err == nil {
				single[i] = n
				keys = append(keys, n)
			}
		}
	}
	out := make([]uuid.UUID, len(senders))
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		known, err := s.knownBy(ctx, tid, keys)
		if err != nil {
			return err
		}
		// What markActive would do for each found contact, gathered: a contact is written once,
		// however many of its messages the group holds.
		type mark struct {
			c    Contact
			name string // the first name given while the contact had none
		}
		marks := map[uuid.UUID]*mark{}
		var order []uuid.UUID
		for i, sd := range senders {
			c, ok := known[single[i]]
			if single[i].Kind == "" || !ok {
				id, _, err := s.Resolve(ctx, sd.From, sd.Name, sd.Locale)
				if err != nil {
					return err
				}
				out[i] = id
				continue
			}
			out[i] = c.ID
			m := marks[c.ID]
			if m == nil {
				m = &mark{c: c}
				marks[c.ID] = m
				order = append(order, c.ID)
			}
			if m.name == "" && c.Name == "" {
				m.name = clip(sd.Name, 200)
			}
		}
		now := s.now()
		var stale []uuid.UUID
		for _, id := range order {
			m := marks[id]
			switch {
			case m.name != "":
				// Filling a name reindexes the contact; it happens once in a contact's life.
				if err := s.markActive(ctx, m.c, m.name); err != nil {
					return err
				}
			case activityStale(m.c, now):
				stale = append(stale, id)
			}
		}
		if len(stale) == 0 {
			return nil
		}
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Model(&Contact{}).Where("id IN ?", stale).Updates(map[string]any{"last_activity_at": now}).Error
		}); err != nil {
			return fmt.Errorf("contacts: mark active: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// knownBy finds the contacts (their activityColumns) that own the given identities, in one
// query.
func (s *Service) knownBy(ctx context.Context, tid uuid.UUID, keys []provider.Identity) (map[provider.Identity]Contact, error) {
	out := map[provider.Identity]Contact{}
	if len(keys) == 0 {
		return out, nil
	}
	var rows []struct {
		Kind, Value    string
		ID             uuid.UUID
		Name           string
		LastActivityAt *time.Time
	}
	err := s.db.Run(ctx, func(tx *gorm.DB) error {
		// The join names its tenant here: the tenant filter covers the statement's own table only.
		return tx.Table("contact_identities i").
			Select("i.kind, i.value, c.id, c.name, c.last_activity_at").
			Joins("JOIN contacts c ON c.tenant_id = i.tenant_id AND c.id = i.contact_id AND c.tenant_id = ?", tid).
			Where(anyIdentity(tx, "i.", keys)).Scan(&rows).Error
	})
	if err != nil {
		return nil, fmt.Errorf("contacts: find senders: %w", err)
	}
	for _, r := range rows {
		out[provider.Identity{Kind: r.Kind, Value: r.Value}] = Contact{TenantID: tid, ID: r.ID, Name: r.Name, LastActivityAt: r.LastActivityAt}
	}
	return out, nil
}

// activityGrain is how fresh a contact's last_activity_at is kept: a sender writing many
// messages a minute has it written once a minute, not on every message.
const activityGrain = time.Minute

// activityStale says whether contact c's last_activity_at is to be written again at now.
func activityStale(c Contact, now time.Time) bool {
	return c.LastActivityAt == nil || now.Sub(*c.LastActivityAt) >= activityGrain
}

// activityColumns are what markActive needs of a contact.
var activityColumns = []string{"tenant_id", "id", "name", "last_activity_at"}

// markActive records that contact c (read with activityColumns) just wrote, giving it name if
// it has none. It writes only when its activity is older than activityGrain or the name is to be
// filled (then reindexed, so the name is searchable), so a busy conversation does not rewrite its
// contact's row on every message.
func (s *Service) markActive(ctx context.Context, c Contact, name string) error {
	now := s.now()
	upd := map[string]any{}
	if activityStale(c, now) {
		upd["last_activity_at"] = now
	}
	if name = clip(name, 200); name != "" && c.Name == "" {
		upd["name"] = name // keep a name an agent gave; only fill an empty one
	}
	if len(upd) == 0 {
		return nil
	}
	if err := s.db.Run(ctx, func(tx *gorm.DB) error {
		return tx.Model(&Contact{}).Where("id = ?", c.ID).Updates(upd).Error
	}); err != nil {
		return fmt.Errorf("contacts: mark active: %w", err)
	}
	if upd["name"] != nil {
		return s.reindex(ctx, c.ID)
	}
	return nil
}

// anyIdentity is the condition "one of ids" on the identities table (its columns prefixed with
// prefix, such as "i."), for a non-empty ids. Only (kind, value) pairs are ORed: a constant term
// in the OR (such as "1 = 0") makes SQLite give up the unique index and read every identity of
// the tenant; with pairs alone it seeks the index once for each. A pair given twice is one term.
func anyIdentity(tx *gorm.DB, prefix string, ids []provider.Identity) *gorm.DB {
	term := prefix + "kind = ? AND " + prefix + "value = ?"
	q := tx.Session(&gorm.Session{NewDB: true}).Where(term, ids[0].Kind, ids[0].Value)
	seen := map[provider.Identity]bool{ids[0]: true}
	for _, id := range ids[1:] {
		if !seen[id] {
			seen[id] = true
			q = q.Or(term, id.Kind, id.Value)
		}
	}
	return q
}

// lookup maps the identities that exist to their contacts.
func (s *Service) lookup(ctx context.Context, ids []provider.Identity) (map[provider.Identity]uuid.UUID, error) {
	out := map[provider.Identity]uuid.UUID{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []Identity
	err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Where(anyIdentity(tx, "", ids)).Find(&rows).Error })
	if err != nil {
		return nil, fmt.Errorf("contacts: lookup identities: %w", err)
	}
	for _, r := range rows {
		out[provider.Identity{Kind: r.Kind, Value: r.Value}] = r.ContactID
	}
	return out, nil
}

// reindex rebuilds the search text of a contact: its name, e-mails, phones and company.
func (s *Service) reindex(ctx context.Context, id uuid.UUID) error {
	return s.db.Run(ctx, func(tx *gorm.DB) error {
		var c Contact
		if err := tx.Where("id = ?", id).Take(&c).Error; err != nil {
			return fmt.Errorf("contacts: reindex: %w", err)
		}
		var vals []string
		if err := tx.Model(&Identity{}).Where("contact_id = ?", id).Order("kind, value").Pluck("value", &vals).Error; err != nil {
			return fmt.Errorf("contacts: reindex: %w", err)
		}
		parts := append([]string{c.Name, c.Company}, vals...)
		return tx.Model(&Contact{}).Where("id = ?", id).Update("search", strings.ToLower(strings.Join(parts, " "))).Error
	})
}

func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "")
	}
	if utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n])
	}
	return s
}

// Get returns a contact with its identities and tags. A merged contact answers with its
// merged_into pointer and nothing else of its own.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (Contact, error) {
	var c Contact
	err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Where("id = ?", id).Take(&c).Error })
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Contact{}, fmt.Errorf("contact %s: %w", id, apperr.ErrNotFound)
	}
	if err != nil {
		return Contact{}, fmt.Errorf("contacts: get: %w", err)
	}
	list := []Contact{c}
	if err := s.fill(ctx, list); err != nil {
		return Contact{}, err
	}
	return list[0], nil
}

// fill loads the identities, tags and attributes of a page of contacts in two queries.
func (s *Service) fill(ctx context.Context, cs []Contact) error {
	if len(cs) == 0 {
		return nil
	}
	idx := map[uuid.UUID]int{}
	keys := make([]uuid.UUID, len(cs))
	for i := range cs {
		idx[cs[i].ID], keys[i] = i, cs[i].ID
		cs[i].Identities, cs[i].Tags = []Identity{}, []string{}
		cs[i].Attributes = map[string]any{}
		if cs[i].AttributesRaw != "" {
			if err := json.Unmarshal([]byte(cs[i].AttributesRaw), &cs[i].Attributes); err != nil {
				return fmt.Errorf("contacts: attributes of %s: %w", cs[i].ID, err)
			}
		}
	}
	var idents []Identity
	var tags []contactTag
	err := s.db.Run(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("contact_id IN ?", keys).Order("kind, value").Find(&idents).Error; err != nil {
			return err
		}
		return tx.Where("contact_id IN ?", keys).Order("tag").Find(&tags).Error
	})
	if err != nil {
		return fmt.Errorf("contacts: fill: %w", err)
	}
	for _, i := range idents {
		c := &cs[idx[i.ContactID]]
		c.Identities = append(c.Identities, i)
	}
	for _, t := range tags {
		c := &cs[idx[t.ContactID]]
		c.Tags = append(c.Tags, t.Tag)
	}
	return nil
}

// Filter narrows a contact list.
type Filter struct {
	Query  string // name, e-mail, phone or company, case-insensitive substring
	Tag    string
	Limit  int
	Cursor string
}

// List returns contacts newest first (merged ones left out).
func (s *Service) List(ctx context.Context, f Filter) ([]Contact, error) {
	var rows []Contact
	err := s.db.Run(ctx, func(tx *gorm.DB) error {
		q := tx.Where("merged_into IS NULL").Order("id DESC").Limit(f.Limit + 1)
		if f.Cursor != "" {
			q = q.Where("id < ?", f.Cursor)
		}
		if f.Query != "" {
			term := strings.ToLower(strings.TrimSpace(f.Query))
			if p, err := NormalizeIdentity(provider.Identity{Kind: provider.IdentityPhone, Value: term}); err == nil {
				term = p.Value // "+86 138-0013-8000" finds +8613800138000
			}
			q = q.Where("search LIKE ? ESCAPE '\\'", "%"+likeEscape(term)+"%")
		}
		if f.Tag != "" {
			q = q.Where("id IN (?)", tx.Model(&contactTag{}).Select("contact_id").Where("tag = ?", strings.ToLower(f.Tag)))
		}
		return q.Find(&rows).Error
	})
	if err != nil {
		return nil, fmt.Errorf("contacts: list: %w", err)
	}
	return rows, s.fill(ctx, rows)
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// Input is the writable part of a contact (POST /contacts, PATCH /contacts/:id). Absent
// fields stay as they are on update.
type Input struct {
	Name       *string             `json:"name"`
	Locale     *string             `json:"locale"`
	Company    *string             `json:"company"`
	Attributes map[string]any      `json:"attributes"`
	Tags       *[]string           `json:"tags"`
	Identities []provider.Identity `json:"identities"`
}

const (
	maxTags = 50
	maxTag  = 50
)

// NormalizeTags lower-cases, trims and de-duplicates tags.
func NormalizeTags(field string, tags []string) ([]string, error) {
	if len(tags) > maxTags {
		return nil, apperr.Invalid(field, fmt.Sprintf("at most %d tags", maxTags))
	}
	seen := map[string]bool{}
	out := []string{}
	for i, t := range tags {
		t = strings.ToLower(strings.TrimSpace(t))
		if t == "" || utf8.RuneCountInString(t) > maxTag || strings.ContainsAny(t, ",;") {
			return nil, apperr.Invalid(fmt.Sprintf("%s[%d]", field, i), fmt.Sprintf("must be 1 to %d characters without , or ;", maxTag))
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Create adds a contact by hand or through the API. Identities that belong to another
// contact are a conflict naming the identity.
func (s *Service) Create(ctx context.Context, in Input) (Contact, error) {
	tid, ok := tenant.ID(ctx)
	if !ok {
		return Contact{}, fmt.Errorf("contacts: create: %w", tenant.ErrNoTenant)
	}
	now := s.now()
	c := Contact{TenantID: tid, ID: ids.New(), AttributesRaw: "{}", CreatedAt: now, UpdatedAt: now}
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Create(&c).Error }); err != nil {
			return fmt.Errorf("contacts: create: %w", err)
		}
		if err := s.apply(ctx, &c, in); err != nil {
			return err
		}
		return s.db.Record(ctx, tenant.Audit{Action: "contact.created", ObjectType: "contact", ObjectID: c.ID.String()})
	})
	if err != nil {
		return Contact{}, err
	}
	return s.Get(ctx, c.ID)
}

// Update changes a contact.
func (s *Service) Update(ctx context.Context, id uuid.UUID, in Input) (Contact, error) {
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		c, err := s.Get(ctx, id)
		if err != nil {
			return err
		}
		if c.MergedInto != nil {
			return fmt.Errorf("contact %s was merged into %s: %w", id, c.MergedInto, apperr.ErrConflict)
		}
		if err := s.apply(ctx, &c, in); err != nil {
			return err
		}
		return s.db.Record(ctx, tenant.Audit{Action: "contact.updated", ObjectType: "contact", ObjectID: id.String()})
	})
	if err != nil {
		return Contact{}, err
	}
	return s.Get(ctx, id)
}

// apply writes an Input onto a stored contact inside a transaction.
func (s *Service) apply(ctx context.Context, c *Contact, in Input) error {
	var bad apperr.Fields
	upd := map[string]any{"updated_at": s.now()}
	if in.Name != nil {
		if utf8.RuneCountInString(*in.Name) > 200 {
			bad.Add("name", "at most 200 characters")
		}
		upd["name"] = clip(*in.Name, 200)
	}
	if in.Locale != nil {
		if l := *in.Locale; l != "" && l != "en" && l != "zh-CN" && !regexp.MustCompile(`^[a-z]{2}(-[A-Z]{2})?$`).MatchString(l) {
			bad.Add("locale", "must be a locale such as en or zh-CN")
		}
		upd["locale"] = *in.Locale
	}
	if in.Company != nil {
		upd["company"] = clip(*in.Company, 200)
	}
	if in.Attributes != nil {
		fields, err := s.Fields(ctx)
		if err != nil {
			return err
		}
		attrs := map[string]any{}
		if c.AttributesRaw != "" {
			_ = json.Unmarshal([]byte(c.AttributesRaw), &attrs)
		}
		for k, v := range in.Attributes {
			if v == nil {
				delete(attrs, k)
				continue
			}
			if err := checkAttribute(fields, k, v); err != nil {
				bad.Add("attributes."+k, err.Error())
			}
			attrs[k] = v
		}
		raw, _ := json.Marshal(attrs)
		if len(raw) > 16<<10 {
			bad.Add("attributes", "at most 16 KiB")
		}
		upd["attributes"] = string(raw)
	}
	var tags []string
	if in.Tags != nil {
		var err error
		if tags, err = NormalizeTags("tags", *in.Tags); err != nil {
			return err
		}
	}
	var idents []provider.Identity
	for i, id := range in.Identities {
		n, err := NormalizeIdentity(id)
		if err != nil {
			bad.Add(fmt.Sprintf("identities[%d]", i), err.Error())
			continue
		}
		idents = append(idents, n)
	}
	if err := bad.Err(); err != nil {
		return err
	}
	return s.db.Run(ctx, func(tx *gorm.DB) error {
		if err := tx.Model(&Contact{}).Where("id = ?", c.ID).Updates(upd).Error; err != nil {
			return fmt.Errorf("contacts: update: %w", err)
		}
		if in.Tags != nil {
			if err := tx.Where("contact_id = ?", c.ID).Delete(&contactTag{}).Error; err != nil {
				return fmt.Errorf("contacts: tags: %w", err)
			}
			for _, t := range tags {
				if err := tx.Create(&contactTag{TenantID: c.TenantID, ContactID: c.ID, Tag: t}).Error; err != nil {
					return fmt.Errorf("contacts: tags: %w", err)
				}
			}
		}
		if err := s.addIdentities(ctx, c.ID, idents); err != nil {
			return err
		}
		return s.reindex(ctx, c.ID)
	})
}

// addIdentities attaches identities to a contact; one owned by another contact is a 409.
func (s *Service) addIdentities(ctx context.Context, contactID uuid.UUID, idents []provider.Identity) error {
	if len(idents) == 0 {
		return nil
	}
	tid, _ := tenant.ID(ctx)
	found, err := s.lookup(ctx, idents)
	if err != nil {
		return err
	}
	for i, id := range idents {
		if owner, ok := found[id]; ok {
			if owner != contactID {
				return &apperr.ValidationError{Fields: []apperr.FieldError{{Field: fmt.Sprintf("identities[%d]", i),
					Message: "belongs to another contact (" + owner.String() + "); merge the two instead"}}}
			}
			continue
		}
		row := Identity{TenantID: tid, ID: ids.New(), ContactID: contactID, Kind: id.Kind, Value: id.Value, CreatedAt: s.now()}
		if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Create(&row).Error }); err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return apperr.Invalid(fmt.Sprintf("identities[%d]", i), "belongs to another contact")
			}
			return fmt.Errorf("contacts: add identity: %w", err)
		}
	}
	return nil
}

// RemoveIdentity detaches an identity from a contact.
func (s *Service) RemoveIdentity(ctx context.Context, contactID, identityID uuid.UUID) error {
	return s.db.Tx(ctx, func(ctx context.Context) error {
		var n int64
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			r := tx.Where("id = ? AND contact_id = ?", identityID, contactID).Delete(&Identity{})
			n = r.RowsAffected
			return r.Error
		}); err != nil {
			return fmt.Errorf("contacts: remove identity: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("identity %s: %w", identityID, apperr.ErrNotFound)
		}
		if err := s.reindex(ctx, contactID); err != nil {
			return err
		}
		return s.db.Record(ctx, tenant.Audit{Action: "contact.identity_removed", ObjectType: "contact", ObjectID: contactID.String(),
			Data: map[string]any{"identity_id": identityID.String()}})
	})
}

// Merge moves the loser's identities, tags, attributes it lacks and (through the hooks) its
// conversations to the winner; the loser stays as a pointer to the winner.
func (s *Service) Merge(ctx context.Context, winnerID, loserID uuid.UUID) (Contact, error) {
	if winnerID == loserID {
		return Contact{}, apperr.Invalid("loser_id", "must differ from winner_id")
	}
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		w, err := s.Get(ctx, winnerID)
		if err != nil {
			return err
		}
		l, err := s.Get(ctx, loserID)
		if err != nil {
			return err
		}
		if w.MergedInto != nil {
			return apperr.Invalid("winner_id", "was itself merged into "+w.MergedInto.String())
		}
		if l.MergedInto != nil {
			return apperr.Invalid("loser_id", "was already merged into "+l.MergedInto.String())
		}
		attrs := l.Attributes
		for k, v := range w.Attributes {
			attrs[k] = v // the winner's values win
		}
		raw, _ := json.Marshal(attrs)
		upd := map[string]any{"attributes": string(raw), "updated_at": s.now()}
		if w.Name == "" {
			upd["name"] = l.Name
		}
		if w.Company == "" {
			upd["company"] = l.Company
		}
		if w.Locale == "" {
			upd["locale"] = l.Locale
		}
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			if err := tx.Model(&Contact{}).Where("id = ?", w.ID).Updates(upd).Error; err != nil {
				return err
			}
			if err := tx.Model(&Identity{}).Where("contact_id = ?", l.ID).Update("contact_id", w.ID).Error; err != nil {
				return err
			}
			for _, t := range l.Tags {
				if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&contactTag{TenantID: w.TenantID, ContactID: w.ID, Tag: t}).Error; err != nil {
					return err
				}
			}
			if err := tx.Where("contact_id = ?", l.ID).Delete(&contactTag{}).Error; err != nil {
				return err
			}
			return tx.Model(&Contact{}).Where("id = ?", l.ID).Updates(map[string]any{"merged_into": w.ID, "search": "", "updated_at": s.now()}).Error
		}); err != nil {
			return fmt.Errorf("contacts: merge: %w", err)
		}
		for _, h := range s.onMerge {
			if err := h(ctx, w.ID, l.ID); err != nil {
				return err
			}
		}
		if err := s.reindex(ctx, w.ID); err != nil {
			return err
		}
		return s.db.Record(ctx, tenant.Audit{Action: "contact.merged", ObjectType: "contact", ObjectID: w.ID.String(),
			Data: map[string]any{"loser_id": l.ID.String(), "loser_name": l.Name, "identities_moved": len(l.Identities)}})
	})
	if err != nil {
		return Contact{}, err
	}
	return s.Get(ctx, winnerID)
}

// Identities returns a contact's identities of the given kinds, newest first.
func (s *Service) Identities(ctx context.Context, contactID uuid.UUID, kinds []string) ([]provider.Identity, error) {
	var rows []Identity
	err := s.db.Run(ctx, func(tx *gorm.DB) error {
		return tx.Where("contact_id = ? AND kind IN ?", contactID, kinds).Order("id DESC").Find(&rows).Error
	})
	if err != nil {
		return nil, fmt.Errorf("contacts: identities: %w", err)
	}
	out := make([]provider.Identity, 0, len(rows))
	for _, k := range kinds {
		for _, r := range rows {
			if r.Kind == k {
				out = append(out, provider.Identity{Kind: r.Kind, Value: r.Value})
			}
		}
	}
	return out, nil
}

// Names returns display names of contacts by id (for inbox lists).
func (s *Service) Names(ctx context.Context, idList []uuid.UUID) (map[uuid.UUID]string, error) {
	out := map[uuid.UUID]string{}
	if len(idList) == 0 {
		return out, nil
	}
	var rows []Contact
	err := s.db.Run(ctx, func(tx *gorm.DB) error {
		return tx.Select("id", "name", "tenant_id").Where("id IN ?", idList).Find(&rows).Error
	})
	for _, r := range rows {
		out[r.ID] = r.Name
	}
	return out, err
}
