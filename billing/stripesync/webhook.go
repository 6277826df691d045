package stripesync

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// ErrBadSignature means the webhook was not signed with our secret or is outside the
// replay window; handlers should answer 400 and not retry.
var ErrBadSignature = errors.New("stripesync: bad webhook signature")

// Tolerance is the replay window for webhook timestamps, as in Stripe's libraries.
const Tolerance = 300 * time.Second

// Event is the part of a Stripe event the billing state machine needs. Fields not relevant
// to the event type stay zero; Currency is upper-case like Invoice.Currency.
type Event struct {
	ID, Type       string
	Created        time.Time
	ObjectID       string
	CustomerID     string
	InvoiceID      string
	SubscriptionID string
	AmountPaid     int64
	AmountDue      int64
	Currency       string
	Raw            stripe.Event
}

// VerifyEvent checks the Stripe-Signature header against payload and decodes the event.
//
// stripe-go checks the timestamp against time.Now with no way to inject a clock, so the
// replay window is enforced here against now, and stripe-go is asked only to check the
// HMAC and parse. Timestamps too far in the future are refused as well: a skewed or
// forged-ahead timestamp would otherwise stretch the replay window.
func (c *Client) VerifyEvent(payload []byte, sigHeader string, now time.Time) (Event, error) {
	if c.webhookSecret == "" {
		// Our misconfiguration, not the sender's fault: not ErrBadSignature, so the
		// handler answers 5xx and Stripe retries once we are fixed.
		return Event{}, errors.New("stripesync: verify webhook: no webhook secret configured")
	}
	ts, err := signatureTime(sigHeader)
	if err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	if age := now.Sub(ts); age > Tolerance || age < -Tolerance {
		return Event{}, fmt.Errorf("%w: timestamp %s is %s away from now", ErrBadSignature, ts.UTC().Format(time.RFC3339), age)
	}
	raw, err := webhook.ConstructEventWithOptions(payload, sigHeader, c.webhookSecret, webhook.ConstructEventOptions{
		IgnoreTolerance: true, // enforced above with the injected clock
		// Our endpoint's API version may trail stripe-go's; we read only stable fields.
		IgnoreAPIVersionMismatch: true,
	})
	if err != nil {
		for _, e := range []error{webhook.ErrNotSigned, webhook.ErrInvalidHeader, webhook.ErrNoValidSignature, webhook.ErrTooOld} {
			if errors.Is(err, e) {
				return Event{}, fmt.Errorf("%w: %w", ErrBadSignature, err)
			}
		}
		return Event{}, fmt.Errorf("stripesync: decode webhook event: %w", err)
	}
	ev := Event{ID: raw.ID, Type: string(raw.Type), Created: time.Unix(raw.Created, 0).UTC(), Raw: raw}
	if err := ev.fill(); err != nil {
		return Event{}, fmt.Errorf("stripesync: decode webhook event %s (%s): %w", raw.ID, raw.Type, err)
	}
	return ev, nil
}

// fill copies the fields of the event types we act on; other types keep only ID and Type.
func (ev *Event) fill() error {
	var obj any
	switch stripe.EventType(ev.Type) {
	case stripe.EventTypeInvoicePaid, stripe.EventTypeInvoicePaymentFailed:
		obj = &stripe.Invoice{}
	case stripe.EventTypeCustomerSubscriptionCreated, stripe.EventTypeCustomerSubscriptionUpdated,
		stripe.EventTypeCustomerSubscriptionDeleted:
		obj = &stripe.Subscription{}
	case stripe.EventTypePaymentMethodAttached, stripe.EventTypePaymentMethodDetached:
		obj = &stripe.PaymentMethod{}
	default:
		return nil
	}
	if ev.Raw.Data == nil || len(ev.Raw.Data.Raw) == 0 {
		return errors.New("no data.object")
	}
	if err := json.Unmarshal(ev.Raw.Data.Raw, obj); err != nil {
		return err
	}
	switch o := obj.(type) {
	case *stripe.Invoice:
		ev.ObjectID, ev.InvoiceID = o.ID, o.ID
		ev.CustomerID = customerID(o.Customer)
		if o.Subscription != nil {
			ev.SubscriptionID = o.Subscription.ID
		}
		ev.AmountPaid, ev.AmountDue = o.AmountPaid, o.AmountDue
		ev.Currency = strings.ToUpper(string(o.Currency))
	case *stripe.Subscription:
		ev.ObjectID, ev.SubscriptionID = o.ID, o.ID
		ev.CustomerID = customerID(o.Customer)
		ev.Currency = strings.ToUpper(string(o.Currency))
	case *stripe.PaymentMethod:
		ev.ObjectID = o.ID
		ev.CustomerID = customerID(o.Customer)
		// A detached method no longer has a customer; Stripe puts the old one in
		// previous_attributes, and that is the customer whose state changed.
		if prev, ok := ev.Raw.Data.PreviousAttributes["customer"].(string); ok && ev.CustomerID == "" {
			ev.CustomerID = prev
		}
	}
	return nil
}

func customerID(c *stripe.Customer) string {
	if c == nil {
		return ""
	}
	return c.ID
}

// signatureTime extracts t= from a Stripe-Signature header. A repeated t is refused so
// the timestamp checked here is certainly the one stripe-go signs against.
func signatureTime(header string) (time.Time, error) {
	var ts time.Time
	seen := false
	for _, pair := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			return time.Time{}, errors.New("malformed Stripe-Signature header")
		}
		if k != "t" {
			continue
		}
		if seen {
			return time.Time{}, errors.New("repeated timestamp in Stripe-Signature header")
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("bad timestamp in Stripe-Signature header: %w", err)
		}
		ts, seen = time.Unix(n, 0), true
	}
	if !seen {
		return time.Time{}, errors.New("no timestamp in Stripe-Signature header")
	}
	return ts, nil
}

// SignPayload returns a Stripe-Signature header value for payload signed with secret at t,
// exactly as Stripe sends it; for tests of webhook handlers.
func SignPayload(secret string, payload []byte, t time.Time) string {
	return fmt.Sprintf("t=%d,v1=%s", t.Unix(), hex.EncodeToString(webhook.ComputeSignature(t, payload, secret)))
}
