package report_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/audit/ingest"
	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/report/rotation"
	"github.com/keyceremony/keyceremony/audit/report/rules"
	"github.com/keyceremony/keyceremony/audit/report/usage"
	"github.com/keyceremony/keyceremony/audit/store"
)

// What every report states about how far its evidence goes: partial days
// and gaps on the cover, an ingest running or interrupted, failed files
// named with their SHA-256, conflicting records as a finding. Fixtures:
// testdata/partial and ../ingest/testdata/evidence.

var evCtx = context.Background()

func evStore(t *testing.T, paths ...string) *store.Store {
	t.Helper()
	st, err := store.Open(evCtx, filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := ingest.Run(evCtx, st, paths, ingest.Options{Workers: 2, Args: paths}); err != nil {
		t.Fatal(err)
	}
	return st
}

// both builds the two reports and returns each one's JSON and PDF text
// (the cover page apart).
type rendered struct {
	kind        string
	json        map[string]any
	cover, text string
}

func bothReports(t *testing.T, st *store.Store, sc report.Scope) []rendered {
	t.Helper()
	gen := func() time.Time { return time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC) }
	rot, err := rotation.Build(evCtx, st, rotation.Options{Scope: sc, Policy: rules.Policy{RotationDays: 365}, Now: gen, Generator: "test"})
	if err != nil {
		t.Fatal(err)
	}
	use, err := usage.Build(evCtx, st, usage.Options{Scope: sc, Now: gen, Generator: "test",
		BusinessHours: usage.BusinessHours{Zone: "UTC", StartHour: 8, EndHour: 18, Weekdays: "Mon-Fri"}, TopN: 5})
	if err != nil {
		t.Fatal(err)
	}
	var out []rendered
	for _, r := range []struct {
		kind      string
		pdf, json func(w *bytes.Buffer) error
	}{
		{"rotation", func(w *bytes.Buffer) error { return rot.WritePDF(w) }, func(w *bytes.Buffer) error { return rot.WriteJSON(w) }},
		{"usage", func(w *bytes.Buffer) error { return use.WritePDF(w) }, func(w *bytes.Buffer) error { return use.WriteJSON(w) }},
	} {
		var pdf, js bytes.Buffer
		if err := r.pdf(&pdf); err != nil {
			t.Fatal(err)
		}
		if err := r.json(&js); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), r.kind+".pdf")
		os.WriteFile(p, pdf.Bytes(), 0o600)
		rd := rendered{kind: r.kind, cover: pdfPages(t, p, "1"), text: pdfPages(t, p, "")}
		if err := json.Unmarshal(js.Bytes(), &rd.json); err != nil {
			t.Fatal(err)
		}
		out = append(out, rd)
	}
	return out
}

func pdfPages(t *testing.T, path, page string) string {
	t.Helper()
	args := []string{"-layout"}
	if page != "" {
		args = append(args, "-f", page, "-l", page)
	}
	out, err := exec.Command("pdftotext", append(args, path, "-")...).Output()
	if err != nil {
		t.Fatalf("pdftotext: %v (poppler-utils is required)", err)
	}
	return string(out)
}

func jsonPath(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// TestCoverStatesPartialDays: a day with 6 records where its account and
// region has 60 on a typical day is a partial day, a coverage gap listed
// on the cover with the verdict; a pair with 5 records a day is not
// judged. (Only whole missing days were reported, on page 2.)
func TestCoverStatesPartialDays(t *testing.T) {
	st := evStore(t, "testdata/partial/AWSLogs")
	sc := report.Scope{From: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC)}
	for _, r := range bothReports(t, st, sc) {
		gaps, _ := r.json["coverage_gaps"].([]any)
		if len(gaps) != 1 {
			t.Fatalf("%s: coverage gaps %v", r.kind, gaps)
		}
		g := gaps[0].(map[string]any)
		if g["account"] != "111122223333" || g["from"] != "2025-03-06" || g["to"] != "2025-03-06" || g["kind"] != report.GapPartial ||
			g["records"] != 6.0 || g["typical"] != 60.0 {
			t.Fatalf("%s: gap %v", r.kind, g)
		}
		if v := jsonPath(r.json, "meta", "coverage", "verdict"); v != "incomplete" || jsonPath(r.json, "meta", "coverage", "partial_days") != 1.0 {
			t.Fatalf("%s: verdict %v", r.kind, jsonPath(r.json, "meta", "coverage"))
		}
		for _, want := range []string{"Coverage", "incomplete: KMS evidence is missing or partial for 1 account/region day(s)",
			"111122223333", "2025-03-06", "partial: 6 records, a typical day has 60"} {
			if !strings.Contains(r.cover, want) {
				t.Fatalf("%s: the cover lacks %q:\n%s", r.kind, want, r.cover)
			}
		}
	}
}

// TestCoverStatesIngestRunningOrInterrupted: a report made while an ingest
// runs, or after one was killed, says so on its cover; once the same
// ingest is run again to completion the cover says the runs finished.
func TestCoverStatesIngestRunningOrInterrupted(t *testing.T) {
	logs := "testdata/partial/AWSLogs"
	st := evStore(t, logs)
	sc := report.Scope{From: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC)}
	for _, r := range bothReports(t, st, sc) {
		if !strings.Contains(r.cover, "every ingest run finished (1 run(s))") {
			t.Fatalf("%s: cover of a complete ingest:\n%s", r.kind, r.cover)
		}
	}
	// Another process's ingest, as far as a reader can tell: a run whose
	// lock is held (by a writer of this process, on its own connection).
	w, err := st.NewWriter(evCtx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.StartRun([]string{logs}); err != nil {
		t.Fatal(err)
	}
	for _, r := range bothReports(t, st, sc) {
		if !strings.Contains(r.cover, "an ingest is running") || !strings.Contains(r.cover, "evidence may be incomplete") ||
			jsonPath(r.json, "meta", "provenance", "ingest", "state") != report.IngestRunning {
			t.Fatalf("%s: cover while an ingest runs:\n%s", r.kind, r.cover)
		}
	}
	// Killed: its lock goes, its run stays "running" in the table.
	w.Close()
	runs, _ := st.Runs(evCtx)
	last := runs[len(runs)-1]
	for _, r := range bothReports(t, st, sc) {
		want := "an ingest was interrupted at " + report.FormatTime(last.HeartbeatAt)
		if !strings.Contains(strings.Join(strings.Fields(r.cover), " "), want) ||
			jsonPath(r.json, "meta", "provenance", "ingest", "state") != report.IngestIncomplete {
			t.Fatalf("%s: cover after an interrupted ingest lacks %q:\n%s", r.kind, want, r.cover)
		}
	}
	// The same ingest run again to completion.
	if _, err := ingest.Run(evCtx, st, []string{logs}, ingest.Options{Args: []string{logs}}); err != nil {
		t.Fatal(err)
	}
	for _, r := range bothReports(t, st, sc) {
		if !strings.Contains(r.cover, "every ingest run finished (3 run(s))") {
			t.Fatalf("%s: cover once the ingest was run again:\n%s", r.kind, r.cover)
		}
	}
}

// TestReportsNameFailedFilesAndConflicts: a file that failed to load is
// named in the appendix and the JSON with its SHA-256 and error (only
// counted before), and records with one eventID that state different
// facts are a finding of both reports (they were counted as duplicates).
func TestReportsNameFailedFilesAndConflicts(t *testing.T) {
	dir := t.TempDir()
	ev := "../ingest/testdata/evidence/"
	for _, f := range []string{"decrypt-ok.json", "decrypt-refused.json", "decrypt-pair.json"} {
		b, _ := os.ReadFile(ev + f)
		os.WriteFile(filepath.Join(dir, f), b, 0o600)
	}
	good, _ := os.ReadFile(ev + "decrypt-ok.json")
	broken := filepath.Join(dir, "broken.json")
	os.WriteFile(broken, good[:100], 0o600)
	sum := sha256.Sum256(good[:100])
	st := evStore(t, dir)
	sc := report.Scope{From: time.Date(2025, 5, 20, 0, 0, 0, 0, time.UTC), To: time.Date(2025, 5, 22, 0, 0, 0, 0, time.UTC)}
	for _, r := range bothReports(t, st, sc) {
		fails, _ := jsonPath(r.json, "meta", "provenance", "failures").([]any)
		if len(fails) != 1 {
			t.Fatalf("%s: failures %v", r.kind, fails)
		}
		f := fails[0].(map[string]any)
		if f["path"] != broken || f["sha256"] != hex.EncodeToString(sum[:]) || !strings.Contains(f["error"].(string), "truncated") {
			t.Fatalf("%s: failure %v", r.kind, f)
		}
		text := strings.Join(strings.Fields(r.text), " ")
		for _, want := range []string{"Files that failed to load", "broken.json", hex.EncodeToString(sum[:]), "file truncated?",
			"Conflicting records", "b7d0a1c2-3f4e-4a5b-8c6d-7e8f90a1b2c3", "5f6e7d8c-9b0a-4c1d-a2e3-f4a5b6c7d8e9",
			"decrypt-refused.json (offset 13)", "decrypt-pair.json (offset", "How they differ"} {
			if !strings.Contains(text, want) {
				t.Fatalf("%s: the PDF lacks %q", r.kind, want)
			}
		}
		cs, _ := r.json["conflicts"].([]any)
		if len(cs) != 2 {
			t.Fatalf("%s: conflicts %v", r.kind, cs)
		}
		for _, c := range cs {
			kept, other := jsonPath(c, "kept", "error"), jsonPath(c, "other", "error")
			if (kept == nil) == (other == nil) || jsonPath(c, "other", "offset") != 13.0 && jsonPath(c, "other", "offset") != 1001.0 {
				t.Fatalf("%s: conflict %v", r.kind, c)
			}
		}
		if !strings.Contains(r.cover, "2 eventID(s) with records that state different facts") {
			t.Fatalf("%s: cover:\n%s", r.kind, r.cover)
		}
		if r.kind == "rotation" {
			keys, _ := r.json["keys"].([]any)
			flagged := false
			for _, k := range keys {
				for _, fl := range k.(map[string]any)["flags"].([]any) {
					flagged = flagged || fl.(map[string]any)["id"] == rotation.FlagConflict
				}
			}
			if !flagged {
				t.Fatalf("rotation: no key flagged %s", rotation.FlagConflict)
			}
		}
	}
}
