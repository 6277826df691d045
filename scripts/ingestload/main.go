// Command ingestload is a bounded load test of inbound webhooks: it posts signed messages to an
// api channel of a running Switchboard at a fixed rate for a fixed time, prints the rate it
// achieved, latency percentiles and errors, and then checks through the API that every message
// it sent is stored exactly once.
//
//	go run ./scripts/ingestload -url http://127.0.0.1:8080 -setup
//	    logs in as the demo owner (owner@acme.test), creates an API key and an api channel,
//	    prints them, and runs with them
//	go run ./scripts/ingestload -url http://127.0.0.1:8080 -channel <public id> -secret <channel secret> \
//	    -api-key sbk_… [-rate 500] [-duration 30s] [-senders 300] [-max-p99 50ms]
//
// First every sender writes once, untimed, at up to 50/s, so that the timed run meets an inbox
// where its customers and their conversations exist (-warmup=false leaves that out). The timed
// load is open-loop: message i is due at start + i/rate whether or not earlier answers have
// come back, and its latency is counted from that moment, so a server that falls behind shows
// as latency rather than as a slower sender. Each run writes its own message ids and its own
// senders (contacts named "ingestload <run> #<n>"), so runs against the same channel do not
// disturb each other's check. The check reads the channel's conversations and their messages
// with the API key (about one request per sender; 429 answers are waited out).
//
// It targets 127.0.0.1 / localhost only unless -allow-remote is given. The exit status is 1 when
// a delivery failed, a message is missing or stored twice, or p99 exceeds -max-p99.
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-cloud/switchboard/modules/channels/apichannel"
)

type options struct {
	base, channel, secret, apiKey string
	rate                          float64
	duration, timeout, maxP99     time.Duration
	senders, maxInflight          int
	setup, verify, allowRemote    bool
	warmup                        bool
	email, password               string
}

func main() {
	o := options{}
	flag.StringVar(&o.base, "url", "http://127.0.0.1:8080", "base URL of the running server")
	flag.StringVar(&o.channel, "channel", "", "public id of the api channel (see -setup)")
	flag.StringVar(&o.secret, "secret", "", "the channel's signing secret (its config key \"secret\")")
	flag.StringVar(&o.apiKey, "api-key", "", "API key (sbk_…) for the check; without it the check is skipped")
	flag.Float64Var(&o.rate, "rate", 500, "messages per second")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "how long to send")
	flag.IntVar(&o.senders, "senders", 300, "distinct customers the messages come from")
	flag.IntVar(&o.maxInflight, "max-inflight", 2000, "most deliveries waiting for an answer at once")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-delivery timeout")
	flag.DurationVar(&o.maxP99, "max-p99", 0, "fail when p99 latency exceeds this (0: report only)")
	flag.BoolVar(&o.setup, "setup", false, "log in, create an API key and an api channel, and use them")
	flag.StringVar(&o.email, "email", "owner@acme.test", "login for -setup")
	flag.StringVar(&o.password, "password", envOr("SWITCHBOARD_DEMO_PASSWORD", "switchboard-demo"), "password for -setup")
	flag.BoolVar(&o.verify, "verify", true, "check through the API that every message is stored exactly once")
	flag.BoolVar(&o.warmup, "warmup", true, "first send one untimed message from each sender (its contact and conversation exist, as in a running inbox)")
	flag.BoolVar(&o.allowRemote, "allow-remote", false, "allow a -url that is not 127.0.0.1 or localhost")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "ingestload:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run(o options) error {
	u, err := url.Parse(o.base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-url must be an absolute http(s) URL, got %q", o.base)
	}
	if h := u.Hostname(); !o.allowRemote && h != "localhost" && !net.ParseIP(h).IsLoopback() {
		return fmt.Errorf("-url %s is not on this machine; pass -allow-remote to load another host", o.base)
	}
	o.base = strings.TrimSuffix(o.base, "/")
	switch {
	case o.rate <= 0 || o.rate > 100_000:
		return errors.New("-rate must be in (0, 100000]")
	case o.duration <= 0 || o.duration > time.Hour:
		return errors.New("-duration must be in (0, 1h]")
	case o.senders < 1:
		return errors.New("-senders must be at least 1")
	case o.maxInflight < 1:
		return errors.New("-max-inflight must be at least 1")
	}
	client := newClient(o)
	api := &apiClient{base: o.base, http: client, key: o.apiKey}
	if o.setup {
		if err := setup(api, &o); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
	}
	if o.channel == "" || o.secret == "" {
		return errors.New("-channel and -secret are required (or -setup)")
	}
	var channelID string
	if o.verify && api.key != "" {
		if channelID, err = api.channelID(o.channel); err != nil {
			return err
		}
	} else if o.verify {
		fmt.Println("   no -api-key: the stored-exactly-once check is skipped")
		o.verify = false
	}

	runID := runID()
	ok := true
	var phases []outcome
	if o.warmup {
		rate := min(o.rate, 50)
		fmt.Printf("== warm-up: one message from each of the %d senders at %g/s, not timed (run %s)\n", o.senders, rate, runID)
		w := send(client, o, runID, "w", o.senders, rate)
		if n := w.failed(); n > 0 {
			fmt.Printf("FAIL: %d warm-up deliveries were not answered 200\n", n)
			ok = false
		}
		phases = append(phases, w)
	}
	total := int(o.rate * o.duration.Seconds())
	fmt.Printf("== load: %d messages at %g/s for %s from %d senders to %s/hooks/api/%s (run %s)\n",
		total, o.rate, o.duration, o.senders, o.base, o.channel, runID)
	res := send(client, o, runID, "", total, o.rate)
	ok = report(res, o) && ok
	phases = append(phases, res)

	if o.verify {
		fmt.Printf("== check: every message of run %s stored exactly once (channel %s)\n", runID, channelID)
		if err := check(api, channelID, runID, phases...); err != nil {
			fmt.Println("FAIL:", err)
			ok = false
		} else {
			fmt.Println("   ok")
		}
	}
	if !ok {
		return errors.New("failed")
	}
	return nil
}

// newClient keeps a connection per delivery in flight alive between deliveries.
func newClient(o options) *http.Client {
	return &http.Client{Timeout: o.timeout, Transport: &http.Transport{
		MaxIdleConns: o.maxInflight, MaxIdleConnsPerHost: o.maxInflight, IdleConnTimeout: time.Minute, DisableCompression: true,
	}}
}

func runID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return strconv.FormatInt(time.Now().Unix()%1_000_000, 36) + hex.EncodeToString(b)
}

// result is what became of one delivery.
type result struct {
	status  int           // HTTP status, 0 on a transport error
	err     string        // transport error
	latency time.Duration // from when it was due to its answer
	service time.Duration // from when it was sent to its answer
}

type outcome struct {
	ids     []string // the message id of each delivery
	results []result
	start   time.Time     // when the first delivery was due
	elapsed time.Duration // from the first due time to the last answer
}

func (o outcome) failed() int {
	n := 0
	for _, r := range o.results {
		if r.status != http.StatusOK {
			n++
		}
	}
	return n
}

// send delivers total messages at rate; message i comes from sender i mod -senders and has the
// id ingestload-<run>-<phase><i>.
func send(client *http.Client, o options, run, phase string, total int, rate float64) outcome {
	hook := o.base + "/hooks/api/" + url.PathEscape(o.channel)
	results := make([]result, total)
	ids := make([]string, total)
	for i := range ids {
		ids[i] = "ingestload-" + run + "-" + phase + strconv.Itoa(i)
	}
	sem := make(chan struct{}, o.maxInflight)
	var wg sync.WaitGroup
	var done, failed atomic.Int64
	start := time.Now()
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				fmt.Printf("   %5.0fs  answered %d, failed %d, waiting %d\n", time.Since(start).Seconds(), done.Load(), failed.Load(), len(sem))
			}
		}
	}()
	for i := range total {
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			k := i % o.senders
			body, _ := json.Marshal(map[string]any{
				"message_id":  ids[i],
				"contact":     map[string]string{"external_id": fmt.Sprintf("ingestload-%s-%d", run, k), "name": fmt.Sprintf("ingestload %s #%d", run, k)},
				"text":        fmt.Sprintf("你好，我的订单 #%d 还没到，请帮我查一下", i),
				"occurred_at": time.Now().UTC().Format(time.RFC3339),
			})
			req, _ := http.NewRequest(http.MethodPost, hook, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			sent := time.Now()
			req.Header.Set(apichannel.SignatureHeader, apichannel.Sign(o.secret, sent, body))
			r := result{}
			resp, err := client.Do(req)
			if err != nil {
				r.err = err.Error()
			} else {
				_, _ = io.Copy(io.Discard, resp.Body) // to the end, so the connection is reused
				resp.Body.Close()
				r.status = resp.StatusCode
			}
			now := time.Now()
			r.latency, r.service = now.Sub(due), now.Sub(sent)
			results[i] = r
			done.Add(1)
			if r.status != http.StatusOK {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	return outcome{ids: ids, results: results, start: start, elapsed: time.Since(start)}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(p*float64(len(sorted)-1))]
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64) + "ms"
}

// report prints the run's figures and says whether it passed.
func report(out outcome, o options) bool {
	var lat, svc []time.Duration
	statuses := map[string]int{}
	okCount := 0
	for _, r := range out.results {
		switch {
		case r.status == http.StatusOK:
			okCount++
		case r.status == 0:
			statuses["transport: "+r.err]++
		default:
			statuses[strconv.Itoa(r.status)]++
		}
		lat = append(lat, r.latency)
		svc = append(svc, r.service)
	}
	slices.Sort(lat)
	slices.Sort(svc)
	n := len(out.results)
	fmt.Printf("== result: %d messages in %.1fs: %.0f msg/s achieved (target %g/s), %d ok, %d failed\n",
		n, out.elapsed.Seconds(), float64(n)/out.elapsed.Seconds(), o.rate, okCount, n-okCount)
	fmt.Printf("   latency from due time: p50 %s  p95 %s  p99 %s  max %s\n",
		ms(percentile(lat, 0.50)), ms(percentile(lat, 0.95)), ms(percentile(lat, 0.99)), ms(percentile(lat, 1)))
	fmt.Printf("   latency from sending:  p50 %s  p95 %s  p99 %s\n", ms(percentile(svc, 0.50)), ms(percentile(svc, 0.95)), ms(percentile(svc, 0.99)))
	// The second (by due time) with the slowest p99 tells a steady overload from a stall.
	worst, worstAt := time.Duration(0), 0
	for sec := 0; float64(sec) < float64(n)/o.rate; sec++ {
		var w []time.Duration
		for i := int(float64(sec) * o.rate); i < min(int(float64(sec+1)*o.rate), n); i++ {
			w = append(w, out.results[i].latency)
		}
		slices.Sort(w)
		if p := percentile(w, 0.99); p > worst {
			worst, worstAt = p, sec
		}
	}
	fmt.Printf("   slowest second: %ds after the start (%s), p99 %s\n", worstAt,
		out.start.Add(time.Duration(worstAt)*time.Second).UTC().Format("15:04:05Z"), ms(worst))
	keys := make([]string, 0, len(statuses))
	for k := range statuses {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Printf("   errors %s: %d\n", k, statuses[k])
	}
	pass := okCount == n
	if o.maxP99 > 0 && percentile(lat, 0.99) > o.maxP99 {
		fmt.Printf("FAIL: p99 %s is above %s\n", ms(percentile(lat, 0.99)), o.maxP99)
		pass = false
	}
	if okCount != n {
		fmt.Printf("FAIL: %d deliveries were not answered 200\n", n-okCount)
	}
	return pass
}

// apiClient calls the REST API with an API key (or a session during -setup).
type apiClient struct {
	base         string
	http         *http.Client
	key          string
	cookie, csrf string
}

// do sends a request and decodes a JSON answer into out, waiting out 429s.
func (a *apiClient) do(method, path string, in, out any) error {
	for attempt := 0; ; attempt++ {
		var body io.Reader
		if in != nil {
			b, err := json.Marshal(in)
			if err != nil {
				return err
			}
			body = bytes.NewReader(b)
		}
		req, err := http.NewRequest(method, a.base+path, body)
		if err != nil {
			return err
		}
		if in != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if a.key != "" {
			req.Header.Set("Authorization", "Bearer "+a.key)
		} else if a.cookie != "" {
			req.AddCookie(&http.Cookie{Name: "sb_session", Value: a.cookie})
			req.Header.Set("X-CSRF-Token", a.csrf)
		}
		resp, err := a.http.Do(req)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests && attempt < 5 {
			wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			wait = min(max(wait, 1), 65)
			fmt.Printf("   %s %s: rate limited, waiting %ds\n", method, path, wait)
			time.Sleep(time.Duration(wait) * time.Second)
			continue
		}
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(raw))
		}
		if out != nil {
			if err := json.Unmarshal(raw, out); err != nil {
				return fmt.Errorf("%s %s: %w", method, path, err)
			}
		}
		for _, c := range resp.Cookies() {
			if c.Name == "sb_session" {
				a.cookie = c.Value
			}
		}
		return nil
	}
}

// setup logs in, creates an API key and an api channel with a fresh secret, and prints them.
func setup(a *apiClient, o *options) error {
	var login struct {
		CSRF string `json:"csrf_token"`
	}
	if err := a.do("POST", "/api/v1/auth/login", map[string]string{"email": o.email, "password": o.password}, &login); err != nil {
		return err
	}
	a.csrf = login.CSRF
	var key struct {
		Key string `json:"key"`
	}
	if err := a.do("POST", "/api/v1/api-keys", map[string]string{"name": "ingestload", "role": "tenant_admin"}, &key); err != nil {
		return err
	}
	a.key, o.apiKey = key.Key, key.Key
	secret := make([]byte, 24)
	_, _ = rand.Read(secret)
	o.secret = hex.EncodeToString(secret)
	var ch struct {
		ID       string `json:"id"`
		PublicID string `json:"public_id"`
	}
	// Replies are never sent: the load only writes in. The webhook URL must still be valid.
	cfg := map[string]string{apichannel.KeySecret: o.secret, apichannel.KeyWebhookURL: o.base + "/ingestload-replies"}
	if err := a.do("POST", "/api/v1/channels", map[string]any{"type": apichannel.Type, "name": "ingestload", "config": cfg}, &ch); err != nil {
		return err
	}
	o.channel = ch.PublicID
	fmt.Printf("== setup as %s: API key %s, api channel %s (public id %s), secret %s\n", o.email, key.Key, ch.ID, ch.PublicID, o.secret)
	return nil
}

type page[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// channelID finds the id of the channel with the public id.
func (a *apiClient) channelID(publicID string) (string, error) {
	cursor := ""
	for {
		var p page[struct {
			ID       string `json:"id"`
			PublicID string `json:"public_id"`
		}]
		if err := a.do("GET", "/api/v1/channels?type=api&limit=200&cursor="+url.QueryEscape(cursor), nil, &p); err != nil {
			return "", err
		}
		for _, c := range p.Items {
			if c.PublicID == publicID {
				return c.ID, nil
			}
		}
		if p.NextCursor == nil {
			return "", fmt.Errorf("no api channel with public id %s is visible to the API key", publicID)
		}
		cursor = *p.NextCursor
	}
}

// runConversations lists the conversations of this run's senders on the channel, with what
// changes when a message joins them.
func (a *apiClient) runConversations(channelID, run string) ([]string, string, error) {
	prefix := "ingestload " + run + " #"
	var ids []string
	var stamp strings.Builder
	cursor := ""
	for {
		var p page[struct {
			ID            string `json:"id"`
			ContactName   string `json:"contact_name"`
			LastMessageAt string `json:"last_message_at"`
			UpdatedAt     string `json:"updated_at"`
		}]
		if err := a.do("GET", "/api/v1/conversations?limit=200&channel_id="+channelID+"&cursor="+url.QueryEscape(cursor), nil, &p); err != nil {
			return nil, "", err
		}
		for _, c := range p.Items {
			if strings.HasPrefix(c.ContactName, prefix) {
				ids = append(ids, c.ID)
				stamp.WriteString(c.ID + c.LastMessageAt + c.UpdatedAt)
			}
		}
		if p.NextCursor == nil {
			break
		}
		cursor = *p.NextCursor
	}
	slices.Sort(ids)
	return ids, stamp.String(), nil
}

// check counts the run's message ids among the messages of its senders' conversations. It
// first waits until those conversations stop changing: a server that fell behind is still
// storing deliveries whose senders gave up waiting, and the inbox's order moves meanwhile.
func check(a *apiClient, channelID, run string, phases ...outcome) error {
	convs, stamp, err := a.runConversations(channelID, run)
	if err != nil {
		return err
	}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		time.Sleep(2 * time.Second)
		again, stamp2, err := a.runConversations(channelID, run)
		if err != nil {
			return err
		}
		if stamp2 == stamp {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("the conversations were still changing after 2 minutes")
		}
		fmt.Println("   the server is still storing messages; waiting")
		convs, stamp = again, stamp2
	}
	seen := map[string]int{}
	for _, id := range convs {
		cursor := ""
		for {
			var p page[struct {
				ID         string  `json:"id"`
				ProviderID *string `json:"provider_id"`
			}]
			if err := a.do("GET", "/api/v1/conversations/"+id+"/messages?limit=200&cursor="+url.QueryEscape(cursor), nil, &p); err != nil {
				return err
			}
			for _, m := range p.Items {
				if m.ProviderID != nil && strings.HasPrefix(*m.ProviderID, "ingestload-"+run+"-") {
					seen[*m.ProviderID]++
				}
			}
			if p.NextCursor == nil {
				break
			}
			cursor = *p.NextCursor
		}
	}
	found := 0
	for _, n := range seen {
		found += n
	}
	var sent, missing, twice, failedStored, failed int
	for _, out := range phases {
		for i, r := range out.results {
			sent++
			n := seen[out.ids[i]]
			delete(seen, out.ids[i])
			switch {
			case n > 1:
				twice++
			case r.status == http.StatusOK && n == 0:
				missing++
			case r.status != http.StatusOK:
				failed++
				failedStored += n
			}
		}
	}
	fmt.Printf("   %d conversations, %d messages of %d sent; %d acknowledged but missing, %d stored more than once, %d unknown ids; %d of %d failed deliveries were stored anyway\n",
		len(convs), found, sent, missing, twice, len(seen), failedStored, failed)
	if missing > 0 || twice > 0 || len(seen) > 0 {
		return fmt.Errorf("%d missing, %d stored twice, %d unknown", missing, twice, len(seen))
	}
	return nil
}
