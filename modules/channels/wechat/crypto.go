package wechat

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

// WeChat's message encryption ("safe mode", 安全模式): AES-256-CBC with the key
// base64(EncodingAESKey+"="), the IV its first 16 bytes, PKCS#7 padding to a 32-byte block, over
// 16 random bytes ‖ 4-byte big-endian length ‖ message ‖ AppID.
const padBlock = 32

// signature is WeChat's signature: hex SHA-1 of the parts sorted and concatenated. Plain mode
// signs token, timestamp and nonce; safe mode adds the Encrypt text (or the encrypted echostr).
func signature(parts ...string) string {
	s := append([]string(nil), parts...)
	sort.Strings(s)
	sum := sha1.Sum([]byte(strings.Join(s, "")))
	return hex.EncodeToString(sum[:])
}

// checkSignature compares in constant time, ignoring the case of the hex digits.
func checkSignature(got string, parts ...string) bool {
	return got != "" && hmac.Equal([]byte(strings.ToLower(got)), []byte(signature(parts...)))
}

// aesKey decodes an EncodingAESKey: 43 base64 characters, 32 bytes once the missing "=" is back.
// The decoding is lenient about the unused low bits of the last character, as WeChat's own
// libraries are, because the console generates keys without caring about them.
func aesKey(encodingAESKey string) ([]byte, error) {
	if len(encodingAESKey) != 43 {
		return nil, fmt.Errorf("encoding_aes_key must be 43 characters, not %d", len(encodingAESKey))
	}
	k, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil || len(k) != 32 {
		return nil, errors.New("encoding_aes_key is not the base64 of 32 bytes")
	}
	return k, nil
}

// decrypt opens a safe-mode ciphertext and checks it was made for appID. A ciphertext that is
// not base64 or not whole AES blocks is an unreadable payload; one that does not open under the
// key, or opens to another AppID, was not made by WeChat for this account, which is what a
// signature failure means.
func decrypt(key []byte, encrypted, appID string) ([]byte, error) {
	ct, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encrypted))
	if err != nil {
		return nil, fmt.Errorf("wechat: Encrypt is not base64: %w", provider.ErrPayload)
	}
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("wechat: Encrypt is %d bytes, not whole AES blocks: %w", len(ct), provider.ErrPayload)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("wechat: %v: %w", err, provider.ErrSignature)
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, key[:aes.BlockSize]).CryptBlocks(pt, ct)
	pad := int(pt[len(pt)-1])
	if pad < 1 || pad > padBlock || pad > len(pt) || !bytes.Equal(pt[len(pt)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		return nil, fmt.Errorf("wechat: Encrypt does not open with encoding_aes_key: %w", provider.ErrSignature)
	}
	pt = pt[:len(pt)-pad]
	if len(pt) < 20 {
		return nil, fmt.Errorf("wechat: decrypted message too short: %w", provider.ErrSignature)
	}
	n := binary.BigEndian.Uint32(pt[16:20])
	if uint64(n) > uint64(len(pt)-20) {
		return nil, fmt.Errorf("wechat: decrypted length %d exceeds the message: %w", n, provider.ErrSignature)
	}
	msg, from := pt[20:20+n], pt[20+n:]
	if !hmac.Equal(from, []byte(appID)) {
		return nil, fmt.Errorf("wechat: message is for app id %q, not this channel's: %w", from, provider.ErrSignature)
	}
	return msg, nil
}

// encrypt is decrypt's inverse; the fixture uses it to build safe-mode deliveries.
func encrypt(key []byte, msg []byte, appID string) (string, error) {
	pt := make([]byte, 20, 20+len(msg)+len(appID)+padBlock)
	if _, err := rand.Read(pt[:16]); err != nil {
		return "", err
	}
	binary.BigEndian.PutUint32(pt[16:20], uint32(len(msg)))
	pt = append(append(pt, msg...), appID...)
	pad := padBlock - len(pt)%padBlock
	pt = append(pt, bytes.Repeat([]byte{byte(pad)}, pad)...)
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", err
	}
	cipher.NewCBCEncrypter(block, key[:aes.BlockSize]).CryptBlocks(pt, pt)
	return base64.StdEncoding.EncodeToString(pt), nil
}
