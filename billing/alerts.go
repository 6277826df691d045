package billing

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/switchboard-cloud/switchboard/billing/rating"
	"github.com/switchboard-cloud/switchboard/internal/queue"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// Alert says a meter has used a share of its allowance in the open period.
type Alert struct {
	Meter     string `json:"meter"`
	Threshold int    `json:"threshold"` // 80 or 100 (%)
	Quantity  int64  `json:"quantity"`
	Included  int64  `json:"included"`
}

// alertThresholds are the shares of an allowance that alert, highest first.
var alertThresholds = []int{100, 80}

type sentAlert struct {
	TenantID    uuid.UUID `gorm:"type:uuid;primaryKey"`
	PeriodStart time.Time `gorm:"primaryKey"`
	Meter       string    `gorm:"primaryKey"`
	Threshold   int       `gorm:"primaryKey"`
	Quantity    int64
	Included    int64
	SentAt      time.Time
}

func (sentAlert) TableName() string { return "usage_alerts" }

// OpenUsage is the tenant's open period, its usage per meter so far, and the meters of its
// current plan at 80 % or more of their allowance (the highest threshold reached, per meter).
type OpenUsage struct {
	Period rating.Period
	Meters []MeterTotal
	Alerts []Alert
}

// Usage counts the open period once and derives the alerts from the same totals.
func (iv *Invoicer) Usage(ctx context.Context, now time.Time) (OpenUsage, error) {
	p, err := iv.PeriodAt(ctx, now)
	if err != nil {
		return OpenUsage{}, err
	}
	totals, err := iv.ledger.Totals(ctx, p.Start, p.End)
	if err != nil {
		return OpenUsage{}, err
	}
	u := OpenUsage{Period: p, Meters: totals, Alerts: []Alert{}}
	plan, ok, err := iv.plans.Current(ctx)
	if err != nil || !ok {
		return u, err
	}
	used := map[string]int64{}
	for _, t := range totals {
		used[t.Meter] = t.Quantity
	}
	for _, pr := range plan.Prices {
		if pr.Included <= 0 {
			continue
		}
		for _, th := range alertThresholds {
			// q/included ≥ th/100, in integers.
			if used[pr.Meter]*100 >= int64(th)*pr.Included {
				u.Alerts = append(u.Alerts, Alert{Meter: pr.Meter, Threshold: th, Quantity: used[pr.Meter], Included: pr.Included})
				break
			}
		}
	}
	return u, nil
}

// NotifyAlerts mails each tenant's owners once per period, meter and threshold reached; the
// record of the alert and its mail commit together, so a rerun sends nothing twice.
func (iv *Invoicer) NotifyAlerts(ctx context.Context, now time.Time) (int, error) {
	pctx := iv.db.AsPlatform(ctx, "allowance alerts")
	tenants, err := iv.plans.Subscribed(pctx)
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, tid := range tenants {
		org, err := iv.payments.org(pctx, tid)
		if err != nil {
			return sent, err
		}
		if !org.Status.CanRead() {
			continue
		}
		tctx := tenant.WithOrg(ctx, org)
		usage, err := iv.Usage(tctx, now)
		if err != nil {
			return sent, fmt.Errorf("billing: alerts for %s: %w", tid, err)
		}
		start := usage.Period.Start
		for _, a := range usage.Alerts {
			err := iv.db.Tx(tctx, func(ctx context.Context) error {
				var n int64
				if err := iv.db.Run(ctx, func(tx *gorm.DB) error {
					r := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&sentAlert{TenantID: tid, PeriodStart: start, Meter: a.Meter,
						Threshold: a.Threshold, Quantity: a.Quantity, Included: a.Included, SentAt: now})
					n = r.RowsAffected
					return r.Error
				}); err != nil || n == 0 {
					return err
				}
				to, err := iv.payments.owners(ctx, org.ID)
				if err != nil {
					return err
				}
				subject, body := alertText(org, a)
				for _, addr := range to {
					if err := iv.payments.mail.Send(ctx, addr, subject, body); err != nil {
						return err
					}
				}
				sent++
				return nil
			})
			if err != nil {
				return sent, err
			}
		}
	}
	return sent, nil
}

func alertText(org tenant.Org, a Alert) (subject, body string) {
	if strings.HasPrefix(org.Locale, "zh") {
		return fmt.Sprintf("%s：%s 已用 %d%% 包含量", org.Name, a.Meter, a.Threshold),
			fmt.Sprintf("%s 本账期 %s 已使用 %d，包含量为 %d（%d%%）。超出部分将按套餐单价计费。", org.Name, a.Meter, a.Quantity, a.Included, a.Threshold)
	}
	return fmt.Sprintf("%s: %d%% of the %s allowance used", org.Name, a.Threshold, a.Meter),
		fmt.Sprintf("%s has used %d %s this billing period; the plan includes %d (%d%%). Usage beyond the allowance is billed at the plan's price.", org.Name, a.Quantity, a.Meter, a.Included, a.Threshold)
}

// TaskAlerts sends allowance alerts.
const TaskAlerts = "billing:alerts"

// Jobs registers the alert task.
func (iv *Invoicer) Jobs(mux *asynq.ServeMux) {
	mux.HandleFunc(TaskAlerts, func(ctx context.Context, _ *asynq.Task) error {
		n, err := iv.NotifyAlerts(ctx, time.Now().UTC())
		if n > 0 {
			iv.log.InfoContext(ctx, "allowance alerts", "sent", n)
		}
		return err
	})
}

// Schedules checks allowances every 15 minutes.
func (iv *Invoicer) Schedules() []queue.Schedule {
	return []queue.Schedule{{Cron: "@every 15m", Task: asynq.NewTask(TaskAlerts, nil), Opts: []asynq.Option{asynq.Unique(14 * time.Minute)}}}
}
