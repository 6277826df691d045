package app_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// BenchmarkAuthenticatedRequest measures one authenticated GET /api/v1/members as
// owner@acme.test through the whole stack: edge middleware, rate limiters, session (or API
// key) lookup, membership and tenant resolution, the RBAC guard and the database read, on
// SQLite and (with TEST_DATABASE_URL) on PostgreSQL through the non-owner role under RLS.
// Target: ≤ 300 µs per request.
//
//	fibertest/…     through app.HTTP.Test: no network, but Test itself dumps and re-parses the
//	                request, rebuilds the router tree and starts a goroutine per call
//	tcp/…           through a real listener on 127.0.0.1 with a keep-alive client, one at a time
//	tcp_parallel/…  the same from GOMAXPROCS client goroutines: ns/op is the inverse throughput
//
// Each with a session cookie and with an API key (Authorization: Bearer).
func BenchmarkAuthenticatedRequest(b *testing.B) {
	for _, d := range []tenant.Dialect{tenant.SQLite, tenant.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			if d == tenant.Postgres && os.Getenv("TEST_DATABASE_URL") == "" {
				b.Skip("TEST_DATABASE_URL not set: PostgreSQL benchmark skipped")
			}
			e := apptest.New(b, d, apptest.Options{Env: map[string]string{
				// The limiters still run on every request; they just must not refuse the benchmark.
				"SWITCHBOARD_RATE_PER_IP":     "1000000000",
				"SWITCHBOARD_RATE_PER_TENANT": "1000000000",
			}})
			owner := e.Login("owner@acme.test")
			key := owner.Do("POST", "/api/v1/api-keys", map[string]any{"name": "bench", "role": "tenant_admin"}).Want(201).JSON()["key"].(string)
			creds := []struct {
				name string
				set  func(*http.Request)
			}{
				{"session", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "sb_session", Value: owner.Cookie}) }},
				{"apikey", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+key) }},
			}
			for _, c := range creds {
				// Both credentials see Acme's members (the demo has four).
				req := httptest.NewRequest("GET", "/api/v1/members", nil)
				c.set(req)
				res, err := e.App.HTTP.Test(req, -1)
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 || len(body) < 100 {
					b.Fatalf("%s: %d %s", c.name, res.StatusCode, body)
				}
			}

			// A read of a tenant table (api_keys): on PostgreSQL it runs in a transaction that
			// sets app.tenant_id for row-level security, which /members (global tables) does not.
			b.Run("fibertest/session_tenant_table", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					req := httptest.NewRequest("GET", "/api/v1/api-keys", nil)
					creds[0].set(req)
					res, err := e.App.HTTP.Test(req, -1)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						b.Fatalf("status %d", res.StatusCode)
					}
				}
			})
			for _, c := range creds {
				b.Run("fibertest/"+c.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						req := httptest.NewRequest("GET", "/api/v1/members", nil)
						c.set(req)
						res, err := e.App.HTTP.Test(req, -1)
						if err != nil {
							b.Fatal(err)
						}
						_, _ = io.Copy(io.Discard, res.Body)
						res.Body.Close()
						if res.StatusCode != 200 {
							b.Fatalf("status %d", res.StatusCode)
						}
					}
				})
			}

			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go func() { _ = e.App.HTTP.Listener(ln) }()
			b.Cleanup(func() { _ = e.App.HTTP.Shutdown() }) // runs before apptest closes the app
			url := "http://" + ln.Addr().String() + "/api/v1/members"
			client := &http.Client{Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64, DisableCompression: true}}
			b.Cleanup(client.CloseIdleConnections)
			get := func(b *testing.B, set func(*http.Request)) bool {
				req, err := http.NewRequest("GET", url, nil)
				if err != nil {
					b.Error(err)
					return false
				}
				set(req)
				res, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return false
				}
				_, _ = io.Copy(io.Discard, res.Body) // read to the end so the connection is reused
				res.Body.Close()
				if res.StatusCode != 200 {
					b.Errorf("status %d", res.StatusCode)
					return false
				}
				return true
			}
			for _, c := range creds {
				b.Run("tcp/"+c.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if !get(b, c.set) {
							return
						}
					}
				})
				b.Run("tcp_parallel/"+c.name, func(b *testing.B) {
					b.ReportAllocs()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if !get(b, c.set) {
								return
							}
						}
					})
				})
			}
		})
	}
}
