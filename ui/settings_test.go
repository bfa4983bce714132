package ui

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/ceremony/transcript"
)

// entryAfter finds the entry of a form row by its label.
func formEntry(t *testing.T, root fyne.CanvasObject, label string) *widget.Entry {
	t.Helper()
	for _, f := range findAll[*widget.Form](root) {
		for _, it := range f.Items {
			if it.Text != label {
				continue
			}
			if e := findAll[*widget.Entry](it.Widget); len(e) > 0 {
				return e[0]
			}
		}
	}
	t.Fatalf("no form entry %q", label)
	return nil
}

func TestSettingsPersist(t *testing.T) {
	a := test.NewTempApp(t)
	w := NewMainWindow(a, Options{Page: "settings"})
	defer w.Close()
	root := w.Canvas().Content()
	set := func(label, text string) {
		e := formEntry(t, root, label)
		fyne.DoAndWait(func() { e.SetText("") })
		test.Type(e, text)
	}
	set("Token module", "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so")
	set("Default output directory", "/media/usb/ceremony")
	set("Audit database", "/srv/audit/kms.db")
	set("Rotation policy (days)", "180")
	bh := findAll[*widget.Entry](func() fyne.CanvasObject {
		for _, f := range findAll[*widget.Form](root) {
			for _, it := range f.Items {
				if it.Text == "Business hours (UTC)" {
					return it.Widget
				}
			}
		}
		return nil
	}())
	fyne.DoAndWait(func() { bh[0].SetText(""); bh[1].SetText("") })
	test.Type(bh[0], "7")
	test.Type(bh[1], "19")
	var radio *widget.RadioGroup
	fyne.DoAndWait(func() { radio = findAll[*widget.RadioGroup](root)[0]; radio.SetSelected("light") })
	test.Tap(buttonWithText(t, root, "Save"))

	// A fresh Settings over the same preferences reads back every value.
	s := &Settings{prefs: a.Preferences()}
	bs, be := s.BusinessHours()
	if s.Module() != "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so" || s.OutputDir() != "/media/usb/ceremony" || s.AuditDB() != "/srv/audit/kms.db" ||
		s.RotationPolicyDays() != 180 || bs != 7 || be != 19 || s.Theme() != "light" {
		t.Fatalf("settings read back: module %q out %q db %q days %d hours %d-%d theme %q", s.Module(), s.OutputDir(), s.AuditDB(), s.RotationPolicyDays(), bs, be, s.Theme())
	}
	// --module overrides the saved module for one session without changing it.
	if got := (&Settings{prefs: a.Preferences(), override: "/x.so"}).Module(); got != "/x.so" {
		t.Fatalf("override = %q", got)
	}
	// Invalid input is refused with a message and nothing is saved.
	set("Rotation policy (days)", "0")
	test.Tap(buttonWithText(t, root, "Save"))
	waitForMarkup(t, w, "Rotation policy: a number of days")
	if s.RotationPolicyDays() != 180 {
		t.Errorf("an invalid policy was saved: %d", s.RotationPolicyDays())
	}
}

func TestHomeShowsRecentCeremonyVerification(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.jsonl"), filepath.Join(dir, "bad.jsonl")
	for _, p := range []string{good, bad} {
		tw, err := transcript.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, step := range []string{"begin", "air-gap", "clock"} {
			if _, err := tw.Append(transcript.Entry{Step: step, Action: step}); err != nil {
				t.Fatal(err)
			}
		}
		tw.Close()
	}
	// Tamper with one byte of the second transcript.
	b, _ := os.ReadFile(bad)
	i := strings.Index(string(b), "air-gap")
	b[i] = 'A'
	os.WriteFile(bad, b, 0o600)

	a := test.NewTempApp(t)
	s := &Settings{prefs: a.Preferences()}
	s.AddRecentTranscript(bad)
	s.AddRecentTranscript(good)
	w := NewMainWindow(a, Options{Page: "home"})
	defer w.Close()
	waitForMarkup(t, w, "Recent ceremonies", "verified: 3 entries chained", "VERIFICATION FAILED", "Network")
}
