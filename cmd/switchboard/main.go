// Command switchboard is the one binary: the API and console server, the background worker,
// migrations, demo data and admin tasks.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard-cloud/switchboard/app"
	"github.com/switchboard-cloud/switchboard/internal/config"
	"github.com/switchboard-cloud/switchboard/internal/db"
)

const usage = `switchboard: multi-tenant omnichannel customer service

usage:
  switchboard serve [--demo]        API, console, workers and scheduler in one process
  switchboard worker                background workers and scheduler only
  switchboard migrate up|down|status
  switchboard demo                  create the demo organisations and logins
  switchboard admin create-platform-admin --email E --name N
                                    create the first platform admin (password from
                                    SWITCHBOARD_ADMIN_PASSWORD or standard input)
  switchboard admin billing run --period YYYY-MM [--finalize]
                                    bill every tenant for its period starting in that
                                    month (a preview unless --finalize)
  switchboard admin billing retry-pushes
                                    push invoices whose Stripe push failed again
  switchboard version

Configuration comes from the environment; see README.md.
`

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return errors.New("missing command")
	}
	cmd, rest := args[0], args[1:]
	if cmd == "version" {
		fmt.Println("switchboard", version())
		return nil
	}
	if cmd == "help" || cmd == "-h" || cmd == "--help" {
		fmt.Print(usage)
		return nil
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "serve":
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		demo := fs.Bool("demo", false, "create the demo organisations and logins at start")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		return serve(ctx, cfg, log, *demo)
	case "worker":
		return worker(ctx, cfg, log)
	case "migrate":
		if len(rest) != 1 {
			return errors.New("usage: switchboard migrate up|down|status")
		}
		return migrate(ctx, cfg, log, rest[0])
	case "demo":
		a, err := app.New(ctx, cfg, log, app.Options{Migrate: true})
		if err != nil {
			return err
		}
		defer a.Close()
		return seed(ctx, a)
	case "admin":
		return admin(ctx, cfg, log, rest)
	default:
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

func newLogger(cfg config.Config) *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return bi.Main.Version + " (" + s.Value[:12] + ")"
			}
		}
		return bi.Main.Version
	}
	return "unknown"
}

// billingRun bills every tenant for its period starting in the month: a preview unless
// --finalize. It prints one line per tenant and fails if any tenant failed.
func billingRun(ctx context.Context, cfg config.Config, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("billing run", flag.ContinueOnError)
	period := fs.String("period", "", "the month whose periods to bill, YYYY-MM")
	finalize := fs.Bool("finalize", false, "store the invoices (default: preview only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, log, app.Options{Migrate: true})
	if err != nil {
		return err
	}
	defer a.Close()
	items, err := a.Invoicer.Run(ctx, *period, *finalize, time.Now().UTC())
	if err != nil {
		return err
	}
	failed := 0
	for _, it := range items {
		switch {
		case it.Error != "":
			failed++
			fmt.Printf("%-24s error: %s\n", it.Tenant, it.Error)
		case *finalize:
			fmt.Printf("%-24s %-20s %12d %s (new: %v)\n", it.Tenant, it.Invoice.Number, it.Invoice.Total, it.Invoice.Currency, it.Created)
		default:
			fmt.Printf("%-24s draft %12d %s\n", it.Tenant, it.Invoice.Total, it.Invoice.Currency)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d tenants failed", failed)
	}
	return nil
}

func seed(ctx context.Context, a *app.App) error {
	logins, err := a.SeedDemo(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("\nDemo logins (password %q unless SWITCHBOARD_DEMO_PASSWORD is set):\n", a.Cfg.DemoPassword)
	for _, l := range logins {
		fmt.Printf("  %-26s %-24s %s\n", l.Email, l.Org, l.Role)
	}
	widget, err := a.SeedDemoInbox(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("Acme's demo chat widget: <script src=\"%s/widget.js\" data-channel=\"%s\" async></script>\n\n", a.Cfg.PublicURL, widget)
	return nil
}

func serve(ctx context.Context, cfg config.Config, log *slog.Logger, demo bool) error {
	if demo && cfg.Production() {
		return app.ErrDemoInProduction
	}
	a, err := app.New(ctx, cfg, log, app.Options{Migrate: true})
	if err != nil {
		return err
	}
	defer a.Close()
	if demo {
		if err := seed(ctx, a); err != nil {
			return err
		}
	}
	w, mux, err := a.NewWorker()
	if err != nil {
		return err
	}
	if err := w.Start(mux); err != nil {
		return err
	}
	a.StartSync(ctx)
	a.StartRealtime(ctx)
	errc := make(chan error, 1)
	go func() { errc <- a.HTTP.Listen(cfg.Addr) }()
	if cfg.SMTPListen != "" {
		// Mail for the e-mail channels' addresses: the MX of a support domain or a forwarding target.
		rcv := a.MailIn.Receiver(hostOf(cfg.PublicURL))
		go func() {
			if err := rcv.ListenAndServe(cfg.SMTPListen); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("smtp receiver: %w", err)
			}
		}()
		defer rcv.Close()
		log.Info("smtp receiver listening", "addr", cfg.SMTPListen)
	}
	log.Info("switchboard serving", "addr", cfg.Addr, "public_url", cfg.PublicURL, "env", cfg.Env,
		"database", map[bool]string{true: "sqlite (embedded)", false: "postgres"}[cfg.Embedded()],
		"redis", map[bool]string{true: "in-process", false: "external"}[a.Queue.Embedded()])
	select {
	case err := <-errc:
		w.Shutdown()
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining HTTP and workers")
	shutdownErr := a.HTTP.ShutdownWithTimeout(cfg.ShutdownTimeout)
	w.Shutdown()
	log.Info("stopped")
	return shutdownErr
}

// hostOf is the host name of a URL, for the SMTP greeting.
func hostOf(u string) string {
	if p, err := url.Parse(u); err == nil && p.Hostname() != "" {
		return p.Hostname()
	}
	return "localhost"
}

func worker(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if cfg.RedisURL == "" {
		return errors.New("worker needs REDIS_URL: the in-process Redis of `serve` is not shared between processes")
	}
	a, err := app.New(ctx, cfg, log, app.Options{})
	if err != nil {
		return err
	}
	defer a.Close()
	w, mux, err := a.NewWorker()
	if err != nil {
		return err
	}
	if err := w.Start(mux); err != nil {
		return err
	}
	a.StartSync(ctx)
	log.Info("switchboard worker running")
	<-ctx.Done()
	log.Info("worker shutting down")
	w.Shutdown()
	return nil
}

func migrate(ctx context.Context, cfg config.Config, log *slog.Logger, direction string) error {
	gdb, dialect, err := db.Open(db.Options{URL: cfg.MigrateDatabaseURL, SQLitePath: cfg.DataDir + "/switchboard.db"})
	if err != nil {
		return err
	}
	if sqlDB, err := gdb.DB(); err == nil {
		defer sqlDB.Close()
	}
	start := time.Now()
	if err := app.Migrate(ctx, cfg, gdb, dialect, log, direction); err != nil {
		return err
	}
	if direction != "status" {
		log.Info("migrate done", "direction", direction, "dialect", string(dialect), "took", time.Since(start))
	}
	return nil
}

func admin(ctx context.Context, cfg config.Config, log *slog.Logger, args []string) error {
	if len(args) >= 2 && args[0] == "billing" && args[1] == "run" {
		return billingRun(ctx, cfg, log, args[2:])
	}
	if len(args) >= 2 && args[0] == "billing" && args[1] == "retry-pushes" {
		a, err := app.New(ctx, cfg, log, app.Options{Migrate: true})
		if err != nil {
			return err
		}
		defer a.Close()
		n, err := a.Payments.RetryPushes(ctx)
		fmt.Printf("%d invoices pushed to Stripe\n", n)
		return err
	}
	if len(args) == 0 || args[0] != "create-platform-admin" {
		return errors.New("usage: switchboard admin create-platform-admin --email E --name N | admin billing run --period YYYY-MM [--finalize] | admin billing retry-pushes")
	}
	fs := flag.NewFlagSet("create-platform-admin", flag.ContinueOnError)
	email := fs.String("email", "", "the admin's email address")
	name := fs.String("name", "", "the admin's name")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	password := os.Getenv("SWITCHBOARD_ADMIN_PASSWORD")
	if password == "" {
		fmt.Fprint(os.Stderr, "password: ")
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("read password from standard input: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	}
	a, err := app.New(ctx, cfg, log, app.Options{Migrate: true})
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.CreatePlatformAdmin(ctx, *email, *name, password); err != nil {
		return err
	}
	fmt.Printf("%s is a platform admin\n", *email)
	return nil
}
