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
			record:  "Script path and SHA-256, ceremony identity, rehearsal flag, and the binary that runs the ceremony: version, commit, path, SHA-256.",
			confirm: admins, outputs: []string{"transcript.jsonl"},
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
	return nil
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

// tokenURI is how the engine finds the token: the script's URI, or, once the
// token is known (enrolled, or in a rehearsal), its serial.
func (e *Engine) tokenURI() (hsm.URI, error) {
	if e.tokenSel.Serial != "" || e.tokenSel.Token != "" || e.tokenSel.SlotID != nil {
		return e.tokenSel, nil
	}
	return hsm.ParseURI(e.s.Token.URI)
}

// token opens the token (once) and returns it.
func (e *Engine) token() (*hsm.Token, error) {
	if e.tok != nil {
		return e.tok, nil
	}
	if err := e.openModule(); err != nil {
		return nil, err
	}
	u, err := e.tokenURI()
	if err != nil {
		return nil, err
	}
	t, err := e.mod.OpenToken(u)
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
	if err := e.openModule(); err != nil {
		return err
	}
	u, err := e.tokenURI()
	if err != nil {
		return err
	}
	slot, err := e.mod.FindToken(u)
	if err != nil {
		return err
	}
	ti := slot.Token
	info, _ := e.mod.Info()
	if want := u.Serial; want != "" && ti.Serial != want {
		return fmt.Errorf("token serial %q does not match the script's %q", ti.Serial, want)
	}
	switch e.s.Token.Enrol {
	case script.EnrolInitialize:
		if ti.Initialized {
			return fmt.Errorf("token %q (serial %s) is already initialised, but the script says enrol: initialize; use a blank token or enrol: change-pin", ti.Label, ti.Serial)
		}
	case script.EnrolChangePIN, script.EnrolQuorum:
		if !ti.Initialized || !ti.UserPINInitialized {
			return fmt.Errorf("token %q is not initialised with a user PIN, but the script says enrol: %s", ti.Label, e.s.Token.Enrol)
		}
		if ti.UserPINLocked || ti.SOPINLocked {
			return fmt.Errorf("token %q has a locked PIN (%s); it cannot be used", ti.Label, strings.Join(ti.Flags(), ", "))
		}
	}
	e.slotID = slot.ID
	if ti.Serial != "" {
		// From now on the token is found by its serial alone.
		e.tokenSel = hsm.URI{Serial: ti.Serial}
		if e.rehearsal != nil {
			e.tokenSel.Token = ti.Label
		}
	}
	facts := []Fact{
		{Label: "Module", Value: fmt.Sprintf("%s (%s %s, library %s)", e.modulePath, info.Manufacturer, info.Description, info.LibraryVersion)},
		{Label: "Slot", Value: fmt.Sprintf("%d: %s", slot.ID, slot.Description)},
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
	return r.confirmStep(ctx, "This is the token the script names, and it is in the expected state.", facts)
}

func restoreToken(ctx context.Context, e *Engine, en transcript.Entry) error {
	if s := en.Detail("token serial"); s != "" {
		e.tokenSel = hsm.URI{Serial: s}
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
