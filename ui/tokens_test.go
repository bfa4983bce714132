package ui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/softhsm"
)

// waitFor polls cond on the UI goroutine until it holds or the deadline passes.
// The deadline is a hang guard, not a performance assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ok := false
		fyne.DoAndWait(func() { ok = cond() })
		if ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestTokensPageShowsRealToken(t *testing.T) {
	mod := softhsm.NewTestToken(t, "UI Test Token", []byte("so-pin-0000"), []byte("user-pin-0000"))
	a := test.NewTempApp(t)
	w := NewMainWindow(a, Options{Module: mod, Page: "tokens"})
	defer w.Close()
	if w.Current() != "tokens" {
		t.Fatalf("opened on page %q", w.Current())
	}
	waitFor(t, "tokens to load", func() bool { return len(w.Tokens().Slots()) > 0 || w.Tokens().Err() != nil })
	if err := w.Tokens().Err(); err != nil {
		t.Fatal(err)
	}
	var serial string
	var slotID uint
	for _, s := range w.Tokens().Slots() {
		if s.Token != nil && s.Token.Label == "UI Test Token" {
			serial, slotID = s.Token.Serial, s.ID
		}
	}
	if serial == "" {
		t.Fatalf("test token not among %+v", w.Tokens().Slots())
	}
	// The mechanism count and the first mechanism as the hsm package reads them.
	m, err := hsm.Open(mod)
	if err != nil {
		t.Fatal(err)
	}
	mechs, err := m.Mechanisms(slotID)
	m.Close()
	if err != nil || len(mechs) == 0 {
		t.Fatalf("mechanisms: %v", err)
	}
	wants := []string{"UI Test Token", serial, "login-required", "pkcs11:token=UI%20Test%20Token",
		fmt.Sprintf("Mechanisms (%d)", len(mechs)), mechs[0].Name}
	var markup string
	shows := func() bool {
		markup = test.RenderToMarkup(w.Canvas())
		for _, want := range wants {
			if !strings.Contains(markup, want) {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(10 * time.Second)
	for ok := false; !ok && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		fyne.DoAndWait(func() { ok = shows() })
	}
	for _, want := range wants {
		if !strings.Contains(markup, want) {
			t.Errorf("Tokens page does not show %q", want)
		}
	}
}

func TestTokensPageReportsBadModule(t *testing.T) {
	a := test.NewTempApp(t)
	w := NewMainWindow(a, Options{Module: "/nonexistent/libpkcs11.so", Page: "tokens"})
	defer w.Close()
	waitFor(t, "the load to fail", func() bool { return w.Tokens().Err() != nil })
	var markup string
	fyne.DoAndWait(func() { markup = test.RenderToMarkup(w.Canvas()) })
	if !strings.Contains(markup, "Cannot read tokens") || !strings.Contains(markup, "not found") {
		t.Error("the page does not explain that the module is missing")
	}
}

func TestSettingsPersistModule(t *testing.T) {
	a := test.NewTempApp(t)
	w := NewMainWindow(a, Options{Page: "settings"})
	defer w.Close()
	s := w.settings()
	s.SetModule("/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so")
	if got := (&Settings{prefs: a.Preferences()}).Module(); got != "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so" {
		t.Fatalf("saved module = %q", got)
	}
	// --module overrides the saved setting for one session without changing it.
	if got := (&Settings{prefs: a.Preferences(), override: "/x.so"}).Module(); got != "/x.so" {
		t.Fatalf("override = %q", got)
	}
}
