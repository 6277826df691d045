// Package storage keeps message attachments: on local disk by default, in an S3-compatible
// bucket when one is configured (see Open). A Store only moves bytes under a key; the caller
// records the key, file name, size and the content type from Limits.Check in its own rows, so
// both backends behave the same and no listing or metadata lookup is ever needed.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Store keeps opaque objects under keys made of [A-Za-z0-9/_.-] segments (see ValidKey).
type Store interface {
	// Put stores exactly size bytes from r under key, replacing any object there. A negative
	// size means unknown. Readers see the old object or the whole new one, never a part: if r
	// fails, ends early or runs past size, nothing is stored.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// Get opens the object under key; ErrNotFound when there is none. The caller closes it.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Delete removes the object under key. A missing object is not an error, so a retried
	// cleanup converges.
	Delete(ctx context.Context, key string) error
}

var (
	// ErrNotFound is returned (wrapped) by Get when the key holds no object.
	ErrNotFound = errors.New("storage: not found")
	// ErrInvalidKey is returned (wrapped) for a key ValidKey refuses.
	ErrInvalidKey = errors.New("storage: invalid key")
	// ErrSize is returned (wrapped) by Put when the reader's length differs from the size given.
	ErrSize = errors.New("storage: content length differs from the declared size")
)

// maxKeyLen keeps keys within S3's 1024-byte limit, so a key valid here is valid everywhere.
const maxKeyLen = 1024

// ValidKey checks a key before it reaches a path or a URL. Keys come from our own code but are
// often built from provider ids and file names, so the rules are strict: only [A-Za-z0-9/_.-],
// no leading or trailing slash (not absolute), no empty segment, no "..", and no segment
// starting with "." (hidden files are where Local keeps its temporary files).
func ValidKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if len(key) > maxKeyLen {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidKey, maxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '/' || c == '_' || c == '.' || c == '-') {
			return fmt.Errorf("%w: %q has a character outside [A-Za-z0-9/_.-]", ErrInvalidKey, key)
		}
	}
	if strings.Contains(key, "..") {
		return fmt.Errorf("%w: %q contains \"..\"", ErrInvalidKey, key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" {
			return fmt.Errorf("%w: %q has an empty segment or is absolute", ErrInvalidKey, key)
		}
		if seg[0] == '.' {
			return fmt.Errorf("%w: %q has a segment starting with \".\"", ErrInvalidKey, key)
		}
	}
	return nil
}

// exactReader passes through exactly size bytes and fails otherwise. It looks for a surplus
// byte before handing over the last expected ones and, if there is one, withholds them: a
// consumer that knows the size (io.ReadFull filling an upload buffer) stops reading once it has
// size bytes and ignores an error that comes with them, so the error must come instead.
type exactReader struct {
	r    io.Reader
	left int64
}

func exact(r io.Reader, size int64) io.Reader {
	if size < 0 {
		return r
	}
	return &exactReader{r: r, left: size}
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left == 0 {
		return 0, e.atEnd()
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	switch {
	case err != nil && err != io.EOF:
		return n, err
	case e.left == 0:
		if err := e.atEnd(); err != io.EOF {
			return 0, err
		}
		return n, nil
	case err == io.EOF:
		return n, fmt.Errorf("%w: %d bytes short", ErrSize, e.left)
	}
	return n, nil
}

// atEnd reports io.EOF if the underlying reader is exhausted, ErrSize if it has more.
func (e *exactReader) atEnd() error {
	var b [1]byte
	n, err := io.ReadFull(e.r, b[:])
	if n > 0 {
		return fmt.Errorf("%w: more bytes than declared", ErrSize)
	}
	if err == io.EOF {
		return io.EOF
	}
	return err
}

// ctxReader stops a copy once the context is done, so a cancelled upload does not run on.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
