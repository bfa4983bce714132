package transcript

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// VerifyError names the first entry of a transcript that does not match.
type VerifyError struct {
	Seq    int    // 1-based entry (line) number
	Step   string // the step the entry claims, when it could be read
	Reason string
}

func (e *VerifyError) Error() string {
	if e.Step != "" {
		return fmt.Sprintf("transcript entry %d (step %s): %s", e.Seq, e.Step, e.Reason)
	}
	return fmt.Sprintf("transcript entry %d: %s", e.Seq, e.Reason)
}

// ErrEmpty is returned for a transcript without entries.
var ErrEmpty = errors.New("transcript has no entries")

// Report is what Verify found in a transcript that matches.
type Report struct {
	Entries []Entry
	// Files is the number of output files whose hashes were checked.
	Files int
	// Plan is the anchor plan the first entry records; nil for a transcript
	// written before anchors existed.
	Plan *Plan
	// Signatures are the signature anchors, in order; each verified with the
	// key it names over the hash of the entry before it.
	Signatures []SignatureAnchor
	// MACFrom is the first entry carrying the quorum's MAC (0: none); every
	// entry after it carries one too.
	MACFrom int
}

// SignatureAnchor is one verified signature anchor.
type SignatureAnchor struct {
	Seq  int    // the anchor entry
	Step string // its step
	Head string // the hash it signs: entry Seq-1's
	// Key is the signing key's SubjectPublicKeyInfo (DER).
	Key []byte
}

// Verify reads the transcript at path and recomputes everything it can: every
// line is a canonical entry, sequence numbers count up from 1, each entry's
// previous hash is the hash of the entry before it, each entry's hash matches
// its contents, and every output file an entry recorded (relative to the
// transcript's directory) still has the recorded SHA-256. The first entry that
// fails any of these is named in a *VerifyError.
func Verify(path string) (*Report, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read transcript: %w", err)
	}
	if len(raw) == 0 {
		return nil, ErrEmpty
	}
	dir := filepath.Dir(path)
	rep := &Report{}
	prev := GenesisHash
	lines := bytes.SplitAfter(raw, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	for i, line := range lines {
		seq := i + 1
		fail := func(step, format string, a ...any) error {
			return &VerifyError{Seq: seq, Step: step, Reason: fmt.Sprintf(format, a...)}
		}
		body, complete := bytes.CutSuffix(line, []byte("\n"))
		var e Entry
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil || dec.More() {
			return nil, fail("", "not a readable transcript entry (the line was edited or damaged)")
		}
		if !complete {
			return nil, fail(e.Step, "the line is incomplete (the transcript was cut short)")
		}
		canon, err := marshal(e)
		if err != nil || !bytes.Equal(canon, body) {
			return nil, fail(e.Step, "the line is not in the form the ceremony wrote (it was edited)")
		}
		if e.Seq != seq {
			return nil, fail(e.Step, "sequence number %d where %d was expected (entries were removed, inserted or reordered)", e.Seq, seq)
		}
		if e.Prev != prev {
			return nil, fail(e.Step, "its previous-entry hash does not match entry %d (entries were removed, inserted or reordered)", seq-1)
		}
		h, err := computeHash(e)
		if err != nil || h != e.Hash {
			return nil, fail(e.Step, "its contents do not match its hash (the entry was changed)")
		}
		if err := rep.anchors(e); err != nil {
			return nil, fail(e.Step, "%v", err)
		}
		for _, o := range e.Outputs {
			if err := checkName(o.Path); err != nil {
				return nil, fail(e.Step, "output %v", err)
			}
			got, err := HashFile(filepath.Join(dir, o.Path), o.Path)
			switch {
			case errors.Is(err, os.ErrNotExist):
				return nil, fail(e.Step, "output file %s is missing from %s", o.Path, dir)
			case err != nil:
				return nil, fail(e.Step, "output file %s: %v", o.Path, err)
			case got.SHA256 != o.SHA256 || got.Size != o.Size:
				return nil, fail(e.Step, "output file %s has changed: SHA-256 %s, recorded %s", o.Path, got.SHA256, o.SHA256)
			}
			rep.Files++
		}
		prev = e.Hash
		rep.Entries = append(rep.Entries, e)
	}
	return rep, nil
}

// anchors checks what an entry carries of the anchors (its hash already
// matched): the plan in the first entry, a signature over the entry before
// it, the MAC run that starts at the first MAC'd entry and never stops.
func (rep *Report) anchors(e Entry) error {
	if e.Seq == 1 {
		p, err := PlanOf(e)
		if err != nil {
			return err
		}
		rep.Plan = p
	}
	if e.MAC != "" {
		if b, err := hex.DecodeString(e.MAC); err != nil || len(b) != sha256.Size || hex.EncodeToString(b) != e.MAC {
			return errors.New("its quorum MAC is not 64 lower-case hexadecimal digits (it was edited)")
		}
	}
	switch {
	case e.MAC != "" && rep.MACFrom == 0:
		rep.MACFrom = e.Seq
	case e.MAC == "" && rep.MACFrom != 0:
		return fmt.Errorf("it carries no quorum MAC although every entry from %d on must: it was added or rewritten without the quorum", rep.MACFrom)
	}
	if p := rep.Plan; p != nil && e.OK() {
		if p.MACFrom != "" && e.Step == p.MACFrom && e.MAC == "" {
			return fmt.Errorf("the plan says the quorum's MAC starts at step %s, but this entry carries none", p.MACFrom)
		}
		if p.signs(e.Step) && e.Signature == nil {
			return fmt.Errorf("the plan says step %s carries the token's signature, but this entry carries none", e.Step)
		}
	}
	if e.Signature == nil {
		return nil
	}
	if err := e.Signature.check(e.Prev); err != nil {
		return err
	}
	_, der, _ := e.Signature.PublicKey()
	rep.Signatures = append(rep.Signatures, SignatureAnchor{Seq: e.Seq, Step: e.Step, Head: e.Prev, Key: der})
	return nil
}
