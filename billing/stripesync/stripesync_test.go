package stripesync_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/switchboard-cloud/switchboard/billing/stripesync"
	"github.com/switchboard-cloud/switchboard/billing/stripetest"
)

type call struct{ Method, Path, Key string }

// recorder sits under stripe-go's HTTP client so the test sees exactly what went on the wire.
type recorder struct {
	mu    sync.Mutex
	calls []call
	forms map[string]url.Values // by Idempotency-Key
	next  http.RoundTripper
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var form url.Values
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		form, _ = url.ParseQuery(string(b))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	key := req.Header.Get("Idempotency-Key")
	r.calls = append(r.calls, call{req.Method, req.URL.Path, key})
	if r.forms == nil {
		r.forms = map[string]url.Values{}
	}
	r.forms[key] = form
	return r.next.RoundTrip(req)
}

func (r *recorder) form(key string) url.Values {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.forms[key]
}

// take returns and clears the recorded calls, failing on any POST without a key.
func (r *recorder) take(t *testing.T) []call {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = nil
	for _, c := range out {
		if c.Method == http.MethodPost && c.Key == "" {
			t.Errorf("POST %s without Idempotency-Key", c.Path)
		}
	}
	return out
}

func TestAPI(t *testing.T) {
	rec := &recorder{next: http.DefaultTransport}
	base := stripetest.Start(t)
	c := stripesync.New(stripesync.Config{
		SecretKey:  "sk_test_123",
		APIBase:    base,
		HTTPClient: &http.Client{Transport: rec, Timeout: 10 * time.Second},
	}, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	tenant := uuid.MustParse("7f1c2a4e-0b6d-4c1a-9e57-3d2b8f6a1c00")

	expect := func(t *testing.T, want ...call) {
		t.Helper()
		if got := rec.take(t); !slices.Equal(got, want) {
			t.Errorf("requests:\n got  %v\n want %v", got, want)
		}
	}

	t.Run("customer", func(t *testing.T) {
		id, err := c.EnsureCustomer(ctx, tenant, "Acme GmbH", "billing@acme.test", "")
		if err != nil || !strings.HasPrefix(id, "cus_") {
			t.Fatalf("EnsureCustomer = %q, %v", id, err)
		}
		expect(t, call{"POST", "/v1/customers", "customer-" + tenant.String()})

		id, err = c.EnsureCustomer(ctx, tenant, "Acme GmbH", "billing@acme.test", "cus_existing")
		if err != nil || id != "cus_existing" {
			t.Fatalf("EnsureCustomer(existing) = %q, %v", id, err)
		}
		expect(t) // no request when the tenant already has a customer
	})

	t.Run("setup intent", func(t *testing.T) {
		secret, id, err := c.SetupIntent(ctx, "cus_1", "setup-"+tenant.String())
		if err != nil || !strings.HasPrefix(id, "seti_") || secret == "" {
			t.Fatalf("SetupIntent = %q, %q, %v", secret, id, err)
		}
		expect(t, call{"POST", "/v1/setup_intents", "setup-" + tenant.String()})

		if _, _, err := c.SetupIntent(ctx, "cus_1", ""); err == nil {
			t.Error("SetupIntent without idempotency key succeeded")
		}
		expect(t)
	})

	t.Run("checkout setup session", func(t *testing.T) {
		url, id, err := c.CheckoutSetupSession(ctx, "cus_1", "https://app.test/ok", "https://app.test/cancel", "checkout-1")
		if err != nil || !strings.HasPrefix(id, "cs_") || url == "" {
			t.Fatalf("CheckoutSetupSession = %q, %q, %v", url, id, err)
		}
		expect(t, call{"POST", "/v1/checkout/sessions", "checkout-1"})
	})

	t.Run("push invoice", func(t *testing.T) {
		inv := stripesync.Invoice{
			Number:   "SB-2024-0042",
			Currency: "EUR",
			Lines: []stripesync.Line{
				{Description: "Seats (12)", Amount: 12000},
				{Description: "API calls over allowance", Amount: 3456},
				{Description: "Proration credit", Amount: -500},
			},
			Metadata: map[string]string{"tenant_id": tenant.String()},
		}
		id, err := c.PushInvoice(ctx, "cus_1", inv)
		if err != nil || !strings.HasPrefix(id, "in_") {
			t.Fatalf("PushInvoice = %q, %v", id, err)
		}
		got := rec.take(t)
		if len(got) != 5 {
			t.Fatalf("got %d requests, want 5: %v", len(got), got)
		}
		want := []call{
			{"POST", "/v1/invoiceitems", "inv-SB-2024-0042-item-0"},
			{"POST", "/v1/invoiceitems", "inv-SB-2024-0042-item-1"},
			{"POST", "/v1/invoiceitems", "inv-SB-2024-0042-item-2"},
			{"POST", "/v1/invoices", "inv-SB-2024-0042"},
			// stripe-mock answers with a fixture id, so the finalize path uses whatever came back.
			{"POST", got[4].Path, "inv-SB-2024-0042-finalize"},
		}
		if !slices.Equal(got, want) {
			t.Errorf("requests:\n got  %v\n want %v", got, want)
		}
		if !strings.HasPrefix(got[4].Path, "/v1/invoices/in_") || !strings.HasSuffix(got[4].Path, "/finalize") {
			t.Errorf("finalize path = %s", got[4].Path)
		}
		for key, want := range map[string]map[string]string{
			"inv-SB-2024-0042-item-2": {"customer": "cus_1", "currency": "eur", "amount": "-500", "description": "Proration credit"},
			"inv-SB-2024-0042": {"customer": "cus_1", "currency": "eur", "auto_advance": "false",
				"pending_invoice_items_behavior": "include", "metadata[invoice_number]": "SB-2024-0042",
				"metadata[tenant_id]": tenant.String()},
			"inv-SB-2024-0042-finalize": {"auto_advance": "true"},
		} {
			form := rec.form(key)
			for k, v := range want {
				if form.Get(k) != v {
					t.Errorf("%s: %s = %q, want %q", key, k, form.Get(k), v)
				}
			}
		}
	})

	t.Run("push invoice validation", func(t *testing.T) {
		for name, inv := range map[string]stripesync.Invoice{
			"lower-case currency": {Number: "X", Currency: "eur", Lines: []stripesync.Line{{"a", 1}}},
			"no number":           {Currency: "EUR", Lines: []stripesync.Line{{"a", 1}}},
			"no lines":            {Number: "X", Currency: "EUR"},
		} {
			if _, err := c.PushInvoice(ctx, "cus_1", inv); err == nil {
				t.Errorf("%s: PushInvoice succeeded", name)
			}
		}
		expect(t)
	})

	t.Run("stripe error is wrapped", func(t *testing.T) {
		// stripe-mock keeps no state, so a malformed key is the dependable way to get an API error.
		bad := stripesync.New(stripesync.Config{SecretKey: "not-a-key", APIBase: base}, nil)
		_, err := bad.PushInvoice(ctx, "cus_1", stripesync.Invoice{Number: "SB-1", Currency: "EUR", Lines: []stripesync.Line{{"a", 1}}})
		var se *stripe.Error
		if !errors.As(err, &se) || !strings.Contains(err.Error(), "push invoice SB-1: create item 0") {
			t.Errorf("err = %v", err)
		}
	})
}

const secret = "whsec_test_secret"

var now = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

func event(id, typ, object, prev string) []byte {
	if prev == "" {
		prev = "{}"
	}
	return fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":"2023-10-16","created":1709294400,`+
		`"livemode":false,"type":%q,"data":{"object":%s,"previous_attributes":%s}}`, id, typ, object, prev)
}

func TestVerifyEventSignature(t *testing.T) {
	c := stripesync.New(stripesync.Config{WebhookSecret: secret}, nil)
	body := event("evt_1", "invoice.paid", `{"id":"in_1","object":"invoice","customer":"cus_1"}`, "")
	good := stripesync.SignPayload(secret, body, now)
	other := stripesync.SignPayload("whsec_other", body, now)
	v1 := func(h string) string { return h[strings.Index(h, "v1="):] }

	tests := []struct {
		name   string
		body   []byte
		header string
		ok     bool
	}{
		{"valid", body, good, true},
		{"wrong secret", body, other, false},
		{"tampered body", []byte(strings.Replace(string(body), "cus_1", "cus_2", 1)), good, false},
		{"301s old", body, stripesync.SignPayload(secret, body, now.Add(-301*time.Second)), false},
		{"300s old", body, stripesync.SignPayload(secret, body, now.Add(-300*time.Second)), true},
		{"299s old", body, stripesync.SignPayload(secret, body, now.Add(-299*time.Second)), true},
		{"301s in the future", body, stripesync.SignPayload(secret, body, now.Add(301*time.Second)), false},
		{"rolled secret: second v1 matches", body, good + "," + v1(other), true},
		{"rolled secret: first v1 matches", body, fmt.Sprintf("t=%d,%s,%s", now.Unix(), v1(other), v1(good)), true},
		{"v0 is ignored", body, fmt.Sprintf("t=%d,v0=%s", now.Unix(), v1(good)[3:]), false},
		{"empty header", body, "", false},
		{"no timestamp", body, v1(good), false},
		{"repeated timestamp", body, good + fmt.Sprintf(",t=%d", now.Unix()-1000), false},
		{"garbage", body, "nonsense", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := c.VerifyEvent(tc.body, tc.header, now)
			if tc.ok {
				if err != nil || ev.ID != "evt_1" {
					t.Fatalf("VerifyEvent = %+v, %v; want ok", ev, err)
				}
				return
			}
			if !errors.Is(err, stripesync.ErrBadSignature) {
				t.Fatalf("err = %v; want ErrBadSignature", err)
			}
		})
	}

	t.Run("signed but not JSON", func(t *testing.T) {
		b := []byte("{not json")
		_, err := c.VerifyEvent(b, stripesync.SignPayload(secret, b, now), now)
		if err == nil || errors.Is(err, stripesync.ErrBadSignature) {
			t.Fatalf("err = %v; want a decode error that is not ErrBadSignature", err)
		}
	})
	t.Run("no secret configured", func(t *testing.T) {
		_, err := stripesync.New(stripesync.Config{}, nil).VerifyEvent(body, good, now)
		if err == nil || errors.Is(err, stripesync.ErrBadSignature) {
			t.Fatalf("err = %v; want a configuration error", err)
		}
	})
	t.Run("SignPayload matches stripe-go", func(t *testing.T) {
		want := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: now}).Header
		if good != want {
			t.Fatalf("SignPayload = %q, stripe-go = %q", good, want)
		}
	})
}

func TestVerifyEventTypes(t *testing.T) {
	c := stripesync.New(stripesync.Config{WebhookSecret: secret}, nil)
	created := time.Unix(1709294400, 0).UTC()
	sub := func(typ string) (string, string, stripesync.Event) {
		return typ, `{"id":"sub_9","object":"subscription","customer":"cus_1","currency":"usd","status":"active"}`,
			stripesync.Event{ObjectID: "sub_9", SubscriptionID: "sub_9", CustomerID: "cus_1", Currency: "USD"}
	}
	type tc struct {
		typ, object, prev string
		want              stripesync.Event
	}
	tests := []tc{
		{typ: "invoice.paid",
			object: `{"id":"in_1","object":"invoice","customer":"cus_1","subscription":"sub_9","amount_paid":15456,"amount_due":15456,"currency":"eur","status":"paid"}`,
			want:   stripesync.Event{ObjectID: "in_1", InvoiceID: "in_1", CustomerID: "cus_1", SubscriptionID: "sub_9", AmountPaid: 15456, AmountDue: 15456, Currency: "EUR"}},
		{typ: "invoice.payment_failed",
			object: `{"id":"in_2","object":"invoice","customer":{"id":"cus_2","object":"customer"},"subscription":null,"amount_paid":0,"amount_due":4200,"currency":"usd","status":"open"}`,
			want:   stripesync.Event{ObjectID: "in_2", InvoiceID: "in_2", CustomerID: "cus_2", AmountDue: 4200, Currency: "USD"}},
		{typ: "payment_method.attached",
			object: `{"id":"pm_1","object":"payment_method","type":"card","customer":"cus_1"}`,
			want:   stripesync.Event{ObjectID: "pm_1", CustomerID: "cus_1"}},
		{typ: "payment_method.detached",
			object: `{"id":"pm_1","object":"payment_method","type":"card","customer":null}`,
			prev:   `{"customer":"cus_1"}`,
			want:   stripesync.Event{ObjectID: "pm_1", CustomerID: "cus_1"}},
		{typ: "charge.succeeded",
			object: `{"id":"ch_1","object":"charge","customer":"cus_1","amount":100,"currency":"eur"}`},
	}
	for _, typ := range []string{"customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted"} {
		typ, object, want := sub(typ)
		tests = append(tests, tc{typ: typ, object: object, want: want})
	}
	for _, tc := range tests {
		t.Run(tc.typ, func(t *testing.T) {
			body := event("evt_"+tc.typ, tc.typ, tc.object, tc.prev)
			got, err := c.VerifyEvent(body, stripesync.SignPayload(secret, body, now), now)
			if err != nil {
				t.Fatal(err)
			}
			if string(got.Raw.Type) != tc.typ || got.Raw.Data == nil {
				t.Errorf("Raw not populated: %+v", got.Raw)
			}
			got.Raw = stripe.Event{}
			tc.want.ID, tc.want.Type, tc.want.Created = "evt_"+tc.typ, tc.typ, created
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
	t.Run("known type without data.object", func(t *testing.T) {
		body := []byte(`{"id":"evt_x","object":"event","type":"invoice.paid","created":1709294400,"data":{}}`)
		if _, err := c.VerifyEvent(body, stripesync.SignPayload(secret, body, now), now); err == nil {
			t.Fatal("want error")
		}
	})
}
