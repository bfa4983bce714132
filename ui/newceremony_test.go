package ui

import (
	"bytes"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/keyceremony/keyceremony/assets"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/words"
	"github.com/keyceremony/keyceremony/hsm/softhsm/softhsmtest"
)

func ceremoniesWindow(t *testing.T) *MainWindow {
	t.Helper()
	softhsmtest.NewStore(t)
	a := test.NewTempApp(t)
	w := NewMainWindow(a, Options{Page: "ceremonies"})
	t.Cleanup(w.Close)
	return w
}

// A new script is saved where the form says (0600, exactly the form's
// bytes), reviewed with its SHA-256 as hex and words and the engine's plan,
// and the reviewed file is what opens to run.
func TestNewScriptSaveReviewOpen(t *testing.T) {
	w := ceremoniesWindow(t)
	path := filepath.Join(t.TempDir(), "root.yaml")
	var f *ScriptForm
	fyne.DoAndWait(func() { f = w.Ceremonies().NewScript(script.RootGeneration) })
	if got := w.Title(); got != "Key Ceremony — New root-generation script" {
		t.Errorf("title %q", got)
	}
	for _, kv := range formFills[script.RootGeneration] {
		fillField(t, f, kv[0], kv[1])
	}
	fyne.DoAndWait(func() { f.SetPath(path) })
	want, err := f.YAML()
	if err != nil {
		t.Fatal(err)
	}
	// Ctrl+S in a field saves, as the button does.
	fyne.DoAndWait(func() { field(t, f, "title").ed.(*textEditor).e.TypedShortcut(saveShortcut) })
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("saved %q (%v), want the form's YAML", got, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("script saved with mode %v", fi.Mode().Perm())
	}
	sum := sha256Sum(got)
	waitForMarkup(t, w, "Review the script", hex.EncodeToString(sum), words.Lines(sum, 8)[0], "The script is valid", "1. Script identified")
	fyne.DoAndWait(func() { test.Tap(buttonWithText(t, w.Canvas().Content(), "Open the reviewed file")) })
	waitForMarkup(t, w, "Ceremony script", "Rehearse (throwaway token)", hex.EncodeToString(sum))
	if !strings.HasPrefix(w.Title(), "Key Ceremony — Script root.yaml") {
		t.Errorf("title %q", w.Title())
	}
}

// An existing script opens in the form when the form writes it back byte for
// byte; otherwise it opens read-only, saying why, and a copy can be edited.
func TestEditScriptInFormOrReadOnly(t *testing.T) {
	dir := t.TempDir()
	tmpl := func(name string) string {
		b, _ := fs.ReadFile(assets.Ceremonies, "ceremonies/"+name+".yaml")
		return string(b)
	}
	cases := []struct {
		name, text string
		editable   bool
		reason     string
	}{
		{"template", tmpl("root-generation"), true, ""},
		{"own comment", strings.Replace(tmpl("root-generation"), "quorum:\n", "# our own note\nquorum:\n", 1), false, "layout or comments are its own"},
		{"key the kind does not use", strings.Replace(tmpl("key-backup"), "quorum:\n", "quorum:\n  delivery: [card]\n", 1), false, "would not keep quorum.delivery"},
		{"not a script", "kind: root-generation\ncolour: red\n", false, "cannot read"},
	}
	w := ceremoniesWindow(t)
	for _, tc := range cases {
		path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
		os.WriteFile(path, []byte(tc.text), 0o600)
		fyne.DoAndWait(func() { w.Ceremonies().EditScript(path) })
		if tc.editable {
			f := w.Ceremonies().Form()
			if f == nil || f.Path() != path {
				t.Fatalf("%s: not opened in the form", tc.name)
			}
			continue
		}
		waitForMarkup(t, w, "This script opens read-only", tc.reason)
		if w.Ceremonies().Form() != nil {
			t.Errorf("%s: a form is open for a read-only script", tc.name)
		}
	}
	// A copy of the commented script is edited with an empty Save as.
	path := filepath.Join(dir, "own-comment.yaml")
	fyne.DoAndWait(func() { w.Ceremonies().EditScript(path) })
	fyne.DoAndWait(func() { test.Tap(buttonWithText(t, w.Canvas().Content(), "Edit a copy in the form…")) })
	if f := w.Ceremonies().Form(); f == nil || f.Path() != "" || f.Script().ID != "example-root-2026" {
		t.Fatalf("copy not opened in the form")
	}
}
