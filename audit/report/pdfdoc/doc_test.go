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
	// -raw: the text in the order it was drawn, a table cell's lines one
	// after another (the default reading order may interleave a cell's
	// lines with its neighbour's when they run close).
	out, err := exec.Command("pdftotext", "-raw", in, "-").Output()
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
	// Wrapped, never cut: pdftotext -raw prints a cell's lines one after
	// another, so with line breaks removed every ARN is whole.
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

// TestTableWordsStayWhole: a word wider than its column (an operation
// name, a key state, a SHA-256, an event id) is set smaller, never cut in
// the middle ("GenerateDataKe|y", "PendingDelet|ion"), so a search of the
// PDF's text finds it; ARNs and paths still break after ':' or '/'.
func TestTableWordsStayWhole(t *testing.T) {
	names := []string{"GenerateDataKeyWithoutPlaintext", "PendingDeletion", "KMSInvalidStateException"}
	ids := []string{"87e003a937075e45976bd2cc50aba98ff18e75ae99309f737906e3694b85561d", "b7d0a1c2-3f4e-4a5b-8c6d-7e8f90a1b2c3"}
	arn := "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	var rows [][]string
	for i := 0; i < 6; i++ {
		rows = append(rows, []string{names[i%3], ids[i%2] + " and more words after it", arn})
	}
	text, _ := render(t, func(d *Doc) {
		d.NewPage()
		d.Table([]Column{{Title: "Operation", Width: 24}, {Title: "Hash or id", Width: 60, Mono: true}, {Title: "Key ARN", Width: 40, Mono: true}},
			rows, TableOpts{FontSize: 7.5})
	})
	for _, w := range append(names, ids...) {
		if n, want := strings.Count(text, w), 6/len(map[bool][]string{true: names, false: ids}[strings.Contains(strings.Join(names, " "), w)]); n != want {
			t.Errorf("%s whole %d times in the -layout text, want %d", w, n, want)
		}
	}
	// A heading too: an ARN as a key section's title.
	head, _ := render(t, func(d *Doc) {
		d.NewPage()
		d.Heading(1, "arn:aws:kms:eu-west-1:111122223333:key/mrk-1d7a12c53fb00255a27de66e06fbda8f-and-a-much-longer-tail-of-words")
	})
	if !strings.Contains(head, "mrk-1d7a12c53fb00255a27de66e06fbda8f-and-a-much-longer-tail-of-words") {
		t.Errorf("heading cut: %s", head)
	}
	for _, piece := range []string{"arn:aws:kms:eu-west-1:", "key/", "1234abcd-12ab-34cd-56ef-1234567890ab"} {
		if n := strings.Count(text, piece); n != len(rows) {
			t.Errorf("ARN piece %s %d times, want %d:\n%s", piece, n, len(rows), text)
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
