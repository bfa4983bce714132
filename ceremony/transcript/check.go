package transcript

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/keyceremony/keyceremony/ceremony/words"
)

// StepPDF is the step of the last entry of a complete transcript: it records
// the transcript PDF, which prints the final hash (the entry before it).
const StepPDF = "transcript-pdf"

// Complete reports whether the transcript ends with the transcript PDF's
// entry, which only a completed ceremony writes.
func (r *Report) Complete() bool {
	last := r.Entries[len(r.Entries)-1]
	return len(r.Entries) > 1 && last.Step == StepPDF && last.OK()
}

// Final is the entry whose hash is the ceremony's final hash: the one the
// transcript PDF prints and people write on the signed paper. Only a
// complete transcript has one.
func (r *Report) Final() (Entry, bool) {
	if !r.Complete() {
		return Entry{}, false
	}
	return r.Entries[len(r.Entries)-2], true
}

// Last is the last entry.
func (r *Report) Last() Entry { return r.Entries[len(r.Entries)-1] }

// Missing names what an incomplete transcript lacks: the planned steps not
// recorded as done, then the transcript PDF's entry. A transcript without a
// plan can only be said to lack its closing entries.
func (r *Report) Missing() []string {
	if r.Complete() {
		return nil
	}
	done := map[string]bool{}
	for _, e := range r.Entries {
		if e.OK() {
			done[e.Step] = true
		}
	}
	var out []string
	if r.Plan == nil {
		if !done["finish"] {
			out = append(out, "finish")
		}
		return append(out, StepPDF)
	}
	for _, s := range r.Plan.Steps {
		if !done[s] {
			out = append(out, s)
		}
	}
	return append(out, StepPDF)
}

// AnchorOf says which anchor protects entry seq against someone who can
// rewrite the file: the first signature anchor after it, the quorum MAC it
// carries, and (in a complete transcript) the final hash on paper.
func (r *Report) AnchorOf(seq int) []string {
	var out []string
	for _, s := range r.Signatures {
		if s.Seq > seq {
			out = append(out, fmt.Sprintf("token signature (entry %d)", s.Seq))
			break
		}
	}
	if r.MACFrom != 0 && seq >= r.MACFrom {
		out = append(out, "quorum MAC")
	}
	if f, ok := r.Final(); ok && seq <= f.Seq {
		out = append(out, "final hash on paper")
	}
	return out
}

// SigningKey is the key every signature anchor names (SubjectPublicKeyInfo
// DER), or nil when there is none; an error when two anchors name different keys.
func (r *Report) SigningKey() ([]byte, error) {
	var key []byte
	for _, s := range r.Signatures {
		switch {
		case key == nil:
			key = s.Key
		case !bytes.Equal(key, s.Key):
			return nil, fmt.Errorf("the signature anchors of entries %d and %d name different keys: one ceremony has one key", r.Signatures[0].Seq, s.Seq)
		}
	}
	return key, nil
}

// Expect is what a verifier brings from outside the output medium.
type Expect struct {
	// FinalHash is the final hash written on the signed paper (ParseHash).
	FinalHash []byte
	// Root is a root certificate the verifier trusts (from the published
	// fingerprint, a trust store, the root ceremony's paper): every
	// signature anchor must be made with its key.
	Root *x509.Certificate
	// AllowIncomplete accepts a transcript that ends before its closing entry.
	AllowIncomplete bool
	// AllowUnanchored accepts a transcript nothing outside the medium
	// vouches for: one written before anchors existed, or one anchored only
	// by the quorum MAC (which a third party cannot check), without FinalHash.
	AllowUnanchored bool
}

// Check applies what the verifier brings to a verified transcript, and
// returns every way it falls short as one error (nil when none).
func (r *Report) Check(x Expect) error {
	var probs []string
	add := func(format string, a ...any) { probs = append(probs, fmt.Sprintf(format, a...)) }
	last := r.Last()
	if !r.Complete() && !x.AllowIncomplete {
		add("the transcript is INCOMPLETE: it ends at entry %d (%s, %s); missing: %s", last.Seq, last.Step, last.Result, strings.Join(r.Missing(), ", "))
	}
	paperOK := false
	if x.FinalHash != nil {
		want := hex.EncodeToString(x.FinalHash)
		final, complete := r.Final()
		switch {
		case complete && final.Hash == want:
			paperOK = true
		default:
			at := 0
			for _, e := range r.Entries {
				if e.Hash == want {
					at = e.Seq
				}
			}
			switch {
			case at != 0:
				add("the hash on the paper is entry %d's, not the final hash of this transcript: entries were added after it", at)
			case !complete:
				add("the hash on the paper is not in this transcript: it stops before the final entry (a truncated copy), or it is another ceremony's")
			default:
				add("the final hash %s differs from the one on the paper (%s): this is not the transcript the paper was signed for", final.Hash, want)
			}
		}
	}
	key, err := r.SigningKey()
	if err != nil {
		add("%v", err)
	}
	if x.Root != nil && key != nil && !bytes.Equal(key, x.Root.RawSubjectPublicKeyInfo) {
		add("the anchors are signed by a key that is not the root certificate's (%s): the transcript was re-signed with another key", x.Root.Subject)
	}
	if x.Root != nil && key == nil && r.Plan != nil && len(r.Plan.Signed) > 0 {
		add("the transcript carries no signature anchor to check with the root certificate")
	}
	if !paperOK && !x.AllowUnanchored {
		switch {
		case r.Plan == nil:
			add("the transcript carries NO ANCHORS (written before Key Ceremony anchored its transcripts, or stripped of them): only the final hash on the signed paper can vouch for it; give --expect, or --allow-unanchored to accept its chain alone")
		case len(r.Plan.Signed) == 0:
			add("a %s transcript is anchored by the quorum's MAC, which only the custodians can check, and by the final hash on the signed paper: give --expect with the hash written on the paper (or --allow-unanchored to accept its chain alone)", r.kind())
		}
	}
	if len(probs) == 0 {
		return nil
	}
	return errors.New(strings.Join(probs, "\n"))
}

func (r *Report) kind() string {
	if k := r.Entries[0].Detail("kind"); k != "" {
		return k
	}
	return "this"
}

// ParseHash reads a final hash as written on paper: 64 hexadecimal digits
// (spaces and colons ignored) or the 32 PGP words.
func ParseHash(s string) ([]byte, error) {
	compact := strings.NewReplacer(" ", "", ":", "", "\t", "", "\n", "").Replace(strings.TrimSpace(s))
	if b, err := hex.DecodeString(compact); err == nil {
		if len(b) != sha256.Size {
			return nil, fmt.Errorf("the hash has %d bytes; a final hash has 32 (64 hexadecimal digits)", len(b))
		}
		return b, nil
	}
	b, err := words.Decode(s)
	if err != nil {
		return nil, fmt.Errorf("neither 64 hexadecimal digits nor the PGP words of a hash: %w", err)
	}
	if len(b) != sha256.Size {
		return nil, fmt.Errorf("%d words; a final hash has 32", len(b))
	}
	return b, nil
}

// RootCertificate looks, among the transcript's output files, for a
// certificate whose key made the signature anchors (the root certificate a
// root-generation ceremony wrote, or the chain a signing ceremony wrote).
// It names the file and returns the certificate; nil when none matches.
func (r *Report) RootCertificate(dir string) (string, *x509.Certificate) {
	key, err := r.SigningKey()
	if err != nil || key == nil {
		return "", nil
	}
	for _, e := range r.Entries {
		for _, o := range e.Outputs {
			raw, err := os.ReadFile(filepath.Join(dir, o.Path))
			if err != nil {
				continue
			}
			der := raw
			if blk, _ := pem.Decode(raw); blk != nil && blk.Type == "CERTIFICATE" {
				der = blk.Bytes
			}
			c, err := x509.ParseCertificate(der)
			if err == nil && bytes.Equal(c.RawSubjectPublicKeyInfo, key) && c.CheckSignatureFrom(c) == nil {
				return o.Path, c
			}
		}
	}
	return "", nil
}
