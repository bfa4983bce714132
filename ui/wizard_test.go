package ui

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/assets"
	"github.com/keyceremony/keyceremony/ceremony"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/ceremony/transcript/transcripttest"
	"github.com/keyceremony/keyceremony/ceremony/words"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/softhsm/softhsmtest"
)

// rootScript adapts the shipped root template to a test token and directory,
// as an operator adapts the template to their token.
func rootScript(t *testing.T, module, serial, out string) string {
	t.Helper()
	b, err := fs.ReadFile(assets.Ceremonies, "ceremonies/root-generation.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	s = regexp.MustCompile(`uri: "pkcs11:[^"]*"`).ReplaceAllString(s, `uri: "pkcs11:token=Root%202026;serial=`+serial+`"`)
	s = strings.Replace(s, "module: /usr/lib/softhsm/libsofthsm2.so", "module: "+module, 1)
	s = strings.Replace(s, "air_gap: block", "air_gap: warn", 1) // the test machine has a network
	s = regexp.MustCompile(`directory: \S+`).ReplaceAllString(s, "directory: "+out)
	path := filepath.Join(filepath.Dir(out), "root.yaml")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// shareFromCard reads a custodian's share back from the card PDF, as they would.
func shareFromCard(t *testing.T, card string) string {
	t.Helper()
	out, err := exec.Command("pdftotext", "-layout", card, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext %s: %v", card, err)
	}
	var lines []string
	for _, m := range regexp.MustCompile(`(?m)^\s*[1-4]\s+((?:[A-Z2-7]{4} ){4}[A-Z2-7]{4})\s*$`).FindAllStringSubmatch(string(out), -1) {
		lines = append(lines, m[1])
	}
	if len(lines) != 4 {
		t.Fatalf("card %s: %d share lines", card, len(lines))
	}
	return strings.Join(lines, " ")
}

func inPanel[T fyne.CanvasObject](wz *Wizard) []T {
	var out []T
	fyne.DoAndWait(func() { out = findAll[T](wz.panel) })
	return out
}

func tapButton(t *testing.T, wz *Wizard, prefix string) {
	t.Helper()
	for _, b := range inPanel[*widget.Button](wz) {
		if strings.HasPrefix(b.Text, prefix) {
			test.Tap(b)
			return
		}
	}
	t.Fatalf("no button %q on the panel", prefix)
}

// TestWizardRehearsalRootCeremony drives a whole 3-of-5 rehearsal of the
// shipped root template through the wizard with taps and typed shares.
func TestWizardRehearsalRootCeremony(t *testing.T) {
	mod := softhsmtest.NewToken(t, "Root 2026", []byte("so-pin-4444"), []byte("user-pin-4444"))
	m, _ := hsm.Open(mod)
	slot, err := m.FindToken(hsm.URI{Token: "Root 2026"})
	m.Close()
	if err != nil {
		t.Fatal(err)
	}
	work, media := t.TempDir(), t.TempDir()
	t.Setenv("TMPDIR", t.TempDir())
	path := rootScript(t, mod, slot.Token.Serial, filepath.Join(work, "out"))

	a := test.NewTempApp(t)
	w := NewMainWindow(a, Options{Page: "ceremonies"})
	defer w.Close()
	fyne.DoAndWait(func() { w.Ceremonies().OpenScript(path) })
	waitForMarkup(t, w, "SHA-256", "Rehearse (throwaway token)")
	// The summary says what the script's token can do, probed without login.
	waitForMarkup(t, w, "probed without logging in", "generate the ec-p384 key pair: in the token")
	var rehearse *widget.Button
	fyne.DoAndWait(func() { rehearse = buttonWithText(t, w.Canvas().Content(), "Rehearse (throwaway token)") })
	test.Tap(rehearse)
	wz := w.Ceremonies().Wizard()
	if wz == nil {
		t.Fatal("no wizard started")
	}
	waitForMarkup(t, w, "REHEARSAL")

	cards := map[string]string{}
	mangledOnce, sawRefusal, sawRecovery := false, false, false
	deadline := time.Now().Add(3 * time.Minute) // hang guard only
	for done := false; !done; {
		select {
		case <-wz.Done():
			done = true
			continue
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ceremony did not finish; waiting for %q", wz.Pending())
		}
		switch wz.Pending() {
		case "inform":
			tapButton(t, wz, "Continue")
		case "confirm":
			checks := inPanel[*enterCheck](wz)
			if len(checks) == 0 {
				t.Fatal("a confirmation without anyone named")
			}
			for _, c := range checks {
				test.Tap(c)
			}
			tapButton(t, wz, "Confirm")
		case "deliver":
			for _, l := range inPanel[*widget.Label](wz) {
				if strings.Contains(l.Text, "of the recovery quorum (any 2 unlock)") {
					sawRecovery = true
				}
			}
			checks := inPanel[*widget.Check](wz)
			name := strings.TrimSuffix(strings.TrimPrefix(checks[0].Text, "Only "), " looks at the screen now")
			test.Tap(checks[0])
			entries := inPanel[*widget.Entry](wz)
			base := filepath.Join(media, strings.ReplaceAll(name, " ", "_"))
			cards[name] = base + ".card.pdf"
			test.Type(entries[0], base+".card.pdf")
			if len(entries) == 4 { // the recovery quorum hands out cards only
				test.Type(entries[1], base+".share.age")
				test.Type(entries[2], "passphrase of "+name)
				test.Type(entries[3], "passphrase of "+name)
			}
			tapButton(t, wz, "Write "+name)
		case "present":
			if mangledOnce && !sawRefusal {
				for _, l := range inPanel[*widget.Label](wz) {
					if strings.HasPrefix(l.Text, "Refused:") {
						sawRefusal = true
					}
				}
				if !sawRefusal {
					t.Fatal("the mistyped share was not reported as refused")
				}
			}
			var who *widget.Select
			fyne.DoAndWait(func() { who = findAll[*widget.Select](wz.panel)[0] })
			name := who.Selected
			share := shareFromCard(t, cards[name])
			if !mangledOnce {
				// A mistyped share is refused and named; nothing is combined.
				share = strings.Replace(share, share[:4], "AAAA", 1)
				mangledOnce = true
			}
			var typed *widget.Entry
			for _, e := range inPanel[*widget.Entry](wz) {
				if e.Password && strings.Contains(e.PlaceHolder, "share") {
					typed = e
				}
			}
			test.Type(typed, share)
			tapButton(t, wz, "Present share")
			if typed.Text != "" {
				t.Error("the share entry still holds the share")
			}
		case "secret":
			t.Fatal("a rehearsal asked for a PIN")
		default:
			time.Sleep(20 * time.Millisecond)
		}
	}
	res, err := wz.Result()
	if err != nil {
		t.Fatalf("ceremony: %v", err)
	}
	rep, err := transcript.Verify(res.Transcript)
	if err != nil {
		t.Fatalf("transcript: %v", err)
	}
	raw, _ := os.ReadFile(res.Transcript)
	for _, want := range []string{"Alice Adams", "Carol Chen", "Oscar Ortiz", "example-root-2026"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("transcript does not record %q", want)
		}
	}
	if !rep.Entries[0].Rehearsal {
		t.Error("transcript not marked as a rehearsal")
	}
	if !sawRefusal {
		t.Error("no share was refused")
	}
	if !sawRecovery {
		t.Error("the recovery quorum's shares were not handed out as such")
	}
	waitForMarkup(t, w, "Ceremony complete", fmt.Sprintf("%x", res.FinalHash), "Write on the paper: "+strings.Join(words.Encode(res.FinalHash)[:4], " "),
		"the root key signed the transcript at entries", "the quorum's MAC is on entries")
	for _, c := range cards {
		if _, err := os.Stat(c); err != nil {
			t.Errorf("share card %s not written: %v", c, err)
		}
	}
}

// TestWizardRefusesForgedTranscript: a ceremony interrupted and its
// transcript re-chained on the medium; opened again in the GUI, the wizard
// asks the quorum for its shares, finds the failed anchor and says so,
// without resuming.
func TestWizardRefusesForgedTranscript(t *testing.T) {
	mod := softhsmtest.NewToken(t, "Root 2026", []byte("so-pin-5555"), []byte("user-pin-5555"))
	m, _ := hsm.Open(mod)
	slot, err := m.FindToken(hsm.URI{Token: "Root 2026"})
	m.Close()
	if err != nil {
		t.Fatal(err)
	}
	work, media := t.TempDir(), t.TempDir()
	t.Setenv("TMPDIR", t.TempDir())
	path := rootScript(t, mod, slot.Token.Serial, filepath.Join(work, "out"))
	raw, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(raw), "delivery: [card, file]", "delivery: [card]", 1)), 0o600)
	s, err := script.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a := &ceremony.Answers{ConfirmAll: true, Deliver: map[string]ceremony.AnswerDelivery{}}
	a.PINs.SO, a.PINs.User = "so-pin-5555", "user-pin-5555"
	for _, c := range s.Quorum.Custodians {
		a.Deliver[c] = ceremony.AnswerDelivery{Card: filepath.Join(media, strings.ReplaceAll(c, " ", "_")+".card.pdf")}
	}
	ctx, cancel := context.WithCancel(context.Background())
	first := &cardPresenter{Answers: a, t: t, names: s.Quorum.Custodians[:3]}
	e, err := ceremony.New(s, ceremony.Options{Prompter: first, UnattendedTest: true, AfterStep: func(si ceremony.StepInfo, _ transcript.Entry) {
		if si.ID == "generate-key" {
			cancel()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	transcripttest.Rechain(t, e.TranscriptPath(), func(es []transcript.Entry) []transcript.Entry {
		es[len(es)-1].Action = "key pair generated (edited on the medium)"
		return es
	})

	app := test.NewTempApp(t)
	w := NewMainWindow(app, Options{Page: "ceremonies"})
	defer w.Close()
	fyne.DoAndWait(func() { w.Ceremonies().OpenScript(path) })
	waitForMarkup(t, w, "Resume the ceremony")
	fyne.DoAndWait(func() { w.Ceremonies().run(s, "", false) })
	wz := w.Ceremonies().Wizard()
	deadline := time.Now().Add(time.Minute) // hang guard only
	for done := false; !done; {
		select {
		case <-wz.Done():
			done = true
			continue
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the wizard did not end; waiting for %q", wz.Pending())
		}
		switch wz.Pending() {
		case "inform":
			tapButton(t, wz, "Continue")
		case "present":
			var who *widget.Select
			fyne.DoAndWait(func() { who = findAll[*widget.Select](wz.panel)[0] })
			share := shareFromCard(t, a.Deliver[who.Selected].Card)
			for _, en := range inPanel[*widget.Entry](wz) {
				if en.Password && strings.Contains(en.PlaceHolder, "share") {
					test.Type(en, share)
				}
			}
			tapButton(t, wz, "Present share")
		case "":
			time.Sleep(20 * time.Millisecond)
		default:
			t.Fatalf("the wizard asked %q before checking the transcript", wz.Pending())
		}
	}
	_, err = wz.Result()
	var te *ceremony.TranscriptError
	if !errors.As(err, &te) {
		t.Fatalf("wizard result: %v", err)
	}
	waitForMarkup(t, w, "The transcript does not verify: the ceremony was not resumed", "Failed anchor:", "its quorum MAC does not match", "Nothing was done on the token")
}

// cardPresenter is an answers file whose custodians type their shares from
// the cards it delivered.
type cardPresenter struct {
	*ceremony.Answers
	t     *testing.T
	names []string
	i     int
}

func (p *cardPresenter) PresentShare(ctx context.Context, r ceremony.ShareRequest) (ceremony.ShareInput, error) {
	name := p.names[p.i%len(p.names)]
	p.i++
	return ceremony.ShareInput{Custodian: name, Text: []byte(shareFromCard(p.t, p.Deliver[name].Card))}, nil
}
