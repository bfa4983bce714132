package ui

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/ceremony/words"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/softhsm/softhsmtest"
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
	userPIN := []byte("user-pin-0000")
	mod := softhsmtest.NewToken(t, "UI Test Token", []byte("so-pin-0000"), userPIN)
	// A key to find in the Keys tab, made through the hsm package.
	m, err := hsm.Open(mod)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := m.OpenToken(hsm.URI{Token: "UI Test Token"})
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.Login(userPIN); err != nil {
		t.Fatal(err)
	}
	key, err := tok.GenerateKey(context.Background(), hsm.KeySpec{Type: hsm.ECP256, Label: "ui-visible-key"})
	if err != nil {
		t.Fatal(err)
	}
	tok.Close()
	var mechs []hsm.MechanismInfo
	slots, _ := m.Slots()
	for _, s := range slots {
		if s.Token != nil && s.Token.Label == "UI Test Token" {
			mechs, _ = m.Mechanisms(s.ID)
		}
	}
	m.Close()
	if len(mechs) == 0 {
		t.Fatal("no mechanisms read")
	}

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
	for _, s := range w.Tokens().Slots() {
		if s.Token != nil && s.Token.Label == "UI Test Token" {
			serial = s.Token.Serial
		}
	}
	if serial == "" {
		t.Fatalf("test token not among %+v", w.Tokens().Slots())
	}
	waitForMarkup(t, w, "PKCS#11 modules found on this machine: SoftHSM2 (", "UI Test Token", serial, "login-required", "pkcs11:token=UI%20Test%20Token")
	// The tab titles, from the tabs themselves: a tab bar drawn before its
	// first layout shows only the selected tab in the markup.
	wantTitles := fmt.Sprintf("Token|Mechanisms (%d)|Keys", len(mechs))
	waitFor(t, "the tabs "+wantTitles, func() bool {
		tabs := findAll[*container.AppTabs](w.Canvas().Content())
		if len(tabs) != 1 {
			return false
		}
		var names []string
		for _, it := range tabs[0].Items {
			names = append(names, it.Text)
		}
		return strings.Join(names, "|") == wantTitles
	})

	// The page redraws itself when the poll sees a token change: each step
	// finds the tab container on screen now, not one found before.
	selectTab := func(i int, want string) {
		t.Helper()
		waitFor(t, fmt.Sprintf("tab %d showing %q", i, want), func() bool {
			tabs := findAll[*container.AppTabs](w.Canvas().Content())
			if len(tabs) != 1 {
				return false
			}
			if tabs[0].SelectedIndex() != i {
				tabs[0].SelectIndex(i)
			}
			return strings.Contains(test.RenderToMarkup(w.Canvas()), want)
		})
	}
	selectTab(1, mechs[0].Name)

	// Keys: log in through the PIN dialog; the key and its word fingerprint appear.
	selectTab(2, "Log in to list keys…")
	var login *widget.Button
	fyne.DoAndWait(func() { login = buttonWithText(t, w.Canvas().Content(), "Log in to list keys…") })
	test.Tap(login)
	var pinEntry *widget.Entry
	fyne.DoAndWait(func() {
		for _, e := range findAll[*widget.Entry](w.Canvas().Overlays().Top()) {
			if e.Password {
				pinEntry = e
			}
		}
	})
	if pinEntry == nil {
		t.Fatal("no PIN entry in the login dialog")
	}
	test.Type(pinEntry, string(userPIN))
	var listBtn *widget.Button
	fyne.DoAndWait(func() { listBtn = buttonWithText(t, w.Canvas().Overlays().Top(), "List keys") })
	test.Tap(listBtn)
	fp := key.Fingerprint()
	waitForMarkup(t, w, "ui-visible-key", hex.EncodeToString(fp), words.Encode(fp)[0]+" "+words.Encode(fp)[1])
	if pinEntry.Text != "" {
		t.Error("the PIN entry still holds the PIN after use")
	}
}

// waitForMarkup waits until the window shows every string in wants.
func waitForMarkup(t *testing.T, w *MainWindow, wants ...string) {
	t.Helper()
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
	failed := false
	for _, want := range wants {
		if !strings.Contains(markup, want) {
			t.Errorf("the window does not show %q", want)
			failed = true
		}
	}
	if failed {
		t.Logf("the window's markup:\n%s", markup)
	}
}

// findAll walks a widget tree (containers and widget renderers) for objects of type T.
func findAll[T fyne.CanvasObject](o fyne.CanvasObject) []T {
	var out []T
	var walk func(o fyne.CanvasObject)
	walk = func(o fyne.CanvasObject) {
		if o == nil {
			return
		}
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
		switch x := o.(type) {
		case *fyne.Container:
			for _, c := range x.Objects {
				walk(c)
			}
		case fyne.Widget:
			for _, c := range test.WidgetRenderer(x).Objects() {
				walk(c)
			}
		}
	}
	walk(o)
	return out
}

func buttonWithText(t *testing.T, o fyne.CanvasObject, text string) *widget.Button {
	t.Helper()
	for _, b := range findAll[*widget.Button](o) {
		if b.Text == text {
			return b
		}
	}
	t.Fatalf("no button %q", text)
	return nil
}

func TestTokensPageReportsBadModule(t *testing.T) {
	a := test.NewTempApp(t)
	w := NewMainWindow(a, Options{Module: "/nonexistent/libpkcs11.so", Page: "tokens"})
	defer w.Close()
	waitFor(t, "the load to fail", func() bool { return w.Tokens().Err() != nil })
	waitForMarkup(t, w, "Cannot read tokens", "not found")
}
