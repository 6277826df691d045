package provider

import (
	"net/http"
	"sync"
)

// Fixture lets tests outside an adapter drive it with its provider's real wire format: the
// integration tests of the inbox walk every adapter's fixture (stored once, forged signature →
// 401, redelivery → one message, outbound reaches the fake API, a 500 is retried then marked
// failed) without knowing any provider.
type Fixture struct {
	Type string
	// Config is a complete channel configuration whose API calls go to apiBase.
	Config func(apiBase string) map[string]string
	// Inbound builds a signed webhook delivery of a text message with the given provider message
	// id, sender and text, for the channel (whose Config is the one above, WebhookURL set).
	Inbound func(ch Channel, providerID, from, text string) Request
	// Media builds a signed delivery of an image message (nil when the type has no media).
	Media func(ch Channel, providerID, from string) Request
	// Status builds a signed delivery status update for an outbound provider message id (nil when
	// the provider sends none).
	Status func(ch Channel, providerMessageID, status string) Request
	// Forge returns the request with its signature removed (forged=false) or wrong (forged=true).
	Forge func(r Request, forged bool) Request
	// From is the identity Inbound's sender becomes (kind and the normalised value for from).
	From func(from string) Identity
	// FakeAPI is a local fake of the provider's API that records each call; Fail makes it answer
	// 500 until cleared.
	FakeAPI func() *FakeAPI
}

// Call is one request the fake API received.
type Call struct {
	Method, Path, Query string
	Header              http.Header
	Body                []byte
}

// FakeAPI records the calls a provider fake receives and can be told to fail.
type FakeAPI struct {
	mu      sync.Mutex
	calls   []Call
	fail    int
	Handler http.Handler // set by the fixture; wrap it with Record
}

// Record is called by a fake's handler for each request; it reports whether to answer 500.
func (f *FakeAPI) Record(c Call) (fail bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	return f.fail != 0
}

// Fail makes the fake answer 500 (on) or normally (off).
func (f *FakeAPI) Fail(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if on {
		f.fail = 1
	} else {
		f.fail = 0
	}
}

// Calls returns a copy of the calls so far.
func (f *FakeAPI) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}
