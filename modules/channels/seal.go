package channels

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// sealVersion prefixes sealed credentials so the key or the cipher can change later without
// guessing what a stored value is.
const sealVersion byte = 1

// Sealer encrypts channel credentials at rest with AES-256-GCM under a key derived from the
// service's secret key. The tenant and channel ids are the additional data: a sealed value
// copied onto another row (or another tenant's row) does not open.
type Sealer struct{ aead cipher.AEAD }

// NewSealer derives the credential key from the secret key of the configuration.
func NewSealer(secretKey []byte) (*Sealer, error) {
	if len(secretKey) < 32 {
		return nil, errors.New("channels: the secret key must be at least 32 bytes")
	}
	m := hmac.New(sha256.New, secretKey)
	m.Write([]byte("switchboard channel credentials v1"))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("channels: credential cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("channels: credential cipher: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

func aad(tenantID, channelID uuid.UUID) []byte {
	return append(tenantID[:len(tenantID):len(tenantID)], channelID[:]...)
}

// Seal encrypts plain for the channel.
func (s *Sealer) Seal(tenantID, channelID uuid.UUID, plain []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	out := append([]byte{sealVersion}, nonce...)
	return s.aead.Seal(out, nonce, plain, aad(tenantID, channelID))
}

// Open decrypts what Seal produced for the same channel.
func (s *Sealer) Open(tenantID, channelID uuid.UUID, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n || sealed[0] != sealVersion {
		return nil, errors.New("channels: sealed credentials have an unknown format")
	}
	plain, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], aad(tenantID, channelID))
	if err != nil {
		return nil, fmt.Errorf("channels: open credentials: %w", err)
	}
	return plain, nil
}
