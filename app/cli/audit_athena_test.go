package cli

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/test/awsfake"
	"github.com/keyceremony/keyceremony/test/cloudtrailgen"
)

// The CLI runs both modes through the real SDK, and a usage report over
// the aggregates says on its cover that it rests on them.
func TestAuditAthenaCLI(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	gen, err := cloudtrailgen.Generate(filepath.Join(dir, "trail"), cloudtrailgen.Config{Seed: 5, KMSEvents: 600, Start: start, Days: 2,
		FileInterval: 6 * time.Hour, NoGaps: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := awsfake.NewAthena(t)
	srv.PollsToFinish = 1 // the real clock paces the polls
	if _, err := srv.LoadTree("trails", "org_trail", filepath.Join(dir, "trail")); err != nil {
		t.Fatal(err)
	}
	awsfake.IsolateEnv(t)
	srv.TrustFromEnv(t)
	base := []string{"audit", "athena", "--region", "eu-west-1", "--endpoint-url", srv.URL, "--database", "trails", "--table", "org_trail",
		"--output-location", "s3://athena-results/kc/", "--from", "2025-03-01", "--to", "2025-03-02"}

	recDB := filepath.Join(dir, "records.db")
	out, errOut, err := run(t, "", append(base, "--db", recDB)...)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if !strings.Contains(out, "KMS events: "+strconv.Itoa(gen.KMSEvents)+" new, ") || !strings.Contains(errOut, "SUCCEEDED") {
		t.Errorf("records run:\n%s\n%s", out, errOut)
	}
	if out, _, err := run(t, "", "audit", "events", "--db", recDB, "--count"); err != nil || strings.TrimSpace(out) != strconv.Itoa(gen.KMSEvents) {
		t.Errorf("events loaded: %q %v", out, err)
	}

	aggDB := filepath.Join(dir, "aggregates.db")
	out, errOut, err = run(t, "", append(base, "--db", aggDB, "--aggregate", "--no-progress")...)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if !strings.Contains(out, "Aggregates: "+strconv.Itoa(gen.KMSEvents)+" KMS events in") || !strings.Contains(out, "2025-03-01 to 2025-03-02") || errOut != "" {
		t.Errorf("aggregates run:\n%s\n%s", out, errOut)
	}
	pdf := filepath.Join(dir, "usage.pdf")
	if _, errOut, err := run(t, "", "audit", "report", "usage", "--db", aggDB, "--from", "2025-03-01", "--to", "2025-03-02", "-o", pdf, "--quiet"); err != nil {
		t.Fatalf("report over aggregates: %v\n%s", err, errOut)
	}
	text, err := exec.Command("pdftotext", pdf, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	if flat := strings.Join(strings.Fields(string(text)), " "); !strings.Contains(flat, "This report rests on aggregate-only data") {
		t.Errorf("the report's cover does not say it rests on aggregates:\n%.2000s", flat)
	}

	// Usage errors, before any call.
	calls := srv.Calls("StartQueryExecution")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"audit", "athena", "--database", "trails", "--from", "2025-03-01", "--to", "2025-03-02"}, "--table"},
		{append(append([]string{}, base...), "--output-location", "https://bucket/"), "not an s3:// location"},
		{append(append([]string{}, base...), "--from", "2025-03-01T10:00:00Z", "--aggregate"), "whole UTC days"},
		{append(append([]string{}, base...), "--table", "x;drop"), "only letters"},
	} {
		_, _, err := run(t, "", c.args...)
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want a usage error about %s", c.args[2:], err, c.want)
		}
	}
	if srv.Calls("StartQueryExecution") != calls {
		t.Error("a refused command reached Athena")
	}
	// A query Athena fails is an error that names Athena's reason.
	srv.FailQuery("HIVE_CURSOR_ERROR: Row is not a valid JSON Object")
	if _, _, err := run(t, "", append(base, "--db", recDB, "--no-progress")...); err == nil || !strings.Contains(err.Error(), "HIVE_CURSOR_ERROR") {
		t.Errorf("failed query: %v", err)
	}
}
