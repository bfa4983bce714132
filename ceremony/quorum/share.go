package quorum

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"

	"github.com/cloudflare/circl/secretsharing"
)

// Share is one custodian's share of a quorum secret.
//
// As text it is 72 base32 characters (A-Z, 2-7) in 18 groups of four:
//
//	version(1) | quorum set prefix(4) | index(1) | threshold(1) | value(32) | checksum(6)
//
// where checksum is the first 6 bytes of SHA-256("keyceremony share v1" ||
// the preceding 39 bytes). The checksum catches typing mistakes before any
// cryptography runs; the set prefix names a share from another ceremony; the
// value is then verified against the quorum's commitments.
type Share struct {
	setPrefix [4]byte
	Index     int
	Threshold int
	value     []byte
}

const (
	shareVersion   = 1
	shareValueLen  = 32
	sharePayload   = 1 + 4 + 1 + 1 + shareValueLen
	shareChecksum  = 6
	shareBytes     = sharePayload + shareChecksum // 45 bytes = 72 base32 characters
	shareChars     = shareBytes * 8 / 5
	groupSize      = 4
	groupsPerLine  = 6
	checksumDomain = "keyceremony share v1"
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// SetLabel is the quorum set prefix the share carries, as printed on its card.
func (s *Share) SetLabel() string { return fmt.Sprintf("%x", s.setPrefix) }

// Wipe zeroes the share value.
func (s *Share) Wipe() {
	if s == nil {
		return
	}
	clear(s.value)
	s.value = nil
}

func checksum(payload []byte) []byte {
	h := sha256.New()
	h.Write([]byte(checksumDomain))
	h.Write(payload)
	return h.Sum(nil)[:shareChecksum]
}

// Text encodes the share as 18 space-separated groups of four characters.
// The caller wipes the result.
func (s *Share) Text() []byte {
	raw := make([]byte, 0, shareBytes)
	raw = append(raw, shareVersion)
	raw = append(raw, s.setPrefix[:]...)
	raw = append(raw, byte(s.Index), byte(s.Threshold))
	raw = append(raw, s.value...)
	raw = append(raw, checksum(raw)...)
	enc := make([]byte, shareChars)
	b32.Encode(enc, raw)
	clear(raw)
	out := make([]byte, 0, shareChars+shareChars/groupSize)
	for i := 0; i < len(enc); i += groupSize {
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, enc[i:i+groupSize]...)
	}
	clear(enc)
	return out
}

// Lines splits Text into the three lines of six groups printed on a share
// card. The caller wipes each line.
func (s *Share) Lines() [][]byte {
	t := s.Text()
	defer clear(t)
	var lines [][]byte
	per := groupsPerLine * (groupSize + 1)
	for i := 0; i < len(t); i += per {
		end := min(i+per-1, len(t))
		lines = append(lines, append([]byte(nil), t[i:end]...))
	}
	return lines
}

// Compact is the share without spaces, as encoded in the card's QR code.
// The caller wipes the result.
func (s *Share) Compact() []byte {
	t := s.Text()
	defer clear(t)
	out := make([]byte, 0, shareChars)
	for _, c := range t {
		if c != ' ' {
			out = append(out, c)
		}
	}
	return out
}

// ParseShare decodes a share typed by a person or read from a file or QR
// code. Case, spaces, hyphens and line breaks are ignored, and the digits 0, 1
// and 8, which base32 does not use, are read as the letters O, I and B they
// are mistaken for. The caller keeps ownership of text.
func ParseShare(text []byte) (*Share, error) {
	norm := make([]byte, 0, shareChars)
	defer func() { clear(norm) }()
	for _, c := range text {
		switch {
		case c == ' ' || c == '-' || c == '\n' || c == '\r' || c == '\t':
			continue
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		case c == '0':
			c = 'O'
		case c == '1':
			c = 'I'
		case c == '8':
			c = 'B'
		}
		if !(c >= 'A' && c <= 'Z') && !(c >= '2' && c <= '7') {
			return nil, fmt.Errorf("%w: it contains %q, which is not a share character (A-Z, 2-7)", ErrMalformed, rune(c))
		}
		norm = append(norm, c)
	}
	if len(norm) != shareChars {
		return nil, fmt.Errorf("%w: it has %d characters, a share has %d (18 groups of 4)", ErrMalformed, len(norm), shareChars)
	}
	raw := make([]byte, shareBytes)
	defer clear(raw)
	if _, err := b32.Decode(raw, norm); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	want := checksum(raw[:sharePayload])
	if string(want) != string(raw[sharePayload:]) {
		return nil, fmt.Errorf("%w: a character was mistyped or left out; compare it group by group with the card", ErrChecksum)
	}
	if raw[0] != shareVersion {
		return nil, fmt.Errorf("%w: share format version %d is not supported", ErrMalformed, raw[0])
	}
	s := &Share{Index: int(raw[5]), Threshold: int(raw[6]), value: append([]byte(nil), raw[7:sharePayload]...)}
	copy(s.setPrefix[:], raw[1:5])
	if s.Index == 0 || s.Threshold < 2 {
		s.Wipe()
		return nil, fmt.Errorf("%w: index %d, threshold %d", ErrMalformed, s.Index, s.Threshold)
	}
	return s, nil
}

// scalars converts the share to circl's form; the caller zeroes Value.
func (s *Share) scalars() (secretsharing.Share, error) {
	v := grp.NewScalar()
	if err := v.UnmarshalBinary(s.value); err != nil {
		return secretsharing.Share{}, fmt.Errorf("%w: value is not a scalar", ErrMalformed)
	}
	id := grp.NewScalar()
	id.SetUint64(uint64(s.Index))
	return secretsharing.Share{ID: id, Value: v}, nil
}
