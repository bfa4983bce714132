package ui

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/audit/inventory"
	"github.com/keyceremony/keyceremony/test/awsfake"
)

// awsTestEnv points the standard AWS chain at a local fake: static test
// credentials, no profile files, the fake's certificate as the CA bundle.
func awsTestEnv(t *testing.T, srv *awsfake.Server) {
	t.Helper()
	awsfake.IsolateEnv(t)
	srv.TrustFromEnv(t)
}

// waitForLabels waits until the labels on the window (dialogs included)
// hold every text: wrapped labels render as several lines, so their
// markup cannot be searched for a long sentence.
func waitForLabels(t *testing.T, w *MainWindow, wants ...string) {
	t.Helper()
	var all string
	waitFor(t, "labels "+strings.Join(wants, " | "), func() bool {
		var b strings.Builder
		objs := []fyne.CanvasObject{w.Canvas().Content()}
		if top := w.Canvas().Overlays().Top(); top != nil {
			objs = append(objs, top)
		}
		for _, o := range objs {
			for _, l := range findAll[*widget.Label](o) {
				b.WriteString(l.Text + "\n")
			}
		}
		all = b.String()
		for _, want := range wants {
			if !strings.Contains(all, want) {
				return false
			}
		}
		return true
	})
}

func navTitles(w *MainWindow) []string {
	var titles []string
	for _, p := range w.pages {
		titles = append(titles, p.title)
	}
	return titles
}

// The Online actions page does not exist until Settings enable it; then
// an inventory export runs from it against a local KMS, only after the
// confirmation.
func TestOnlineActionsHiddenUntilEnabled(t *testing.T) {
	srv := awsfake.NewKMS(t)
	awsTestEnv(t, srv.Server)
	key := srv.AddKey(awsfake.KeyOptions{RotationEnabled: true, Description: "payments"})
	srv.AddAlias("alias/payments", key)

	a := test.NewTempApp(t)
	w := NewMainWindow(a, Options{Page: "online"})
	defer w.Close()
	if w.Current() != "home" {
		t.Fatalf("--page online opened %q while online actions are off", w.Current())
	}
	if titles := strings.Join(navTitles(w), ","); strings.Contains(titles, "Online") {
		t.Fatalf("navigation offers %s by default", titles)
	}
	if strings.Contains(test.RenderToMarkup(w.Canvas()), "Online actions") {
		t.Fatal("Online actions shown by default")
	}

	// Settings: tick the box, save.
	fyne.DoAndWait(func() { w.Select("settings") })
	root := w.Canvas().Content()
	var check *widget.Check
	fyne.DoAndWait(func() {
		for _, c := range findAll[*widget.Check](root) {
			if c.Text == onlineCheckText {
				check = c
			}
		}
	})
	if check == nil || check.Checked {
		t.Fatalf("no unticked %q in Settings", onlineCheckText)
	}
	test.Tap(check)
	test.Tap(buttonWithText(t, root, "Save"))
	waitForMarkup(t, w, "Online actions", "Saved.")
	if w.Current() != "settings" {
		t.Errorf("saving moved to page %q", w.Current())
	}

	fyne.DoAndWait(func() { w.Select("online") })
	if w.Current() != "online" {
		t.Fatalf("online page not selectable: %q", w.Current())
	}
	root = w.Canvas().Content()
	waitForMarkup(t, w, "This machine is connected", "BYOK: prepare the import", "Private CA: get the CSR", "Audit: fetch KMS events",
		"Audit: export the key inventory", "Audit: download trail logs from S3", "Archive evidence in S3")
	set := func(label, text string) {
		e := formEntry(t, root, label)
		fyne.DoAndWait(func() { e.SetText(text) })
	}
	out := filepath.Join(t.TempDir(), "inventory.json")
	set("Region", "eu-west-1")
	set("Endpoint URL", srv.URL)
	set("Inventory file", out)

	// A missing input is said at once, before any confirmation.
	set("CSR file", "")
	test.Tap(buttonWithText(t, root, "Get CSR…"))
	waitForLabels(t, w, "The CA ARN is required")

	test.Tap(buttonWithText(t, root, "Export inventory…"))
	var contact *widget.Button
	fyne.DoAndWait(func() { contact = buttonWithText(t, w.Canvas().Overlays().Top(), "Contact AWS") })
	waitForLabels(t, w, "This contacts AWS now (the default profile, region eu-west-1, endpoint "+srv.URL+")")
	if len(srv.Requests) != 0 {
		t.Fatal("AWS contacted before the confirmation")
	}
	test.Tap(contact)
	waitForLabels(t, w, "Export inventory: done", "Wrote the inventory of account 111122223333, region eu-west-1", "1 keys, 1 aliases")
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	docs, err := inventory.Parse(f, 0)
	if err != nil || len(docs) != 1 || len(docs[0].Keys) != 1 || docs[0].Keys[0].ARN != key || docs[0].Keys[0].RotationEnabled == nil || !*docs[0].Keys[0].RotationEnabled {
		t.Fatalf("inventory read back: %v %+v", err, docs)
	}
	// The connection is remembered (no credential is).
	s := w.settings()
	if s.prefs.String(prefOnlineRegion) != "eu-west-1" || s.prefs.String(prefOnlineEndpoint) != srv.URL {
		t.Errorf("connection not remembered")
	}

	// Turned off again: the page is gone.
	fyne.DoAndWait(func() { w.Select("settings") })
	root = w.Canvas().Content()
	fyne.DoAndWait(func() {
		for _, c := range findAll[*widget.Check](root) {
			if c.Text == onlineCheckText {
				check = c
			}
		}
	})
	test.Tap(check)
	test.Tap(buttonWithText(t, root, "Save"))
	waitFor(t, "the page to go", func() bool { return !strings.Contains(strings.Join(navTitles(w), ","), "Online") })
}
