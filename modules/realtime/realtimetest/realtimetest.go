// Package realtimetest serves the console's realtime route on a real TCP listener in front of
// an apptest.Env, with the app's own authentication and route guard, so tests and the load
// script's test can open real WebSockets as the demo users or with API keys.
package realtimetest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard-cloud/switchboard/app"
	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/internal/httpx"
	"github.com/switchboard-cloud/switchboard/modules/access"
	"github.com/switchboard-cloud/switchboard/modules/identity"
	"github.com/switchboard-cloud/switchboard/modules/realtime"
)

// Server is the realtime route (and identity's, to log in and make API keys) on 127.0.0.1.
type Server struct {
	Env    *apptest.Env
	Hub    *realtime.Hub
	Module *realtime.Module
	Access *access.Service
	// Base is http://127.0.0.1:port; URL is the socket's ws:// address.
	Base, URL string
}

// New starts a hub on the Env's database and Redis and serves the route until the test ends.
// configure may shorten the module's intervals before it serves.
func New(t testing.TB, e *apptest.Env, configure ...func(*realtime.Module)) *Server {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	hub := realtime.NewHub(e.App.DB, e.App.Queue.Redis(), log)
	if err := hub.Start(ctx); err != nil {
		t.Fatal(err)
	}
	mod := realtime.NewModule(hub)
	for _, f := range configure {
		f(mod)
	}
	// The app's catalogue may not list realtime's permission yet: this server has its own,
	// over the same identity service, so sessions and keys are the app's.
	cat, err := access.NewCatalogue(access.Permissions(), identity.Permissions(), realtime.Permissions())
	if err != nil {
		t.Fatal(err)
	}
	acc := access.NewService(e.App.DB, cat, e.App.Identity)
	enf, err := acc.Start(ctx, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	idm := identity.NewModule(e.App.Identity, acc, httpx.NewValidator(), false)
	f := fiber.New(fiber.Config{ErrorHandler: httpx.ErrorHandler(log), DisableStartupMessage: true,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second})
	api := f.Group(app.APIPrefix)
	api.Use(idm.Authenticate())
	r := access.NewRouter(api, app.APIPrefix, &access.Registry{}, enf, cat)
	idm.Routes(r)
	mod.Routes(r)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := f.Listener(ln); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
			t.Error(err)
		}
	}()
	t.Cleanup(func() {
		cancel() // the hub closes every subscription, so every socket ends
		_ = f.ShutdownWithTimeout(5 * time.Second)
		<-done
	})
	addr := ln.Addr().String()
	return &Server{Env: e, Hub: hub, Module: mod, Access: acc, Base: "http://" + addr, URL: "ws://" + addr + app.APIPrefix + "/realtime"}
}
