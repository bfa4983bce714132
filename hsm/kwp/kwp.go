// Package kwp implements AES Key Wrap with Padding (RFC 5649, "KWP") in
// host software. Key Ceremony uses it in two places only: to play the
// receiving side in tests (what AWS KMS does on import), and in the one BYOK
// composition where a token lacks RSA-OAEP with SHA-256 and the material must
// pass through host memory — a step the transcript records.
package kwp

import (
	"crypto/aes"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
)

var kwpIV = [4]byte{0xA6, 0x59, 0x59, 0xA6}

// ErrIntegrity means the wrapped key failed RFC 5649's integrity check: wrong
// key, or corrupted data.
var ErrIntegrity = errors.New("key unwrap: integrity check failed (wrong key or corrupted data)")

// Wrap wraps plaintext key material with kek (16, 24 or 32 bytes).
func Wrap(kek, plaintext []byte) ([]byte, error) {
	if len(plaintext) == 0 {
		return nil, errors.New("key wrap: empty plaintext")
	}
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("key wrap: %w", err)
	}
	n := (len(plaintext) + 7) / 8
	buf := make([]byte, 8+8*n) // A || R1 .. Rn
	copy(buf[:4], kwpIV[:])
	binary.BigEndian.PutUint32(buf[4:8], uint32(len(plaintext)))
	copy(buf[8:], plaintext)
	if n == 1 {
		b.Encrypt(buf, buf)
		return buf, nil
	}
	var blk [16]byte
	for j := 0; j < 6; j++ {
		for i := 1; i <= n; i++ {
			copy(blk[:8], buf[:8])
			copy(blk[8:], buf[8*i:8*i+8])
			b.Encrypt(blk[:], blk[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(buf[:8], binary.BigEndian.Uint64(blk[:8])^t)
			copy(buf[8*i:8*i+8], blk[8:])
		}
	}
	clear(blk[:])
	return buf, nil
}

// Unwrap reverses Wrap and checks the integrity value and padding.
// The caller owns (and should clear) the returned plaintext.
func Unwrap(kek, wrapped []byte) ([]byte, error) {
	if len(wrapped) < 16 || len(wrapped)%8 != 0 {
		return nil, fmt.Errorf("key unwrap: wrapped data is %d bytes, want a multiple of 8 of at least 16", len(wrapped))
	}
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("key unwrap: %w", err)
	}
	n := len(wrapped)/8 - 1
	buf := make([]byte, len(wrapped))
	copy(buf, wrapped)
	if n == 1 {
		b.Decrypt(buf, buf)
	} else {
		var blk [16]byte
		for j := 5; j >= 0; j-- {
			for i := n; i >= 1; i-- {
				t := uint64(n*j + i)
				binary.BigEndian.PutUint64(blk[:8], binary.BigEndian.Uint64(buf[:8])^t)
				copy(blk[8:], buf[8*i:8*i+8])
				b.Decrypt(blk[:], blk[:])
				copy(buf[:8], blk[:8])
				copy(buf[8*i:8*i+8], blk[8:])
			}
		}
		clear(blk[:])
	}
	mli := int(binary.BigEndian.Uint32(buf[4:8]))
	ok := subtle.ConstantTimeCompare(buf[:4], kwpIV[:])
	if mli <= 8*(n-1) || mli > 8*n {
		ok = 0
	}
	if ok == 1 {
		var pad byte
		for _, c := range buf[8+mli:] {
			pad |= c
		}
		if pad != 0 {
			ok = 0
		}
	}
	if ok != 1 {
		clear(buf)
		return nil, ErrIntegrity
	}
	out := make([]byte, mli)
	copy(out, buf[8:8+mli])
	clear(buf)
	return out, nil
}
