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
	"github.com/keyceremony/keyceremony/hsm"
)

func issueSharesStep() *step {
	return &step{
		id: "issue-shares", title: "Quorum shares issued",
		do: "Each custodian in turn receives their share as a printed card and/or a file on their own medium, " +
			"encrypted with a passphrase they choose, while the others look away.",
		check:   "Shares go only to paths outside the output and temporary directories; each file is new.",
		record:  "The quorum record (threshold, custodians, commitments) as an output; per custodian the share index and where it went; never the share.",
		confirm: admins, outputs: []string{"quorum.json"},
		run: runIssueShares, restore: restoreIssueShares,
	}
}

func runIssueShares(ctx context.Context, r *stepRun) error {
	e := r.e
	q := e.s.Quorum
	rec, secret, shares, err := quorum.Split(e.s.ID, q.Threshold, q.Custodians)
	if err != nil {
		return err
	}
	// The secret is not kept: the next step rebuilds it from the shares just
	// issued, which proves the custodians hold working shares before the
	// token depends on them.
	secret.Wipe()
	defer func() {
		for _, s := range shares {
			s.Wipe()
		}
	}()
	raw, err := rec.Marshal()
	if err != nil {
		return err
	}
	if _, err := r.output("quorum.json", raw); err != nil {
		return err
	}
	r.detail("quorum set", rec.SetID)
	r.detail("threshold", fmt.Sprintf("%d of %d", rec.Threshold, len(rec.Custodians)))
	for i, name := range q.Custodians {
		where, err := e.deliver(ctx, rec, shares[i], name, i+1)
		if err != nil {
			return fmt.Errorf("issue share %d to %s: %w", i+1, name, err)
		}
		shares[i].Wipe()
		if err := r.confirm(ctx, fmt.Sprintf("I, %s, received share %d and can read it.", name, i+1), nil, []Person{{Name: name, Role: script.Custodian}}); err != nil {
			return err
		}
		r.detail(fmt.Sprintf("share %d", i+1), fmt.Sprintf("%s: %s", name, where))
	}
	e.record = rec
	return r.confirmStep(ctx, "Every custodian received their share privately, and no copy was made.", []Fact{
		{Label: "Quorum set", Value: rec.SetID},
		{Label: "Threshold", Value: fmt.Sprintf("any %d of %d custodians", rec.Threshold, len(rec.Custodians))},
	})
}

// deliver hands one share to one custodian, as the script's media say. It
// retries when the prompter picks a path that cannot be used.
func (e *Engine) deliver(ctx context.Context, rec *quorum.Record, share *quorum.Share, name string, index int) (string, error) {
	req := DeliveryRequest{Custodian: name, Index: index, Custodians: len(rec.Custodians), Threshold: rec.Threshold, Media: e.s.Quorum.Delivery}
	for attempt := 0; ; attempt++ {
		if attempt == 5 {
			return "", errors.New("no usable destination after 5 attempts")
		}
		d, err := e.p.DeliverShare(ctx, req)
		if err != nil {
			clear(d.Passphrase)
			return "", err
		}
		where, err := e.writeShare(rec, share, name, index, d)
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

// checkMediumPath refuses share destinations where a share must never be:
// the ceremony output directory (which is copied and archived) and the
// temporary directory.
func (e *Engine) checkMediumPath(p string) (string, error) {
	if p == "" {
		return "", &pathError{"no path given"}
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", &pathError{err.Error()}
	}
	if within(abs, e.outDir) {
		return "", &pathError{fmt.Sprintf("%s is inside the ceremony output directory; a share goes only to the custodian's own medium", abs)}
	}
	if tmp, err := filepath.Abs(os.TempDir()); err == nil && within(abs, tmp) {
		return "", &pathError{fmt.Sprintf("%s is inside the temporary directory %s; a share goes only to the custodian's own medium", abs, tmp)}
	}
	if _, err := os.Stat(abs); err == nil {
		return "", &pathError{fmt.Sprintf("%s already exists; choose a new file name", abs)}
	}
	if fi, err := os.Stat(filepath.Dir(abs)); err != nil || !fi.IsDir() {
		return "", &pathError{fmt.Sprintf("the directory of %s does not exist (is the custodian's medium mounted?)", abs)}
	}
	return abs, nil
}

func (e *Engine) writeShare(rec *quorum.Record, share *quorum.Share, name string, index int, d Delivery) (string, error) {
	var where []string
	wantCard, wantFile := e.s.Quorum.Delivers("card"), e.s.Quorum.Delivers("file")
	if wantCard != (d.CardPath != "") || wantFile != (d.FilePath != "") {
		return "", &pathError{fmt.Sprintf("the script hands out shares as %s: give exactly those destinations", strings.Join(e.s.Quorum.Delivery, " and "))}
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
	if wantCard {
		var buf bytes.Buffer
		err := paper.ShareCard(&buf, paper.Card{
			CeremonyTitle: e.s.Title, CeremonyID: e.s.ID, SetLabel: rec.SetLabel(), Custodian: name,
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

func restoreIssueShares(ctx context.Context, e *Engine, en transcript.Entry) error {
	rec, err := quorum.ReadRecord(filepath.Join(e.outDir, e.name("quorum.json")))
	if err != nil {
		return err
	}
	e.record = rec
	return nil
}

func unlockStep(purpose string) *step {
	return &step{
		id: "unlock", title: "Quorum unlocked",
		do:      "Custodians present their shares one at a time (typed from the card, or the file with its passphrase) until the threshold is reached.",
		check:   "Each share is checked on entry: checksum, this ceremony's quorum, not presented before, and the quorum's commitments.",
		record:  "Which custodians presented shares, and every refused share with the reason; never a share.",
		confirm: admins, usesSecret: true,
		run: func(ctx context.Context, r *stepRun) error {
			return r.e.unlock(ctx, r, purpose)
		},
	}
}

// unlock gathers shares until the threshold and leaves the secret in e.secret.
func (e *Engine) unlock(ctx context.Context, r *stepRun, purpose string) error {
	if e.record == nil {
		return errors.New("no quorum record: the step that creates or reads it has not run")
	}
	col := e.record.NewCollector()
	defer col.Wipe()
	var problem string
	refused := 0
	for col.Have() < col.Need() {
		req := ShareRequest{Purpose: purpose, Have: col.Have(), Need: col.Need(), Problem: problem}
		have := map[string]bool{}
		for _, c := range col.Presented() {
			req.Presented = append(req.Presented, c.Name)
			have[c.Name] = true
		}
		for _, c := range e.record.Custodians {
			if !have[c.Name] {
				req.Waiting = append(req.Waiting, c.Name)
			}
		}
		in, err := e.p.PresentShare(ctx, req)
		if err != nil {
			in.wipe()
			return fmt.Errorf("quorum not reached (%d of %d shares): %w", col.Have(), col.Need(), err)
		}
		who, err := e.takeShare(col, in)
		in.wipe()
		if err != nil {
			refused++
			problem = err.Error()
			r.detail("share refused", problem)
			if refused >= 3*len(e.record.Custodians) {
				return fmt.Errorf("quorum not reached: %d shares refused", refused)
			}
			continue
		}
		problem = ""
		r.entry.Actors = append(r.entry.Actors, transcript.Actor{Name: who, Role: string(script.Custodian), Time: time.Now().UTC().Truncate(time.Second)})
		if err := e.p.Inform(ctx, Notice{Step: r.st.id, Title: fmt.Sprintf("Share accepted: %d of %d", col.Have(), col.Need()),
			Facts: []Fact{{Label: "Custodian", Value: who}}}); err != nil {
			return err
		}
	}
	var names []string
	for _, c := range col.Presented() {
		names = append(names, fmt.Sprintf("%d %s", c.Index, c.Name))
	}
	secret, err := col.Combine()
	if err != nil {
		return err
	}
	e.secret.Wipe()
	e.secret = secret
	r.detail("purpose", purpose)
	r.detail("quorum set", e.record.SetID)
	r.detail("shares presented", strings.Join(names, ", "))
	return nil
}

// takeShare decodes and verifies one presented share.
func (e *Engine) takeShare(col *quorum.Collector, in ShareInput) (string, error) {
	var s *quorum.Share
	var err error
	switch {
	case len(in.Text) > 0:
		s, err = quorum.ParseShare(in.Text)
	case in.File != "":
		var f *os.File
		f, err = os.Open(in.File)
		if err == nil {
			s, err = quorum.ReadFile(f, in.Passphrase)
			f.Close()
		}
	default:
		err = errors.New("no share given")
	}
	who := in.Custodian
	if who == "" {
		who = "a custodian"
	}
	if err != nil {
		return "", fmt.Errorf("share from %s refused: %w", who, err)
	}
	if in.Custodian != "" {
		if owner := e.record.Custodian(s.Index); owner != "" && owner != in.Custodian {
			s.Wipe()
			return "", fmt.Errorf("share from %s refused: it is share %d, issued to %s", in.Custodian, s.Index, owner)
		}
	}
	name, err := col.Add(s)
	if err != nil {
		return "", fmt.Errorf("share from %s refused: %w", who, err)
	}
	return name, nil
}

// ensureSecret makes the quorum secret available, asking the custodians for
// their shares again (recorded as its own entry) when a resumed ceremony no
// longer holds it.
func (e *Engine) ensureSecret(ctx context.Context, purpose string) error {
	if e.secret != nil {
		return nil
	}
	st := &step{id: "unlock", title: "Quorum unlocked again"}
	r := &stepRun{e: e, st: st, entry: transcript.Entry{Step: "unlock", Action: "quorum unlocked again (" + purpose + ")", Rehearsal: e.opt.Rehearse}}
	if err := e.p.Inform(ctx, Notice{Step: st.id, Title: "The quorum is needed again",
		Warning: "This resumed ceremony no longer holds the quorum secret: custodians present their shares to " + purpose + "."}); err != nil {
		return err
	}
	if err := e.unlock(ctx, r, purpose); err != nil {
		return err
	}
	_, err := e.tw.Append(r.entry)
	return err
}

// pin derives a PIN for the open token.
func (e *Engine) pin(p quorum.Purpose) ([]byte, error) {
	tok, err := e.token()
	if err != nil {
		return nil, err
	}
	info, err := tok.Info()
	if err != nil {
		return nil, err
	}
	return e.secret.PIN(p, info.MaxPINLen)
}

// loginAs logs the user or the security officer in with the quorum-derived PIN.
func (e *Engine) loginAs(ctx context.Context, role string, purpose string) error {
	if e.login == role {
		return nil
	}
	tok, err := e.token()
	if err != nil {
		return err
	}
	if e.login != "" {
		if err := tok.Logout(); err != nil {
			return err
		}
		e.login = ""
	}
	if err := e.ensureSecret(ctx, purpose); err != nil {
		return err
	}
	p := quorum.UserPIN
	if role == "so" {
		p = quorum.SOPIN
	}
	pin, err := e.pin(p)
	if err != nil {
		return err
	}
	defer clear(pin)
	if role == "so" {
		err = tok.LoginSO(pin)
	} else {
		err = tok.Login(pin)
	}
	if err != nil {
		return fmt.Errorf("log in with the quorum's PIN: %w", err)
	}
	e.login = role
	return nil
}

func enrolStep(s *script.Script) *step {
	st := &step{
		id: "enrol-token", title: "Token enrolled under the quorum",
		check:   "The token accepts the PINs derived from the quorum secret; the user is logged in with it.",
		record:  "How the token was enrolled, its serial afterwards; never a PIN.",
		confirm: admins, usesSecret: true,
		run: runEnrol, restore: restoreEnrol,
	}
	if s.Token.Enrol == script.EnrolInitialize {
		st.do = "Nothing: the engine initialises the blank token with an SO PIN and a user PIN derived from the quorum secret."
	} else {
		st.do = "The administrator types the token's current SO PIN and user PIN once; the engine changes both to PINs derived from the quorum secret."
	}
	return st
}

func runEnrol(ctx context.Context, r *stepRun) error {
	e := r.e
	if e.secret == nil {
		if err := e.ensureSecret(ctx, "enrol the token"); err != nil {
			return err
		}
	}
	var err error
	if e.s.Token.Enrol == script.EnrolInitialize {
		err = e.enrolInitialize(ctx, r)
	} else {
		err = e.enrolChangePIN(ctx, r)
	}
	if err != nil {
		return err
	}
	if err := e.loginAs(ctx, "user", "log in"); err != nil {
		return err
	}
	r.detail("user logged in", "with the quorum-derived user PIN")
	st := enrolState{}
	if e.s.Token.Enrol == script.EnrolInitialize {
		st = enrolState{Serial: e.tokenSel.Serial, Label: e.tokenSel.Token}
	}
	if err := r.recordState(st); err != nil {
		return err
	}
	return r.confirmStep(ctx, "The token is now controlled by the quorum: its PINs exist only as derived from the custodians' shares.", []Fact{
		{Label: "Token serial", Value: e.tokenSel.Serial},
		{Label: "Enrolment", Value: string(e.s.Token.Enrol)},
	})
}

func (e *Engine) enrolInitialize(ctx context.Context, r *stepRun) error {
	if err := e.openModule(); err != nil {
		return err
	}
	e.dropToken()
	u, err := e.tokenURI()
	if err != nil {
		return err
	}
	slot, err := e.mod.FindToken(u)
	if err != nil {
		return err
	}
	if slot.Token.Initialized {
		return fmt.Errorf("token %q in slot %d is already initialised; enrol: initialize needs a blank token", slot.Token.Label, slot.ID)
	}
	before := map[string]bool{}
	slots, err := e.mod.Slots()
	if err != nil {
		return err
	}
	for _, s := range slots {
		if s.Token != nil && s.Token.Initialized {
			before[s.Token.Serial] = true
		}
	}
	// A blank token cannot be opened yet; its PIN limits come from the slot.
	so, err := e.secret.PIN(quorum.SOPIN, slot.Token.MaxPINLen)
	if err != nil {
		return err
	}
	defer clear(so)
	label := e.s.Token.Label
	if err := e.mod.InitToken(slot.ID, so, label); err != nil {
		return err
	}
	// SoftHSM gives an initialised token a new serial and slot; find it again
	// by its label among the tokens that were not initialised before.
	slots, err = e.mod.Slots()
	if err != nil {
		return err
	}
	var found []hsm.Slot
	for _, s := range slots {
		if s.Token != nil && s.Token.Initialized && s.Token.Label == label && !before[s.Token.Serial] {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		return fmt.Errorf("after initialising, %d tokens labelled %q appeared; expected exactly one", len(found), label)
	}
	e.tokenSel = hsm.URI{Serial: found[0].Token.Serial, Token: label}
	tok, err := e.token()
	if err != nil {
		return err
	}
	if err := tok.LoginSO(so); err != nil {
		return err
	}
	e.login = "so"
	user, err := e.pin(quorum.UserPIN)
	if err != nil {
		return err
	}
	defer clear(user)
	if err := tok.InitPIN(user); err != nil {
		return err
	}
	r.detail("enrolment", "blank token initialised (C_InitToken) with derived SO PIN; user PIN set (C_InitPIN)")
	r.detail("token label", label)
	r.detail("token serial", found[0].Token.Serial)
	return nil
}

// enrolChangePIN changes the SO PIN, then the user PIN, from the values
// typed once to the derived ones. A PIN already changed by an interrupted
// attempt is recognised and not changed twice.
func (e *Engine) enrolChangePIN(ctx context.Context, r *stepRun) error {
	tok, err := e.token()
	if err != nil {
		return err
	}
	admin := e.people(script.Administrator)[0]
	for _, role := range []string{"so", "user"} {
		if e.login != "" {
			if err := tok.Logout(); err != nil {
				return err
			}
			e.login = ""
		}
		purpose, title := quorum.UserPIN, "user PIN"
		login := tok.Login
		if role == "so" {
			purpose, title, login = quorum.SOPIN, "security officer (SO) PIN", tok.LoginSO
		}
		var current []byte
		if e.rehearsal != nil {
			current = e.rehearsal.currentPIN(role)
			r.detail("rehearsal", "the throwaway token's current "+title+" was supplied by the engine")
		} else {
			current, err = e.p.Secret(ctx, SecretRequest{Step: r.st.id, Kind: role + "-pin", Prompt: "Current " + title + " of the token", Who: admin})
			if err != nil {
				return err
			}
		}
		derived, err := e.pin(purpose)
		if err != nil {
			clear(current)
			return err
		}
		err = login(current)
		if errors.Is(err, hsm.ErrPINIncorrect) {
			// Perhaps an interrupted attempt already changed it.
			if login(derived) == nil {
				e.login = role
				r.detail(title, "was already the quorum-derived PIN (an interrupted attempt changed it)")
				clear(current)
				clear(derived)
				continue
			}
		}
		if err != nil {
			clear(current)
			clear(derived)
			return fmt.Errorf("the current %s was not accepted: %w", title, err)
		}
		e.login = role
		err = tok.SetPIN(current, derived)
		clear(current)
		clear(derived)
		if err != nil {
			return err
		}
		r.detail(title, "changed (C_SetPIN) to the quorum-derived PIN")
	}
	return nil
}

// enrolState is the enrolment's resume state: when it initialised the
// token, the token's new serial and label, by which the engine finds it from
// then on; empty when the token kept its serial.
type enrolState struct {
	Serial string `json:"serial"`
	Label  string `json:"label"`
}

func restoreEnrol(ctx context.Context, e *Engine, en transcript.Entry) error {
	var st enrolState
	if err := loadState(en, &st, st.fromDetails); err != nil {
		return err
	}
	if st.Serial != "" {
		e.tokenSel = hsm.URI{Serial: st.Serial, Token: st.Label}
	}
	return nil
}
