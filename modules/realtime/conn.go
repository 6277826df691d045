package realtime

import (
	"errors"
	"time"

	"github.com/gofiber/contrib/websocket"
)

// Close codes a client acts on: after CloseRetry (or CloseGoingAway) it reconnects with the last
// event id it saw, after ClosePolicy it logs in again first, after CloseReload it reloads its
// state and subscribes without since.
const (
	CloseNormal    = websocket.CloseNormalClosure
	CloseGoingAway = websocket.CloseGoingAway
	ClosePolicy    = websocket.ClosePolicyViolation
	CloseInternal  = websocket.CloseInternalServerErr
	CloseRetry     = websocket.CloseTryAgainLater
	CloseReload    = 4410
)

// CloseCode maps why a subscription ended to a WebSocket close code and a short reason.
func CloseCode(err error) (int, string) {
	switch {
	case err == nil:
		return CloseNormal, "closed"
	case errors.Is(err, ErrSlowConsumer):
		return CloseRetry, "too slow: reconnect with since"
	case errors.Is(err, ErrResync), errors.Is(err, ErrUnavailable):
		return CloseRetry, "live stream interrupted: reconnect with since"
	case errors.Is(err, ErrShutdown):
		return CloseGoingAway, "server shutting down: reconnect with since"
	case errors.Is(err, ErrAuthLost):
		return ClosePolicy, "authentication lost"
	case errors.Is(err, ErrSinceExpired):
		return CloseReload, "since expired: reload"
	default:
		return CloseInternal, "internal error"
	}
}

// ConnOptions tune Serve; zero values take the defaults.
type ConnOptions struct {
	// PingInterval is how often the server pings (30 s); a client silent for two intervals is
	// dropped.
	PingInterval time.Duration
	// WriteTimeout bounds one write (10 s): a client that stops reading is dropped rather than
	// left holding a goroutine.
	WriteTimeout time.Duration
	// ReadLimit is the largest client frame accepted (4 KiB); client frames are small commands.
	ReadLimit int64
}

// ServeConn sends sub's events over conn as JSON text frames and hands each text frame the
// client sends to onClientFrame (which may be nil), until either side ends. It closes sub, and
// ends the socket with the close code of sub's reason. The console's route and the widget's
// both run their sockets through it.
func ServeConn(conn *websocket.Conn, sub *Subscription, onClientFrame func(frame []byte)) {
	ConnOptions{}.Serve(conn, sub, onClientFrame)
}

// Serve is ServeConn with options.
func (o ConnOptions) Serve(conn *websocket.Conn, sub *Subscription, onClientFrame func(frame []byte)) {
	if o.PingInterval <= 0 {
		o.PingInterval = 30 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.ReadLimit <= 0 {
		o.ReadLimit = 4 << 10
	}
	defer sub.Close()
	wait := 2*o.PingInterval + o.WriteTimeout
	conn.SetReadLimit(o.ReadLimit)
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(wait)) })
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			typ, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			_ = conn.SetReadDeadline(time.Now().Add(wait))
			if typ == websocket.TextMessage && onClientFrame != nil {
				onClientFrame(data)
			}
		}
	}()
	ping := time.NewTicker(o.PingInterval)
	defer ping.Stop()
	code, reason := 0, ""
loop:
	for {
		select {
		case ev, ok := <-sub.C:
			if !ok {
				code, reason = CloseCode(sub.Err())
				break loop
			}
			b, err := ev.JSON()
			if err != nil {
				continue
			}
			_ = conn.SetWriteDeadline(time.Now().Add(o.WriteTimeout))
			if err := conn.WriteMessage(websocket.TextMessage, b); err != nil {
				break loop
			}
		case <-ping.C:
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(o.WriteTimeout)); err != nil {
				break loop
			}
		case <-readDone:
			// The client closed (the library has answered its close frame) or went silent.
			break loop
		}
	}
	sub.Close()
	if code != 0 {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
		select { // let the client answer the close before the connection goes
		case <-readDone:
		case <-time.After(2 * time.Second):
		}
	}
	_ = conn.Close()
	// The caller's Conn goes back to a pool when this returns: no reads may be left running.
	<-readDone
}
