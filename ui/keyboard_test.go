package ui

import (
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"

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
