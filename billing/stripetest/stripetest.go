// Package stripetest runs stripe-mock, Stripe's official stateless fake API, for tests, so
// that no test ever talks to the real Stripe. The binary is pinned to the version our
// request/fixture expectations were written against and is installed with `go install`
// when it is missing: a missing tool must fail the test, never skip it, or billing code
// would silently go untested on a fresh machine.
package stripetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Module is the pinned stripe-mock module; bump it together with stripe-go.
const Module = "github.com/stripe/stripe-mock@v0.185.0"

// Server is a running stripe-mock process.
type Server struct {
	URL  string // http://127.0.0.1:<port>, for stripesync.Config.APIBase
	cmd  *exec.Cmd
	done chan struct{}
}

// Start launches a stripe-mock for t and stops it in t.Cleanup. Call it once per test and
// share the URL between subtests; a TestMain wanting one process for the whole binary
// should use Launch and Close instead.
func Start(t testing.TB) (url string) {
	t.Helper()
	s, err := Launch(t.Logf)
	if err != nil {
		t.Fatalf("stripetest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Logf("stripetest: %v", err)
		}
	})
	return s.URL
}

// Launch finds (or installs) stripe-mock, starts it on ephemeral loopback ports and waits
// until it answers. logf receives progress such as the install notice; nil discards it.
func Launch(logf func(format string, args ...any)) (*Server, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	bin, err := binary(logf)
	if err != nil {
		return nil, err
	}
	// Port 0 lets the kernel pick, which avoids the pick-then-bind race between parallel
	// test binaries; the HTTPS listener must be set too, or stripe-mock binds :12112 and
	// two binaries collide. The chosen address is read back from its stdout.
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("stdout pipe: %w", err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &Server{cmd: cmd, done: make(chan struct{})}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "Listening for HTTP at address: "); ok {
				select {
				case addrc <- a:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout) // keep draining so the child never blocks on a full pipe
	}()
	go func() { _ = cmd.Wait(); close(s.done) }()

	select {
	case a := <-addrc:
		s.URL = "http://" + a
	case <-s.done:
		return nil, fmt.Errorf("stripe-mock exited before listening: %s", stderr.String())
	case <-time.After(30 * time.Second):
		_ = s.Close()
		return nil, errors.New("stripe-mock did not report its HTTP address within 30s")
	}
	if err := s.waitReady(15 * time.Second); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// Close kills the process and waits for it to exit.
func (s *Server) Close() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill stripe-mock: %w", err)
	}
	<-s.done
	return nil
}

// waitReady polls a real endpoint, since the listener existing does not mean the spec has
// finished loading on every stripe-mock version.
func (s *Server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/v1/customers", nil)
		req.Header.Set("Authorization", "Bearer sk_test_123")
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("stripe-mock at %s not ready: %w", s.URL, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// binary returns a stripe-mock path from PATH or the go install directory, installing the
// pinned version there when neither has one. A go-installed stripe-mock reports its version
// as "master", so an existing binary's version cannot be checked and is trusted as is.
// Plain "go" is enough to find the toolchain: `go test` puts its GOROOT/bin first in PATH.
func binary(logf func(string, ...any)) (string, error) {
	if p, err := exec.LookPath("stripe-mock"); err == nil {
		return p, nil
	}
	gobin, err := installDir()
	if err != nil {
		return "", err
	}
	p := filepath.Join(gobin, "stripe-mock")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	logf("stripetest: stripe-mock not found in PATH or %s; running go install %s", gobin, Module)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "install", Module).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go install %s: %w\n%s", Module, err, out)
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("go install %s succeeded but %s is missing: %w", Module, p, err)
	}
	return p, nil
}

// installDir is where `go install` puts binaries: GOBIN, else GOPATH's first entry /bin.
func installDir() (string, error) {
	out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOBIN GOPATH: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) == 2 && strings.TrimSpace(lines[0]) != "" {
		return strings.TrimSpace(lines[0]), nil
	}
	gopath := filepath.SplitList(strings.TrimSpace(lines[len(lines)-1]))
	if len(gopath) == 0 || gopath[0] == "" {
		return "", errors.New("cannot determine GOPATH")
	}
	return filepath.Join(gopath[0], "bin"), nil
}
