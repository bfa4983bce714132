package ceremonies

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/keyceremony/keyceremony/audit/store"
)

// Loaded is one ceremony path's outcome.
type Loaded struct {
	Path       string `json:"path"`
	Transcript string `json:"transcript,omitempty"`
	CeremonyID string `json:"ceremony_id,omitempty"`
	Kind       string `json:"kind,omitempty"`
	FinalHash  string `json:"final_hash,omitempty"`
	Rehearsal  bool   `json:"rehearsal,omitempty"`
	// Duplicate: the same transcript was loaded before (its facts were
	// refreshed, e.g. with an import result written since).
	Duplicate bool   `json:"duplicate,omitempty"`
	Error     string `json:"error,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
}

// Summary is the outcome of loading ceremony paths in one run.
type Summary struct {
	Loaded  int      `json:"loaded"`
	Already int      `json:"already_loaded"`
	Refused int      `json:"refused"`
	Items   []Loaded `json:"ceremonies"`
}

// Ingest verifies and stores every ceremony path in one ingest run of its
// own (args are its provenance). A path that is refused is recorded as a
// failed input of the run with its transcript's SHA-256, and the others
// still load; only a database error stops the run.
func Ingest(ctx context.Context, st *store.Store, paths []string, args []string, o Options) (*Summary, error) {
	w, err := st.NewWriter(ctx)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	if _, err := w.StartRun(args); err != nil {
		return nil, err
	}
	sum := &Summary{}
	fail := func(err error) (*Summary, error) {
		w.FinishRun(store.RunTotals{FilesOK: sum.Loaded, FilesDup: sum.Already, FilesFailed: sum.Refused, Status: "failed"})
		return sum, err
	}
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		item := Loaded{Path: p}
		lo := o
		if h, ok := o.ExpectFor[p]; ok {
			lo.Expect = h
		}
		c, lerr := Load(p, lo)
		if lerr != nil {
			tr, _ := TranscriptOf(p)
			if tr == "" {
				tr = p
			}
			item.Transcript, item.Error = tr, lerr.Error()
			meta := store.FileMeta{Path: tr, Compression: "none"}
			var digest []byte
			if raw, err := os.ReadFile(tr); err == nil {
				s := sha256.Sum256(raw)
				digest, meta.Size, item.SHA256 = s[:], int64(len(raw)), hex.EncodeToString(s[:])
			}
			if err := w.RecordFailure(meta, lerr, digest); err != nil {
				return fail(err)
			}
			sum.Refused++
			sum.Items = append(sum.Items, item)
			continue
		}
		dup, err := w.PutCeremony(c)
		if err != nil {
			return fail(err)
		}
		item.Transcript, item.CeremonyID, item.Kind, item.FinalHash, item.Rehearsal, item.Duplicate =
			c.TranscriptPath, c.CeremonyID, c.Kind, c.FinalHash, c.Rehearsal, dup
		item.SHA256 = hex.EncodeToString(c.TranscriptSHA256)
		if dup {
			sum.Already++
		} else {
			sum.Loaded++
		}
		sum.Items = append(sum.Items, item)
	}
	if err := w.FinishRun(store.RunTotals{FilesOK: sum.Loaded, FilesDup: sum.Already, FilesFailed: sum.Refused, Status: "done"}); err != nil {
		return sum, fmt.Errorf("finish the ceremony load: %w", err)
	}
	return sum, nil
}

// IsRefused reports whether err is a transcript refused by the loader.
func IsRefused(err error) bool {
	var r *RefusedError
	return errors.As(err, &r)
}

// Split separates ceremony evidence (an output directory with a
// transcript at its top, or a transcript) from CloudTrail inputs ("-" is
// standard input, never a ceremony).
func Split(paths []string) (trail, cer []string) {
	for _, p := range paths {
		if p != "-" && IsCeremony(p) {
			cer = append(cer, p)
		} else {
			trail = append(trail, p)
		}
	}
	return trail, cer
}

// WriteText writes the outcome for a person: the counts, then each
// ceremony loaded with its final hash, or refused with the reason.
func (s *Summary) WriteText(w io.Writer) {
	fmt.Fprintf(w, "Ceremonies: %d loaded, %d already loaded, %d refused\n", s.Loaded, s.Already, s.Refused)
	for _, c := range s.Items {
		switch {
		case c.Error != "":
			sum := c.SHA256
			if sum == "" {
				sum = "-"
			}
			fmt.Fprintf(w, "REFUSED %s (SHA-256 %s): %s\n", c.Transcript, sum, c.Error)
		default:
			note := ""
			if c.Rehearsal {
				note = " REHEARSAL"
			}
			if c.Duplicate {
				note += " (already loaded; facts refreshed)"
			}
			fmt.Fprintf(w, "CEREMONY %s %s%s final hash %s\n", c.Kind, c.CeremonyID, note, c.FinalHash)
		}
	}
}
