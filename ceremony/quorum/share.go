package quorum

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"

	"github.com/cloudflare/circl/secretsharing"
)

// Share is one custodian's share of a quorum secret.
//
// As text (format 2) it is 80 base32 characters (A-Z, 2-7) in 20 groups of
// four, printed as four lines of five groups:
//
//	version=2(1) | record tag(12) | index(1) | value(32) | checksum(4)
//
// The record tag is the first 12 bytes of SHA-256 over the whole quorum
// record (Record.Tag): set ID, ceremony, threshold, custodians' names and
// commitments. A share is accepted only with the record it was issued with,
// so a substituted record (other names, another threshold, forged
// commitments) is refused share by share, before anything is combined or
// any PIN derived. The checksum (first 4 bytes of SHA-256("keyceremony
// share v2" || the preceding 46 bytes)) catches typing mistakes before any
// cryptography runs.
//
// Format 1, issued before the tag existed, is 72 characters (18 groups):
//
//	version=1(1) | quorum set prefix(4) | index(1) | threshold(1) | value(32) | checksum(6)
//
// It binds a share to 4 bytes of the set ID only; such shares are still
// accepted for their record (whose hash a script pins), and ParseShare reads both.
type Share struct {
	version   byte
	setPrefix [4]byte            // format 1
	tag       [recordTagLen]byte // format 2
	Index     int
	Threshold int // format 1 carries it; format 2 takes it from the record it is bound to
	value     []byte
}

// format describes one share text format.
type format struct {
	version    byte
	bind       int // bytes binding the share to its quorum (set prefix or record tag)
	threshold  bool
	checksum   int
	domain     string
	groupsLine int
}

var (
	formatV1 = format{version: 1, bind: 4, threshold: true, checksum: 6, domain: "keyceremony share v1", groupsLine: 6}
	formatV2 = format{version: 2, bind: recordTagLen, threshold: false, checksum: 4, domain: "keyceremony share v2", groupsLine: 5}
)

func (f format) payload() int {
	n := 1 + f.bind + 1 + shareValueLen
	if f.threshold {
		n++
	}
	return n
}
func (f format) bytes() int { return f.payload() + f.checksum }
func (f format) chars() int { return f.bytes() * 8 / 5 }

func formatOf(version byte) format {
	if version == 1 {
		return formatV1
	}
	return formatV2
}

const (
	shareValueLen = 32
	groupSize     = 4
	// recordTagLen is the length of the record tag a format-2 share carries:
	// 96 bits, so substituting a record that matches it takes 2^96 work.
	recordTagLen = 12
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// SetLabel is the quorum set prefix a format-1 share carries, or the
// start of the record tag of a format-2 share, as printed in messages.
func (s *Share) SetLabel() string {
	if s.version == 1 {
		return fmt.Sprintf("%x", s.setPrefix)
	}
	return fmt.Sprintf("%x", s.tag[:4])
}

// Version is the share's text format (1 or 2).
func (s *Share) Version() int { return int(s.version) }

// Wipe zeroes the share value.
func (s *Share) Wipe() {
	if s == nil {
		return
	}
	clear(s.value)
	s.value = nil
}

func checksum(f format, payload []byte) []byte {
	h := sha256.New()
	h.Write([]byte(f.domain))
	h.Write(payload)
	return h.Sum(nil)[:f.checksum]
}

// Text encodes the share as space-separated groups of four characters.
// The caller wipes the result.
func (s *Share) Text() []byte {
	f := formatOf(s.version)
	raw := make([]byte, 0, f.bytes())
	raw = append(raw, f.version)
	if f.version == 1 {
		raw = append(raw, s.setPrefix[:]...)
		raw = append(raw, byte(s.Index), byte(s.Threshold))
	} else {
		raw = append(raw, s.tag[:]...)
		raw = append(raw, byte(s.Index))
	}
	raw = append(raw, s.value...)
	raw = append(raw, checksum(f, raw)...)
	enc := make([]byte, f.chars())
	b32.Encode(enc, raw)
	clear(raw)
	out := make([]byte, 0, len(enc)+len(enc)/groupSize)
	for i := 0; i < len(enc); i += groupSize {
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, enc[i:i+groupSize]...)
	}
	clear(enc)
	return out
}

// Lines splits Text into the lines printed on a share card: three of six
// groups (format 1) or four of five (format 2). The caller wipes each line.
func (s *Share) Lines() [][]byte {
	t := s.Text()
	defer clear(t)
	var lines [][]byte
	per := formatOf(s.version).groupsLine * (groupSize + 1)
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
	out := make([]byte, 0, len(t))
	for _, c := range t {
		if c != ' ' {
			out = append(out, c)
		}
	}
	return out
}

// ParseShare decodes a share typed by a person or read from a file or QR
// code, in either format. Case, spaces, hyphens and line breaks are ignored,
// and the digits 0, 1 and 8, which base32 does not use, are read as the
// letters O, I and B they are mistaken for. The caller keeps ownership of text.
func ParseShare(text []byte) (*Share, error) {
	norm := make([]byte, 0, formatV2.chars())
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
	var f format
	switch len(norm) {
	case formatV2.chars():
		f = formatV2
	case formatV1.chars():
		f = formatV1
	default:
		return nil, fmt.Errorf("%w: it has %d characters, a share has %d (20 groups of 4; cards issued before 2027 have 18 groups)", ErrMalformed, len(norm), formatV2.chars())
	}
	raw := make([]byte, f.bytes())
	defer clear(raw)
	if _, err := b32.Decode(raw, norm); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	want := checksum(f, raw[:f.payload()])
	if string(want) != string(raw[f.payload():]) {
		return nil, fmt.Errorf("%w: a character was mistyped or left out; compare it group by group with the card", ErrChecksum)
	}
	if raw[0] != f.version {
		return nil, fmt.Errorf("%w: share format version %d is not supported", ErrMalformed, raw[0])
	}
	s := &Share{version: f.version}
	rest := raw[1:]
	if f.version == 1 {
		copy(s.setPrefix[:], rest[:4])
		s.Index, s.Threshold = int(rest[4]), int(rest[5])
		rest = rest[6:]
		if s.Threshold < 2 {
			return nil, fmt.Errorf("%w: index %d, threshold %d", ErrMalformed, s.Index, s.Threshold)
		}
	} else {
		copy(s.tag[:], rest[:recordTagLen])
		s.Index = int(rest[recordTagLen])
		rest = rest[recordTagLen+1:]
	}
	s.value = append([]byte(nil), rest[:shareValueLen]...)
	if s.Index == 0 {
		s.Wipe()
		return nil, fmt.Errorf("%w: index 0", ErrMalformed)
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
