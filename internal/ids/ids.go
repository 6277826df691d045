// Package ids makes identifiers. Row ids are UUIDv7 (time ordered, so b-tree inserts stay
// local and cursors sort by creation); secrets are random bytes in URL-safe base64.
package ids

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"

	"github.com/google/uuid"
)

// New returns a fresh UUIDv7.
func New() uuid.UUID { return uuid.Must(uuid.NewV7()) }

// Parse parses a UUID in its canonical form only; anything else is a malformed id.
func Parse(s string) (uuid.UUID, bool) {
	if len(s) != 36 {
		return uuid.Nil, false
	}
	u, err := uuid.Parse(s)
	return u, err == nil
}

// Secret returns n random bytes encoded as unpadded URL-safe base64.
func Secret(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("ids: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Hash is the stored form of a bearer secret (session token, API key, one-time token). The
// secrets carry 256 bits of entropy, so an unsalted SHA-256 is enough and lets us look them up.
func Hash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}
