// Package quorum splits a ceremony's secret among custodians so that any m of
// the n can reconstruct it and fewer learn nothing, and checks every share as it
// is presented.
//
// The secret is a random scalar of the ristretto255 group, split with Shamir's
// scheme and committed with Feldman's (github.com/cloudflare/circl/secretsharing):
// the commitments are public and stored in the quorum Record with the ceremony
// outputs, so each share is verified on entry against them and a wrong,
// mistyped or foreign share is named instead of silently producing a wrong
// secret. Token PINs and the backup KEK are derived from the secret with HKDF
// (see Derive and the README in the ceremony directory).
//
// Secret material (the secret and share values) lives in []byte that callers
// wipe with Wipe as soon as they are done.
package quorum

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/secretsharing"
)

// RecordFormat identifies the quorum record file format.
const RecordFormat = "keyceremony-quorum/v1"

// SetIDLen is the length of a quorum set identifier.
const SetIDLen = 16

var grp = group.Ristretto255

// groupName is recorded so a future format can change the group explicitly.
const groupName = "ristretto255"

// Errors an unlock shows to people; test with errors.Is.
var (
	ErrChecksum       = errors.New("share checksum does not match")
	ErrOtherQuorum    = errors.New("share belongs to another ceremony's quorum")
	ErrInvalidShare   = errors.New("share does not match the quorum's commitments")
	ErrDuplicateShare = errors.New("share already presented")
	ErrNotEnough      = errors.New("not enough shares")
	ErrMalformed      = errors.New("not a share")
)

// Custodian is one holder of a share.
type Custodian struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
}

// Record is the public description of a quorum: who holds which share, how
// many are needed, and Feldman commitments to the polynomial, which let anyone
// check a share without learning the secret. It is written next to the ceremony
// outputs and read again by every ceremony that unlocks the quorum.
type Record struct {
	Format     string `json:"format"`
	SetID      string `json:"set_id"`
	CeremonyID string `json:"ceremony_id"`
	// Purpose is "recovery" for the recovery quorum whose secret alone
	// derives the backup KEK; empty for the quorum that unlocks the token.
	Purpose     string      `json:"purpose,omitempty"`
	Created     time.Time   `json:"created"`
	Group       string      `json:"group"`
	Threshold   int         `json:"threshold"`
	Custodians  []Custodian `json:"custodians"`
	Commitments []string    `json:"commitments"`
}

// Secret is the reconstructed quorum secret (a scalar's 32-byte encoding).
type Secret struct {
	b       []byte
	setID   []byte
	purpose string // the record's: "" or RecoveryQuorum
}

// Wipe zeroes the secret. The Secret is unusable afterwards.
func (s *Secret) Wipe() {
	if s == nil {
		return
	}
	clear(s.b)
	s.b = nil
}

// Split creates a fresh quorum secret for ceremonyID and shares it among the
// custodians (share i+1 goes to custodians[i]); any threshold of them recover it.
// The caller wipes the secret and every share.
func Split(ceremonyID string, threshold int, custodians []string) (*Record, *Secret, []*Share, error) {
	return SplitFor(ceremonyID, "", threshold, custodians)
}

// Purposes of a quorum record.
const (
	// RecoveryQuorum is the purpose of the recovery quorum, the only one
	// from which the backup KEK is derived.
	RecoveryQuorum = "recovery"
)

// SplitFor is Split for a quorum with a purpose ("" or RecoveryQuorum).
func SplitFor(ceremonyID, purpose string, threshold int, custodians []string) (*Record, *Secret, []*Share, error) {
	n := len(custodians)
	if threshold < 2 || threshold > n || n > 255 {
		return nil, nil, nil, fmt.Errorf("split secret: threshold %d of %d custodians is not possible (2 <= m <= n <= 255)", threshold, n)
	}
	setID := make([]byte, SetIDLen)
	if _, err := rand.Read(setID); err != nil {
		return nil, nil, nil, err
	}
	secret := grp.RandomNonZeroScalar(rand.Reader)
	defer secret.SetUint64(0)
	// circl's t is the polynomial degree: t+1 shares recover the secret.
	ss := secretsharing.New(rand.Reader, uint(threshold-1), secret)
	commits := ss.CommitSecret()
	rec := &Record{
		Format:     RecordFormat,
		SetID:      hex.EncodeToString(setID),
		CeremonyID: ceremonyID,
		Purpose:    purpose,
		Created:    time.Now().UTC().Truncate(time.Second),
		Group:      groupName,
		Threshold:  threshold,
	}
	for _, c := range commits {
		b, err := c.MarshalBinaryCompress()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("encode commitment: %w", err)
		}
		rec.Commitments = append(rec.Commitments, hex.EncodeToString(b))
	}
	for i := range custodians {
		rec.Custodians = append(rec.Custodians, Custodian{Index: i + 1, Name: custodians[i]})
	}
	tag, err := rec.Tag()
	if err != nil {
		return nil, nil, nil, err
	}
	shares := make([]*Share, n)
	for i, sh := range ss.Share(uint(n)) {
		v, err := sh.Value.MarshalBinary()
		sh.Value.SetUint64(0)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("encode share: %w", err)
		}
		shares[i] = &Share{version: formatV2.version, Index: i + 1, Threshold: threshold, value: v, tag: tag}
	}
	sb, err := secret.MarshalBinary()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("encode secret: %w", err)
	}
	return rec, &Secret{b: sb, setID: setID, purpose: purpose}, shares, nil
}

// ReadRecord reads and checks a quorum record file.
func ReadRecord(path string) (*Record, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read quorum record: %w", err)
	}
	r, err := ParseRecord(raw)
	if err != nil {
		return nil, fmt.Errorf("quorum record %s: %w", path, err)
	}
	return r, nil
}

// ParseRecord parses and checks a quorum record's bytes, so a caller that
// hashed them parses exactly what it hashed.
func ParseRecord(raw []byte) (*Record, error) {
	var r Record
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, err
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	return &r, nil
}

// Marshal encodes the record as indented JSON.
func (r *Record) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func (r *Record) check() error {
	if r.Format != RecordFormat {
		return fmt.Errorf("format %q is not %q", r.Format, RecordFormat)
	}
	if r.Group != groupName {
		return fmt.Errorf("group %q is not supported", r.Group)
	}
	if r.Purpose != "" && r.Purpose != RecoveryQuorum {
		return fmt.Errorf("purpose %q is not known", r.Purpose)
	}
	if id, err := hex.DecodeString(r.SetID); err != nil || len(id) != SetIDLen {
		return errors.New("set_id is not 16 bytes of hex")
	}
	if r.Threshold < 2 || r.Threshold > len(r.Custodians) || len(r.Custodians) > 255 {
		return fmt.Errorf("threshold %d of %d custodians", r.Threshold, len(r.Custodians))
	}
	for i, c := range r.Custodians {
		if c.Index != i+1 {
			return fmt.Errorf("custodian %q has index %d, want %d", c.Name, c.Index, i+1)
		}
	}
	if len(r.Commitments) != r.Threshold {
		return fmt.Errorf("%d commitments for threshold %d", len(r.Commitments), r.Threshold)
	}
	_, err := r.commitments()
	return err
}

func (r *Record) commitments() (secretsharing.SecretCommitment, error) {
	out := make(secretsharing.SecretCommitment, len(r.Commitments))
	for i, h := range r.Commitments {
		b, err := hex.DecodeString(h)
		if err != nil {
			return nil, fmt.Errorf("commitment %d: %w", i, err)
		}
		e := grp.NewElement()
		if err := e.UnmarshalBinary(b); err != nil {
			return nil, fmt.Errorf("commitment %d: %w", i, err)
		}
		out[i] = e
	}
	return out, nil
}

func (r *Record) setID() []byte {
	b, _ := hex.DecodeString(r.SetID)
	return b
}

// SetLabel is the short form of the set ID printed on share cards and in
// errors (the 4 bytes a format-1 share carries).
func (r *Record) SetLabel() string { return r.SetID[:8] }

// recordTagDomain separates the record tag from any other hash.
const recordTagDomain = "keyceremony quorum record v2\n"

// Tag is what a format-2 share carries to bind it to the whole record: the
// first 12 bytes of SHA-256 over the domain and the record's canonical JSON
// (every field: set ID, ceremony, purpose, creation time, threshold,
// custodians, commitments).
func (r *Record) Tag() ([recordTagLen]byte, error) {
	var tag [recordTagLen]byte
	raw, err := json.Marshal(r)
	if err != nil {
		return tag, err
	}
	sum := sha256.Sum256(append([]byte(recordTagDomain), raw...))
	copy(tag[:], sum[:])
	return tag, nil
}

// IndexOf returns the share index of the custodian named name, or 0.
func (r *Record) IndexOf(name string) int {
	for _, c := range r.Custodians {
		if c.Name == name {
			return c.Index
		}
	}
	return 0
}

// Custodian returns the name of the holder of share index, or "".
func (r *Record) Custodian(index int) string {
	if index >= 1 && index <= len(r.Custodians) {
		return r.Custodians[index-1].Name
	}
	return ""
}

// Verify checks a share against this quorum: same set, index in range, same
// threshold, and Feldman's check against the commitments. The error names the
// custodian the share claims to be from.
func (r *Record) Verify(s *Share) error {
	if s.version == 1 {
		if subtle.ConstantTimeCompare(s.setPrefix[:], r.setID()[:4]) != 1 {
			return fmt.Errorf("%w (its quorum is %x, this ceremony's is %s): ask the custodian for the share of %s", ErrOtherQuorum, s.setPrefix, r.SetLabel(), r.CeremonyID)
		}
	} else {
		tag, err := r.Tag()
		if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare(s.tag[:], tag[:]) != 1 {
			return fmt.Errorf("%w: the share was issued with another quorum record than this one (set %s of %s): either it is another ceremony's share, "+
				"or this record is not the one issued with the shares (its names, threshold or commitments were changed, or it was replaced)", ErrOtherQuorum, r.SetLabel(), r.CeremonyID)
		}
		// Bound to this record: the threshold is the record's.
		s.Threshold = r.Threshold
	}
	who := r.Custodian(s.Index)
	if who == "" {
		return fmt.Errorf("%w: share index %d is not one of the %d issued", ErrInvalidShare, s.Index, len(r.Custodians))
	}
	if s.Threshold != r.Threshold {
		return fmt.Errorf("%w: share %d (%s) says %d-of-n, the quorum is %d-of-%d", ErrInvalidShare, s.Index, who, s.Threshold, r.Threshold, len(r.Custodians))
	}
	commits, err := r.commitments()
	if err != nil {
		return err
	}
	sh, err := s.scalars()
	if err != nil {
		return fmt.Errorf("%w: share %d (%s)", ErrInvalidShare, s.Index, who)
	}
	defer sh.Value.SetUint64(0)
	if !secretsharing.Verify(uint(r.Threshold-1), sh, commits) {
		return fmt.Errorf("%w: share %d (%s) is not the share issued to %s; check it was copied correctly", ErrInvalidShare, s.Index, who, who)
	}
	return nil
}

// Collector gathers shares one at a time during an unlock, verifying each on
// entry, and reconstructs the secret once enough are in.
type Collector struct {
	rec    *Record
	shares map[int]*Share
}

// NewCollector starts an unlock of the quorum.
func (r *Record) NewCollector() *Collector {
	return &Collector{rec: r, shares: map[int]*Share{}}
}

// Add verifies s and keeps it. It returns the custodian the share belongs to.
// On error the share is wiped and not kept. The Collector takes ownership of s.
func (c *Collector) Add(s *Share) (string, error) {
	if err := c.rec.Verify(s); err != nil {
		s.Wipe()
		return "", err
	}
	who := c.rec.Custodian(s.Index)
	if _, dup := c.shares[s.Index]; dup {
		s.Wipe()
		return who, fmt.Errorf("%w: share %d (%s) was already presented", ErrDuplicateShare, s.Index, who)
	}
	c.shares[s.Index] = s
	return who, nil
}

// Have is how many valid shares are in.
func (c *Collector) Have() int { return len(c.shares) }

// Need is the threshold.
func (c *Collector) Need() int { return c.rec.Threshold }

// Presented lists the custodians whose shares are in, by index.
func (c *Collector) Presented() []Custodian {
	var out []Custodian
	for _, cu := range c.rec.Custodians {
		if _, ok := c.shares[cu.Index]; ok {
			out = append(out, cu)
		}
	}
	return out
}

// Combine reconstructs the secret from the shares collected and wipes them.
// It fails with ErrNotEnough below the threshold.
func (c *Collector) Combine() (*Secret, error) {
	defer c.Wipe()
	if len(c.shares) < c.rec.Threshold {
		return nil, fmt.Errorf("%w: %d of %d presented", ErrNotEnough, len(c.shares), c.rec.Threshold)
	}
	var list []secretsharing.Share
	defer func() {
		for _, s := range list {
			s.Value.SetUint64(0)
		}
	}()
	for _, cu := range c.rec.Custodians {
		s, ok := c.shares[cu.Index]
		if !ok {
			continue
		}
		sc, err := s.scalars()
		if err != nil {
			return nil, err
		}
		list = append(list, sc)
	}
	secret, err := secretsharing.Recover(uint(c.rec.Threshold-1), list)
	if err != nil {
		return nil, fmt.Errorf("recover secret: %w", err)
	}
	defer secret.SetUint64(0)
	// Every share passed Feldman's check, so this cannot fail unless the
	// library is wrong; check anyway against the commitment to the secret.
	commits, err := c.rec.commitments()
	if err != nil {
		return nil, err
	}
	if !grp.NewElement().MulGen(secret).IsEqual(commits[0]) {
		return nil, errors.New("recovered secret does not match the quorum's commitment")
	}
	b, err := secret.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return &Secret{b: b, setID: c.rec.setID(), purpose: c.rec.Purpose}, nil
}

// Wipe zeroes every share held.
func (c *Collector) Wipe() {
	for i, s := range c.shares {
		s.Wipe()
		delete(c.shares, i)
	}
}
