package billing

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// Limits of one Record call and of an event's fields.
const (
	MaxBatch         = 1000
	maxKeyLen        = 255
	maxDimensions    = 20
	maxDimKeyLen     = 64
	maxDimValueLen   = 255
	maxFutureSkew    = 5 * time.Minute
	maxEventAge      = 400 * 24 * time.Hour
	dayLayout        = "2006-01-02"
	sqliteTimeLayout = "2006-01-02 15:04:05"
)

// Event is one usage event as a caller reports it.
type Event struct {
	Meter          string            `json:"meter"`
	Quantity       int64             `json:"quantity"`
	IdempotencyKey string            `json:"idempotency_key"`
	OccurredAt     time.Time         `json:"occurred_at"`
	Dimensions     map[string]string `json:"dimensions,omitempty"`
}

// UsageEvent is a ledger row.
type UsageEvent struct {
	TenantID       uuid.UUID `json:"-" gorm:"type:uuid;primaryKey"`
	ID             uuid.UUID `json:"id" gorm:"type:uuid;primaryKey"`
	Meter          string    `json:"meter"`
	Quantity       int64     `json:"quantity"`
	OccurredAt     time.Time `json:"occurred_at"`
	RecordedAt     time.Time `json:"recorded_at"`
	IdempotencyKey string    `json:"idempotency_key"`
	Channel        string    `json:"channel,omitempty"`
	SeatKind       string    `json:"seat_kind,omitempty"`
	VendorID       string    `json:"vendor_id,omitempty"`
	Subject        string    `json:"-"`
	Dimensions     string    `json:"-"`
	Source         string    `json:"source"`
}

type dirtyDay struct {
	TenantID uuid.UUID `gorm:"type:uuid;primaryKey"`
	Day      string    `gorm:"primaryKey"`
	Version  int64
}

func (dirtyDay) TableName() string { return "usage_dirty_days" }

// Result says what a Record call did: events new to the ledger and repeats of keys it had.
type Result struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
}

// Ledger records and reads usage.
type Ledger struct {
	db     *tenant.DB
	meters *Meters
	log    *slog.Logger
	now    func() time.Time
}

// NewLedger returns the ledger over db.
func NewLedger(db *tenant.DB, meters *Meters, log *slog.Logger) *Ledger {
	return &Ledger{db: db, meters: meters, log: log, now: func() time.Time { return time.Now().UTC() }}
}

// Meters is the ledger's meter registry.
func (l *Ledger) Meters() *Meters { return l.meters }

// Record writes events for the tenant in ctx, in the transaction ctx carries if there is one
// (so a module's business change and its usage commit together), else in its own. A key the
// tenant has used before is accepted and not counted again; if any event is invalid the whole
// batch is refused with a validation error naming it (events[i].field) and nothing is written.
// source says who reported the events ("api" or the module's name).
func (l *Ledger) Record(ctx context.Context, source string, events []Event) (Result, error) {
	tid, rows, err := l.rowsFor(ctx, source, events)
	if err != nil {
		return Result{}, err
	}
	var accepted int64
	err = l.db.Tx(ctx, func(ctx context.Context) error {
		var err error
		if accepted, err = l.insert(ctx, rows); err != nil {
			return err
		}
		return l.markDays(ctx, tid, rows)
	})
	if err != nil {
		return Result{}, err
	}
	return Result{Accepted: int(accepted), Duplicates: len(events) - int(accepted)}, nil
}

// rowsFor checks a batch for the tenant in ctx and turns it into ledger rows, a key given twice
// once; if any event is invalid it returns a validation error naming each (events[i].field).
func (l *Ledger) rowsFor(ctx context.Context, source string, events []Event) (uuid.UUID, []UsageEvent, error) {
	tid, ok := tenant.ID(ctx)
	if !ok {
		return uuid.Nil, nil, fmt.Errorf("billing: record usage: %w", tenant.ErrNoTenant)
	}
	if len(events) == 0 {
		return uuid.Nil, nil, apperr.Invalid("events", "must contain at least one event")
	}
	if len(events) > MaxBatch {
		return uuid.Nil, nil, apperr.Invalid("events", fmt.Sprintf("at most %d events per batch", MaxBatch))
	}
	now := l.now()
	rows := make([]UsageEvent, 0, len(events))
	seen := make(map[string]bool, len(events))
	var bad apperr.Fields
	for i, ev := range events {
		row, errs := l.validate(ev, now)
		for _, fe := range errs {
			bad.Add(fmt.Sprintf("events[%d].%s", i, fe.Field), fe.Message)
		}
		if len(errs) > 0 || seen[ev.IdempotencyKey] {
			continue // a key twice in one batch counts once, like a key sent again later
		}
		seen[ev.IdempotencyKey] = true
		row.TenantID, row.ID, row.RecordedAt, row.Source = tid, ids.New(), now, source
		rows = append(rows, row)
	}
	if err := bad.Err(); err != nil {
		return uuid.Nil, nil, err
	}
	return tid, rows, nil
}

// insert writes rows, skipping keys the tenant has used before, and returns how many were new.
// The rows are sorted by key first: concurrent batches then take their unique-index locks in the
// same order on PostgreSQL, and wait instead of deadlocking.
func (l *Ledger) insert(ctx context.Context, rows []UsageEvent) (int64, error) {
	sort.Slice(rows, func(i, j int) bool { return rows[i].IdempotencyKey < rows[j].IdempotencyKey })
	var accepted int64
	err := l.db.Run(ctx, func(tx *gorm.DB) error {
		// 13 columns a row: 500 rows stay far below either database's parameter limit.
		for start := 0; start < len(rows); start += 500 {
			res := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "tenant_id"}, {Name: "idempotency_key"}}, DoNothing: true}).
				Create(rows[start:min(start+500, len(rows))])
			if res.Error != nil {
				return fmt.Errorf("billing: insert usage events: %w", res.Error)
			}
			accepted += res.RowsAffected
		}
		return nil
	})
	return accepted, err
}

// Defer records events as Record does, in the transaction ctx carries, but writes them together
// with every other event deferred in that transaction just before it commits, in one statement:
// for callers that record usage for each of many units of work in one transaction (a group of
// inbound messages) and need not know which keys were new. Invalid events are refused at once,
// as by Record. Without a transaction in ctx the events are written at once.
func (l *Ledger) Defer(ctx context.Context, source string, events []Event) error {
	if !tenant.InTx(ctx) {
		_, err := l.Record(ctx, source, events)
		return err
	}
	tid, rows, err := l.rowsFor(ctx, source, events)
	if err != nil {
		return err // before the transaction's batch is touched: a refused call leaves no trace
	}
	p, fresh := tenant.TxLocal(ctx, deferredKey{}, func() *deferred { return &deferred{seen: map[string]bool{}} })
	for _, r := range rows {
		if !p.seen[r.IdempotencyKey] { // a key twice in one transaction counts once
			p.seen[r.IdempotencyKey] = true
			p.rows = append(p.rows, r)
		}
	}
	if !fresh {
		return nil
	}
	return tenant.BeforeCommit(ctx, func(ctx context.Context) error {
		if _, err := l.insert(ctx, p.rows); err != nil {
			return err
		}
		return l.markDays(ctx, tid, p.rows)
	})
}

// deferred is what a transaction's Defer calls gathered.
type deferred struct {
	rows []UsageEvent
	seen map[string]bool
}

type deferredKey struct{}

// pendingDays is the set of usage days a transaction has touched, marked for the rollup once,
// just before it commits.
type pendingDays struct {
	days    map[string]bool
	written bool // the BeforeCommit function has run: later days are marked at once
}

type pendingDaysKey struct{}

// markDays has the days of rows rolled up again. Every event of a tenant and day bumps the same
// usage_dirty_days row, so a transaction that records usage many times (a group of inbound
// messages) bumps it once, at its end: on PostgreSQL the row's lock, which every concurrent
// transaction of the tenant queues on, is then held for the commit only. Days that arrive after
// that write (from another BeforeCommit function, such as Defer's) are marked then and there.
func (l *Ledger) markDays(ctx context.Context, tid uuid.UUID, rows []UsageEvent) error {
	p, fresh := tenant.TxLocal(ctx, pendingDaysKey{}, func() *pendingDays { return &pendingDays{days: map[string]bool{}} })
	var late map[string]bool
	for _, r := range rows {
		d := r.OccurredAt.Format(dayLayout)
		if p.written && !p.days[d] {
			if late == nil {
				late = map[string]bool{}
			}
			late[d] = true
		}
		p.days[d] = true
	}
	switch {
	case p.written:
		return l.bumpDays(ctx, tid, late)
	case fresh:
		return tenant.BeforeCommit(ctx, func(ctx context.Context) error {
			p.written = true
			return l.bumpDays(ctx, tid, p.days)
		})
	}
	return nil
}

// bumpDays marks days for the rollup, in a fixed order, so concurrent transactions lock their
// rows in the same order.
func (l *Ledger) bumpDays(ctx context.Context, tid uuid.UUID, set map[string]bool) error {
	if len(set) == 0 {
		return nil
	}
	days := make([]dirtyDay, 0, len(set))
	for d := range set {
		days = append(days, dirtyDay{TenantID: tid, Day: d, Version: 1})
	}
	sort.Slice(days, func(i, j int) bool { return days[i].Day < days[j].Day })
	return l.db.Run(ctx, func(tx *gorm.DB) error {
		err := tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "tenant_id"}, {Name: "day"}},
			DoUpdates: clause.Assignments(map[string]any{"version": gorm.Expr("usage_dirty_days.version + 1")}),
		}).Create(&days).Error
		if err != nil {
			return fmt.Errorf("billing: mark usage days: %w", err)
		}
		return nil
	})
}

// validate checks one event and turns it into a row (without its ids).
func (l *Ledger) validate(ev Event, now time.Time) (UsageEvent, apperr.Fields) {
	var bad apperr.Fields
	mt, known := l.meters.Get(ev.Meter)
	switch {
	case ev.Meter == "":
		bad.Add("meter", "is required")
	case !known:
		bad.Add("meter", "is not a known meter")
	}
	if ev.Quantity < 0 {
		bad.Add("quantity", "must not be negative")
	}
	switch {
	case ev.IdempotencyKey == "":
		bad.Add("idempotency_key", "is required")
	case len(ev.IdempotencyKey) > maxKeyLen || !utf8.ValidString(ev.IdempotencyKey) || strings.ContainsFunc(ev.IdempotencyKey, isControl):
		bad.Add("idempotency_key", fmt.Sprintf("must be at most %d bytes of printable text", maxKeyLen))
	}
	switch {
	case ev.OccurredAt.IsZero():
		bad.Add("occurred_at", "is required (RFC 3339)")
	case ev.OccurredAt.After(now.Add(maxFutureSkew)):
		bad.Add("occurred_at", "is in the future")
	case ev.OccurredAt.Before(now.Add(-maxEventAge)):
		bad.Add("occurred_at", "is more than 400 days old")
	}
	if len(ev.Dimensions) > maxDimensions {
		bad.Add("dimensions", fmt.Sprintf("at most %d dimensions", maxDimensions))
	}
	for k, v := range ev.Dimensions {
		if k == "" || len(k) > maxDimKeyLen || len(v) > maxDimValueLen || strings.ContainsFunc(k+v, isControl) {
			bad.Add("dimensions."+k, fmt.Sprintf("keys up to %d bytes, values up to %d, printable", maxDimKeyLen, maxDimValueLen))
		}
	}
	if sk := ev.Dimensions["seat_kind"]; sk != "" && sk != "own" && sk != "managed" {
		bad.Add("dimensions.seat_kind", "must be own or managed")
	}
	if known && mt.Aggregation == Distinct && ev.Dimensions[mt.DistinctBy] == "" {
		bad.Add("dimensions."+mt.DistinctBy, "is required for meter "+mt.Name)
	}
	if len(bad) > 0 {
		return UsageEvent{}, bad
	}
	dims, _ := json.Marshal(ev.Dimensions) // map[string]string always encodes
	if ev.Dimensions == nil {
		dims = []byte("{}")
	}
	// Microseconds are what PostgreSQL keeps; truncating here makes both stores agree.
	at := ev.OccurredAt.UTC().Truncate(time.Microsecond)
	return UsageEvent{
		Meter: ev.Meter, Quantity: ev.Quantity, OccurredAt: at, IdempotencyKey: ev.IdempotencyKey,
		Channel: ev.Dimensions["channel"], SeatKind: ev.Dimensions["seat_kind"], VendorID: ev.Dimensions["vendor_id"],
		Subject: ev.Dimensions[mt.DistinctBy], Dimensions: string(dims),
	}, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// MeterTotal is one meter's quantity over a period.
type MeterTotal struct {
	Meter    string `json:"meter"`
	Unit     string `json:"unit"`
	Quantity int64  `json:"quantity"`
	Events   int64  `json:"events"`
}

// aggRow is one meter's totals, grouped by meter and, for some queries, by hour (Bucket) or
// tenant (TenantID); aggColumns selects its numbers, so each meter's aggregation can be picked.
type aggRow struct {
	Bucket   string
	TenantID string
	Meter    string
	Total    int64
	Peak     int64
	Subjects int64
	Events   int64
}

const aggColumns = "COALESCE(SUM(quantity), 0) AS total, COALESCE(MAX(quantity), 0) AS peak, COUNT(DISTINCT subject) AS subjects, COUNT(*) AS events"

// Totals counts the tenant's usage in [from, to) straight from the ledger, one total per
// meter in the registry (zero when nothing was used), by each meter's aggregation.
func (l *Ledger) Totals(ctx context.Context, from, to time.Time) ([]MeterTotal, error) {
	var rows []aggRow
	err := l.db.Run(ctx, func(tx *gorm.DB) error {
		return tx.Table("usage_events").
			Select("meter, "+aggColumns).
			Where("occurred_at >= ? AND occurred_at < ?", from.UTC(), to.UTC()).
			Group("meter").Scan(&rows).Error
	})
	if err != nil {
		return nil, fmt.Errorf("billing: usage totals: %w", err)
	}
	return l.totals(rows), nil
}

func (l *Ledger) totals(rows []aggRow) []MeterTotal {
	by := map[string]aggRow{}
	for _, r := range rows {
		by[r.Meter] = r
	}
	var out []MeterTotal
	for _, mt := range l.meters.All() {
		r := by[mt.Name]
		out = append(out, MeterTotal{Meter: mt.Name, Unit: mt.Unit, Quantity: pick(mt, r), Events: r.Events})
	}
	return out
}

func pick(mt Meter, r aggRow) int64 {
	switch mt.Aggregation {
	case Max:
		return r.Peak
	case Distinct:
		return r.Subjects
	default:
		return r.Total
	}
}

// List pages through the tenant's ledger, newest first.
func (l *Ledger) List(ctx context.Context, meter string, limit int, cursor string) ([]UsageEvent, error) {
	var rows []UsageEvent
	err := l.db.Run(ctx, func(tx *gorm.DB) error {
		q := tx.Order("id DESC").Limit(limit)
		if meter != "" {
			q = q.Where("meter = ?", meter)
		}
		if cursor != "" {
			q = q.Where("id < ?", cursor)
		}
		return q.Find(&rows).Error
	})
	return rows, err
}
