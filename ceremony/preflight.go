package ceremony

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/buildinfo"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/ceremony/words"
	"github.com/keyceremony/keyceremony/hsm"
)

func preflightSteps(s *script.Script) []*step {
	return []*step{
		{
			id: stepBegin, title: "Script identified",
			do:      "Read the script's SHA-256 aloud and compare it with the reviewed copy; read the Key Ceremony binary's SHA-256 aloud and compare it with the release's published SHA256SUMS.",
			check:   "The script parsed and validated; the output files do not exist yet; the running executable was hashed.",
			record:  "Script path and SHA-256 (and a copy of the script), ceremony identity, rehearsal flag, and the binary that runs the ceremony: version, commit, path, SHA-256.",
			confirm: admins, outputs: []string{"transcript.jsonl", "script.yaml"},
			run: runBegin,
		},
		{
			id: "air-gap", title: "Air gap checked",
			do:      "Look at the list of network interfaces that are up.",
			check:   "No network interface other than loopback is up (blocking when the script says air_gap: block); where the system cannot list its interfaces, people check by hand and confirm.",
			record:  "Every up interface with its addresses, and whether the check blocked; or that the list could not be read and who checked by hand.",
			confirm: admins, run: runAirGap,
		},
		{
			id: "clock", title: "System clock confirmed",
			do:      "Compare the laptop's clock with a trusted clock in the room.",
			check:   "People confirm the time shown.",
			record:  "The time shown, in UTC and local time, and who confirmed it.",
			confirm: admins, run: runClock,
		},
		{
			id: "token", title: "Token identified",
			do:      "Insert the token named by the script.",
			check:   "The PKCS#11 module loads, exactly one token matches the script's URI, its serial matches, and its state fits the enrolment.",
			record:  "Module, slot, token label, manufacturer, model, serial and flags.",
			confirm: admins, run: runToken, restore: restoreToken,
		},
		{
			id: "free-space", title: "Output medium checked",
			do:     "Nothing: the engine measures the output medium.",
			check:  fmt.Sprintf("At least %d MB are free in the output directory.", s.Preflight.MinFreeMB),
			record: "Output directory and free space.",
			run:    runFreeSpace,
		},
		{
			id: "sign-in", title: "Participants signed in",
			do:      "Each participant confirms presence under the name and role the script gives.",
			check:   "Every participant named by the script is present.",
			record:  "Each participant's name, role and time of sign-in.",
			confirm: script.Roles, run: runSignIn,
		},
	}
}

func runBegin(ctx context.Context, r *stepRun) error {
	e := r.e
	sum := e.s.SHA256[:]
	// The transcript must name the exact software that wrote it; a binary
	// that cannot hash itself does not run a ceremony.
	exe, exeHex, err := buildinfo.Executable()
	if err != nil {
		return fmt.Errorf("%w (the transcript must record the SHA-256 of the binary running the ceremony)", err)
	}
	exeSum, _ := hex.DecodeString(exeHex)
	facts := []Fact{
		{Label: "Ceremony", Value: fmt.Sprintf("%s (%s)", e.s.Title, e.s.Kind)},
		{Label: "Script", Value: e.s.Path},
		{Label: "Script SHA-256", Value: hex.EncodeToString(sum), Words: words.String(sum)},
		{Label: "Key Ceremony binary", Value: fmt.Sprintf("%s (commit %s) at %s", buildinfo.Version(), buildinfo.Commit(), exe)},
		{Label: "Binary SHA-256", Value: exeHex, Words: words.String(exeSum)},
		{Label: "Output directory", Value: e.outDir},
	}
	if e.opt.Rehearse {
		facts = append(facts, Fact{Label: "REHEARSAL", Value: "throwaway SoftHSM token; every output is marked REHEARSAL"})
	}
	if err := r.confirmStep(ctx, "The script SHA-256 read aloud matches the reviewed copy of the script, and the binary SHA-256 matches the published SHA256SUMS.", facts); err != nil {
		return err
	}
	if err := os.MkdirAll(e.outDir, 0o700); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	tw, err := transcript.Create(e.TranscriptPath())
	if err != nil {
		return err
	}
	e.tw = tw
	r.entry.Inputs = append(r.entry.Inputs, transcript.File{Path: e.s.Path, SHA256: hex.EncodeToString(sum), Size: int64(len(e.s.Raw))})
	// The exact script, kept with the evidence: a changed script can then be
	// checked against it on resume (amend.go).
	if _, err := r.output("script.yaml", e.s.Raw); err != nil {
		return err
	}
	r.detail("ceremony id", e.s.ID)
	r.detail("title", e.s.Title)
	r.detail("kind", string(e.s.Kind))
	r.detail("script sha256", hex.EncodeToString(sum))
	r.detail("script words", words.String(sum))
	r.detail("binary version", buildinfo.Version())
	r.detail("binary commit", buildinfo.Commit())
	r.detail("binary path", exe)
	r.detail("binary sha256", exeHex)
	r.detail("binary words", words.String(exeSum))
	if e.opt.Rehearse {
		r.detail("rehearsal", "yes: throwaway SoftHSM token, outputs are not for production")
	}
	return e.recordBegin(r)
}

func runClock(ctx context.Context, r *stepRun) error {
	now := time.Now()
	r.detail("clock shown (UTC)", now.UTC().Format(time.RFC3339))
	r.detail("clock shown (local)", now.Format(time.RFC3339))
	return r.confirmStep(ctx, "The time shown agrees with a trusted clock in the room (within a minute).", []Fact{
		{Label: "UTC", Value: now.UTC().Format("2006-01-02 15:04:05")},
		{Label: "Local", Value: now.Format("2006-01-02 15:04:05 MST")},
	})
}

// openModule loads the token's PKCS#11 module (the rehearsal's SoftHSM when rehearsing).
func (e *Engine) openModule() error {
	if e.mod != nil {
		return nil
	}
	path := e.s.Token.Module
	if e.rehearsal != nil {
		path = e.rehearsal.module
	}
	m, err := hsm.Open(path)
	if err != nil {
		return err
	}
	e.mod, e.modulePath = m, path
	return nil
}

// tokenURI selects the token before its identity is known: the script's
// URI, or the rehearsal's throwaway token.
func (e *Engine) tokenURI() (hsm.URI, error) {
	if e.tokenSel.Serial != "" || e.tokenSel.Token != "" || e.tokenSel.SlotID != nil {
		return e.tokenSel, nil
	}
	return hsm.ParseURI(e.s.Token.URI)
}

// findSlot finds the token: by its whole identity once the token step (or
// the enrolment, which may change it) recorded it, before that by the
// script's URI. Either way exactly one token must match.
func (e *Engine) findSlot() (hsm.Slot, error) {
	if err := e.openModule(); err != nil {
		return hsm.Slot{}, err
	}
	if e.tokenID != nil {
		return e.mod.FindIdentity(*e.tokenID)
	}
	u, err := e.tokenURI()
	if err != nil {
		return hsm.Slot{}, err
	}
	return e.mod.FindToken(u)
}

// token opens the token (once) and returns it.
func (e *Engine) token() (*hsm.Token, error) {
	if e.tok != nil {
		return e.tok, nil
	}
	slot, err := e.findSlot()
	if err != nil {
		return nil, err
	}
	t, err := e.mod.OpenSlot(slot)
	if err != nil {
		return nil, err
	}
	e.tok, e.slotID, e.login = t, t.SlotID(), ""
	return t, nil
}

// dropToken forgets the open token, e.g. after C_InitToken moved it.
func (e *Engine) dropToken() {
	if e.tok != nil {
		e.tok.Close()
	}
	e.tok, e.login = nil, ""
}

func runToken(ctx context.Context, r *stepRun) error {
	e := r.e
	slot, err := e.findSlot()
	if err != nil {
		return err
	}
	ti := slot.Token
	info, _ := e.mod.Info()
	if want := e.scriptURI().Serial; want != "" && e.rehearsal == nil && ti.Serial != want {
		return fmt.Errorf("token serial %q does not match the script's %q", ti.Serial, want)
	}
	if err := e.checkEnrolState(slot); err != nil {
		return err
	}
	id := slot.Identity()
	if ti.Initialized {
		// From now on the token is found by its whole identity, which no
		// other token may share.
		if _, err := e.mod.FindIdentity(id); err != nil {
			return err
		}
		e.tokenID = &id
	}
	mf, err := e.moduleFile(e.modulePath)
	r.entry.Inputs = append(r.entry.Inputs, mf)
	if err != nil {
		return err
	}
	r.detail("module sha256", mf.SHA256)
	e.slotID = slot.ID
	facts := []Fact{
		{Label: "Module", Value: fmt.Sprintf("%s (%s %s, library %s)", e.modulePath, info.Manufacturer, info.Description, info.LibraryVersion)},
		{Label: "Slot", Value: fmt.Sprintf("%d: %s (%s)", slot.ID, slot.Description, slot.Manufacturer)},
		{Label: "Token", Value: fmt.Sprintf("%q, %s %s", ti.Label, ti.Manufacturer, ti.Model)},
		{Label: "Serial", Value: ti.Serial},
		{Label: "Flags", Value: strings.Join(ti.Flags(), ", ")},
	}
	for _, f := range facts {
		r.detail(strings.ToLower(f.Label), f.Value)
	}
	r.detail("token serial", ti.Serial)
	if e.rehearsal != nil {
		r.detail("rehearsal", "throwaway SoftHSM token; the script's URI and serial were not checked")
	}
	// What the token can do for this script, before anyone holds a share.
	report, err := e.probeSlot(slot)
	if err != nil {
		return err
	}
	for _, l := range report.Lines {
		r.detail("capability: "+l.Operation, string(l.Where)+": "+l.Detail)
		facts = append(facts, Fact{Label: "Capability", Value: l.String()})
	}
	if blocking := report.Blocking(); len(blocking) > 0 {
		return &CannotRunError{Token: ti.Label, Lines: blocking}
	}
	st := tokenState{Serial: ti.Serial}
	if ti.Initialized {
		st.Identity = &id
	}
	if err := r.recordState(st); err != nil {
		return err
	}
	return r.confirmStep(ctx, "This is the token the script names, and it is in the expected state.", facts)
}

// scriptURI is the script's token URI (parsed by the script's validation).
func (e *Engine) scriptURI() hsm.URI {
	u, _ := hsm.ParseURI(e.s.Token.URI)
	return u
}

// checkEnrolState checks that the token's state fits the script's enrolment.
func (e *Engine) checkEnrolState(slot hsm.Slot) error {
	ti := slot.Token
	switch e.s.Token.Enrol {
	case script.EnrolInitialize:
		if ti.Initialized {
			return fmt.Errorf("token %q (serial %s) is already initialised, but the script says enrol: initialize; use a blank token or enrol: change-pin", ti.Label, ti.Serial)
		}
		// After C_InitToken the engine finds the token by its identity; a
		// token already carrying the label with the same manufacturer, model
		// and serial (every tpm2-pkcs11 token has the same serial) would be
		// indistinguishable from it.
		slots, err := e.mod.Slots()
		if err != nil {
			return err
		}
		for _, o := range slots {
			if o.Token != nil && o.ID != slot.ID && o.Token.Initialized && o.Token.Label == e.s.Token.Label &&
				o.Token.Manufacturer == ti.Manufacturer && o.Token.Model == ti.Model && o.Token.Serial == ti.Serial {
				return fmt.Errorf("the token in slot %d is already labelled %q, with the same manufacturer, model and serial as the blank token: "+
					"once initialised the two could not be told apart; choose another token.label", o.ID, e.s.Token.Label)
			}
		}
	case script.EnrolChangePIN, script.EnrolQuorum:
		if !ti.Initialized || !ti.UserPINInitialized {
			return fmt.Errorf("token %q is not initialised with a user PIN, but the script says enrol: %s", ti.Label, e.s.Token.Enrol)
		}
		if ti.UserPINLocked || ti.SOPINLocked {
			return fmt.Errorf("token %q has a locked PIN (%s); it cannot be used", ti.Label, strings.Join(ti.Flags(), ", "))
		}
	}
	return nil
}

// tokenState is the token step's resume state: the token's serial and, for
// an initialised token, its whole identity, by which the engine finds it
// from then on (transcripts written before identities were recorded have
// the serial only).
type tokenState struct {
	Serial   string             `json:"serial"`
	Identity *hsm.TokenIdentity `json:"identity,omitempty"`
}

func restoreToken(ctx context.Context, e *Engine, en transcript.Entry) error {
	var st tokenState
	if err := loadState(en, &st, st.fromDetails); err != nil {
		return err
	}
	switch {
	case st.Identity != nil:
		e.tokenID = st.Identity
	case st.Serial != "":
		e.tokenSel = hsm.URI{Serial: st.Serial}
	}
	return nil
}

func runFreeSpace(ctx context.Context, r *stepRun) error {
	free, err := freeBytes(r.e.outDir)
	if err != nil {
		return fmt.Errorf("measure free space in %s: %w", r.e.outDir, err)
	}
	need := uint64(r.e.s.Preflight.MinFreeMB) << 20
	r.detail("output directory", r.e.outDir)
	r.detail("free space", fmt.Sprintf("%d MB", free>>20))
	if free < need {
		return fmt.Errorf("only %d MB free in %s, the script requires %d MB: use a larger medium", free>>20, r.e.outDir, need>>20)
	}
	return r.e.p.Inform(ctx, Notice{Step: r.st.id, Title: r.st.title, Facts: []Fact{{Label: "Free space", Value: fmt.Sprintf("%d MB in %s", free>>20, r.e.outDir)}}})
}

func runSignIn(ctx context.Context, r *stepRun) error {
	var everyone []Person
	for _, p := range r.e.s.Participants {
		everyone = append(everyone, Person{Name: p.Name, Role: p.Role})
	}
	return r.confirm(ctx, "I am present and take part in this ceremony in the role shown.", nil, everyone)
}

var errNoSpaceInfo = errors.New("free space is not available on this system")
