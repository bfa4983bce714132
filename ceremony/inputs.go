package ceremony

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
)

// What the inputs steps share: reading the files a script names, reporting
// every problem at once, and checking on resume that nothing changed.

// problems collects what is wrong with the inputs, each under the script
// path it concerns, so that all are reported at once.
type problems struct{ errs []error }

func (p *problems) add(path string, err error) {
	p.errs = append(p.errs, fmt.Errorf("%s: %w", path, err))
}

func (p *problems) err() error { return errors.Join(p.errs...) }

// readInput reads the file of an input the script names at path, once: the
// bytes it returns are the bytes it hashed and (with r set, in the inputs
// step) recorded, checked against the script's pin and, when a resumed
// ceremony rebuilds its state, against the hash the inputs step recorded.
// A problem goes to bad.
func (e *Engine) readInput(r *stepRun, path string, in script.Input, bad func(path string, err error)) []byte {
	p := e.s.Resolve(in.Path)
	data, err := os.ReadFile(p)
	if err != nil {
		bad(path+".path", fmt.Errorf("cannot read %s: %w", p, err))
		return nil
	}
	f := transcript.File{Path: p, SHA256: hashOf(data), Size: int64(len(data))}
	if r != nil {
		r.entry.Inputs = append(r.entry.Inputs, f)
	}
	if rec, ok := e.recorded[p]; ok {
		rec.read = true
		e.recorded[p] = rec
		if rec.SHA256 != f.SHA256 {
			bad(path, &swappedInput{found: f, recorded: rec.SHA256, seq: rec.seq})
			return nil
		}
	}
	if in.SHA256 != "" && !equalFoldHex(in.SHA256, f.SHA256) {
		bad(path+".sha256", fmt.Errorf("%s has SHA-256 %s, the script pins %s: it is not the reviewed file", p, f.SHA256, in.SHA256))
		return nil
	}
	return data
}

func equalFoldHex(a, b string) bool { return strings.EqualFold(a, b) }

// recordedInput is an input an inputs step recorded, for resume to compare.
type recordedInput struct {
	SHA256 string
	seq    int
	read   bool
}

// swappedInput is an input that changed since the inputs step recorded it.
type swappedInput struct {
	found    transcript.File
	recorded string
	seq      int
}

func (s *swappedInput) Error() string {
	return fmt.Sprintf("input %s changed since entry %d recorded it (SHA-256 %s, now %s): put the recorded file back to resume",
		s.found.Path, s.seq, s.recorded, s.found.SHA256)
}

// restoreInputs rebuilds, on resume, what an inputs step read: each input is
// read once more and must be the file the step recorded; then load reads
// them (without the checks that depend on the time, which ran when the step
// did). An input the step recorded that load does not read again is checked
// on its own.
func (e *Engine) restoreInputs(en transcript.Entry, load func(bad func(path string, err error))) error {
	e.recorded = map[string]recordedInput{}
	for _, in := range en.Inputs {
		e.recorded[in.Path] = recordedInput{SHA256: in.SHA256, seq: en.Seq}
	}
	defer func() { e.recorded = nil }()
	var ps problems
	e.loadInputs(nil, ps.add)
	if load != nil {
		load(ps.add)
	}
	for p, rec := range e.recorded {
		if rec.read {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			ps.add(p, fmt.Errorf("input recorded in entry %d cannot be read: %w", rec.seq, err))
		} else if f := (transcript.File{Path: p, SHA256: hashOf(data), Size: int64(len(data))}); f.SHA256 != rec.SHA256 {
			ps.add(p, &swappedInput{found: f, recorded: rec.SHA256, seq: rec.seq})
		}
	}
	return ps.err()
}

// moduleFile hashes the PKCS#11 library the ceremony loads and checks it
// against the script's pin (token.module_sha256). A rehearsal loads the
// built-in SoftHSM instead, so the pin is not applied there.
func (e *Engine) moduleFile(path string) (transcript.File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return transcript.File{}, fmt.Errorf("hash the PKCS#11 module %s: %w", path, err)
	}
	f := transcript.File{Path: path, SHA256: hashOf(data), Size: int64(len(data))}
	if pin := e.s.Token.ModuleSHA256; pin != "" && e.rehearsal == nil && !equalFoldHex(pin, f.SHA256) {
		return f, fmt.Errorf("the PKCS#11 module %s has SHA-256 %s, the script pins %s (token.module_sha256): it is not the reviewed library", path, f.SHA256, pin)
	}
	return f, nil
}
