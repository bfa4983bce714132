package pdfdoc

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pdftotext renders a PDF's text with poppler, as an auditor's tooling would.
func pdftotext(t *testing.T, pdf []byte) string {
	t.Helper()
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Fatalf("pdftotext (poppler-utils) is required: %v", err)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "in.pdf")
	if err := os.WriteFile(in, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", "-layout", in, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return string(out)
}

func pdftotextRaw(t *testing.T, pdf []byte) string {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.pdf")
	if err := os.WriteFile(in, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", in, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return string(out)
}

func render(t *testing.T, build func(d *Doc)) (string, int) {
	text, _, pages := renderPDF(t, build)
	return text, pages
}

func renderPDF(t *testing.T, build func(d *Doc)) (string, []byte, int) {
	t.Helper()
	d, err := New(Info{Title: "Test report", Scope: "scope: everything", Footer: "input SHA-256 abc", Generated: time.Date(2025, 3, 9, 12, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	build(d)
	var buf bytes.Buffer
	if err := d.Output(&buf); err != nil {
		t.Fatal(err)
	}
	return pdftotext(t, buf.Bytes()), buf.Bytes(), d.PageCount()
}

func TestTableRepeatsHeaderAndWrapsLongARNs(t *testing.T) {
	arn := "arn:aws:kms:eu-west-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef"
	longPrincipal := "arn:aws:sts::111122223333:assumed-role/VeryLongRoleNameForTheDataPipelineThatNeverEnds/i-0123456789abcdef0"
	var rows [][]string
	for i := 0; i < 150; i++ {
		rows = append(rows, []string{strconv.Itoa(i), arn, longPrincipal, "Jürgen Müller / Σωκράτης / Дмитрий"})
	}
	text, pdf, pages := renderPDF(t, func(d *Doc) {
		d.Cover("Cover title", "subtitle")
		d.NewPage()
		d.Heading(0, "Table")
		d.Table([]Column{{Title: "Row", Width: 10, Align: "R"}, {Title: "Key ARN", Width: 45, Mono: true}, {Title: "Principal", Mono: true}, {Title: "Name", Width: 40}}, rows, TableOpts{})
	})
	if pages < 4 {
		t.Fatalf("expected the table to span pages, got %d pages", pages)
	}
	// The header row is on every page after the cover.
	if n := strings.Count(text, "Key ARN"); n != pages-1 {
		t.Errorf("header row printed %d times on %d table pages", n, pages-1)
	}
	if !strings.Contains(text, "Page 2 of "+strconv.Itoa(pages)) {
		t.Errorf("no 'Page 2 of %d' footer", pages)
	}
	// Wrapped, never cut: pdftotext without -layout prints a cell's lines
	// one after another, so with line breaks removed every ARN is whole.
	raw := pdftotextRaw(t, pdf)
	flat := strings.ReplaceAll(raw, "\n", "")
	for _, s := range []string{arn, longPrincipal} {
		if n := strings.Count(flat, s); n != len(rows) {
			t.Errorf("%s printed whole %d times, want %d", s, n, len(rows))
		}
	}
	for _, s := range []string{"Jürgen Müller", "Σωκράτης", "Дмитрий", "149"} {
		if !strings.Contains(text, s) {
			t.Errorf("text %q missing from PDF", s)
		}
	}
}

func TestUnsupportedRunesAreEscapedNotDropped(t *testing.T) {
	text, _ := render(t, func(d *Doc) {
		d.NewPage()
		d.Para("user 中文 and emoji 😀 end")
	})
	for _, s := range []string{"[U+4E2D]", "[U+6587]", "[U+1F600]", "end"} {
		if !strings.Contains(text, s) {
			t.Errorf("%q missing: %s", s, text)
		}
	}
}

func TestChartLabelsAndTotals(t *testing.T) {
	text, _ := render(t, func(d *Doc) {
		d.NewPage()
		d.BarChart(Chart{Title: "Daily use", Labels: []string{"03-01", "03-02", "03-03"}, Values: []int64{5, 17, 0}, Overlay: []int64{1, 0, 0}, OverlayLabel: "failed"})
	})
	for _, s := range []string{"Daily use", "03-01", "03-03", "total 22", "peak 17", "failed (1)", "20"} {
		if !strings.Contains(text, s) {
			t.Errorf("%q missing from chart text:\n%s", s, text)
		}
	}
}

func TestNiceScale(t *testing.T) {
	for _, c := range []struct{ max, step, top int64 }{
		{0, 1, 1}, {1, 1, 1}, {5, 1, 5}, {17, 5, 20}, {99, 20, 100}, {1234, 500, 1500}, {100000, 20000, 100000},
	} {
		s, top := niceScale(c.max)
		if s != c.step || top != c.top {
			t.Errorf("niceScale(%d) = %d,%d; want %d,%d", c.max, s, top, c.step, c.top)
		}
	}
}
