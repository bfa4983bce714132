// Package ceremony runs key ceremonies: a reviewed script (package script) is
// expanded into an ordered list of steps; each step is announced, performed on
// the token, confirmed by the people whose role requires it, and recorded in a
// hash-chained transcript (package transcript) that is flushed before the next
// step starts. Secrets that unlock the token are held by an m-of-n custodian
// quorum (package quorum). An interrupted ceremony resumes from its transcript.
//
// The engine knows nothing about terminals or windows: it talks to people
// through a Prompter, which the CLI, the answers file and the GUI implement.
package ceremony

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/paper"
	"github.com/keyceremony/keyceremony/ceremony/quorum"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/hsm"
)

// Options configure a run.
type Options struct {
	// Prompter talks to the people in the room. Required.
	Prompter Prompter
	// OutDir overrides the script's output directory.
	OutDir string
	// Rehearse runs the script against a throwaway SoftHSM token and marks
	// every output and the transcript as REHEARSAL.
	Rehearse bool
	// UnattendedTest allows a Prompter that answers on behalf of people
	// (the answers file) outside a rehearsal: automated tests only. The
	// first entry records it.
	UnattendedTest bool
	// AfterStep, when set, is called after each step's entry is on disk.
	// The GUI uses it for progress; tests use it to interrupt a ceremony.
	AfterStep func(StepInfo, transcript.Entry)
}

// Result is what a completed ceremony leaves.
type Result struct {
	Transcript string   // the JSON Lines transcript
	PDF        string   // the transcript PDF
	Outputs    []string // every output file, in the order written
	FinalHash  []byte   // hash of the last ceremony entry, as printed on the PDF
	Resumed    bool
	// Anchors says, for people, what anchors the transcript besides the
	// final hash on paper: the root key's signatures, the quorum's MAC.
	Anchors []string
}

// Engine runs one ceremony script. Create it with New, inspect Plan, then Run.
type Engine struct {
	s      *script.Script
	opt    Options
	p      Prompter
	outDir string
	prefix string // output file name prefix, with REHEARSAL- in rehearsals
	plan   []*step

	tw      *transcript.Writer
	done    map[string]transcript.Entry
	resumed bool
	current int
	// coreDumps says how core dumps were disabled, for the transcript.
	coreDumps string
	// recorded are the inputs an inputs step recorded, while a resumed
	// ceremony reads them again (restoreInputs).
	recorded map[string]recordedInput

	// Token state.
	mod        *hsm.Module
	tok        *hsm.Token
	modulePath string
	tokenSel   hsm.URI            // selects the token until its identity is known (rehearsal, older transcripts)
	tokenID    *hsm.TokenIdentity // the token's whole identity, once known
	slotID     uint
	login      string // "", "user" or "so"
	rehearsal  *rehearsal

	// Quorum state: the quorum that unlocks the token, and the recovery
	// quorum whose secret alone derives the backup KEK.
	record         *quorum.Record
	secret         *quorum.Secret
	recoveryRecord *quorum.Record
	recoverySecret *quorum.Secret

	// Ceremony-kind state, rebuilt from the transcript on resume.
	key          keyRef                // the root key, generated or restored
	linted       map[string]lintRecord // by artefact: what its lint step fixed
	cert         *x509.Certificate
	backup       *backupFile
	fingerprints []paper.Fingerprint
	outputs      []string
	sign         *signState // ca-signing and crl
	byok         *byokState // byok-wrap
}

// New prepares a ceremony and validates everything that can be checked
// without touching the token: the script, the output directory, the inputs.
// All problems are reported at once in a script.Problems error.
func New(s *script.Script, opt Options) (*Engine, error) {
	if opt.Prompter == nil {
		return nil, errors.New("ceremony: no Prompter")
	}
	e := &Engine{s: s, opt: opt, p: opt.Prompter, done: map[string]transcript.Entry{}, linted: map[string]lintRecord{}}
	e.outDir = s.OutputDir()
	if opt.OutDir != "" {
		e.outDir = opt.OutDir
	} else if opt.Rehearse {
		// A rehearsal never writes where the real ceremony will.
		e.outDir = strings.TrimRight(e.outDir, string(filepath.Separator)) + "-rehearsal"
	}
	if abs, err := filepath.Abs(e.outDir); err == nil {
		e.outDir = abs
	}
	e.prefix = s.Output.Prefix
	if opt.Rehearse {
		e.prefix = "REHEARSAL-" + e.prefix
	}
	e.plan = planFor(s)
	if err := e.validate(); err != nil {
		return nil, err
	}
	return e, nil
}

// Script is the script being run.
func (e *Engine) Script() *script.Script { return e.s }

// OutputDir is where the ceremony writes.
func (e *Engine) OutputDir() string { return e.outDir }

// TranscriptPath is the transcript file.
func (e *Engine) TranscriptPath() string { return filepath.Join(e.outDir, e.name("transcript.jsonl")) }

// Rehearsal reports whether this is a rehearsal.
func (e *Engine) Rehearsal() bool { return e.opt.Rehearse }

// name is an output file name: the prefix, a dot, and what the file is.
func (e *Engine) name(what string) string { return e.prefix + "." + what }

// Plan lists the steps in order; on a resumed ceremony (after Run started)
// completed steps are marked Done.
func (e *Engine) Plan() []StepInfo {
	out := make([]StepInfo, len(e.plan))
	for i := range e.plan {
		out[i] = e.info(i)
	}
	return out
}

// Current is the step running now (or the next to run), 0-based.
func (e *Engine) Current() int { return e.current }

func (e *Engine) info(i int) StepInfo {
	st := e.plan[i]
	_, done := e.done[st.id]
	return StepInfo{Number: i + 1, Total: len(e.plan), ID: st.id, Title: st.title, Do: st.do, Check: st.check,
		Record: st.record, Confirm: st.confirm, Done: done}
}

// validate checks what New can check, collecting every problem.
func (e *Engine) validate() error {
	var ps script.Problems
	bad := func(path, format string, a ...any) {
		ps = append(ps, script.Problem{Path: path, Msg: fmt.Sprintf(format, a...)})
	}
	resuming := false
	if _, err := os.Stat(e.TranscriptPath()); err == nil {
		resuming = true
	}
	if fi, err := os.Stat(e.outDir); err == nil && !fi.IsDir() {
		bad("output.directory", "%s exists and is not a directory", e.outDir)
	}
	if !resuming {
		// A new ceremony must not find any of its outputs: they are created
		// with O_EXCL, and a leftover would mean mixing two ceremonies.
		for _, st := range e.plan {
			for _, p := range e.outputPaths(st) {
				if _, err := os.Stat(p); err == nil {
					bad("output.directory", "%s already exists: this ceremony's outputs must not exist before it starts (use another output directory)", p)
				}
			}
		}
	}
	if u, ok := e.p.(unattended); ok && u.Unattended() && !e.opt.Rehearse && !e.opt.UnattendedTest {
		bad("", "an answers file confirms on behalf of people who are not there: it is for rehearsals (--rehearse) and automated tests (--unattended-test, recorded in the transcript) only")
	}
	if e.opt.Rehearse && e.s.Kind == script.KeyBackup {
		bad("kind", "a key-backup ceremony works on the token enrolled by the root ceremony and cannot be rehearsed on a throwaway token; rehearse the root-generation ceremony")
	}
	if e.opt.Rehearse && (e.s.Kind == script.CASigning || e.s.Kind == script.CRLIssuance || e.s.Kind == script.BYOKWrap) {
		bad("kind", "a %s ceremony uses the token and quorum of the root ceremony, which a throwaway token does not have, so it cannot be rehearsed; "+
			"'keyceremony ceremony plan' lists its steps and checks its inputs without touching the token", e.s.Kind)
	}
	// Inputs: present, hash as pinned.
	check := func(path string, in *script.Input) {
		// A resumed ceremony checks its inputs against what its inputs
		// step recorded, and records a swapped one (restoreInputs).
		if in == nil || in.Path == "" || resuming {
			return
		}
		p := e.s.Resolve(in.Path)
		f, err := transcript.HashFile(p, p)
		if err != nil {
			bad(path+".path", "cannot read %s: %v", p, err)
			return
		}
		if in.SHA256 != "" && !strings.EqualFold(in.SHA256, f.SHA256) {
			bad(path+".sha256", "%s has SHA-256 %s, the script pins %s: it is not the reviewed file", p, f.SHA256, in.SHA256)
		}
	}
	check("quorum.record", e.s.Quorum.Record)
	if e.s.Token.ModuleSHA256 != "" && !e.opt.Rehearse {
		if _, err := e.moduleFile(e.s.Token.Module); err != nil {
			bad("token.module_sha256", "%v", err)
		}
	}
	if rc := e.s.Recovery; rc != nil {
		check("recovery.record", rc.Record)
		if rc.Medium != "" {
			if err := e.checkBackupDir(e.backupDir()); err != nil {
				bad("recovery.medium", "%v", err)
			}
		}
	}
	if e.s.LegacyBackup() && !resuming {
		bad("recovery", "key.backup needs a recovery quorum (a recovery section: threshold, custodians, medium): the backup KEK must not come from the quorum "+
			"every routine ceremony unlocks, and the backup must go to a medium of its own; see the root-generation template")
	}
	if r := e.s.Restore; r != nil {
		check("restore.backup", &r.Backup)
		check("restore.certificate", &r.Certificate)
	}
	if g := e.s.Signing; g != nil {
		check("signing.issuer.certificate", &g.Issuer.Certificate)
		if g.Subordinate != nil {
			check("signing.subordinate.csr", &g.Subordinate.CSR)
		}
		if g.CrossCertificate != nil {
			check("signing.cross_certificate.certificate", &g.CrossCertificate.Certificate)
		}
		if g.CRL != nil {
			check("signing.crl.previous", g.CRL.Previous)
		}
	}
	if b := e.s.BYOK; b != nil {
		check("byok.parameters", b.Parameters)
		check("byok.public_key", b.PublicKey)
		check("byok.import_token", b.ImportToken)
	}
	if rec := e.s.Quorum.Record; rec != nil {
		if r, err := quorum.ReadRecord(e.s.Resolve(rec.Path)); err == nil {
			if msg := quorumMatchesScript(r, e.s); msg != "" {
				bad("quorum", "%s", msg)
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			bad("quorum.record", "%v", err)
		}
	}
	if len(ps) == 0 && !resuming {
		// What the inputs say, checked now so that a CSR, a profile or
		// import parameters that cannot work are refused before anyone
		// gathers; the inputs step checks them again during the ceremony.
		if e.s.Signing != nil {
			add := func(path string, err error) { bad(path, "%v", err) }
			if st := e.loadSigning(nil, time.Now(), add); len(ps) == 0 {
				e.lintBeforeAnyone(st, time.Now(), add)
			}
		}
		if e.s.BYOK != nil {
			e.loadBYOK(nil, time.Now(), func(path string, err error) { bad(path, "%v", err) })
		}
	}
	if len(ps) > 0 {
		return ps
	}
	return nil
}

// quorumMatchesScript checks that custodians and threshold repeated in a
// script agree with the quorum record it names.
func quorumMatchesScript(r *quorum.Record, s *script.Script) string {
	if s.Quorum.Threshold != 0 && s.Quorum.Threshold != r.Threshold {
		return fmt.Sprintf("the script says threshold %d, the quorum record %d", s.Quorum.Threshold, r.Threshold)
	}
	if len(s.Quorum.Custodians) > 0 {
		if len(s.Quorum.Custodians) != len(r.Custodians) {
			return fmt.Sprintf("the script lists %d custodians, the quorum record %d", len(s.Quorum.Custodians), len(r.Custodians))
		}
		for i, c := range r.Custodians {
			if s.Quorum.Custodians[i] != c.Name {
				return fmt.Sprintf("custodian %d is %q in the script but %q in the quorum record", i+1, s.Quorum.Custodians[i], c.Name)
			}
		}
	}
	for _, c := range r.Custodians {
		if p, ok := s.Participant(c.Name); !ok || p.Role != script.Custodian {
			return fmt.Sprintf("custodian %q of the quorum record is not a participant with role custodian in the script", c.Name)
		}
	}
	return ""
}

// Run executes the ceremony from its first incomplete step to the end. If a
// step fails, its error is recorded in the transcript and returned; running
// the same script again resumes from that step.
func (e *Engine) Run(ctx context.Context) (res *Result, err error) {
	defer e.cleanup()
	// Before anything secret is in memory.
	if e.coreDumps, err = disableCoreDumps(); err != nil {
		return nil, err
	}
	if _, serr := os.Stat(e.TranscriptPath()); serr == nil {
		if err := e.resume(ctx); err != nil {
			return nil, err
		}
	}
	if e.opt.Rehearse {
		if err := e.setupRehearsal(); err != nil {
			return nil, err
		}
	}
	for i, st := range e.plan {
		e.current = i
		if en, ok := e.done[st.id]; ok {
			if st.restore != nil {
				if err := st.restore(ctx, e, en); err != nil {
					return nil, e.restoreFailed(st, i, err)
				}
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		info := e.info(i)
		if err := e.p.StepStarted(ctx, info); err != nil {
			return nil, e.stepFailed(st, nil, err)
		}
		r := &stepRun{e: e, st: st, entry: transcript.Entry{Step: st.id, Action: st.title}}
		if err := st.run(ctx, r); err != nil {
			return nil, e.stepFailed(st, r, err)
		}
		r.entry.Rehearsal = e.opt.Rehearse
		en, err := e.tw.Append(r.entry)
		if err != nil {
			return nil, fmt.Errorf("step %d (%s): %w", i+1, st.id, err)
		}
		e.done[st.id] = en
		if e.opt.AfterStep != nil {
			info.Done = true
			e.opt.AfterStep(info, en)
		}
		e.releaseSecret(i)
	}
	return e.finish(ctx)
}

// startOver marks a failure that running the same script again cannot get
// past (a certificate zlint refuses, a CRL number used meanwhile): the
// message says to start a new ceremony, and only that.
type startOver struct{ err error }

func (s startOver) Error() string { return s.err.Error() }
func (s startOver) Unwrap() error { return s.err }

// stepFailed records a failed step (when the transcript exists) and returns
// an error that says which step failed and that the ceremony can resume.
func (e *Engine) stepFailed(st *step, r *stepRun, cause error) error {
	msg := cause.Error()
	if e.tw != nil {
		en := transcript.Entry{Step: st.id, Action: st.title, Result: transcript.ResultError, Error: msg, Rehearsal: e.opt.Rehearse}
		if r != nil {
			en.Actors, en.Details, en.Inputs = r.entry.Actors, r.entry.Details, r.entry.Inputs
			// Outputs of a failed step are not recorded as evidence; list
			// them so resume moves them aside.
			for _, o := range r.entry.Outputs {
				en.Details = append(en.Details, transcript.Detail{Key: "incomplete output", Value: o.Path})
			}
		}
		if _, err := e.tw.Append(en); err != nil {
			return fmt.Errorf("step %s failed: %w; recording the failure also failed: %v", st.id, cause, err)
		}
		if errors.Is(cause, ErrCannotRun) {
			return fmt.Errorf("step %s (%s) failed: %w (recorded in the transcript). Running the same script again would fail the same way: change the script as said, "+
				"have the change reviewed, and run the changed script: it resumes in this output directory, the change recorded, if it changes nothing an earlier step used", st.id, st.title, cause)
		}
		var so startOver
		if errors.As(cause, &so) {
			return fmt.Errorf("step %s (%s) failed: %w (recorded in the transcript; this ceremony cannot go on: fix the script, have it reviewed, and start a new ceremony in a new output directory)", st.id, st.title, cause)
		}
		return fmt.Errorf("step %s (%s) failed: %w (recorded in the transcript; run the same script again to resume from this step)", st.id, st.title, cause)
	}
	return fmt.Errorf("step %s (%s) failed: %w", st.id, st.title, cause)
}

// people lists the participants with the given roles, in script order.
func (e *Engine) people(roles ...script.Role) []Person {
	var out []Person
	for _, p := range e.s.Participants {
		for _, r := range roles {
			if p.Role == r {
				out = append(out, Person{Name: p.Name, Role: p.Role})
			}
		}
	}
	return out
}

// releaseSecret wipes the quorum secret once no later step needs it.
func (e *Engine) releaseSecret(after int) {
	for _, st := range e.plan[after+1:] {
		if st.usesSecret {
			return
		}
	}
	e.secret.Wipe()
	e.secret = nil
}

// cleanup wipes secrets and closes the token whatever happened.
func (e *Engine) cleanup() {
	e.secret.Wipe()
	e.secret = nil
	e.wipeRecovery()
	if e.tok != nil {
		e.tok.Close()
		e.tok = nil
	}
	if e.mod != nil {
		e.mod.Close()
		e.mod = nil
	}
	if e.tw != nil {
		e.tw.Close()
	}
	if e.rehearsal != nil {
		e.rehearsal.close()
		e.rehearsal = nil
	}
}

// Close releases what Run did not (Run releases everything itself).
func (e *Engine) Close() error {
	e.cleanup()
	return nil
}
