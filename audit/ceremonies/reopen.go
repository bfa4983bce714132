package ceremonies

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/keyceremony/keyceremony/ceremony/transcript"
)

// Stored names a transcript as the database recorded it when it was loaded.
type Stored struct {
	Path      string
	FinalHash string // hex
	SHA256    string // hex, of the whole transcript file
}

// Reopened is a stored ceremony's transcript verified again.
type Reopened struct {
	Path string
	// Refused says why the file no longer holds as the evidence that was
	// loaded (it is missing, it does not verify, it is another transcript,
	// it contradicts the paper); "" when it holds.
	Refused string
	// Verification is the text of `keyceremony ceremony verify` for the
	// file ("" when its chain does not verify at all).
	Verification string
	// Entries are the verified entries; none when the file is refused, so
	// that nothing of a refused file is read as evidence.
	Entries []transcript.Entry
}

// Reopen verifies a stored ceremony's transcript again, with the same code
// as the load and as `ceremony verify` (the chain, the anchors, every output
// file's SHA-256, completeness), and checks that the file is still the one
// that was loaded: the same final hash and the same SHA-256. What the
// database says of a ceremony is thereby never taken on the database's
// word when a reviewer opens it. paper is the final hash the reviewer reads
// from the signed paper (transcript.ParseHash), or nil.
func Reopen(s Stored, paper []byte) *Reopened {
	o := &Reopened{Path: s.Path}
	raw, err := os.ReadFile(s.Path)
	if err != nil {
		o.Refused = fmt.Sprintf("the transcript cannot be read where it was loaded from: %v", err)
		return o
	}
	rep, reason := verify(s.Path, paper)
	if rep != nil {
		var b strings.Builder
		rep.Describe(&b, filepath.Dir(s.Path), expect(paper))
		o.Verification = b.String()
	}
	if reason != "" {
		o.Refused = reason
		return o
	}
	final, _ := rep.Final() // verify refused an incomplete transcript
	sum := sha256.Sum256(raw)
	switch {
	case final.Hash != s.FinalHash:
		o.Refused = fmt.Sprintf("it is not the transcript that was loaded: its final hash is %s, the database recorded %s (another ceremony's transcript, or one rewritten in full, is at this path)",
			final.Hash, s.FinalHash)
	case hex.EncodeToString(sum[:]) != s.SHA256:
		o.Refused = fmt.Sprintf("the file changed since it was loaded (SHA-256 %x, loaded %s) although it verifies to the same final hash: its closing entry was rewritten", sum, s.SHA256)
	default:
		o.Entries = rep.Entries
	}
	return o
}

// Text is the reopened transcript as a reviewer reads it: the verdict, the
// text of `ceremony verify`, and (when it holds) every entry.
func (o *Reopened) Text() string {
	var b bytes.Buffer
	if o.Refused != "" {
		fmt.Fprintf(&b, "REFUSED: %s\n%s\n", o.Refused, o.Path)
		if o.Verification != "" {
			fmt.Fprintf(&b, "\nWhat the file itself shows (not evidence):\n%s", o.Verification)
		}
		return b.String()
	}
	fmt.Fprintf(&b, "Verified again on opening: %s is the transcript that was loaded.\n\n%s", o.Path, o.Verification)
	fmt.Fprintf(&b, "\nEntries\n")
	for _, e := range o.Entries {
		fmt.Fprintf(&b, "%3d  %s  %s  %s: %s\n", e.Seq, e.Time.UTC().Format("2006-01-02 15:04:05Z"), strings.ToUpper(e.Result), e.Step, e.Action)
		if e.Error != "" {
			fmt.Fprintf(&b, "       error: %s\n", e.Error)
		}
		if len(e.Actors) > 0 {
			var who []string
			for _, a := range e.Actors {
				who = append(who, a.Name+" ("+a.Role+")")
			}
			fmt.Fprintf(&b, "       confirmed by %s\n", strings.Join(who, ", "))
		}
		for _, d := range e.Details {
			fmt.Fprintf(&b, "       %s: %s\n", d.Key, d.Value)
		}
		for _, f := range e.Inputs {
			fmt.Fprintf(&b, "       input  %s  SHA-256 %s\n", f.Path, f.SHA256)
		}
		for _, f := range e.Outputs {
			fmt.Fprintf(&b, "       output %s  SHA-256 %s\n", f.Path, f.SHA256)
		}
		if e.Signature != nil {
			fmt.Fprintf(&b, "       token signature over entry %d's hash (verified)\n", e.Seq-1)
		}
		fmt.Fprintf(&b, "       hash %s\n", e.Hash)
	}
	return b.String()
}
