// Command wsload is a load test of the realtime WebSocket: it opens N sockets to one tenant,
// publishes M events through the server and checks that every socket received every event
// exactly once, printing handshake and delivery latencies.
//
// The events are typing signals sent as client frames by a few of the sockets (each with a
// conversation id of its own as a marker), so the test needs nothing but the socket itself:
// every event takes the path a journaled one takes after its commit — publish to Redis, every
// serve process's PSUBSCRIBE, every local socket. A server allows a socket about 10 client
// frames a second, hence several publishers and a rate per publisher.
//
//	go run ./scripts/wsload -key sbk_…                          the console socket of a local server
//	go run ./scripts/wsload -login owner@acme.test:switchboard-demo -n 1000 -m 200
//	go run ./scripts/wsload -url wss://host/widget/… -header 'X-Visitor-Token: …'
//	go run ./scripts/wsload -url ws://a:8080/api/v1/realtime,ws://b:8080/api/v1/realtime -key …
//
// scripts/ws-load.sh builds and starts a server (or two sharing a Redis) and runs this against it.
//
// A local server must let one address open this many sockets a minute:
// SWITCHBOARD_RATE_PER_IP=100000 SWITCHBOARD_RATE_PER_TENANT=100000 switchboard serve --demo.
// Exit status 1 when a socket failed or missed or repeated an event.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/google/uuid"
)

// Config is one run.
type Config struct {
	// URL is the socket's address, or several separated by commas (one per serve process of a
	// deployment): the sockets are spread over them in turn, so an event sent through one
	// process must reach the sockets of every other.
	URL        string
	Header     http.Header
	Sockets    int
	Events     int
	Publishers int
	// Rate is events per second per publisher.
	Rate float64
	// DialParallel bounds handshakes in flight.
	DialParallel int
	// Wait is how long delivery may take after the last event was sent.
	Wait time.Duration
}

// Result is what a run measured.
type Result struct {
	Connected, DialFailed int
	DialErrors            map[string]int
	DialTime              time.Duration
	Handshake             []time.Duration
	Published             int
	PublishTime           time.Duration
	Delivered, Missing    int
	// Unsent counts events no socket received: lost before the fan-out, typically a client frame
	// the server dropped (its per-socket frame limit, when it reads a publisher's frames late).
	Unsent      int
	Duplicates  int
	ClosedEarly map[string]int
	// Latency runs from the publisher's send, FanOut from the event's time on the server (so it
	// leaves out the publisher's frame on its way in; only meaningful with synchronised clocks).
	Latency, FanOut []time.Duration
}

// OK reports whether every socket connected and got every event exactly once.
func (r Result) OK() bool {
	return r.DialFailed == 0 && r.Missing == 0 && r.Duplicates == 0 && len(r.ClosedEarly) == 0 && r.Published > 0
}

type headerFlag struct{ h http.Header }

func (f *headerFlag) String() string { return "" }

func (f *headerFlag) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return errors.New(`want "Name: value"`)
	}
	f.h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	return nil
}

func main() {
	cfg := Config{Header: http.Header{}}
	hf := &headerFlag{h: cfg.Header}
	flag.StringVar(&cfg.URL, "url", "ws://127.0.0.1:8080/api/v1/realtime", "socket URL, or several separated by commas (sockets spread over them)")
	key := flag.String("key", "", "API key, sent as Authorization: Bearer")
	login := flag.String("login", "", "email:password to log in with instead of a key (the console's session cookie)")
	flag.Var(hf, "header", `extra request header "Name: value" (repeatable), e.g. the widget's credentials`)
	flag.IntVar(&cfg.Sockets, "n", 1000, "sockets")
	flag.IntVar(&cfg.Events, "m", 100, "events")
	flag.IntVar(&cfg.Publishers, "publishers", 4, "sockets that send the events")
	flag.Float64Var(&cfg.Rate, "rate", 2, "events per second per publisher (the server accepts about 10 frames a second from a socket)")
	flag.IntVar(&cfg.DialParallel, "dial-parallel", 50, "handshakes in flight")
	flag.DurationVar(&cfg.Wait, "wait", 30*time.Second, "how long delivery may take after the last event")
	flag.Parse()
	if *key != "" {
		cfg.Header.Set("Authorization", "Bearer "+*key)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *login != "" {
		cookie, err := logIn(ctx, cfg.URL, *login)
		if err != nil {
			fmt.Fprintln(os.Stderr, "wsload:", err)
			os.Exit(2)
		}
		cfg.Header.Set("Cookie", cookie)
	}
	res, err := Run(ctx, cfg)
	Report(os.Stdout, cfg, res)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsload:", err)
		os.Exit(2)
	}
	if !res.OK() {
		os.Exit(1)
	}
}

// logIn posts to the API's login next to the socket URL and returns the session cookie.
func logIn(ctx context.Context, socketURL, cred string) (string, error) {
	email, password, ok := strings.Cut(cred, ":")
	if !ok {
		return "", errors.New("-login wants email:password")
	}
	first, _, _ := strings.Cut(socketURL, ",")
	u, err := url.Parse(first)
	if err != nil {
		return "", err
	}
	u.Scheme = strings.Replace(u.Scheme, "ws", "http", 1)
	u.Path, u.RawQuery = "/api/v1/auth/login", ""
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("log in: %s: %s", res.Status, b)
	}
	for _, c := range res.Cookies() {
		if c.Name == "sb_session" {
			return "sb_session=" + c.Value, nil
		}
	}
	return "", errors.New("log in: no session cookie")
}

// run state shared by the sockets.
type run struct {
	cfg    Config
	marker map[uuid.UUID]int // conversation id → event index; read-only once running
	sentAt []atomic.Int64    // unix nanoseconds the event was sent
	done   chan struct{}     // closed when the sockets should stop reading

	mu        sync.Mutex
	latency   []time.Duration
	fanOut    []time.Duration
	complete  int
	completed chan struct{} // closed when every socket has every event
}

type socket struct {
	conn   *websocket.Conn
	counts []uint16
	have   int
	full   bool  // counted as complete (every event, or ended early)
	err    error // why it ended before the run did
	ended  chan struct{}
}

// Run performs one load test.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Sockets < 1 || cfg.Events < 1 || cfg.Publishers < 1 || cfg.Publishers > cfg.Sockets || cfg.Rate <= 0 {
		return Result{}, errors.New("need sockets ≥ publishers ≥ 1, events ≥ 1 and a positive rate")
	}
	if cfg.DialParallel < 1 {
		cfg.DialParallel = 1
	}
	r := &run{cfg: cfg, marker: make(map[uuid.UUID]int, cfg.Events), sentAt: make([]atomic.Int64, cfg.Events),
		done: make(chan struct{}), completed: make(chan struct{})}
	markers := make([]uuid.UUID, cfg.Events)
	for i := range markers {
		markers[i] = uuid.New()
		r.marker[markers[i]] = i
	}
	res := Result{DialErrors: map[string]int{}, ClosedEarly: map[string]int{}}
	urls := strings.Split(cfg.URL, ",")

	// Connect every socket before publishing: an event is only owed to sockets already open.
	sockets := make([]*socket, cfg.Sockets)
	handshakes := make([]time.Duration, cfg.Sockets)
	sem := make(chan struct{}, cfg.DialParallel)
	var wg sync.WaitGroup
	dialer := websocket.Dialer{HandshakeTimeout: 30 * time.Second}
	start := time.Now()
	for i := range sockets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t0 := time.Now()
			conn, resp, err := dialer.DialContext(ctx, urls[i%len(urls)], cfg.Header)
			if err != nil {
				reason := err.Error()
				if resp != nil {
					reason = resp.Status
				}
				r.mu.Lock()
				res.DialErrors[reason]++
				r.mu.Unlock()
				return
			}
			handshakes[i] = time.Since(t0)
			sockets[i] = &socket{conn: conn, counts: make([]uint16, cfg.Events), ended: make(chan struct{})}
		}()
	}
	wg.Wait()
	res.DialTime = time.Since(start)
	var open []*socket
	for i, s := range sockets {
		if s != nil {
			open = append(open, s)
			res.Handshake = append(res.Handshake, handshakes[i])
		}
	}
	res.Connected, res.DialFailed = len(open), cfg.Sockets-len(open)
	defer func() {
		for _, s := range open {
			_ = s.conn.Close()
		}
	}()
	if len(open) < cfg.Publishers {
		return res, fmt.Errorf("only %d sockets connected", len(open))
	}
	r.complete = len(open)
	for _, s := range open {
		go r.read(s)
	}

	// Publish: publisher p sends the events p, p+P, p+2P, … at its rate. Publishers are the
	// first sockets, so with several URLs they sit on different processes too.
	start = time.Now()
	var sent atomic.Int64
	for p := range cfg.Publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
			defer tick.Stop()
			for i := p; i < cfg.Events; i += cfg.Publishers {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				frame := `{"type":"typing","conversation_id":"` + markers[i].String() + `"}`
				r.sentAt[i].Store(time.Now().UnixNano())
				if err := open[p].conn.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
					return
				}
				sent.Add(1)
			}
		}()
	}
	wg.Wait()
	res.Published, res.PublishTime = int(sent.Load()), time.Since(start)

	select {
	case <-r.completed:
		// Give duplicates a moment to show up.
		time.Sleep(500 * time.Millisecond)
	case <-time.After(cfg.Wait):
	case <-ctx.Done():
	}
	close(r.done)
	for _, s := range open {
		_ = s.conn.SetReadDeadline(time.Now())
	}
	reached := make([]int, cfg.Events)
	for _, s := range open {
		<-s.ended
		for i, c := range s.counts {
			if c > 0 {
				reached[i]++
			}
			switch {
			case c == 0:
				res.Missing++
			case c > 1:
				res.Duplicates += int(c) - 1
				res.Delivered++
			default:
				res.Delivered++
			}
		}
		if s.err != nil {
			res.ClosedEarly[s.err.Error()]++
		}
	}
	for _, n := range reached {
		if n == 0 {
			res.Unsent++
		}
	}
	res.Latency, res.FanOut = r.latency, r.fanOut
	return res, ctx.Err()
}

// read counts the marked events a socket receives until the run ends.
func (r *run) read(s *socket) {
	defer close(s.ended)
	var ev struct {
		Kind           string    `json:"kind"`
		ConversationID uuid.UUID `json:"conversation_id"`
		At             time.Time `json:"at"`
	}
	for {
		_, b, err := s.conn.ReadMessage()
		if err != nil {
			select {
			case <-r.done:
			default:
				s.err = err
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					s.err = fmt.Errorf("closed %d %s", ce.Code, ce.Text)
				}
				r.finish(s) // it will get nothing more
			}
			return
		}
		now := time.Now()
		ev.Kind, ev.ConversationID, ev.At = "", uuid.Nil, time.Time{}
		if json.Unmarshal(b, &ev) != nil || ev.Kind != "typing" {
			continue
		}
		i, ok := r.marker[ev.ConversationID]
		if !ok {
			continue
		}
		s.counts[i]++
		if s.counts[i] > 1 {
			continue
		}
		s.have++
		d := time.Duration(now.UnixNano() - r.sentAt[i].Load())
		r.mu.Lock()
		r.latency = append(r.latency, d)
		r.fanOut = append(r.fanOut, now.Sub(ev.At))
		r.mu.Unlock()
		if s.have == len(s.counts) {
			r.finish(s)
		}
	}
}

func (r *run) finish(s *socket) {
	if s.full {
		return
	}
	s.full = true
	r.mu.Lock()
	defer r.mu.Unlock()
	r.complete--
	if r.complete == 0 {
		close(r.completed)
	}
}

// Report prints a run.
func Report(w io.Writer, cfg Config, r Result) {
	fmt.Fprintf(w, "target      %s\n", strings.ReplaceAll(cfg.URL, ",", ", "))
	fmt.Fprintf(w, "sockets     %d of %d connected in %s (handshake %s)\n", r.Connected, cfg.Sockets, r.DialTime.Round(time.Millisecond), percentiles(r.Handshake))
	for reason, n := range r.DialErrors {
		fmt.Fprintf(w, "            %d failed: %s\n", n, reason)
	}
	fmt.Fprintf(w, "events      %d of %d sent by %d publishers in %s\n", r.Published, cfg.Events, cfg.Publishers, r.PublishTime.Round(time.Millisecond))
	fmt.Fprintf(w, "delivery    %d of %d (socket × event); missing %d, duplicates %d\n", r.Delivered, r.Connected*cfg.Events, r.Missing, r.Duplicates)
	if r.Unsent > 0 {
		fmt.Fprintf(w, "            %d events reached no socket: lost before the fan-out (the server drops a socket's frames beyond ~10/s;\n"+
			"            lower -rate, or the server is too busy to read them in time)\n", r.Unsent)
	}
	for reason, n := range r.ClosedEarly {
		fmt.Fprintf(w, "            %d sockets ended early: %s\n", n, reason)
	}
	fmt.Fprintf(w, "latency     %s (publisher's send → receive)\n", percentiles(r.Latency))
	fmt.Fprintf(w, "fan-out     %s (event time on the server → receive)\n", percentiles(r.FanOut))
	verdict := "OK: every socket received every event exactly once"
	if !r.OK() {
		verdict = "FAILED"
	}
	fmt.Fprintln(w, verdict)
}

func percentiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "n/a"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(p float64) time.Duration {
		return s[min(len(s)-1, int(p*float64(len(s))))].Round(10 * time.Microsecond)
	}
	return fmt.Sprintf("p50 %s p95 %s p99 %s max %s", at(0.50), at(0.95), at(0.99), s[len(s)-1].Round(10*time.Microsecond))
}
