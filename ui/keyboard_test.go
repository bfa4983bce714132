package ui

import (
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/ceremony"
	"github.com/keyceremony/keyceremony/ceremony/script"
)

// A confirmation is given with the keyboard alone: Tab to each person's
// checkbox, Space to tick it, Enter to confirm; Enter does nothing while
// someone has not ticked.
func TestConfirmWithKeyboardOnly(t *testing.T) {
	a := test.NewTempApp(t)
	win := a.NewWindow("k")
	wz := &Wizard{win: win, panel: container.NewVBox()}
	win.SetContent(wz.panel)
	var got []ceremony.Confirmation
	replied := false
	fyne.DoAndWait(func() {
		wz.showConfirm(ceremony.ConfirmRequest{Statement: "The clock is right.", Required: []ceremony.Person{
			{Name: "Alice Adams", Role: script.Role("administrator")}, {Name: "Wendy Webb", Role: script.Role("witness")},
		}}, func(v any, err error) {
			replied = true
			if err == nil {
				got = v.([]ceremony.Confirmation)
			}
		})
	})
	c := win.Canvas()
	checks := findAll[*enterCheck](wz.panel)
	if len(checks) != 2 {
		t.Fatalf("%d checkboxes", len(checks))
	}
	fyne.DoAndWait(func() { c.Focus(checks[0]) })
	space(c)
	fyne.DoAndWait(func() { checks[0].TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn}) })
	if replied {
		t.Fatal("Enter confirmed although Wendy Webb has not ticked")
	}
	test.FocusNext(c)
	space(c)
	if !checks[0].Checked || !checks[1].Checked {
		t.Fatalf("ticks: %v %v", checks[0].Checked, checks[1].Checked)
	}
	fyne.DoAndWait(func() {
		if f, ok := c.Focused().(fyne.Focusable); ok {
			f.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
		}
	})
	if !replied || len(got) != 2 || got[0].Name != "Alice Adams" || got[1].Name != "Wendy Webb" {
		t.Fatalf("confirmations %+v (replied %v)", got, replied)
	}
}

// space types a space into the focused widget, as the keyboard does.
func space(c fyne.Canvas) {
	fyne.DoAndWait(func() {
		if f := c.Focused(); f != nil {
			f.TypedRune(' ')
		}
	})
}

// key sends a key to the focused widget, as the keyboard does.
func key(c fyne.Canvas, k fyne.KeyName) {
	fyne.DoAndWait(func() {
		if f := c.Focused(); f != nil {
			f.TypedKey(&fyne.KeyEvent{Name: k})
		}
	})
}

// typeText types s into the focused widget, rune by rune.
func typeText(c fyne.Canvas, s string) {
	fyne.DoAndWait(func() {
		if f := c.Focused(); f != nil {
			for _, r := range s {
				f.TypedRune(r)
			}
		}
	})
}

// tabTo presses Tab until target has the focus: it must be reachable.
func tabTo(t *testing.T, c fyne.Canvas, target fyne.Focusable) {
	t.Helper()
	for i := 0; i < 400; i++ {
		var at fyne.Focusable
		fyne.DoAndWait(func() { at = c.Focused() })
		if at == target {
			return
		}
		test.FocusNext(c)
	}
	t.Fatalf("Tab never reaches %T", target)
}

// A new root-generation script is made, saved, reviewed and opened from the
// keyboard alone: Space on the focused buttons, Tab to every field (a list
// field passes Tab on), typing, arrows in the choices, Ctrl+S.
func TestNewScriptWithKeyboardOnly(t *testing.T) {
	w := ceremoniesWindow(t)
	c := w.Canvas()
	path := filepath.Join(t.TempDir(), "kb.yaml")
	key(c, fyne.KeySpace) // "New ceremony script…" has the focus
	key(c, fyne.KeySpace) // the first kind, root-generation
	f := w.Ceremonies().Form()
	if f == nil || f.Kind() != script.RootGeneration {
		t.Fatal("the keyboard did not open the root-generation form")
	}
	typeText(c, path) // "Save as" has the focus
	entry := func(p string) fyne.Focusable { return field(t, f, p).ed.(*textEditor).e }
	fill := func(target fyne.Focusable, text string) {
		tabTo(t, c, target)
		typeText(c, text)
	}
	fill(entry("id"), "kb-root-2026")
	fill(entry("title"), "Keyboard Root")
	fill(entry("token.uri"), "pkcs11:slot-id=0")
	fill(entry("token.label"), "KB Root")
	rows := field(t, f, "participants").ed.(*rowsEditor[script.Participant]).rows
	for i, name := range []string{"Alice Adams", "Wendy Webb", "Carol Chen", "Dan Diaz", "Erin Evans"} {
		fill(rows[i].first, name)
	}
	fill(field(t, f, "quorum.threshold").ed.(*intEditor).e, "2")
	// The custodians followed the participants; Tab leaves the list (in the
	// real window the driver gives Tab to a widget that accepts it).
	list := field(t, f, "quorum.custodians").ed.(*custodiansEditor).e
	if list.AcceptsTab() {
		t.Error("a list field keeps Tab: the keyboard cannot leave it")
	}
	airGap := field(t, f, "preflight.air_gap").ed.(*choiceEditor)
	tabTo(t, c, airGap.sel)
	key(c, fyne.KeyRight) // block -> warn
	fill(field(t, f, "key.label").ed.(*textEditor).e, "kb-root")
	tabTo(t, c, field(t, f, "key.backup").ed.(*boolEditor).check)
	space(c)
	// A backup brings the recovery quorum's fields.
	fill(field(t, f, "recovery.threshold").ed.(*intEditor).e, "2")
	fill(field(t, f, "recovery.custodians").ed.(*listEditor).e, "Dan Diaz")
	key(c, fyne.KeyReturn)
	typeText(c, "Erin Evans")
	fill(entry("recovery.medium"), "/media/kb-backup")
	fill(entry("certificate.subject.common_name"), "Keyboard Root CA")
	// The form scrolled to the field the keyboard reached.
	fyne.DoAndWait(func() {
		cn := entry("certificate.subject.common_name").(fyne.CanvasObject)
		d := fyne.CurrentApp().Driver()
		y := d.AbsolutePositionForObject(cn).Y - d.AbsolutePositionForObject(f.scroll).Y
		if f.scroll.Offset.Y == 0 || y < 0 || y+cn.Size().Height > f.scroll.Size().Height {
			t.Errorf("the focused field is off screen (at %v in a view of %v, offset %v)", y, f.scroll.Size().Height, f.scroll.Offset.Y)
		}
	})
	fyne.DoAndWait(func() { c.Focused().(fyne.Shortcutable).TypedShortcut(saveShortcut) })

	s, err := script.Load(path)
	if err != nil {
		t.Fatalf("the keyboard-made script: %v", err)
	}
	if s.ID != "kb-root-2026" || s.Token.Label != "KB Root" || s.Quorum.Threshold != 2 || strings.Join(s.Quorum.Custodians, ",") != "Carol Chen,Dan Diaz,Erin Evans" ||
		s.Preflight.AirGap != "warn" || !s.Key.Backup || s.Recovery == nil || strings.Join(s.Recovery.Custodians, ",") != "Dan Diaz,Erin Evans" || s.Certificate.Subject.CommonName != "Keyboard Root CA" || s.Participants[1].Name != "Wendy Webb" {
		t.Fatalf("script made from the keyboard: %+v", s)
	}
	waitForMarkup(t, w, "Review the script", "The script is valid")
	key(c, fyne.KeySpace) // "Open the reviewed file" has the focus
	waitForMarkup(t, w, "Rehearse (throwaway token)")
	var focused fyne.Focusable
	fyne.DoAndWait(func() { focused = c.Focused() })
	if b, ok := focused.(*widget.Button); !ok || b.Text != "Rehearse (throwaway token)" {
		t.Errorf("the summary's focus is on %T, not Rehearse", focused)
	}
}
