package ceremony

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/quorum"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/hsm"
)

func unlockStep(purpose string) *step {
	return &step{
		id: "unlock", title: "Quorum unlocked",
		do:      "Custodians present their shares one at a time (typed from the card, or the file with its passphrase) until the threshold is reached.",
		check:   "Each share is checked on entry: checksum, this ceremony's quorum, not presented before, and the quorum's commitments.",
		record:  "Which custodians presented shares, and every refused share with the reason; never a share.",
		confirm: admins, usesSecret: true,
		run: func(ctx context.Context, r *stepRun) error {
			if err := r.e.unlock(ctx, r, purpose); err != nil {
				return err
			}
			return r.e.startMAC()
		},
	}
}

// unlock gathers shares until the threshold and leaves the secret in e.secret.
func (e *Engine) unlock(ctx context.Context, r *stepRun, purpose string) error {
	secret, err := e.collect(ctx, r, e.record, purpose)
	if err != nil {
		return err
	}
	e.secret.Wipe()
	e.secret = secret
	return nil
}

// collect gathers shares of rec's quorum until its threshold, refusing (and
// recording) every share that does not verify, and returns the secret.
func (e *Engine) collect(ctx context.Context, r *stepRun, rec *quorum.Record, purpose string) (*quorum.Secret, error) {
	if rec == nil {
		return nil, errNoRecord
	}
	col := rec.NewCollector()
	defer col.Wipe()
	var problem string
	refused := 0
	for col.Have() < col.Need() {
		req := ShareRequest{Purpose: purpose, Quorum: "quorum", Have: col.Have(), Need: col.Need(), Problem: problem}
		if rec.Purpose == quorum.RecoveryQuorum {
			req.Quorum = recoveryQuorumName
		}
		have := map[string]bool{}
		for _, c := range col.Presented() {
			req.Presented = append(req.Presented, c.Name)
			have[c.Name] = true
		}
		for _, c := range rec.Custodians {
			req.Custodians = append(req.Custodians, c.Name)
			if !have[c.Name] {
				req.Waiting = append(req.Waiting, c.Name)
			}
		}
		in, err := e.p.PresentShare(ctx, req)
		if err != nil {
			in.wipe()
			return nil, fmt.Errorf("quorum not reached (%d of %d shares): %w", col.Have(), col.Need(), err)
		}
		who, err := takeShare(rec, col, in)
		in.wipe()
		if err != nil {
			refused++
			problem = err.Error()
			r.detail("share refused", problem)
			if refused >= 3*len(rec.Custodians) {
				return nil, fmt.Errorf("quorum not reached: %d shares refused", refused)
			}
			continue
		}
		problem = ""
		r.entry.Actors = append(r.entry.Actors, transcript.Actor{Name: who, Role: string(script.Custodian), Time: time.Now().UTC().Truncate(time.Second)})
		if err := e.p.Inform(ctx, Notice{Step: r.st.id, Title: fmt.Sprintf("Share accepted: %d of %d", col.Have(), col.Need()),
			Facts: []Fact{{Label: "Custodian", Value: who}}}); err != nil {
			return nil, err
		}
	}
	var names []string
	for _, c := range col.Presented() {
		names = append(names, fmt.Sprintf("%d %s", c.Index, c.Name))
	}
	secret, err := col.Combine()
	if err != nil {
		return nil, err
	}
	r.detail("purpose", purpose)
	r.detail("quorum set", rec.SetID)
	r.detail("shares presented", strings.Join(names, ", "))
	return secret, nil
}

// takeShare decodes and verifies one presented share of rec's quorum.
func takeShare(rec *quorum.Record, col *quorum.Collector, in ShareInput) (string, error) {
	if in.Custodian != "" && rec.IndexOf(in.Custodian) == 0 {
		// Never echo what was typed: it goes into the transcript.
		return "", errors.New("a share was presented by someone who is not a custodian of the quorum record: choose the custodian from the list")
	}
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
		if owner := rec.Custodian(s.Index); owner != "" && owner != in.Custodian {
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
	if err := e.startMAC(); err != nil {
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
		st = enrolState{Serial: e.tokenSel.Serial, Label: e.tokenSel.Token, Identity: e.tokenID}
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
	// A blank token cannot be opened yet; its PIN limits come from the slot.
	so, err := e.secret.PIN(quorum.SOPIN, slot.Token.MaxPINLen)
	if err != nil {
		return err
	}
	defer clear(so)
	label := e.s.Token.Label
	// InitToken finds the token where the module put it (SoftHSM: a new
	// slot and serial; tpm2-pkcs11: the same slot and serial as every
	// other token); from then on the engine finds it by its whole identity.
	found, err := e.mod.InitToken(slot.ID, so, label)
	if err != nil {
		return err
	}
	if _, err := e.mod.FindIdentity(found.Identity()); err != nil {
		return err
	}
	id := found.Identity()
	e.tokenID = &id
	e.tokenSel = hsm.URI{Serial: found.Token.Serial, Token: label}
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
	r.detail("token serial", found.Token.Serial)
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
		if errors.Is(err, hsm.ErrPINIncorrect) && e.resumed {
			// Perhaps an interrupted attempt already changed it: only then is
			// a second try (with the derived PIN) worth its risk; hsm refuses
			// it otherwise, and never on the token's final try.
			tok.AllowOneMoreTry(role == "so")
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
	Serial   string             `json:"serial"`
	Label    string             `json:"label"`
	Identity *hsm.TokenIdentity `json:"identity,omitempty"` // absent in transcripts written before identities were recorded
}

func restoreEnrol(ctx context.Context, e *Engine, en transcript.Entry) error {
	var st enrolState
	if err := loadState(en, &st, st.fromDetails); err != nil {
		return err
	}
	if st.Identity != nil {
		e.tokenID = st.Identity
	}
	if st.Serial != "" {
		e.tokenSel = hsm.URI{Serial: st.Serial, Token: st.Label}
	}
	return nil
}
