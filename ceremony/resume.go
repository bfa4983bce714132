package ceremony

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/quorum"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/ceremony/words"
)

// resume reopens an interrupted ceremony's transcript. Before anything
// touches the token the transcript must verify: its chain and signature
// anchors here, and, when it carries the quorum's MAC, the MAC of every entry
// with the quorum the custodians unlock first.
func (e *Engine) resume(ctx context.Context) error {
	if e.opt.Rehearse {
		return fmt.Errorf("a rehearsal cannot be resumed (its throwaway token is gone): remove %s and rehearse again", e.outDir)
	}
	tw, torn, err := transcript.Open(e.TranscriptPath())
	if err != nil {
		var ve *transcript.VerifyError
		if errors.As(err, &ve) {
			return &TranscriptError{Path: e.TranscriptPath(), Err: err}
		}
		return fmt.Errorf("resume ceremony: %w", err)
	}
	e.tw = tw
	entries := tw.Entries()
	first := entries[0]
	if first.Step != stepBegin {
		return fmt.Errorf("resume ceremony: %s does not start with the begin step: it is not a ceremony transcript", e.TranscriptPath())
	}
	macFrom := 0
	for _, en := range entries {
		if en.Step == transcript.StepPDF && en.OK() {
			return fmt.Errorf("the ceremony in %s is already complete (entry %d); verify it with 'keyceremony ceremony verify %s'", e.outDir, en.Seq, e.TranscriptPath())
		}
		if en.OK() {
			e.done[en.Step] = en
		}
		if en.MAC != "" && macFrom == 0 {
			macFrom = en.Seq
		}
	}
	plan, _ := transcript.PlanOf(first)
	// A changed script is an amendment (amend.go): checked before anything
	// is written, recorded after the resume (and after the quorum's MAC).
	var amendment *amendment
	if inEffect, _ := scriptInEffect(entries); inEffect != hex.EncodeToString(e.s.SHA256[:]) {
		if amendment, err = e.checkAmendment(entries); err != nil {
			return err
		}
	}
	e.resumed = true

	// The quorum's MAC first: nothing from the transcript is acted on, and
	// the token is not touched, before it is checked.
	var check *stepRun
	if macFrom != 0 {
		if check, err = e.unlockToResume(ctx, entries); err != nil {
			return err
		}
	}
	moved, err := e.moveAsideUnrecorded()
	if err != nil {
		return err
	}
	last := entries[len(entries)-1]
	r := &stepRun{e: e, st: &step{id: "resume"}, entry: transcript.Entry{Step: "resume", Action: "ceremony resumed"}}
	r.detail("resumed after entry", fmt.Sprintf("%d (%s, %s)", last.Seq, last.Step, last.Result))
	r.detail("system clock (UTC)", time.Now().UTC().Format(time.RFC3339))
	r.detail("core dumps", e.coreDumps)
	if torn.TornBytes > 0 {
		r.detail("incomplete last line removed", fmt.Sprintf("%d bytes, SHA-256 %s", torn.TornBytes, torn.TornSHA256))
	}
	for _, m := range moved {
		r.detail("incomplete output moved aside", m)
	}
	facts := []Fact{{Label: "Last entry", Value: fmt.Sprintf("%d: %s (%s)", last.Seq, last.Step, last.Result)},
		{Label: "Last entry hash", Value: last.Hash, Words: words.String(last.HashBytes())},
		{Label: "System clock (UTC)", Value: time.Now().UTC().Format("2006-01-02 15:04:05")}}
	statement := "The ceremony is resumed from its transcript; the last entry and the clock above are correct."
	switch {
	case macFrom != 0:
		r.detail("anchors checked", fmt.Sprintf("chain and signature anchors of entries 1-%d; the quorum's MAC of entries %d-%d, with the quorum unlocked in the next entry", last.Seq, macFrom, last.Seq))
		facts = append(facts, Fact{Label: "Anchors", Value: fmt.Sprintf("the quorum's MAC of entries %d-%d verified: the transcript is the one this ceremony wrote", macFrom, last.Seq)})
	case plan == nil:
		r.detail("anchors checked", "none: the transcript carries no anchors (written by Key Ceremony "+first.Detail("binary version")+", before transcripts were anchored)")
		facts = append(facts, Fact{Label: "Anchors", Value: "NONE: this transcript was written before Key Ceremony anchored its transcripts (binary " +
			first.Detail("binary version") + "); confirm it is the one the interrupted ceremony wrote (its entries are shown by 'keyceremony ceremony verify')"})
		statement += " The transcript carries no anchors, and we confirm it is the one the interrupted ceremony wrote."
	default:
		r.detail("anchors checked", fmt.Sprintf("chain of entries 1-%d (the quorum's MAC starts at the first unlock, which this ceremony had not reached)", last.Seq))
	}
	if err := r.confirm(ctx, statement, facts, e.people(script.Administrator, script.Witness)); err != nil {
		return err
	}
	if _, err := e.tw.Append(r.entry); err != nil {
		return err
	}
	if check != nil {
		if _, err := e.tw.Append(check.entry); err != nil {
			return err
		}
	}
	if amendment != nil {
		return e.recordAmendment(ctx, amendment)
	}
	return nil
}

// unlockToResume asks the custodians for the quorum and checks the
// transcript's MACs with it. The unlock's entry is returned to be appended
// after the resume entry.
func (e *Engine) unlockToResume(ctx context.Context, entries []transcript.Entry) (*stepRun, error) {
	rec, err := e.resumeRecord(entries)
	if err != nil {
		return nil, err
	}
	e.record = rec
	const purpose = "check the transcript before the token is used"
	r := &stepRun{e: e, st: &step{id: "unlock"}, entry: transcript.Entry{Step: "unlock", Action: "quorum unlocked again (" + purpose + ")"}}
	if err := e.p.Inform(ctx, Notice{Step: "resume", Title: "The quorum is needed to resume",
		Warning: "The transcript carries the quorum's MAC: custodians present their shares so the engine can check that it is the transcript this ceremony wrote, before the token is used."}); err != nil {
		return nil, err
	}
	if err := e.unlock(ctx, r, purpose); err != nil {
		return nil, err
	}
	if err := e.checkMACs(); err != nil {
		return nil, err
	}
	r.detail("transcript MAC", "every MAC verified with the unlocked quorum")
	r.entry.Rehearsal = e.opt.Rehearse
	return r, nil
}

// resumeRecord reads the quorum record an interrupted ceremony used: the
// output of its issue-shares step (whose hash Verify checked), or the input
// its inputs step recorded, which must be the same file still.
func (e *Engine) resumeRecord(entries []transcript.Entry) (*quorum.Record, error) {
	if !e.s.Kind.UsesQuorumRecord() {
		path := filepath.Join(e.outDir, e.name("quorum.json"))
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("resume: the quorum record: %w", err)
		}
		return quorum.ParseRecord(raw)
	}
	path := e.s.Resolve(e.s.Quorum.Record.Path)
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("resume: the quorum record: %w", err)
	}
	got := hashOf(raw)
	for _, en := range entries {
		for _, in := range en.Inputs {
			if en.OK() && in.Path == path && in.SHA256 != got {
				return nil, fmt.Errorf("the quorum record %s changed since entry %d recorded it (SHA-256 %s, now %s): put the recorded file back to resume (the transcript cannot record this: extending it takes the quorum, which needs the record)", path, en.Seq, in.SHA256, got)
			}
		}
	}
	if pin := e.s.Quorum.Record.SHA256; pin != "" && !equalFoldHex(pin, got) {
		return nil, fmt.Errorf("the quorum record %s has SHA-256 %s, the script pins %s: put the reviewed file back to resume", path, got, pin)
	}
	return quorum.ParseRecord(raw)
}

// moveAsideUnrecorded moves aside the outputs of every step the transcript
// does not record as done: only an interrupted attempt leaves them, and the
// steps create their outputs afresh (O_EXCL).
func (e *Engine) moveAsideUnrecorded() ([]string, error) {
	var moved []string
	for _, st := range e.plan {
		if _, ok := e.done[st.id]; ok {
			continue
		}
		for _, p := range e.outputPaths(st) {
			if _, err := os.Stat(p); err == nil {
				aside := fmt.Sprintf("%s.incomplete-%s", p, time.Now().UTC().Format("20060102T150405Z"))
				if err := os.Rename(p, aside); err != nil {
					return nil, fmt.Errorf("resume ceremony: move aside the incomplete %s: %w", p, err)
				}
				moved = append(moved, filepath.Base(aside))
			}
		}
	}
	return moved, nil
}

// restoreFailed records that a resumed ceremony could not rebuild what step
// st did, typically because an input it recorded was swapped, and returns
// the error to show.
func (e *Engine) restoreFailed(st *step, i int, cause error) error {
	en := transcript.Entry{Step: st.id, Action: "resume refused: what this step recorded could not be restored", Result: transcript.ResultError,
		Error: cause.Error(), Rehearsal: e.opt.Rehearse}
	var sw *swappedInput
	if errors.As(cause, &sw) {
		en.Inputs = []transcript.File{sw.found}
		en.Details = []transcript.Detail{{Key: "recorded sha256", Value: sw.recorded}, {Key: "recorded in entry", Value: fmt.Sprint(sw.seq)}}
	}
	if _, err := e.tw.Append(en); err != nil {
		return fmt.Errorf("resume: restoring what step %d (%s) did: %w; recording the refusal also failed: %v", i+1, st.id, cause, err)
	}
	return fmt.Errorf("resume: restoring what step %d (%s) did: %w (recorded in the transcript)", i+1, st.id, cause)
}
