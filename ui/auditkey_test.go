package ui

import (
	"context"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/audit/ceremonies/ceremoniestest"
	"github.com/keyceremony/keyceremony/audit/report/fixture"
	"github.com/keyceremony/keyceremony/audit/report/keyprov"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/ceremony/words"
)

// auditWindow opens the key provenance scenario's database (real logs
// and ceremony directories, loaded by the real ingest) on the Audit page,
// once its event listing and charts are on screen.
func auditWindow(t *testing.T) (*MainWindow, *fixture.Provenance) {
	t.Helper()
	st, p := fixture.BuildProvenance(t)
	path := st.Path()
	st.Close()
	a := test.NewTempApp(t)
	a.Preferences().SetString(prefAuditDB, path)
	w := NewMainWindow(a, Options{Page: "audit"})
	t.Cleanup(w.Close)
	waitEvents(t, w.Audit(), nil)
	return w, p
}

// waitEvents waits until the event listing and its charts are on screen
// (charts other than before). The test driver runs fyne.Do on the calling
// goroutine, so the tests let one background job finish before the next.
func waitEvents(t *testing.T, ap *AuditPage, before fyne.CanvasObject) {
	t.Helper()
	waitFor(t, "the event listing and its charts", func() bool {
		return ap.Source() != nil && len(ap.charts.Objects) == 2 && ap.charts.Objects[0] != before
	})
}

// keyViewWindow is auditWindow on the key view of key.
func keyViewWindow(t *testing.T, key string) (*MainWindow, *keyView, *fixture.Provenance) {
	t.Helper()
	w, p := auditWindow(t)
	kv := w.Audit().keys
	fyne.DoAndWait(func() {
		kv.now = func() time.Time { return fixture.ProvPeriodEnd } // the whole database ends on 2025-07-01
		w.Audit().ShowKey(key)
	})
	waitKV(t, kv, "the key view on "+key, func() bool { return kv.shown && kv.current != "" && strings.HasSuffix(kv.current, key) })
	return w, kv, p
}

// waitKV waits until the key view's background work is on screen and cond holds.
func waitKV(t *testing.T, kv *keyView, what string, cond func() bool) {
	t.Helper()
	waitFor(t, what, func() bool { return kv.busy.Load() == 0 && cond() })
}

// labels is the text of every label under o.
func labels(o fyne.CanvasObject) string {
	var b strings.Builder
	for _, l := range findAll[*widget.Label](o) {
		b.WriteString(l.Text + "\n")
	}
	return b.String()
}

// buttons are the detail pane's buttons with this text, in timeline order.
func buttons(kv *keyView, text string) []*scriptButton {
	var out []*scriptButton
	fyne.DoAndWait(func() {
		for _, b := range findAll[*scriptButton](kv.detail) {
			if b.Text == text {
				out = append(out, b)
			}
		}
	})
	return out
}

func finalOf(t *testing.T, path string) string {
	t.Helper()
	rep, err := transcript.Verify(path)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := rep.Final()
	return f.Hash
}

// The key view shows a key's whole timeline from the report's model, each
// ceremony with its date, participants, final hash as hex and words and
// parameters, the usage and the findings; an event's CloudTrail record is
// the stored record; a ceremony's transcript is verified again when opened.
func TestKeyViewTimelineAndTranscript(t *testing.T) {
	_, kv, p := keyViewWindow(t, fixture.KeyARN(fixture.A1, fixture.R1, "1a1a1a1a-1a1a-4a1a-8a1a-1a1a1a1a1a1a"))
	traced := p.Keys["traced"]
	h1 := finalOf(t, p.Transcripts["traced-1"])
	b1, _ := hex.DecodeString(h1)
	var text string
	fyne.DoAndWait(func() { text = labels(kv.detail) })
	for _, want := range []string{"KMS key " + traced, "every import (2) traced to a witnessed ceremony", "5 cryptographic calls in the period (1 failed)",
		"byok-wrap ceremony kms-traced-1", "byok-wrap ceremony kms-traced-2", "RotateKeyOnDemand", "2025-06-02 10:00:00Z to 2025-06-02 10:04:00Z (laptop clock)",
		"Alice Adams (administrator), Wendy Webb (witness), Carol Chen (custodian)", h1, words.String(b1), "2025-06-03 09:10:00Z",
		"KEY_MATERIAL_EXPIRES, validTo 2026-06-01 00:00:00Z, key material mat-t1; from ceremony kms-traced-1; by arn:aws:iam::111122223333:user/security-officer",
		"Findings (0)"} {
		if !strings.Contains(text, want) {
			t.Errorf("the key view lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("labels:\n%s", text)
	}
	// One evidence button per timeline row: 6 events, 2 ceremonies.
	records, opens := buttons(kv, "CloudTrail record"), buttons(kv, "Open transcript")
	if len(records) != 6 || len(opens) != 2 {
		t.Fatalf("%d record buttons, %d transcript buttons", len(records), len(opens))
	}

	// The import's record, as stored.
	raw, err := keyprov.Record(context.Background(), kv.p.Store(), p.IDs["traced.import1"])
	if err != nil {
		t.Fatal(err)
	}
	test.Tap(records[2])
	waitKV(t, kv, "the import's record", func() bool { return kv.evidence.Text == indentedJSON(raw) })
	if !strings.Contains(kv.evidence.Text, `"eventName": "ImportKeyMaterial"`) || !strings.Contains(kv.evTitle.Text, p.IDs["traced.import1"]) {
		t.Errorf("record pane %q:\n%s", kv.evTitle.Text, kv.evidence.Text)
	}

	// The first ceremony's transcript, verified again.
	test.Tap(opens[0])
	waitKV(t, kv, "the transcript", func() bool { return strings.Contains(kv.evidence.Text, "Verified again on opening") })
	for _, want := range []string{"Chain OK: 6 entries chained, 4 output files match.", h1, words.String(b1), "confirmed by Alice Adams (administrator)"} {
		if !strings.Contains(kv.evidence.Text, want) {
			t.Errorf("the transcript pane lacks %q", want)
		}
	}
	if kv.refused.Visible() || !strings.HasSuffix(kv.evTitle.Text, "verified again") {
		t.Errorf("title %q, refused shown %v", kv.evTitle.Text, kv.refused.Visible())
	}

	// Checked against the paper: the right words hold, other ones are refused.
	fyne.DoAndWait(func() { kv.paper.SetText(words.String(b1)) })
	test.Tap(opens[0])
	waitKV(t, kv, "the paper check", func() bool {
		return strings.Contains(kv.evidence.Text, "paper: the final hash is the one written on the signed paper")
	})
	fyne.DoAndWait(func() { kv.paper.SetText(strings.Repeat("ab", 32)); kv.paper.OnSubmitted(kv.paper.Text) })
	waitKV(t, kv, "the wrong paper", func() bool {
		return kv.refused.Visible() && strings.Contains(kv.refused.Text, "differs from the one on the paper")
	})
	fyne.DoAndWait(func() { kv.paper.SetText("") })

	// The transcript edited on its medium after it was loaded: refused on
	// opening, with the reason, and none of its entries shown.
	tr := p.Transcripts["traced-1"]
	data, _ := os.ReadFile(tr)
	if err := os.WriteFile(tr, []byte(strings.Replace(string(data), "Wendy Webb", "Wendy Wolf", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	test.Tap(opens[0])
	waitKV(t, kv, "the refusal", func() bool { return kv.refused.Visible() })
	if want := "REFUSED: it does not verify: transcript entry 2 (step inputs): its contents do not match its hash (the entry was changed)"; kv.refused.Text != want {
		t.Errorf("refusal %q, want %q", kv.refused.Text, want)
	}
	if strings.Contains(kv.evidence.Text, "Entries") || strings.Contains(kv.evidence.Text, "Verified again") || !strings.HasSuffix(kv.evTitle.Text, "REFUSED") {
		t.Errorf("a tampered transcript shown as evidence (%q):\n%s", kv.evTitle.Text, kv.evidence.Text)
	}
}

// Everything from the keyboard: from the events view to the key view
// (Shift+Tab from the ingest path, Space), a key chosen in the list with
// the arrows and Space, Tab to an event's record and Space, Tab onwards to
// a ceremony's transcript, and back.
func TestKeyViewWithKeyboardOnly(t *testing.T) {
	w, p := auditWindow(t)
	ap := w.Audit()
	kv := ap.keys
	kv.now = func() time.Time { return fixture.ProvPeriodEnd }
	c := w.Canvas()
	fyne.DoAndWait(ap.focusInitial)
	test.FocusPrevious(c)
	var focused fyne.Focusable
	fyne.DoAndWait(func() { focused = c.Focused() })
	if focused != kv.open {
		t.Fatalf("Shift+Tab from the ingest path reaches %T, not the key view's button", focused)
	}
	key(c, fyne.KeySpace)
	waitKV(t, kv, "the key view", func() bool { return kv.shown && kv.rep != nil && kv.current != "" })
	fyne.DoAndWait(func() { focused = c.Focused() })
	if focused != kv.list {
		t.Fatalf("the key view's focus is on %T, not its list", focused)
	}
	current := func() string {
		var s string
		fyne.DoAndWait(func() { s = kv.current })
		return s
	}
	// The list: waiting (A2), traced, rogue, the CA. Down to rogue, Space.
	for i := 0; i < 4 && current() != p.Keys["rogue"]; i++ {
		key(c, fyne.KeyDown)
		key(c, fyne.KeySpace)
	}
	if current() != p.Keys["rogue"] {
		t.Fatalf("the arrows and Space did not reach the rogue key (at %s)", current())
	}
	var text string
	fyne.DoAndWait(func() { text = labels(kv.detail) })
	for _, want := range []string{"1 of 1 import(s) NOT traced to a witnessed ceremony (unmatched)", "HIGH", "import-without-ceremony",
		"Key material was imported at 2025-06-09T08:20:00Z by arn:aws:iam::111122223333:user/mallory with no ceremony record.", "imported-material-deleted"} {
		if !strings.Contains(text, want) {
			t.Errorf("the rogue key's view lacks %q", want)
		}
	}
	records := buttons(kv, "CloudTrail record")
	tabTo(t, c, records[2]) // the import
	key(c, fyne.KeySpace)
	waitKV(t, kv, "the rogue import's record", func() bool { return strings.Contains(kv.evidence.Text, p.IDs["rogue.import"]) })

	// The Private CA: its installation's record is a Private CA record.
	fyne.DoAndWait(func() { c.Focus(kv.list) })
	for i := 0; i < 4 && current() != p.CA; i++ {
		key(c, fyne.KeyDown)
		key(c, fyne.KeySpace)
	}
	if current() != p.CA {
		t.Fatalf("the CA was not reached (at %s)", current())
	}
	tabTo(t, c, buttons(kv, "Open transcript")[0])
	key(c, fyne.KeySpace)
	waitKV(t, kv, "the ca-signing transcript", func() bool { return strings.Contains(kv.evidence.Text, "Ceremony   issuing-ca-1 (ca-signing)") })
	tabTo(t, c, buttons(kv, "CloudTrail record")[1])
	key(c, fyne.KeySpace)
	waitKV(t, kv, "the installation's record", func() bool {
		return strings.Contains(kv.evidence.Text, `"eventSource": "acm-pca.amazonaws.com"`) && strings.Contains(kv.evidence.Text, p.IDs["ca.install"])
	})
	tabTo(t, c, kv.back)
	key(c, fyne.KeySpace)
	fyne.DoAndWait(func() { focused = c.Focused() })
	if kv.shown || !kv.events.Visible() || focused != kv.open {
		t.Errorf("back: shown %v, events visible %v, focus %T", kv.shown, kv.events.Visible(), focused)
	}
}

// Ceremony directories load from the view (typed) and from the page's
// ingest (a dropped directory): a rehearsal is refused unless asked for,
// and a loaded one joins the report; the filters narrow the view; the
// provenance report is written from the page.
func TestKeyViewLoadsCeremoniesAndFollowsFilters(t *testing.T) {
	w, kv, p := keyViewWindow(t, "3c3c3c3c-3c3c-4c3c-8c3c-3c3c3c3c3c3c")
	ap := w.Audit()
	rehearsal := filepath.Join(t.TempDir(), "rehearsal")
	ceremoniestest.WriteBYOK(t, rehearsal, ceremoniestest.BYOK{ID: "kms-rehearsal", Start: fixture.ProvPeriodEnd,
		KeyARN: p.Keys["rogue"], Rehearsal: true})
	fyne.DoAndWait(func() { ap.Ingest([]string{rehearsal}) })
	waitKV(t, kv, "the refusal", func() bool { return strings.Contains(kv.status.Text, "REFUSED") })
	if !strings.Contains(kv.status.Text, "REHEARSAL transcript") || kv.status.Importance != widget.DangerImportance || len(kv.rep.Ceremonies) != 4 {
		t.Errorf("status %q (%d ceremonies)", kv.status.Text, len(kv.rep.Ceremonies))
	}
	fyne.DoAndWait(func() {
		kv.allowReh.SetChecked(true)
		kv.cerPath.SetText(rehearsal)
		kv.cerPath.OnSubmitted(kv.cerPath.Text)
	})
	waitKV(t, kv, "the rehearsal loaded", func() bool { return kv.rep != nil && len(kv.rep.Ceremonies) == 5 })
	if !strings.Contains(kv.status.Text, "CEREMONY byok-wrap kms-rehearsal REHEARSAL") {
		t.Errorf("status %q", kv.status.Text)
	}

	// Filters applied on the events view (account A2, a period) narrow
	// the key view when it is shown again, and it says so.
	var charts fyne.CanvasObject
	fyne.DoAndWait(func() {
		kv.hide()
		charts = ap.charts.Objects[0]
		ap.filters["Account"].SetText(fixture.A2)
		ap.filters["From"].SetText("2025-06-01")
		ap.filters["To"].SetText("2025-07-01")
		ap.Apply()
	})
	waitEvents(t, ap, charts)
	fyne.DoAndWait(func() { ap.ShowKey("") })
	waitKV(t, kv, "the narrowed view", func() bool { return kv.rep != nil && len(kv.items) == 1 })
	if kv.current != p.Keys["waiting"] || !strings.Contains(kv.status.Text, "Period 2025-06-01 to 2025-06-30 (UTC, inclusive): 1 KMS key(s) with imported material") ||
		!strings.Contains(kv.status.Text, "Coverage incomplete") || kv.status.Importance != widget.WarningImportance {
		t.Errorf("current %s, status %q", kv.current, kv.status.Text)
	}
	var text string
	fyne.DoAndWait(func() { text = labels(kv.detail) })
	if !strings.Contains(text, "444455556666/eu-west-1 2025-06-10 to 2025-06-11 (2 day(s)): no CloudTrail logs") || !strings.Contains(text, "not in the logs") {
		t.Errorf("the waiting key's view lacks its gap:\n%s", text)
	}

	// A key that is not in scope is named as such.
	fyne.DoAndWait(func() { ap.ShowKey(p.Keys["rogue"]) })
	waitKV(t, kv, "the key out of scope", func() bool { return strings.Contains(kv.status.Text, p.Keys["rogue"]+" is not among them") })
	if kv.current != p.Keys["waiting"] || kv.status.Importance != widget.DangerImportance {
		t.Errorf("out of scope: showing %s, status %q", kv.current, kv.status.Text)
	}

	out := filepath.Join(t.TempDir(), "provenance.pdf")
	fyne.DoAndWait(func() { ap.Report("provenance", out) })
	waitFor(t, "the report", func() bool {
		return strings.HasPrefix(ap.status.Text, "Wrote ") || strings.Contains(ap.status.Text, "failed")
	})
	pdf, err := exec.Command("pdftotext", out, "-").Output()
	if err != nil || !strings.Contains(string(pdf), "Key provenance report") || !strings.Contains(string(pdf), p.Keys["waiting"]) {
		t.Errorf("provenance report: %v %s", err, ap.status.Text)
	}
}

// The real binary's test (test/e2e, the screenshot of the key view) opens
// a transcript from the keyboard: four Tabs from the list reach the
// “Open transcript” of a timeline that starts CreateKey,
// GetParametersForImport, ceremony.
func TestKeyViewTabsToTheFirstTranscript(t *testing.T) {
	w, kv, _ := keyViewWindow(t, "1a1a1a1a-1a1a-4a1a-8a1a-1a1a1a1a1a1a")
	c := w.Canvas()
	fyne.DoAndWait(func() { c.Focus(kv.list) })
	for i := 0; i < 4; i++ {
		test.FocusNext(c)
	}
	var focused fyne.Focusable
	fyne.DoAndWait(func() { focused = c.Focused() })
	if b, ok := focused.(*scriptButton); !ok || b != buttons(kv, "Open transcript")[0] {
		t.Fatalf("four Tabs from the list reach %T, not the first ceremony's transcript", focused)
	}
}
