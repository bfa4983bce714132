package quorum

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/hkdf"
)

// Purpose names what a derived value is for; it is the HKDF info string's tail,
// so values derived for different purposes are independent.
type Purpose string

const (
	UserPIN Purpose = "user-pin"
	SOPIN   Purpose = "so-pin"
	// BackupKEK is the KEK of backups made before the recovery quorum
	// (format 1), derived from the quorum that unlocks the token.
	BackupKEK Purpose = "backup-kek"
	// RecoveryKEK is the backup KEK, derived from the recovery quorum's
	// secret only (RecoveryKEK refuses any other secret).
	RecoveryKEK Purpose = "recovery-kek"
	// TranscriptMAC keys the MAC every transcript entry carries from the
	// first unlock on (see the transcript package's anchors).
	TranscriptMAC Purpose = "transcript-mac"
)

// infoPrefix versions the derivation; changing anything in it changes every PIN.
const infoPrefix = "keyceremony/v1/"

// pinChars is the length of a derived PIN when the token allows it: 32 base32
// characters carry 160 bits.
const pinChars = 32

// minPINChars is the shortest derived PIN accepted (80 bits).
const minPINChars = 16

// Derive returns n bytes of HKDF-SHA-256 with the secret as input keying
// material, the quorum's 16-byte set ID as salt, and "keyceremony/v1/" +
// purpose as info. The caller wipes the result.
func (s *Secret) Derive(p Purpose, n int) ([]byte, error) {
	if s == nil || len(s.b) == 0 {
		return nil, errors.New("quorum secret is not available (wiped or never reconstructed)")
	}
	out := make([]byte, n)
	r := hkdf.New(sha256.New, s.b, s.setID, []byte(infoPrefix+string(p)))
	if _, err := io.ReadFull(r, out); err != nil {
		return nil, fmt.Errorf("derive %s: %w", p, err)
	}
	return out, nil
}

// PIN derives a token PIN: the first L characters of the base32 encoding
// (A-Z, 2-7) of 20 derived bytes, where L is 32 or the token's maximum PIN
// length if that is smaller. Tokens whose maximum is under 16 characters are
// refused rather than given a weak PIN. The caller wipes the result.
func (s *Secret) PIN(p Purpose, tokenMaxLen int) ([]byte, error) {
	l := pinChars
	if tokenMaxLen > 0 && tokenMaxLen < l {
		l = tokenMaxLen
	}
	if l < minPINChars {
		return nil, fmt.Errorf("the token allows PINs of at most %d characters; a quorum-derived PIN needs %d", tokenMaxLen, minPINChars)
	}
	raw, err := s.Derive(p, 20)
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	enc := make([]byte, b32.EncodedLen(len(raw)))
	b32.Encode(enc, raw)
	pin := append([]byte(nil), enc[:l]...)
	clear(enc)
	return pin, nil
}

// LegacyKEK derives the 32-byte AES-256 KEK of a format-1 backup, from the
// quorum that unlocks the token (which is why backups now use RecoveryKEK).
// The caller wipes it.
func (s *Secret) LegacyKEK() ([]byte, error) {
	if s != nil && s.purpose == RecoveryQuorum {
		return nil, errors.New("a format-1 backup's KEK comes from the quorum that unlocks the token, not from the recovery quorum")
	}
	return s.Derive(BackupKEK, 32)
}

// RecoveryKEK derives the 32-byte AES-256 backup KEK. Only the recovery
// quorum's secret derives it: the secret of the quorum that unlocks the
// token at every routine ceremony is refused. The caller wipes it.
func (s *Secret) RecoveryKEK() ([]byte, error) {
	if s == nil || s.purpose != RecoveryQuorum {
		return nil, errors.New("the backup KEK is derived from the recovery quorum only, not from the quorum that unlocks the token")
	}
	return s.Derive(RecoveryKEK, 32)
}

// Purpose is the purpose of the quorum the secret belongs to ("" or RecoveryQuorum).
func (s *Secret) Purpose() string { return s.purpose }
