package ceremony

import (
	"bytes"
	"context"
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
)

// Issuing a quorum's shares: the quorum that unlocks the token
// (issue-shares) and, with a key backup, the recovery quorum
// (issue-recovery-shares). Each delivery is recorded in the transcript
// before the share is written, so that if the ceremony dies half-way the
// transcript says which custodians hold cards of the abandoned quorum; the
// rerun asks each of them to destroy those cards and records that they did.

// quorumSpec is what one issuing step creates.
type quorumSpec struct {
	purpose    string // "" or quorum.RecoveryQuorum
	name       string // "quorum", "recovery quorum": for people
	threshold  int
	custodians []string
	delivery   []string
	output     string // the record's output name
}

func (q quorumSpec) delivers(medium string) bool {
	return script.Quorum{Delivery: q.delivery}.Delivers(medium)
}

func routineQuorum(s *script.Script) quorumSpec {
	return quorumSpec{name: "quorum", threshold: s.Quorum.Threshold, custodians: s.Quorum.Custodians, delivery: s.Quorum.Delivery, output: "quorum.json"}
}

func recoveryQuorum(s *script.Script) quorumSpec {
	r := s.Recovery
	return quorumSpec{purpose: quorum.RecoveryQuorum, name: recoveryQuorumName, threshold: r.Threshold, custodians: r.Custodians, delivery: r.Delivery, output: "recovery-quorum.json"}
}

// Steps that record deliveries and destroyed cards (not plan steps).
const (
	stepShareDelivery  = "share-delivery"
	stepShareDestroyed = "share-destroyed"
)

func issueSharesStep() *step {
	return &step{
		id: "issue-shares", title: "Quorum shares issued",
		do: "Each custodian in turn receives their share as a printed card and/or a file on their own medium, " +
			"encrypted with a passphrase they choose, while the others look away.",
		check:   "Shares go only to paths outside the output and temporary directories (symbolic links resolved); each file is new.",
		record:  "The quorum record (threshold, custodians, commitments) as an output; before each share is written, where it goes; never the share.",
		confirm: admins, outputs: []string{"quorum.json"},
		run: func(ctx context.Context, r *stepRun) error {
			rec, err := r.e.issue(ctx, r, routineQuorum(r.e.s))
			r.e.record = rec
			return err
		},
		restore: func(ctx context.Context, e *Engine, en transcript.Entry) error {
			rec, err := quorum.ReadRecord(filepath.Join(e.outDir, e.name("quorum.json")))
			e.record = rec
			return err
		},
	}
}

func issueRecoverySharesStep() *step {
	return &step{
		id: "issue-recovery-shares", title: "Recovery quorum shares issued",
		do: "Each recovery custodian in turn receives their share of the recovery quorum, which alone opens the key backup, while the others look away. " +
			"These cards are kept apart and presented only at key-backup and key-restore ceremonies.",
		check:   "As for the quorum's shares.",
		record:  "The recovery quorum record as an output; before each share is written, where it goes; never the share.",
		confirm: admins, outputs: []string{"recovery-quorum.json"},
		run: func(ctx context.Context, r *stepRun) error {
			rec, err := r.e.issue(ctx, r, recoveryQuorum(r.e.s))
			r.e.recoveryRecord = rec
			return err
		},
		restore: func(ctx context.Context, e *Engine, en transcript.Entry) error {
			rec, err := quorum.ReadRecord(filepath.Join(e.outDir, e.name("recovery-quorum.json")))
			e.recoveryRecord = rec
			return err
		},
	}
}

// issue splits a new secret for q, writes its record, and delivers the shares.
func (e *Engine) issue(ctx context.Context, r *stepRun, q quorumSpec) (*quorum.Record, error) {
	if err := e.destroyAbandoned(ctx, r, q); err != nil {
		return nil, err
	}
	rec, secret, shares, err := quorum.SplitFor(e.s.ID, q.purpose, q.threshold, q.custodians)
	if err != nil {
		return nil, err
	}
	// The secret is not kept: the next step rebuilds it from the shares just
	// issued, which proves the custodians hold working shares before the
	// token (or the backup) depends on them.
	secret.Wipe()
	defer func() {
		for _, s := range shares {
			s.Wipe()
		}
	}()
	raw, err := rec.Marshal()
	if err != nil {
		return nil, err
	}
	if _, err := r.output(q.output, raw); err != nil {
		return nil, err
	}
	r.detail("quorum set", rec.SetID)
	r.detail("threshold", fmt.Sprintf("%d of %d", rec.Threshold, len(rec.Custodians)))
	for i, name := range q.custodians {
		where, err := e.deliver(ctx, q, rec, shares[i], name, i+1)
		if err != nil {
			return nil, fmt.Errorf("issue share %d to %s: %w", i+1, name, err)
		}
		shares[i].Wipe()
		if err := r.confirm(ctx, fmt.Sprintf("I, %s, received share %d of the %s and can read it.", name, i+1, q.name), nil, []Person{{Name: name, Role: script.Custodian}}); err != nil {
			return nil, err
		}
		r.detail(fmt.Sprintf("share %d", i+1), fmt.Sprintf("%s: %s", name, where))
	}
	return rec, r.confirmStep(ctx, fmt.Sprintf("Every custodian received their share of the %s privately, and no copy was made.", q.name), []Fact{
		{Label: "Quorum set", Value: rec.SetID},
		{Label: "Threshold", Value: fmt.Sprintf("any %d of %d custodians", rec.Threshold, len(rec.Custodians))},
	})
}

// deliver hands one share to one custodian, as the script's media say. It
// retries when the prompter picks a path that cannot be used.
func (e *Engine) deliver(ctx context.Context, q quorumSpec, rec *quorum.Record, share *quorum.Share, name string, index int) (string, error) {
	req := DeliveryRequest{Custodian: name, Index: index, Custodians: len(rec.Custodians), Threshold: rec.Threshold, Media: q.delivery, Quorum: q.name}
	for attempt := 0; ; attempt++ {
		if attempt == 5 {
			return "", errors.New("no usable destination after 5 attempts")
		}
		d, err := e.p.DeliverShare(ctx, req)
		if err != nil {
			clear(d.Passphrase)
			return "", err
		}
		where, err := e.writeShare(q, rec, share, name, index, d)
		clear(d.Passphrase)
		if err == nil {
			return where, nil
		}
		var pe *pathError
		if !errors.As(err, &pe) {
			return "", err
		}
		req.Problem = err.Error()
	}
}

// pathError is a destination the custodian can correct.
type pathError struct{ msg string }

func (p *pathError) Error() string { return p.msg }

// resolved is path with symbolic links resolved as far as it exists: the
// existing ancestors through filepath.EvalSymlinks, the rest appended.
func resolved(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	rest := ""
	for p := abs; ; p = filepath.Dir(p) {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(real, rest)
		}
		if filepath.Dir(p) == p {
			return abs
		}
		rest = filepath.Join(filepath.Base(p), rest)
	}
}

// checkMediumPath refuses share destinations where a share must never be:
// the ceremony output directory (which is copied and archived) and the
// temporary directory, compared after symbolic links are resolved on both
// sides (a link on the custodian's medium into the output directory is
// inside it).
func (e *Engine) checkMediumPath(p string) (string, error) {
	if p == "" {
		return "", &pathError{"no path given"}
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", &pathError{err.Error()}
	}
	real := resolved(abs)
	if within(real, resolved(e.outDir)) {
		return "", &pathError{fmt.Sprintf("%s is inside the ceremony output directory; a share goes only to the custodian's own medium", abs)}
	}
	if tmp := resolved(os.TempDir()); within(real, tmp) {
		return "", &pathError{fmt.Sprintf("%s is inside the temporary directory %s; a share goes only to the custodian's own medium", abs, tmp)}
	}
	if _, err := os.Lstat(abs); err == nil {
		return "", &pathError{fmt.Sprintf("%s already exists; choose a new file name", abs)}
	}
	if fi, err := os.Stat(filepath.Dir(abs)); err != nil || !fi.IsDir() {
		return "", &pathError{fmt.Sprintf("the directory of %s does not exist (is the custodian's medium mounted?)", abs)}
	}
	return abs, nil
}

func (e *Engine) writeShare(q quorumSpec, rec *quorum.Record, share *quorum.Share, name string, index int, d Delivery) (string, error) {
	var where []string
	wantCard, wantFile := q.delivers("card"), q.delivers("file")
	if wantCard != (d.CardPath != "") || wantFile != (d.FilePath != "") {
		return "", &pathError{fmt.Sprintf("the script hands out shares of the %s as %s: give exactly those destinations", q.name, strings.Join(q.delivery, " and "))}
	}
	var card, file string
	var err error
	if wantCard {
		if card, err = e.checkMediumPath(d.CardPath); err != nil {
			return "", err
		}
	}
	if wantFile {
		if file, err = e.checkMediumPath(d.FilePath); err != nil {
			return "", err
		}
		if card == file {
			return "", &pathError{"the card and the share file need different paths"}
		}
		if len(d.Passphrase) < 8 {
			return "", &pathError{"the passphrase is too short: use at least 8 characters (a few words are better)"}
		}
	}
	// Recorded before anything is written: if the ceremony dies now, the
	// transcript says this custodian may hold a share of this quorum.
	if err := e.recordDelivery(q, rec, name, index, card, file); err != nil {
		return "", err
	}
	if wantCard {
		var buf bytes.Buffer
		title := e.s.Title
		if q.purpose == quorum.RecoveryQuorum {
			title += " - RECOVERY QUORUM (opens the key backup only)"
		}
		err := paper.ShareCard(&buf, paper.Card{
			CeremonyTitle: title, CeremonyID: e.s.ID, SetLabel: rec.SetLabel(), Custodian: name,
			Index: index, Threshold: rec.Threshold, Custodians: len(rec.Custodians), Issued: time.Now(), Rehearsal: e.opt.Rehearse,
		}, share)
		if err == nil {
			err = writeExcl(card, buf.Bytes())
		}
		clear(buf.Bytes())
		if err != nil {
			return "", fmt.Errorf("share card: %w", err)
		}
		where = append(where, "card "+card)
	}
	if wantFile {
		var buf bytes.Buffer
		err := share.WriteFile(&buf, d.Passphrase)
		if err == nil {
			err = writeExcl(file, buf.Bytes())
		}
		if err != nil {
			return "", fmt.Errorf("share file: %w", err)
		}
		f, err := transcript.HashFile(file, file)
		if err != nil {
			return "", err
		}
		where = append(where, fmt.Sprintf("encrypted file %s (SHA-256 %s)", file, f.SHA256))
	}
	return strings.Join(where, "; "), nil
}

// recordDelivery appends, before a share is written, who receives it and where.
func (e *Engine) recordDelivery(q quorumSpec, rec *quorum.Record, name string, index int, card, file string) error {
	en := transcript.Entry{Step: stepShareDelivery, Action: fmt.Sprintf("share %d of the %s about to be written for %s", index, q.name, name), Rehearsal: e.opt.Rehearse,
		Details: []transcript.Detail{{Key: "quorum", Value: q.name}, {Key: "quorum set", Value: rec.SetID}, {Key: "custodian", Value: name}, {Key: "share", Value: fmt.Sprint(index)}}}
	if card != "" {
		en.Details = append(en.Details, transcript.Detail{Key: "card", Value: card})
	}
	if file != "" {
		en.Details = append(en.Details, transcript.Detail{Key: "file", Value: file})
	}
	_, err := e.tw.Append(en)
	return err
}

// abandoned is a share delivered for a quorum whose issuing never completed.
type abandoned struct {
	set, custodian, share, where string
}

// abandonedShares lists the deliveries of q's kind recorded for quorum sets
// no successful issuing step recorded, whose destruction no custodian has
// confirmed yet.
func (e *Engine) abandonedShares(q quorumSpec) []abandoned {
	issued, destroyed := map[string]bool{}, map[string]bool{}
	for _, en := range e.tw.Entries() {
		switch {
		case en.OK() && (en.Step == "issue-shares" || en.Step == "issue-recovery-shares"):
			issued[en.Detail("quorum set")] = true
		case en.Step == stepShareDestroyed:
			destroyed[en.Detail("quorum set")+"/"+en.Detail("share")] = true
		}
	}
	var out []abandoned
	for _, en := range e.tw.Entries() {
		set := en.Detail("quorum set")
		if en.Step != stepShareDelivery || en.Detail("quorum") != q.name || issued[set] || destroyed[set+"/"+en.Detail("share")] {
			continue
		}
		var where []string
		for _, k := range []string{"card", "file"} {
			if v := en.Detail(k); v != "" {
				where = append(where, k+" "+v)
			}
		}
		out = append(out, abandoned{set: set, custodian: en.Detail("custodian"), share: en.Detail("share"), where: strings.Join(where, "; ")})
	}
	return out
}

// destroyAbandoned has every custodian who may hold a share of an abandoned
// quorum (an earlier attempt of this step that died) destroy it, and records
// each confirmation as it is given.
func (e *Engine) destroyAbandoned(ctx context.Context, r *stepRun, q quorumSpec) error {
	list := e.abandonedShares(q)
	if len(list) == 0 {
		return nil
	}
	facts := make([]Fact, 0, len(list))
	for _, a := range list {
		facts = append(facts, Fact{Label: a.custodian, Value: fmt.Sprintf("share %s of abandoned quorum set %s: %s", a.share, a.set, a.where)})
	}
	if err := e.p.Inform(ctx, Notice{Step: r.st.id, Title: "Destroy the shares of the abandoned " + q.name, Facts: facts,
		Warning: "An earlier attempt of this step stopped after these shares were written. That quorum will never be used: each custodian named destroys the card (shred) and deletes the file now, before new shares are issued."}); err != nil {
		return err
	}
	for _, a := range list {
		dr := &stepRun{e: e, st: r.st, entry: transcript.Entry{Step: stepShareDestroyed, Action: fmt.Sprintf("%s destroyed share %s of the abandoned %s", a.custodian, a.share, q.name), Rehearsal: e.opt.Rehearse}}
		statement := fmt.Sprintf("I, %s, destroyed share %s of the abandoned quorum set %s (%s).", a.custodian, a.share, a.set, a.where)
		people := []Person{{Name: a.custodian, Role: script.Custodian}}
		if _, ok := e.s.Participant(a.custodian); !ok {
			people = e.people(script.Administrator, script.Witness)
			statement = fmt.Sprintf("The share %s of the abandoned quorum set %s issued to %s (%s) was destroyed.", a.share, a.set, a.custodian, a.where)
		}
		if err := dr.confirm(ctx, statement, nil, people); err != nil {
			return err
		}
		dr.detail("quorum set", a.set)
		dr.detail("share", a.share)
		dr.detail("custodian", a.custodian)
		dr.detail("where", a.where)
		if _, err := e.tw.Append(dr.entry); err != nil {
			return err
		}
		r.detail("abandoned share destroyed", fmt.Sprintf("%s: share %s of quorum set %s", a.custodian, a.share, a.set))
	}
	return nil
}
