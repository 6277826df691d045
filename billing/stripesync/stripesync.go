// Package stripesync pushes invoices computed by Switchboard's rating engine to Stripe and
// turns Stripe webhooks into payment-status events.
//
// Why invoice items + invoices and not Stripe usage meters: our rating engine is the
// source of truth for tiers, allowances, proration and late adjustments, in two
// currencies and in integer minor units. Reporting raw usage to Stripe billing would mean
// modelling all of that a second time in Stripe prices and keeping both in agreement, and
// any disagreement would surface as a customer being charged an amount our own invoice
// does not show. So we send Stripe the finished result, one invoice item per rated line
// plus a finalised invoice, and use Stripe only for what it is good at: collecting the
// payment, retrying cards and sending dunning emails.
//
// Every POST carries a deterministic Idempotency-Key, so a push interrupted by a crash
// or a timeout can simply be retried. Stripe keeps keys for 24 hours; a retry after that
// would create duplicates, so callers should store the returned Stripe ids and treat a
// stored id as "already done".
package stripesync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// Config configures the Stripe connection.
type Config struct {
	SecretKey     string
	WebhookSecret string
	// APIBase overrides the Stripe API URL (stripe-mock in tests); empty means real Stripe.
	APIBase string
	// HTTPClient is optional; tests use it to observe requests, production to set proxies.
	HTTPClient *http.Client
}

// Client talks to Stripe for one Stripe account.
type Client struct {
	api           *client.API
	webhookSecret string
	log           *slog.Logger
}

// Invoice is a finalised invoice from the rating engine.
type Invoice struct {
	Number   string // our invoice number; also the base of every idempotency key
	Currency string // ISO 4217, upper-case ("EUR")
	Lines    []Line
	Metadata map[string]string
}

// Line is one rated invoice line; Amount is in minor units and may be negative (credits).
type Line struct {
	Description string
	Amount      int64
}

// New builds a Client. It never touches stripe-go's package-level key or backends, so
// several clients (e.g. tests against different stripe-mocks) can coexist.
func New(cfg Config, log *slog.Logger) *Client {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "stripesync")
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 80 * time.Second} // stripe-go's own default
	}
	// GetBackendWithConfig fills in defaults by mutating its config, so each backend
	// needs its own copy or the API URL default would leak into the others.
	conf := func(url string) *stripe.BackendConfig {
		c := &stripe.BackendConfig{HTTPClient: hc, LeveledLogger: slogLeveled{log}}
		if url != "" {
			c.URL = stripe.String(url)
		}
		return c
	}
	backends := &stripe.Backends{
		API:     stripe.GetBackendWithConfig(stripe.APIBackend, conf(cfg.APIBase)),
		Uploads: stripe.GetBackendWithConfig(stripe.UploadsBackend, conf(cfg.APIBase)),
		Connect: stripe.GetBackendWithConfig(stripe.ConnectBackend, conf("")),
	}
	return &Client{
		api:           client.New(cfg.SecretKey, backends),
		webhookSecret: cfg.WebhookSecret,
		log:           log,
	}
}

// EnsureCustomer returns existingID when set, otherwise creates a Stripe customer tagged
// with the tenant id. The idempotency key is derived from the tenant so two concurrent
// first-time calls for one tenant cannot create two customers.
func (c *Client) EnsureCustomer(ctx context.Context, tenantID uuid.UUID, name, email, existingID string) (string, error) {
	if existingID != "" {
		return existingID, nil
	}
	if tenantID == uuid.Nil {
		return "", errors.New("stripesync: ensure customer: nil tenant id")
	}
	p := &stripe.CustomerParams{
		Name:     stripe.String(name),
		Email:    stripe.String(email),
		Metadata: map[string]string{"tenant_id": tenantID.String()},
	}
	setCommon(ctx, &p.Params, "customer-"+tenantID.String())
	cus, err := c.api.Customers.New(p)
	if err != nil {
		return "", fmt.Errorf("stripesync: create customer for tenant %s: %w", tenantID, err)
	}
	c.log.InfoContext(ctx, "stripe customer created", "tenant_id", tenantID, "customer", cus.ID)
	return cus.ID, nil
}

// SetupIntent creates an off-session SetupIntent, so the saved payment method can be
// charged by monthly invoices without the customer present.
func (c *Client) SetupIntent(ctx context.Context, customerID, idemKey string) (clientSecret, id string, err error) {
	if err := need(customerID, idemKey); err != nil {
		return "", "", fmt.Errorf("stripesync: setup intent: %w", err)
	}
	p := &stripe.SetupIntentParams{
		Customer:                stripe.String(customerID),
		Usage:                   stripe.String(string(stripe.SetupIntentUsageOffSession)),
		AutomaticPaymentMethods: &stripe.SetupIntentAutomaticPaymentMethodsParams{Enabled: stripe.Bool(true)},
	}
	setCommon(ctx, &p.Params, idemKey)
	si, err := c.api.SetupIntents.New(p)
	if err != nil {
		return "", "", fmt.Errorf("stripesync: create setup intent for %s: %w", customerID, err)
	}
	return si.ClientSecret, si.ID, nil
}

// CheckoutSetupSession creates a hosted Checkout page in setup mode for collecting a card.
// Card is named explicitly because setup mode without payment_method_types requires a
// currency, which a tenant may not have chosen yet.
func (c *Client) CheckoutSetupSession(ctx context.Context, customerID, successURL, cancelURL, idemKey string) (url, id string, err error) {
	if err := need(customerID, idemKey); err != nil {
		return "", "", fmt.Errorf("stripesync: checkout setup session: %w", err)
	}
	p := &stripe.CheckoutSessionParams{
		Mode:               stripe.String(string(stripe.CheckoutSessionModeSetup)),
		Customer:           stripe.String(customerID),
		SuccessURL:         stripe.String(successURL),
		CancelURL:          stripe.String(cancelURL),
		PaymentMethodTypes: stripe.StringSlice([]string{"card"}),
	}
	setCommon(ctx, &p.Params, idemKey)
	s, err := c.api.CheckoutSessions.New(p)
	if err != nil {
		return "", "", fmt.Errorf("stripesync: create checkout setup session for %s: %w", customerID, err)
	}
	return s.URL, s.ID, nil
}

// PushInvoice creates one pending invoice item per line, an invoice that sweeps them in,
// and finalises it. It assumes nothing else creates pending invoice items for our
// customers, since "include" would pick those up too.
func (c *Client) PushInvoice(ctx context.Context, customerID string, inv Invoice) (string, error) {
	if err := validate(customerID, inv); err != nil {
		return "", fmt.Errorf("stripesync: push invoice %q: %w", inv.Number, err)
	}
	cur := strings.ToLower(inv.Currency)
	key := "inv-" + inv.Number
	for i, l := range inv.Lines {
		p := &stripe.InvoiceItemParams{
			Customer:    stripe.String(customerID),
			Currency:    stripe.String(cur),
			Amount:      stripe.Int64(l.Amount),
			Description: stripe.String(l.Description),
			Metadata:    map[string]string{"invoice_number": inv.Number},
		}
		setCommon(ctx, &p.Params, fmt.Sprintf("%s-item-%d", key, i))
		if _, err := c.api.InvoiceItems.New(p); err != nil {
			return "", fmt.Errorf("stripesync: push invoice %s: create item %d: %w", inv.Number, i, err)
		}
	}

	md := maps.Clone(inv.Metadata)
	if md == nil {
		md = map[string]string{}
	}
	md["invoice_number"] = inv.Number
	// auto_advance=false stops Stripe finalising the draft on its own schedule before we
	// have added everything; we finalise explicitly right after.
	ip := &stripe.InvoiceParams{
		Customer:                    stripe.String(customerID),
		Currency:                    stripe.String(cur),
		AutoAdvance:                 stripe.Bool(false),
		PendingInvoiceItemsBehavior: stripe.String("include"),
		CollectionMethod:            stripe.String(string(stripe.InvoiceCollectionMethodChargeAutomatically)),
		Metadata:                    md,
	}
	setCommon(ctx, &ip.Params, key)
	created, err := c.api.Invoices.New(ip)
	if err != nil {
		return "", fmt.Errorf("stripesync: push invoice %s: create invoice: %w", inv.Number, err)
	}

	// Finalising with auto_advance=true hands collection to Stripe: charging the saved
	// payment method, retries and dunning emails. Left false, nobody would collect.
	fp := &stripe.InvoiceFinalizeInvoiceParams{AutoAdvance: stripe.Bool(true)}
	setCommon(ctx, &fp.Params, key+"-finalize")
	fin, err := c.api.Invoices.FinalizeInvoice(created.ID, fp)
	if err != nil {
		return "", fmt.Errorf("stripesync: push invoice %s: finalize %s: %w", inv.Number, created.ID, err)
	}
	c.log.InfoContext(ctx, "stripe invoice finalized", "invoice_number", inv.Number,
		"stripe_invoice", fin.ID, "customer", customerID, "amount_due", fin.AmountDue)
	return fin.ID, nil
}

func validate(customerID string, inv Invoice) error {
	switch {
	case customerID == "":
		return errors.New("empty customer id")
	case inv.Number == "":
		return errors.New("empty invoice number")
	case len(inv.Currency) != 3 || strings.ToUpper(inv.Currency) != inv.Currency:
		return fmt.Errorf("currency %q is not an upper-case ISO 4217 code", inv.Currency)
	case len(inv.Lines) == 0:
		return errors.New("no lines")
	}
	return nil
}

func need(customerID, idemKey string) error {
	if customerID == "" {
		return errors.New("empty customer id")
	}
	if idemKey == "" {
		// A random key would defeat retries, so the caller must supply a stable one.
		return errors.New("empty idempotency key")
	}
	return nil
}

func setCommon(ctx context.Context, p *stripe.Params, idemKey string) {
	p.Context = ctx
	p.SetIdempotencyKey(idemKey)
}

// slogLeveled routes stripe-go's logging into slog instead of its stderr default. Its
// Info level is a line per request, so it goes to Debug to keep production logs quiet.
type slogLeveled struct{ l *slog.Logger }

func (s slogLeveled) Debugf(f string, v ...any) { s.l.Debug(fmt.Sprintf(f, v...)) }
func (s slogLeveled) Infof(f string, v ...any)  { s.l.Debug(fmt.Sprintf(f, v...)) }
func (s slogLeveled) Warnf(f string, v ...any)  { s.l.Warn(fmt.Sprintf(f, v...)) }
func (s slogLeveled) Errorf(f string, v ...any) { s.l.Error(fmt.Sprintf(f, v...)) }
