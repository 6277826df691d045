package app

import (
	"context"
	"github.com/switchboard-cloud/switchboard/admin"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
	"github.com/gofiber/fiber/v2/middleware/limiter"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/gofiber/fiber/v2/middleware/requestid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchboard-cloud/switchboard/console"
	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/httpx"
	"github.com/switchboard-cloud/switchboard/modules/access"
	"github.com/switchboard-cloud/switchboard/modules/identity"
	"github.com/switchboard-cloud/switchboard/modules/widget"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// APIPrefix is where the REST API lives.
const APIPrefix = "/api/v1"

// buildHTTP builds the fiber app: edge middleware, the API with every module's routes, the
// operational endpoints and the console.
func (a *App) buildHTTP() *fiber.App {
	f := fiber.New(fiber.Config{
		AppName:               "switchboard",
		ErrorHandler:          httpx.ErrorHandler(a.Log),
		BodyLimit:             a.Cfg.BodyLimit,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           2 * time.Minute,
		DisableStartupMessage: true,
	})
	reg := &access.Registry{}
	a.Registry = reg
	metrics := newMetrics()

	f.Use(recover.New())
	f.Use(requestid.New())
	f.Use(a.logRequests(metrics))

	root := access.NewRouter(f, "", reg, a.Access.Enforcer(), a.Access.Catalogue())
	ops := func(s string) access.Spec { sp := access.Public(s); sp.Tag = "operations"; return sp }
	root.Get("/healthz", ops("Liveness: the process answers"), func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	root.Get("/readyz", ops("Readiness: the database and Redis answer"), a.ready)
	root.Get("/metrics", ops("Prometheus metrics"), adaptor.HTTPHandler(promhttp.HandlerFor(metrics.reg, promhttp.HandlerOpts{})))

	for _, m := range a.Modules {
		if rm, ok := m.(RootModule); ok {
			rm.RootRoutes(root)
		}
	}

	api := f.Group(APIPrefix)
	api.Use("/widget", widget.Preflight)
	api.Use(limiter.New(limiter.Config{
		Max: a.Cfg.RatePerIP, Expiration: time.Minute,
		LimitReached: func(*fiber.Ctx) error { return &apperr.RetryAfter{Err: apperr.ErrRateLimited, Seconds: 60} },
	}))
	// Credential guessing gets a much smaller budget per address than the rest of the API.
	api.Use([]string{"/auth/login", "/auth/signup", "/auth/password-reset"}, limiter.New(limiter.Config{
		Max: 20, Expiration: time.Minute,
		Next:         func(c *fiber.Ctx) bool { return c.Method() != fiber.MethodPost },
		LimitReached: func(*fiber.Ctx) error { return &apperr.RetryAfter{Err: apperr.ErrRateLimited, Seconds: 60} },
	}))
	var idm *identity.Module
	for _, m := range a.Modules {
		if im, ok := m.(*identity.Module); ok {
			idm = im
		}
	}
	api.Use(idm.Authenticate())
	for _, m := range a.Modules {
		if am, ok := m.(*admin.Module); ok {
			api.Use(am.Impersonation())
		}
	}
	api.Use(limiter.New(limiter.Config{
		Max: a.Cfg.RatePerTenant, Expiration: time.Minute,
		Next: func(c *fiber.Ctx) bool { _, ok := tenant.ID(c.UserContext()); return !ok },
		KeyGenerator: func(c *fiber.Ctx) string {
			id, _ := tenant.ID(c.UserContext())
			return "tenant:" + id.String()
		},
		LimitReached: func(*fiber.Ctx) error { return &apperr.RetryAfter{Err: apperr.ErrRateLimited, Seconds: 60} },
	}))
	r := access.NewRouter(api, APIPrefix, reg, a.Access.Enforcer(), a.Access.Catalogue())
	for _, m := range a.Modules {
		m.Routes(r)
	}
	spec := access.Public("This OpenAPI document")
	spec.Tag = "operations"
	r.Get("/openapi.json", spec, func(c *fiber.Ctx) error { return c.JSON(OpenAPI(reg.Routes())) })
	api.Use(func(*fiber.Ctx) error { return apperr.ErrNotFound })

	dist, err := fs.Sub(console.Dist, "dist")
	if err == nil {
		f.Use("/", filesystem.New(filesystem.Config{Root: http.FS(dist), Index: "index.html", NotFoundFile: "index.html", MaxAge: 300}))
	}
	return f
}

func (a *App) ready(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	checks := fiber.Map{"database": "ok", "redis": "ok"}
	ok := true
	if sqlDB, err := a.DB.Gorm().DB(); err != nil || sqlDB.PingContext(ctx) != nil {
		checks["database"], ok = "unavailable", false
	}
	if a.Queue.Ping(ctx) != nil {
		checks["redis"], ok = "unavailable", false
	}
	if !ok {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "checks": checks})
	}
	return c.JSON(fiber.Map{"status": "ok", "checks": checks})
}

type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_http_requests_total", Help: "HTTP requests by method, route and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "switchboard_http_request_duration_seconds", Help: "HTTP request latency by method and route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"method", "route"}),
	}
	m.reg.MustRegister(m.requests, m.duration, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// logRequests logs each API request with its request and tenant ids, and counts it.
func (a *App) logRequests(m *metrics) fiber.Handler {
	return func(c *fiber.Ctx) error {
		start := time.Now()
		err := c.Next()
		status := c.Response().StatusCode()
		if err != nil {
			status = httpx.ProblemFor(err).Status
		}
		route := c.Route().Path
		if !strings.HasPrefix(c.Path(), "/api/") && route == "/" {
			route = "console"
		}
		d := time.Since(start)
		m.requests.WithLabelValues(c.Method(), route, strconv.Itoa(status)).Inc()
		m.duration.WithLabelValues(c.Method(), route).Observe(d.Seconds())
		if strings.HasPrefix(c.Path(), "/api/") {
			ctx := c.UserContext()
			attrs := []any{"method", c.Method(), "path", c.Path(), "status", status, "duration_ms", float64(d.Microseconds()) / 1000,
				"request_id", c.Locals("requestid"), "ip", c.IP()}
			if id, ok := tenant.ID(ctx); ok {
				attrs = append(attrs, "tenant_id", id.String())
			}
			if act, ok := tenant.Authenticated(ctx); ok {
				attrs = append(attrs, "actor", act.Subject())
			}
			a.Log.InfoContext(ctx, "request", attrs...)
		}
		return err
	}
}
