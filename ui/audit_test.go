package ui

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"

	"github.com/keyceremony/keyceremony/audit/ingest"
	"github.com/keyceremony/keyceremony/audit/store"
	"github.com/keyceremony/keyceremony/test/cloudtrailgen"
)

func auditDB(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if _, err := cloudtrailgen.Generate(logs, cloudtrailgen.Config{KMSEvents: 2500, Days: 5, FileInterval: 2 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.db")
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.Run(context.Background(), st, []string{logs}, ingest.Options{}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	return path
}

// sqlEventIDs is the ground truth: the event ids a plain SQL query over the
// documented view returns, newest first.
func sqlEventIDs(t *testing.T, st *store.Store, where string, args ...any) []string {
	t.Helper()
	rows, err := st.DB().Query(`SELECT event_id FROM events_v WHERE `+where+` ORDER BY time_utc DESC, id DESC`, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		rows.Scan(&id)
		ids = append(ids, id)
	}
	return ids
}

func TestAuditTableShowsExactlyTheSQLRows(t *testing.T) {
	path := auditDB(t)
	a := test.NewTempApp(t)
	a.Preferences().SetString(prefAuditDB, path)
	w := NewMainWindow(a, Options{Page: "audit"})
	defer w.Close()
	p := w.Audit()
	waitFor(t, "the first listing", func() bool { return p.Source() != nil })

	// The charts show the listing's operations mix as the store counts it.
	names, err := p.Store().NameCounts(context.Background(), store.Filter{})
	if err != nil || len(names) < 3 {
		t.Fatalf("name counts %v %v", names, err)
	}
	waitFor(t, "the charts", func() bool {
		want := fmt.Sprintf("%s  %d", names[0].Label, names[0].N)
		for _, txt := range findAll[*canvas.Text](p.charts) {
			if txt.Text == want {
				return true
			}
		}
		return false
	})
	// The daily chart (drawn from the listing's own day counts) names the
	// first and last day and the busiest day's count as the store counts
	// them; the status line says how many events match.
	days, err := p.Store().DailyCounts(context.Background(), store.Filter{})
	if err != nil || len(days) < 3 {
		t.Fatalf("daily counts %v %v", days, err)
	}
	var busiest, total int64
	for _, d := range days {
		busiest, total = max(busiest, d.N), total+d.N
	}
	for _, want := range []string{days[0].Label, days[len(days)-1].Label, fmt.Sprintf("max %d/day", busiest)} {
		waitFor(t, "the daily chart's "+want, func() bool {
			for _, txt := range findAll[*canvas.Text](p.charts) {
				if txt.Text == want {
					return true
				}
			}
			return false
		})
	}
	var status string
	fyne.DoAndWait(func() { status = p.status.Text })
	if st := status; !strings.HasPrefix(st, groupDigits(int64(total))+" events match") {
		t.Errorf("status %q, want %d events to match", st, total)
	}

	for _, tc := range []struct {
		name   string
		set    map[string]string
		errors bool
		where  string
		args   []any
	}{
		{"all", nil, false, "1", nil},
		{"one event name", map[string]string{"Event": "Decrypt"}, false, "event_name = ?", []any{"Decrypt"}},
		{"errors only", nil, true, "error_code IS NOT NULL", nil},
		{"period and name", map[string]string{"Event": "Decrypt", "From": "2025-03-02", "To": "2025-03-04"}, false,
			"event_name = ? AND time_utc >= ? AND time_utc < ?", []any{"Decrypt", "2025-03-02 00:00:00", "2025-03-04 00:00:00"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := p.Source()
			fyne.DoAndWait(func() {
				for _, e := range p.filters {
					e.SetText("")
				}
				for k, v := range tc.set {
					p.filters[k].SetText(v)
				}
				p.errsOnly.Checked = tc.errors
				p.Apply()
			})
			waitFor(t, "the listing", func() bool { return p.Source() != before })
			want := sqlEventIDs(t, p.Store(), tc.where, tc.args...)
			src := p.Source()
			if src.Len() != len(want) {
				t.Fatalf("table has %d rows, SQL returns %d", src.Len(), len(want))
			}
			if len(want) == 0 {
				t.Fatal("the filter matched nothing; the generated data should have some")
			}
			for i := range want {
				ev, ok := src.Row(i)
				if !ok {
					if _, err := src.Fetch(context.Background(), i/src.PageSize()); err != nil {
						t.Fatal(err)
					}
					ev, _ = src.Row(i)
				}
				if ev.EventID != want[i] {
					t.Fatalf("row %d: table %s, SQL %s", i, ev.EventID, want[i])
				}
			}
			if len(want) > 0 {
				first, _ := src.Row(0)
				waitForMarkup(t, w, first.Time.UTC().Format("2006-01-02 15:04:05"), first.Name)
			}
		})
	}

	// Selecting a row shows its original record, byte for byte the stored evidence.
	before := p.Source()
	fyne.DoAndWait(func() {
		for _, e := range p.filters {
			e.SetText("")
		}
		p.errsOnly.Checked = false
		p.Apply()
	})
	waitFor(t, "the listing", func() bool { return p.Source() != before })
	src := p.Source()
	ev, ok := src.Row(0)
	if !ok {
		t.Fatal("first row not loaded")
	}
	raw, err := p.Store().RawEvent(context.Background(), ev.EventID)
	if err != nil {
		t.Fatal(err)
	}
	fyne.DoAndWait(func() { p.table.Select(tableCell(0)) })
	waitFor(t, "the detail pane", func() bool { return strings.Contains(p.detail.Text, ev.EventID) })
	if !strings.Contains(string(raw), ev.EventID) {
		t.Fatal("raw record does not carry its event id")
	}
}

// Report export from the Audit page writes the PDF, CSV and JSON of the same
// model; the PDF reads back with pdftotext.
func TestAuditReportExport(t *testing.T) {
	path := auditDB(t)
	a := test.NewTempApp(t)
	a.Preferences().SetString(prefAuditDB, path)
	w := NewMainWindow(a, Options{Page: "audit"})
	defer w.Close()
	p := w.Audit()
	waitFor(t, "the first listing", func() bool { return p.Source() != nil })
	out := filepath.Join(t.TempDir(), "usage.pdf")
	fyne.DoAndWait(func() {
		p.filters["From"].SetText("2025-03-01")
		p.filters["To"].SetText("2025-03-06")
		p.Report("usage", out)
	})
	waitFor(t, "the report", func() bool {
		return strings.HasPrefix(p.status.Text, "Wrote ") || strings.Contains(p.status.Text, "failed")
	})
	if !strings.HasPrefix(p.status.Text, "Wrote ") || !strings.Contains(p.status.Text, "Coverage ") || !strings.Contains(p.status.Text, "Ingest runs: every ingest run finished") {
		t.Fatalf("report: %s", p.status.Text)
	}
	txt, err := exec.Command("pdftotext", out, "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(txt), "KMS key usage report") {
		t.Errorf("the PDF does not read back as a usage report")
	}
	for _, ext := range []string{".csv", ".json"} {
		if st, err := os.Stat(strings.TrimSuffix(out, ".pdf") + ext); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v", ext, err)
		}
	}
	// Without a period the report is refused with what to fill in.
	fyne.DoAndWait(func() {
		p.filters["From"].SetText("")
		p.Report("rotation", filepath.Join(t.TempDir(), "r.pdf"))
	})
	if !strings.Contains(p.status.Text, "fill in From and To") {
		t.Errorf("missing period: %s", p.status.Text)
	}
}

func TestGroupDigits(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{{0, "0"}, {7, "7"}, {999, "999"}, {1000, "1,000"}, {20000, "20,000"}, {165207, "165,207"},
		{1000000, "1,000,000"}, {10020000, "10,020,000"}, {-1234567, "-1,234,567"}} {
		if got := groupDigits(c.n); got != c.want {
			t.Errorf("groupDigits(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}
