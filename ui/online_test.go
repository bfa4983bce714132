package ui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/audit/inventory"
	"github.com/keyceremony/keyceremony/audit/store"
	"github.com/keyceremony/keyceremony/test/awsfake"
	"github.com/keyceremony/keyceremony/test/cloudtrailgen"
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
	defer func() {
		if t.Failed() {
			t.Logf("labels on the window:\n%s", all)
		}
	}()
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

// The Athena card checks its form before any call, then runs the query
// on a local Athena through the real SDK and loads the period's records
// into the audit database of Settings.
func TestOnlineAthenaQuery(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	gen, err := cloudtrailgen.Generate(filepath.Join(dir, "trail"), cloudtrailgen.Config{Seed: 9, KMSEvents: 300, Start: start, Days: 2,
		FileInterval: 6 * time.Hour, NoGaps: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := awsfake.NewAthena(t)
	srv.PollsToFinish = 1
	if _, err := srv.LoadTree("trails", "org_trail", filepath.Join(dir, "trail")); err != nil {
		t.Fatal(err)
	}
	awsTestEnv(t, srv.Server)

	a := test.NewTempApp(t)
	db := filepath.Join(dir, "audit.db")
	a.Preferences().SetString(prefAuditDB, db)
	a.Preferences().SetBool(prefOnline, true)
	w := NewMainWindow(a, Options{Page: "audit"})
	defer w.Close()
	waitForLabels(t, w, "0 events match")
	fyne.DoAndWait(func() { w.Select("online") })
	root := w.Canvas().Content()
	waitForMarkup(t, w, "Audit: query the organisation trail with Athena")
	set := func(label, text string) {
		e := formEntry(t, root, label)
		fyne.DoAndWait(func() { e.SetText(text) })
	}
	set("Region", "eu-west-1")
	set("Endpoint URL", srv.URL)
	set("Athena database", "trails")
	set("CloudTrail table", "org_trail; DROP TABLE x")
	set("Result location", "s3://athena-results/kc/")
	set("Events from", "2025-03-01")
	set("Events to", "2025-03-02")

	// A bad name is refused before the confirmation, and nothing is sent.
	test.Tap(buttonWithText(t, root, "Run Athena query…"))
	waitForLabels(t, w, "Run Athena query: not started", `"org_trail; DROP TABLE x": only letters, digits, _ and -`)
	if len(srv.Queries()) != 0 || len(srv.Requests) != 0 {
		t.Fatal("AWS contacted for a form with a bad table name")
	}

	set("CloudTrail table", "org_trail")
	test.Tap(buttonWithText(t, root, "Run Athena query…"))
	var contact *widget.Button
	fyne.DoAndWait(func() { contact = buttonWithText(t, w.Canvas().Overlays().Top(), "Contact AWS") })
	test.Tap(contact)
	waitForLabels(t, w, "Run Athena query: done", fmt.Sprintf("KMS events: %d new, ", gen.KMSEvents), "Database: "+db)
	// The Audit page, open behind, lists what was loaded.
	waitFor(t, "the Audit page to list again", func() bool {
		var text string
		fyne.DoAndWait(func() { text = w.Audit().status.Text })
		return strings.HasPrefix(text, groupDigits(int64(gen.KMSEvents))+" events match")
	})
	if q := srv.Queries(); len(q) != 1 || !strings.Contains(q[0], `FROM "trails"."org_trail"`) || !strings.Contains(q[0], "eventtime < '2025-03-03T00:00:00Z'") {
		t.Fatalf("queries sent: %q", q)
	}
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n int
	if err := st.DB().QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil || n != gen.KMSEvents {
		t.Fatalf("events in the database: %d (%v), want %d", n, err, gen.KMSEvents)
	}
}

// Closing the window cancels a running online action: an Athena query
// still running is asked to stop, as AWS would otherwise run (and bill)
// it to its end.
func TestOnlineActionCancelledWithTheWindow(t *testing.T) {
	srv := awsfake.NewAthena(t)
	srv.PollsToFinish = 1 << 20 // runs until stopped
	awsTestEnv(t, srv.Server)
	a := test.NewTempApp(t)
	a.Preferences().SetString(prefAuditDB, filepath.Join(t.TempDir(), "audit.db"))
	a.Preferences().SetBool(prefOnline, true)
	w := NewMainWindow(a, Options{Page: "online"})
	root := w.Canvas().Content()
	for label, text := range map[string]string{"Region": "eu-west-1", "Endpoint URL": srv.URL, "Athena database": "trails",
		"CloudTrail table": "org_trail", "Result location": "s3://athena-results/kc/", "Events from": "2025-03-01", "Events to": "2025-03-02"} {
		e := formEntry(t, root, label)
		fyne.DoAndWait(func() { e.SetText(text) })
	}
	test.Tap(buttonWithText(t, root, "Run Athena query…"))
	var contact *widget.Button
	fyne.DoAndWait(func() { contact = buttonWithText(t, w.Canvas().Overlays().Top(), "Contact AWS") })
	test.Tap(contact)
	waitForLabels(t, w, ": RUNNING, ")
	var id string
	fyne.DoAndWait(func() {
		_, rest, _ := strings.Cut(w.onlineActions.result.Text, "athena query ")
		id, _, _ = strings.Cut(rest, ":")
	})
	if srv.State(id) != "RUNNING" {
		t.Fatalf("query %q is %q before the window closes", id, srv.State(id))
	}
	fyne.DoAndWait(w.Close)
	waitFor(t, "the query to be stopped", func() bool { return srv.State(id) == "CANCELLED" })
}
