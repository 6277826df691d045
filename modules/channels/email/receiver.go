package email

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// ReceiverOptions configure the inbound SMTP server.
type ReceiverOptions struct {
	// Domain is the name the server greets with (its MX host name).
	Domain string
	// MaxMessageBytes refuses larger messages with 552 (DefaultMaxMessageBytes when 0).
	MaxMessageBytes int64
	// MaxRecipients per message (100 when 0, RFC 5321's minimum a server must accept).
	MaxRecipients int
	// ReadTimeout and WriteTimeout bound each network read and write (5 and 1 minutes
	// when 0).
	ReadTimeout, WriteTimeout time.Duration
	// DeliverTimeout bounds one deliver call (1 minute when 0).
	DeliverTimeout time.Duration
	// Accepts is asked at RCPT TO whether mail for an address is wanted. false answers
	// 550 5.1.1, so the sending server bounces the message to its author at once instead of
	// us accepting it and dropping it; an error answers 451 so it tries again later. nil
	// accepts every address and leaves the decision to deliver.
	Accepts func(ctx context.Context, rcpt string) (bool, error)
	// TLSConfig, when set, offers STARTTLS.
	TLSConfig *tls.Config
}

// Receiver is an SMTP server that takes mail for the channels' addresses (the MX of a support
// domain, or the target of a forwarding rule) and hands each message to deliver. It answers
// 250 only after deliver returned nil, so a message is never lost: a failed deliver answers 451
// and the sending server keeps it and retries.
type Receiver struct {
	srv     *smtp.Server
	deliver func(ctx context.Context, rcpts []string, raw []byte) error
	opts    ReceiverOptions
	log     *slog.Logger

	ctx    context.Context // cancelled by Close: stops deliveries in flight
	cancel context.CancelFunc
}

// NewReceiver returns a receiver; deliver gets the recipients (lower-cased) and the raw
// message with a Return-Path header carrying the envelope sender, as a final delivery MTA
// adds it (RFC 5321 4.4). deliver must be idempotent: a sender whose connection dropped after
// our 250 sends the message again.
func NewReceiver(deliver func(ctx context.Context, rcpts []string, raw []byte) error, opts ReceiverOptions, log *slog.Logger) *Receiver {
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if opts.MaxRecipients <= 0 {
		opts.MaxRecipients = 100
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = 5 * time.Minute
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = time.Minute
	}
	if opts.DeliverTimeout <= 0 {
		opts.DeliverTimeout = time.Minute
	}
	if opts.Domain == "" {
		opts.Domain = "localhost"
	}
	if log == nil {
		log = slog.Default()
	}
	r := &Receiver{deliver: deliver, opts: opts, log: log}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	s := smtp.NewServer(backend{r})
	s.Domain = opts.Domain
	s.MaxMessageBytes = opts.MaxMessageBytes
	s.MaxRecipients = opts.MaxRecipients
	s.ReadTimeout = opts.ReadTimeout
	s.WriteTimeout = opts.WriteTimeout
	s.TLSConfig = opts.TLSConfig
	s.EnableSMTPUTF8 = true // addresses and headers are passed through as bytes
	s.ErrorLog = slogAdapter{log}
	r.srv = s
	return r
}

// ListenAndServe listens on addr (e.g. ":25") and serves until Close.
func (r *Receiver) ListenAndServe(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return r.Serve(l)
}

// Serve serves connections from l until Close; it returns nil after Close.
func (r *Receiver) Serve(l net.Listener) error {
	err := r.srv.Serve(l)
	if errors.Is(err, smtp.ErrServerClosed) || r.ctx.Err() != nil {
		return nil
	}
	return err
}

// Close stops listening and drops open connections; deliveries in flight see their context
// cancelled, and their senders, having no 250, retry later.
func (r *Receiver) Close() error {
	r.cancel()
	return r.srv.Close()
}

// Shutdown stops listening and waits for open sessions to end, up to ctx.
func (r *Receiver) Shutdown(ctx context.Context) error {
	err := r.srv.Shutdown(ctx)
	r.cancel()
	return err
}

type backend struct{ r *Receiver }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	remote := ""
	if a := c.Conn().RemoteAddr(); a != nil {
		remote = a.String()
	}
	return &session{r: b.r, remote: remote}, nil
}

type session struct {
	r      *Receiver
	remote string
	from   string
	rcpts  []string
}

// ErrUnknownRecipient, returned (or wrapped) by deliver, refuses the message with 550 5.1.1
// instead of asking the sender to retry: for a deliver that learns only then that no channel
// has any of the addresses.
var ErrUnknownRecipient = errors.New("email: unknown recipient")

var (
	errUnknownRcpt = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such recipient here"}
	errTryLater    = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure, please try again later"}
	errBadRcpt     = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Recipient address is not an e-mail address"}
)

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from, s.rcpts = from, nil
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	to = strings.ToLower(strings.TrimSpace(to))
	if at := strings.LastIndexByte(to, '@'); at < 1 || at == len(to)-1 {
		return errBadRcpt
	}
	if s.r.opts.Accepts != nil {
		ctx, cancel := context.WithTimeout(s.r.ctx, s.r.opts.DeliverTimeout)
		ok, err := s.r.opts.Accepts(ctx, to)
		cancel()
		if err != nil {
			s.r.log.Warn("smtp receiver: recipient check failed", "rcpt", to, "remote", s.remote, "err", err)
			return errTryLater
		}
		if !ok {
			return errUnknownRcpt
		}
	}
	for _, r := range s.rcpts {
		if r == to {
			return nil
		}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

func (s *session) Data(body io.Reader) error {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "Return-Path: <%s>\r\n", strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == '<' || r == '>' {
			return -1
		}
		return r
	}, s.from))
	if _, err := buf.ReadFrom(body); err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			return se // 552 for a message over MaxMessageBytes
		}
		return errTryLater
	}
	ctx, cancel := context.WithTimeout(s.r.ctx, s.r.opts.DeliverTimeout)
	defer cancel()
	if err := s.r.deliver(ctx, append([]string(nil), s.rcpts...), buf.Bytes()); err != nil {
		if errors.Is(err, ErrUnknownRecipient) {
			return errUnknownRcpt
		}
		s.r.log.Error("smtp receiver: delivery failed; the sender will retry", "from", s.from, "rcpts", s.rcpts, "remote", s.remote, "err", err)
		return errTryLater
	}
	return nil
}

func (s *session) Reset() { s.from, s.rcpts = "", nil }

func (s *session) Logout() error { return nil }

// slogAdapter gives go-smtp's internal error log to slog.
type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Printf(format string, v ...any) {
	a.log.Warn("smtp receiver: " + fmt.Sprintf(format, v...))
}

func (a slogAdapter) Println(v ...any) {
	a.log.Warn("smtp receiver: " + strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}
