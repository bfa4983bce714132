package ceremony

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/outfile"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/hsm"
)

// step is one step of a ceremony plan.
type step struct {
	id, title string
	// do, check and record describe the step for people: what the operator
	// does, what the engine checks, what goes into the transcript.
	do, check, record string
	confirm           []script.Role
	// outputs are the output files (names after the prefix) the step creates.
	outputs []string
	// fixedOutputs are output files whose names another tool fixes (the
	// file names in the aws kms import-key-material command); they carry
	// no prefix.
	fixedOutputs []string
	// usesSecret marks steps that need the quorum secret itself (not just a
	// login), so the engine keeps it in memory until the last of them.
	usesSecret bool
	run        func(ctx context.Context, r *stepRun) error
	// restore rebuilds, on resume, the state later steps need from the
	// step's transcript entry (and the files it recorded).
	restore func(ctx context.Context, e *Engine, en transcript.Entry) error
}

// stepRun collects what a running step records.
type stepRun struct {
	e     *Engine
	st    *step
	entry transcript.Entry
}

func (r *stepRun) detail(key, value string) {
	r.entry.Details = append(r.entry.Details, transcript.Detail{Key: key, Value: value})
}

// confirm asks people to confirm and records who did.
func (r *stepRun) confirm(ctx context.Context, statement string, facts []Fact, people []Person) error {
	if len(people) == 0 {
		return nil
	}
	got, err := r.e.p.Confirm(ctx, ConfirmRequest{Step: r.st.id, Statement: statement, Facts: facts, Required: people})
	if err != nil {
		return err
	}
	if len(got) != len(people) {
		return fmt.Errorf("%w: %d of %d people confirmed", ErrDeclined, len(got), len(people))
	}
	for i, c := range got {
		if c.Name != people[i].Name {
			return fmt.Errorf("%w: confirmation by %q where %q was asked", ErrDeclined, c.Name, people[i].Name)
		}
		t := c.Time
		if t.IsZero() {
			t = time.Now()
		}
		r.entry.Actors = append(r.entry.Actors, transcript.Actor{Name: c.Name, Role: string(c.Role), Time: t.UTC().Truncate(time.Second)})
	}
	return nil
}

// confirmStep asks the roles the step names to confirm it.
func (r *stepRun) confirmStep(ctx context.Context, statement string, facts []Fact) error {
	if err := r.e.p.Inform(ctx, Notice{Step: r.st.id, Title: r.st.title, Facts: facts}); err != nil {
		return err
	}
	return r.confirm(ctx, statement, facts, r.e.people(r.st.confirm...))
}

// destroyUnrecorded destroys, once the step's roles confirm statement, the
// keys labelled label on the token. Only an interrupted attempt of the step
// leaves such keys: the transcript records none of them, so nothing was
// certified, wrapped or backed up with them; they are replaced openly.
func (r *stepRun) destroyUnrecorded(ctx context.Context, tok *hsm.Token, label, statement string) error {
	old, err := tok.FindKeys(hsm.Filter{Label: label})
	if err != nil || len(old) == 0 {
		return nil
	}
	if err := r.confirmStep(ctx, statement, []Fact{{Label: "Existing key", Value: old[0].String()}}); err != nil {
		return err
	}
	for _, k := range old {
		if err := tok.DestroyKey(k); err != nil {
			return err
		}
		r.detail("unrecorded key destroyed", k.String())
	}
	return nil
}

// input hashes a file the step reads and records it.
func (r *stepRun) input(path string) (transcript.File, error) {
	f, err := transcript.HashFile(path, path)
	if err != nil {
		return f, fmt.Errorf("read input %s: %w", path, err)
	}
	r.entry.Inputs = append(r.entry.Inputs, f)
	return f, nil
}

// output writes an output file (O_EXCL, 0600, fsynced with its directory)
// and records its hash.
func (r *stepRun) output(what string, data []byte) (string, error) {
	name := r.e.name(what)
	path := filepath.Join(r.e.outDir, name)
	if err := writeExcl(path, data); err != nil {
		return "", err
	}
	f, err := transcript.HashFile(path, name)
	if err != nil {
		return "", err
	}
	r.entry.Outputs = append(r.entry.Outputs, f)
	r.e.outputs = append(r.e.outputs, path)
	return path, nil
}

// outputPaths are the paths of every output file the step creates.
func (e *Engine) outputPaths(st *step) []string {
	var out []string
	for _, what := range st.outputs {
		out = append(out, filepath.Join(e.outDir, e.name(what)))
	}
	for _, name := range st.fixedOutputs {
		out = append(out, filepath.Join(e.outDir, name))
	}
	return out
}

// recordOutput records a file the step wrote itself (not through output).
func (r *stepRun) recordOutput(path string) error {
	f, err := transcript.HashFile(path, filepath.Base(path))
	if err != nil {
		return err
	}
	r.entry.Outputs = append(r.entry.Outputs, f)
	r.e.outputs = append(r.e.outputs, path)
	return nil
}

// writeExcl creates path with data: never over an existing file, 0600, and
// flushed with its directory before it returns.
func writeExcl(path string, data []byte) error {
	return outfile.Create(path, data, "the ceremony never overwrites a file")
}

// within reports whether path is inside dir.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// Step identifiers that the engine itself refers to.
const (
	stepBegin  = "begin"
	stepFinish = "finish"
)

var admins = []script.Role{script.Administrator, script.Witness}
