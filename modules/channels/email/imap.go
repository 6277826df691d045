package email

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// MaxPerPoll bounds the messages one Poll reads, so a mailbox with years of unread mail is
// taken in over several polls instead of one unbounded session.
const MaxPerPoll = 100

// pollTimeout bounds a poll when the context has no deadline, so a server that stops answering
// cannot hold the poller forever.
const pollTimeout = 10 * time.Minute

// Poll reads the unread mail of the channel's IMAP mailbox (imap_* keys of cfg): for each
// message, oldest first, it fetches the raw message without setting \Seen, calls handle, and
// sets \Seen only after handle succeeded. A crash or a failing handle leaves the message
// unread, so the next poll reads it again; handle must therefore be idempotent (the inbox keys
// messages by Message-ID). A failing handle does not stop the others. Messages over the size
// limit are left unread in the mailbox for a person to deal with. It returns how many messages
// were handled.
func (p *Provider) Poll(ctx context.Context, cfg map[string]string, handle func(raw []byte) error) (int, error) {
	host, addr, mode, err := endpoint(cfg, "imap")
	if err != nil {
		return 0, err
	}
	user, pass := cfg[KeyIMAPUsername], cfg[KeyIMAPPassword]
	if user == "" {
		return 0, errors.New("email: imap_username is not configured")
	}
	if mode == TLSNone && !isLoopback(host) {
		return 0, errors.New("email: imap_tls none: credentials are never sent unencrypted")
	}
	mailbox := cfg[KeyIMAPMailbox]
	if mailbox == "" {
		mailbox = "INBOX"
	}

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, pollTimeout)
		defer cancel()
	}
	conn, err := p.dial(ctx, addr, host, mode == TLSImplicit)
	if err != nil {
		return 0, fmt.Errorf("email: imap connect %s: %w", addr, err)
	}
	// The IMAP client has no context; closing the connection is how cancellation stops it.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	opts := &imapclient.Options{TLSConfig: p.tlsConfig(host)}
	var c *imapclient.Client
	if mode == TLSStartTLS {
		if c, err = imapclient.NewStartTLS(conn, opts); err != nil {
			return 0, fmt.Errorf("email: imap starttls: %w", err)
		}
	} else {
		c = imapclient.New(conn, opts)
	}
	defer c.Close()
	if err := c.WaitGreeting(); err != nil {
		return 0, fmt.Errorf("email: imap greeting: %w", ctxErr(ctx, err))
	}
	if c.Caps().Has(imap.CapLoginDisabled) {
		err = c.Authenticate(sasl.NewPlainClient("", user, pass))
	} else {
		err = c.Login(user, pass).Wait()
	}
	if err != nil {
		return 0, fmt.Errorf("email: imap login as %s: %w", user, ctxErr(ctx, err))
	}
	if _, err := c.Select(mailbox, nil).Wait(); err != nil {
		return 0, fmt.Errorf("email: imap select %q: %w", mailbox, ctxErr(ctx, err))
	}

	limit := p.maxSize
	found, err := c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}, Smaller: limit + 1}, nil).Wait()
	if err != nil {
		return 0, fmt.Errorf("email: imap search: %w", ctxErr(ctx, err))
	}
	uids := found.AllUIDs()
	slices.Sort(uids)
	if len(uids) > MaxPerPoll {
		uids = uids[:MaxPerPoll]
	}

	handled := 0
	var errs []error
	section := &imap.FetchItemBodySection{Peek: true}
	for _, uid := range uids {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
		if err != nil {
			errs = append(errs, fmt.Errorf("email: imap fetch uid %d: %w", uid, ctxErr(ctx, err)))
			break // the connection is likely gone
		}
		if len(msgs) == 0 {
			continue // expunged since the search
		}
		raw := msgs[0].FindBodySection(section)
		if raw == nil {
			continue
		}
		if err := handle(raw); err != nil {
			errs = append(errs, fmt.Errorf("email: imap uid %d: %w", uid, err))
			continue
		}
		handled++
		seen := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}
		if err := c.Store(imap.UIDSetNum(uid), seen, nil).Close(); err != nil {
			// Handled but still unread: the next poll hands it over again, which the idempotent
			// handle absorbs.
			errs = append(errs, fmt.Errorf("email: imap mark uid %d seen: %w", uid, ctxErr(ctx, err)))
			break
		}
	}
	if ctx.Err() == nil && len(errs) == 0 {
		// Reported as an error so the channel shows it: these stay unread until someone
		// handles them in the mailbox.
		big, err := c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}, Larger: limit}, nil).Wait()
		if err == nil && len(big.AllUIDs()) > 0 {
			errs = append(errs, fmt.Errorf("email: %d unread messages in %q exceed the %d byte limit and were left there", len(big.AllUIDs()), mailbox, limit))
		}
	}
	if ctx.Err() == nil {
		_ = c.Logout().Wait()
	}
	return handled, errors.Join(errs...)
}

// ctxErr prefers the context's error to the closed-connection error its cancellation caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
