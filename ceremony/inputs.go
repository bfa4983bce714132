package ceremony

import (
	"errors"
	"fmt"
	"os"

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

// readInput reads the file of an input the script names at path; with r set
// (the inputs step) it is hashed and recorded first. A problem goes to bad.
func (e *Engine) readInput(r *stepRun, path string, in script.Input, bad func(path string, err error)) []byte {
	p := e.s.Resolve(in.Path)
	if r != nil {
		if _, err := r.input(p); err != nil {
			bad(path, err)
			return nil
		}
	}
	data, err := os.ReadFile(p)
	if err != nil {
		bad(path+".path", fmt.Errorf("cannot read %s: %w", p, err))
		return nil
	}
	return data
}

// restoreInputs rebuilds, on resume, what an inputs step read: every input it
// recorded must be the same file still; then load reads them again (without
// the checks that depend on the time, which ran when the step did).
func (e *Engine) restoreInputs(en transcript.Entry, load func(bad func(path string, err error))) error {
	if err := sameInputs(en); err != nil {
		return err
	}
	if err := e.loadInputs(nil); err != nil {
		return err
	}
	var ps problems
	load(ps.add)
	return ps.err()
}

// sameInputs checks, when a ceremony resumes, that every input its inputs
// step recorded is still the same file: later steps rebuild their state
// from them.
func sameInputs(en transcript.Entry) error {
	for _, in := range en.Inputs {
		f, err := transcript.HashFile(in.Path, in.Path)
		if err != nil {
			return fmt.Errorf("input %s, recorded in entry %d, cannot be read: %w", in.Path, en.Seq, err)
		}
		if f.SHA256 != in.SHA256 {
			return fmt.Errorf("input %s changed since entry %d recorded it (SHA-256 %s, now %s): put the recorded file back to resume", in.Path, en.Seq, in.SHA256, f.SHA256)
		}
	}
	return nil
}
