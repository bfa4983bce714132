package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/audit/report/fixture"
)

func TestAuditReportCLI(t *testing.T) {
	s := fixture.NewScenario()
	st := fixture.Build(t, s, true)
	db := st.Path()
	st.Close()
	dir := t.TempDir()
	run := func(args ...string) (string, string, error) {
		var out, errb bytes.Buffer
		err := auditReport(context.Background(), &Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}, args)
		return out.String(), errb.String(), err
	}
	pdf, js, csvp := filepath.Join(dir, "rot.pdf"), filepath.Join(dir, "rot.json"), filepath.Join(dir, "rot.csv")
	out, stderr, err := run("rotation", "--db", db, "--from", "2025-03-01", "--to", "2025-03-31", "--policy-days", "90",
		"-o", pdf, "--json", js, "--csv", csvp)
	if err != nil {
		t.Fatalf("rotation: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "10 keys: 3 compliant, 3 non-compliant, 1 unknown, 3 not eligible") || !strings.Contains(stderr, "[1/6]") {
		t.Errorf("stdout %q stderr %q", out, stderr)
	}
	for _, p := range []string{pdf, js, csvp} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
			t.Errorf("%s: %v %v", p, fi, err)
		}
	}
	var rep struct {
		Meta struct {
			Kind  string
			Scope struct{ From, To string }
		}
	}
	b, _ := os.ReadFile(js)
	if err := json.Unmarshal(b, &rep); err != nil || rep.Meta.Kind != "rotation" || rep.Meta.Scope.To != "2025-04-01T00:00:00Z" {
		t.Errorf("JSON meta %+v %v (--to 2025-03-31 includes the whole day)", rep.Meta, err)
	}
	if _, err := exec.LookPath("pdftotext"); err == nil {
		if text := fixture.PDFText(t, pdf); !strings.Contains(text, "KMS key rotation compliance report") {
			t.Error("PDF text")
		}
	}
	// Existing outputs are refused before any work, and replaced with --force.
	if _, _, err := run("rotation", "--db", db, "--from", "2025-03-01", "--to", "2025-03-31", "-o", pdf); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("overwrite without --force: %v", err)
	}
	if !strings.Contains(out, "wrote "+pdf) {
		t.Errorf("without --quiet the outputs are named: %q", out)
	}
	// --quiet: neither progress nor "wrote" lines, only the summary line.
	out, stderr, err = run("rotation", "--db", db, "--from", "2025-03-01", "--to", "2025-03-31", "-o", pdf, "--force", "--quiet")
	if err != nil {
		t.Errorf("--force: %v", err)
	}
	if strings.Contains(out, "wrote") || stderr != "" || strings.Count(out, "\n") != 1 {
		t.Errorf("--quiet printed stdout %q stderr %q", out, stderr)
	}
	up := filepath.Join(dir, "use.pdf")
	out, _, err = run("usage", "--db", db, "--from", "2025-03-01", "--to", "2025-03-31", "-o", up, "--tz", "Europe/Berlin", "--business-hours", "09-17", "--quiet")
	if err != nil || !strings.Contains(out, "93 events, 22 cryptographic calls (5 failed), 5 of 10 keys used") {
		t.Errorf("usage: %v %q", err, out)
	}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{nil, "rotation|usage"},
		{[]string{"nope"}, `unknown report "nope"`},
		{[]string{"rotation", "--db", db, "--from", "2025-03-01", "-o", "x.pdf"}, "--to are required"},
		{[]string{"rotation", "--db", db, "--from", "2025-03-01", "--to", "2025-03-31"}, "at least one output"},
		{[]string{"rotation", "--db", db, "--from", "March", "--to", "2025-03-31", "-o", "x.pdf"}, "neither YYYY-MM-DD"},
		{[]string{"rotation", "--db", db, "--from", "2025-04-01", "--to", "2025-03-01", "-o", "x.pdf"}, "empty"},
		{[]string{"usage", "--db", db, "--from", "2025-03-01", "--to", "2025-03-31", "-o", filepath.Join(dir, "u2.pdf"), "--business-hours", "9h"}, "HH-HH"},
	} {
		_, _, err := run(c.args...)
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%v: %v, want a usage error with %q", c.args, err, c.msg)
		}
	}
	if _, _, err := run("rotation", "--db", filepath.Join(dir, "missing.db"), "--from", "2025-03-01", "--to", "2025-03-31", "-o", filepath.Join(dir, "m.pdf")); err == nil ||
		errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "audit ingest") {
		t.Errorf("missing database: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("a missing database was created")
	}
}
