package billing_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/billing/stripesync"
	"github.com/switchboard-cloud/switchboard/billing/stripetest"
	"github.com/switchboard-cloud/switchboard/tenant"
)

const whsec = "whsec_switchboard_test"

// stripeEnv is an Env whose Stripe is stripe-mock, started (and installed if missing) here.
func stripeEnv(t *testing.T, d tenant.Dialect, mockURL string) *apptest.Env {
	return apptest.New(t, d, apptest.Options{Env: map[string]string{
		"STRIPE_SECRET_KEY":         "sk_test_123",
		"STRIPE_WEBHOOK_SECRET":     whsec,
		"STRIPE_API_BASE":           mockURL,
		"SWITCHBOARD_DUNNING_GRACE": "72h",
	}})
}

func stripeEvent(id, typ, customer string, extra map[string]any) []byte {
	obj := map[string]any{"id": "in_" + id, "object": "invoice", "customer": customer, "amount_due": 12345, "amount_paid": 0, "currency": "cny"}
	if strings.HasPrefix(typ, "payment_method.") {
		obj = map[string]any{"id": "pm_" + id, "object": "payment_method", "customer": customer, "type": "card"}
	}
	for k, v := range extra {
		obj[k] = v
	}
	b, _ := json.Marshal(map[string]any{"id": id, "object": "event", "type": typ, "api_version": "2023-10-16", "created": time.Now().Unix(),
		"livemode": false, "pending_webhooks": 1, "data": map[string]any{"object": obj}})
	return b
}

func postHook(e *apptest.Env, payload []byte, sig string) *apptest.Response {
	return e.Anon().Do("POST", "/api/v1/webhooks/stripe", payload, "Stripe-Signature", sig)
}

// state is what a webhook may change: the tenant's status, its billing account, mails queued,
// audit events and processed Stripe events.
type state struct {
	Status                   tenant.Status
	PaymentStatus            string
	Mails, Audits, Processed int64
}

func snapshot(t *testing.T, e *apptest.Env, org tenant.Org) state {
	t.Helper()
	var s state
	ctx := e.App.DB.AsPlatform(context.Background(), "test snapshot")
	err := e.App.DB.Run(ctx, func(tx *gorm.DB) error {
		var st []string
		if err := tx.Table("orgs").Where("id = ?", org.ID).Pluck("status", &st).Error; err != nil || len(st) != 1 {
			return fmt.Errorf("org status: %v %v", st, err)
		}
		s.Status = tenant.Status(st[0])
		var ps []string
		if err := tx.Table("billing_accounts").Where("tenant_id = ?", org.ID).Pluck("payment_status", &ps).Error; err != nil {
			return err
		}
		if len(ps) > 0 {
			s.PaymentStatus = ps[0]
		}
		if err := tx.Table("mails").Count(&s.Mails).Error; err != nil {
			return err
		}
		if err := tx.Table("audit_events").Where("tenant_id = ?", org.ID).Count(&s.Audits).Error; err != nil {
			return err
		}
		return tx.Table("stripe_events").Count(&s.Processed).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStripeWebhookAndDunning is the dunning path end to end against stripe-mock: a customer and
// a SetupIntent for Acme; payment failed → past_due (and a reminder mail); a replayed event, a
// bad signature and a stale timestamp change nothing; the grace period ends → suspended, the
// console read-only; the invoice is paid → active and writable again. Globex is untouched.
func TestStripeWebhookAndDunning(t *testing.T) {
	mock := stripetest.Start(t)
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := stripeEnv(t, d, mock)
			owner, globexOwner := e.Login("owner@acme.test"), e.Login("owner@globex.test")

			// A payment method: the customer is created and linked, the console gets a secret.
			sec := owner.Do("POST", "/api/v1/billing/payment-method", nil).Want(201).JSON()["client_secret"].(string)
			if sec == "" {
				t.Fatal("no client secret")
			}
			acct := owner.Do("GET", "/api/v1/billing/payment-method", nil).Want(200).JSON()
			cus, _ := acct["stripe_customer_id"].(string)
			if !strings.HasPrefix(cus, "cus_") {
				t.Fatalf("customer not linked: %v", acct)
			}
			if g := globexOwner.Do("GET", "/api/v1/billing/payment-method", nil).Want(200).JSON(); g["stripe_customer_id"] != "" {
				t.Fatalf("Globex sees a customer: %v", g)
			}
			e.Login("agent1@acme.test").Do("POST", "/api/v1/billing/payment-method", nil).Want(403)
			// Or a Stripe Checkout page (setup mode) that returns to the console.
			if u, _ := owner.Do("POST", "/api/v1/billing/payment-method", map[string]any{"mode": "checkout"}).Want(201).JSON()["url"].(string); !strings.HasPrefix(u, "http") {
				t.Fatalf("checkout url %q", u)
			}
			owner.Do("POST", "/api/v1/billing/payment-method", map[string]any{"mode": "paypal"}).Want(422)

			globexBefore := snapshot(t, e, e.Globex)
			failed := stripeEvent("evt_failed_1", "invoice.payment_failed", cus, nil)
			before := snapshot(t, e, e.Acme)

			// Refused before anything changes: a wrong secret, a tampered body, a stale timestamp.
			for name, sig := range map[string]string{
				"wrong secret": stripesync.SignPayload("whsec_other", failed, time.Now()),
				"no header":    "",
				"stale":        stripesync.SignPayload(whsec, failed, time.Now().Add(-301*time.Second)),
			} {
				res := postHook(e, failed, sig).Want(400)
				if !strings.Contains(string(res.Body), `"field":"Stripe-Signature"`) {
					t.Errorf("%s: %s", name, res.Body)
				}
			}
			tampered := []byte(strings.Replace(string(failed), "12345", "1", 1))
			postHook(e, tampered, stripesync.SignPayload(whsec, failed, time.Now())).Want(400)
			if after := snapshot(t, e, e.Acme); after != before {
				t.Fatalf("a refused webhook changed something: %+v → %+v", before, after)
			}

			// Payment failed: past_due, payment status failed, a reminder mail, an audit record.
			sig := stripesync.SignPayload(whsec, failed, time.Now())
			res := postHook(e, failed, sig).Want(200).JSON()
			if res["duplicate"] != false || res["tenant_id"] != e.Acme.ID.String() {
				t.Fatalf("webhook: %v", res)
			}
			pastDue := snapshot(t, e, e.Acme)
			if pastDue.Status != tenant.StatusPastDue || pastDue.PaymentStatus != "failed" || pastDue.Mails != before.Mails+1 ||
				pastDue.Audits <= before.Audits || pastDue.Processed != before.Processed+1 {
				t.Fatalf("after payment failed: %+v (before %+v)", pastDue, before)
			}
			// The same event again (Stripe retries, or someone replays it): nothing changes.
			if res := postHook(e, failed, sig).Want(200).JSON(); res["duplicate"] != true {
				t.Fatalf("replay: %v", res)
			}
			if again := snapshot(t, e, e.Acme); again != pastDue {
				t.Fatalf("replay changed something: %+v → %+v", pastDue, again)
			}
			// past_due still writes.
			owner.Do("POST", "/api/v1/api-keys", map[string]any{"name": "while past due", "role": "agent"}).Want(201)

			// Dunning: inside the grace period a reminder at most every 48 h; then suspension.
			ctx := context.Background()
			now := time.Now().UTC()
			if s, r, err := e.App.Payments.RunDunning(ctx, now.Add(time.Hour)); err != nil || s != 0 || r != 0 {
				t.Fatalf("an hour in: suspended %d reminded %d, %v", s, r, err)
			}
			if s, r, err := e.App.Payments.RunDunning(ctx, now.Add(49*time.Hour)); err != nil || s != 0 || r != 1 {
				t.Fatalf("49 h in: suspended %d reminded %d, %v", s, r, err)
			}
			if s, _, err := e.App.Payments.RunDunning(ctx, now.Add(73*time.Hour)); err != nil || s != 1 {
				t.Fatalf("grace over: suspended %d, %v", s, err)
			}
			suspended := snapshot(t, e, e.Acme)
			if suspended.Status != tenant.StatusSuspended || suspended.Mails != pastDue.Mails+2 {
				t.Fatalf("after the grace period: %+v", suspended)
			}
			// Suspended: the console reads but does not write.
			owner.Do("GET", "/api/v1/members", nil).Want(200)
			owner.Do("POST", "/api/v1/api-keys", map[string]any{"name": "while suspended", "role": "agent"}).Want(403)
			if s, r, err := e.App.Payments.RunDunning(ctx, now.Add(100*time.Hour)); err != nil || s+r != 0 {
				t.Fatalf("dunning after suspension: suspended %d reminded %d, %v", s, r, err)
			}

			// Paid: active again and writable.
			paid := stripeEvent("evt_paid_1", "invoice.paid", cus, map[string]any{"amount_paid": 12345, "amount_due": 0, "status": "paid"})
			postHook(e, paid, stripesync.SignPayload(whsec, paid, time.Now())).Want(200)
			if s := snapshot(t, e, e.Acme); s.Status != tenant.StatusActive || s.PaymentStatus != "ok" {
				t.Fatalf("after invoice paid: %+v", s)
			}
			owner.Do("POST", "/api/v1/api-keys", map[string]any{"name": "paid", "role": "agent"}).Want(201)

			// Payment method events keep the account's flag.
			for i, typ := range []string{"payment_method.attached", "payment_method.detached", "payment_method.attached"} {
				ev := stripeEvent(fmt.Sprint("evt_pm_", i), typ, cus, nil)
				postHook(e, ev, stripesync.SignPayload(whsec, ev, time.Now())).Want(200)
			}
			if a := owner.Do("GET", "/api/v1/billing/payment-method", nil).Want(200).JSON(); a["has_payment_method"] != true {
				t.Fatalf("payment method flag: %v", a)
			}
			// An event for a customer nobody has is recorded and changes no tenant.
			stray := stripeEvent("evt_stray", "invoice.payment_failed", "cus_nobody", nil)
			if res := postHook(e, stray, stripesync.SignPayload(whsec, stray, time.Now())).Want(200).JSON(); res["tenant_id"] != nil {
				t.Fatalf("stray event: %v", res)
			}
			g := snapshot(t, e, e.Globex)
			if g.Status != globexBefore.Status || g.Audits != globexBefore.Audits || g.PaymentStatus != globexBefore.PaymentStatus {
				t.Fatalf("Globex changed: %+v → %+v", globexBefore, g)
			}
		})
	}
}

// Without Stripe configured the webhook and the payment-method setup say so (503), and nothing
// is recorded.
func TestStripeNotConfigured(t *testing.T) {
	e := apptest.New(t, tenant.SQLite)
	ev := stripeEvent("evt_x", "invoice.paid", "cus_x", nil)
	postHook(e, ev, stripesync.SignPayload(whsec, ev, time.Now())).Want(503)
	e.Login("owner@acme.test").Do("POST", "/api/v1/billing/payment-method", nil).Want(503)
}
