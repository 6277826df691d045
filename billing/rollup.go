package billing

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/tenant"
)

// Rollup is one hourly or daily total of a meter.
type Rollup struct {
	TenantID    uuid.UUID `json:"-" gorm:"type:uuid;primaryKey"`
	Meter       string    `json:"meter" gorm:"primaryKey"`
	Granularity string    `json:"granularity" gorm:"primaryKey"`
	BucketStart time.Time `json:"bucket_start" gorm:"primaryKey"`
	Quantity    int64     `json:"quantity"`
	Events      int64     `json:"events"`
	ComputedAt  time.Time `json:"-"`
}

// TableName is the rollup table.
func (Rollup) TableName() string { return "usage_rollups" }

// RollupDirty recomputes the rollups of up to limit days that have had usage recorded since
// they were last computed (all of them when limit ≤ 0), oldest first, and returns how many it
// did. Each day is counted afresh from the ledger, then one transaction replaces the day's
// hourly and daily rows with the count and clears the day's mark only at the version it read
// before counting; so a run stopped at any point leaves every day either as before or complete,
// an event that lands meanwhile leaves its day marked for the next run, a run that finds the
// mark gone (another run finished the day) writes nothing, and running again changes nothing.
func (l *Ledger) RollupDirty(ctx context.Context, limit int) (int, error) {
	var marks []dirtyDay
	pctx := l.db.AsPlatform(ctx, "usage rollup: find days to recompute")
	err := l.db.Run(pctx, func(tx *gorm.DB) error {
		q := tx.Order("day, tenant_id")
		if limit > 0 {
			q = q.Limit(limit)
		}
		return q.Find(&marks).Error
	})
	if err != nil {
		return 0, fmt.Errorf("billing: list dirty usage days: %w", err)
	}
	done := 0
	for _, m := range marks {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		if err := l.rollupDay(ctx, m); err != nil {
			return done, err
		}
		done++
	}
	return done, nil
}

func (l *Ledger) rollupDay(ctx context.Context, m dirtyDay) error {
	day, err := time.Parse(dayLayout, m.Day)
	if err != nil {
		return fmt.Errorf("billing: dirty day %q: %w", m.Day, err)
	}
	next := day.AddDate(0, 0, 1)
	ctx = tenant.WithOrg(ctx, tenant.Org{ID: m.TenantID, Kind: tenant.KindTenant})
	// The day is counted before the write transaction, not in it: on SQLite a write transaction
	// holds the process's one writer, and every inbound message would wait for the count, which
	// grows with the day. Events recorded after the mark was read bump its version, so the mark
	// is not cleared below and the day is counted again on the next run.
	var hourly, daily []aggRow
	err = l.db.Run(ctx, func(tx *gorm.DB) error {
		err := tx.Table("usage_events").
			Select(l.hourExpr()+" AS bucket, meter, "+aggColumns).
			Where("occurred_at >= ? AND occurred_at < ?", day, next).
			Group("bucket, meter").Scan(&hourly).Error
		if err != nil {
			return fmt.Errorf("count hours: %w", err)
		}
		err = tx.Table("usage_events").
			Select("meter, "+aggColumns).
			Where("occurred_at >= ? AND occurred_at < ?", day, next).
			Group("meter").Scan(&daily).Error
		if err != nil {
			return fmt.Errorf("count day: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("billing: roll up %s: %w", m.Day, err)
	}
	now := l.now()
	var rows []Rollup
	for _, h := range hourly {
		at, err := time.Parse(sqliteTimeLayout, h.Bucket)
		if err != nil {
			return fmt.Errorf("hour bucket %q: %w", h.Bucket, err)
		}
		mt, ok := l.meters.Get(h.Meter)
		if !ok {
			continue // a meter since removed from the registry: kept in the ledger, not rolled up
		}
		rows = append(rows, Rollup{TenantID: m.TenantID, Meter: h.Meter, Granularity: "hour", BucketStart: at.UTC(), Quantity: pick(mt, h), Events: h.Events, ComputedAt: now})
	}
	for _, d := range daily {
		mt, ok := l.meters.Get(d.Meter)
		if !ok {
			continue
		}
		rows = append(rows, Rollup{TenantID: m.TenantID, Meter: d.Meter, Granularity: "day", BucketStart: day, Quantity: pick(mt, d), Events: d.Events, ComputedAt: now})
	}
	return l.db.Tx(ctx, func(ctx context.Context) error {
		return l.db.Run(ctx, func(tx *gorm.DB) error {
			// No mark left: another run counted the day after this one read the mark, and no
			// event came since (it would have marked the day again). Its rollups are complete;
			// this count may be older, and writing it would leave them stale with nothing to
			// correct them.
			var marked int64
			if err := tx.Model(&dirtyDay{}).Where("day = ?", m.Day).Count(&marked).Error; err != nil {
				return fmt.Errorf("check mark: %w", err)
			}
			if marked == 0 {
				return nil
			}
			if err := tx.Where("bucket_start >= ? AND bucket_start < ?", day, next).Delete(&Rollup{}).Error; err != nil {
				return fmt.Errorf("clear day: %w", err)
			}
			if len(rows) > 0 {
				if err := tx.CreateInBatches(rows, 500).Error; err != nil {
					return fmt.Errorf("write rollups: %w", err)
				}
			}
			if err := tx.Where("day = ? AND version = ?", m.Day, m.Version).Delete(&dirtyDay{}).Error; err != nil {
				return fmt.Errorf("clear mark: %w", err)
			}
			return nil
		})
	})
}

// hourExpr truncates occurred_at to its UTC hour as text "YYYY-MM-DD HH:00:00".
func (l *Ledger) hourExpr() string {
	if l.db.Dialect() == tenant.Postgres {
		return `to_char(date_trunc('hour', occurred_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD HH24:00:00')`
	}
	return `strftime('%Y-%m-%d %H:00:00', occurred_at)`
}

// RollupTotals adds up the tenant's daily rollups of [from, to) (whole UTC days) per meter: the
// sum of days for sum meters, the largest day for max meters. Distinct meters cannot be added
// across days (a conversation active on two days is one conversation); they are counted from
// the ledger.
func (l *Ledger) RollupTotals(ctx context.Context, from, to time.Time) (map[string]int64, error) {
	var rows []Rollup
	err := l.db.Run(ctx, func(tx *gorm.DB) error {
		return tx.Where("granularity = 'day' AND bucket_start >= ? AND bucket_start < ?", from.UTC(), to.UTC()).Find(&rows).Error
	})
	if err != nil {
		return nil, fmt.Errorf("billing: read rollups: %w", err)
	}
	out := map[string]int64{}
	for _, r := range rows {
		mt, _ := l.meters.Get(r.Meter)
		switch mt.Aggregation {
		case Max:
			out[r.Meter] = max(out[r.Meter], r.Quantity)
		case Distinct:
		default:
			out[r.Meter] += r.Quantity
		}
	}
	return out, nil
}

// Series returns the tenant's rollups of one granularity in [from, to), oldest first.
func (l *Ledger) Series(ctx context.Context, granularity string, from, to time.Time) ([]Rollup, error) {
	var rows []Rollup
	err := l.db.Run(ctx, func(tx *gorm.DB) error {
		return tx.Where("granularity = ? AND bucket_start >= ? AND bucket_start < ?", granularity, from.UTC(), to.UTC()).
			Order("bucket_start, meter").Find(&rows).Error
	})
	return rows, err
}
