package auditcli

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/audit/ingest"
	"github.com/keyceremony/keyceremony/audit/store"
	"github.com/keyceremony/keyceremony/test/cloudtrailgen"
)

const fixtures = "../cloudtrail/testdata/"

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(args, &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

// child runs this test binary as the CLI (see main_test.go).
func child(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "KC_AUDIT_CLI_CHILD=1")
	return cmd
}

func fixtureDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(fixtures + "kms-shapes.json")
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(b)
	zw.Close()
	os.WriteFile(filepath.Join(dir, "shapes.json.gz"), gz.Bytes(), 0o600)
	return dir
}

func TestIngestJSONSummaryAndExitStatus(t *testing.T) {
	dir := fixtureDir(t)
	db := filepath.Join(t.TempDir(), "a.db")
	code, out, errOut := runCLI(t, "audit", "ingest", dir, "--db", db, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var sum ingest.Summary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, out)
	}
	if sum.FilesOK != 1 || sum.KMSNew != 13 || sum.NonKMS != 1 || sum.KMSDuplicate != 0 {
		t.Fatalf("summary %+v", sum)
	}
	// A bad file: the rest loads, the exit status says something failed.
	os.WriteFile(filepath.Join(dir, "broken.json"), []byte(`{"Records":[{"eventID":"x"`), 0o600)
	code, out, errOut = runCLI(t, "ingest", "--db", db, dir)
	if code != 1 || !strings.Contains(errOut, "1 file(s) could not be loaded") ||
		!regexp.MustCompile(`FAILED .*broken.json: .*truncated`).MatchString(out) ||
		!strings.Contains(out, "0 loaded, 1 already loaded (same SHA-256), 1 failed") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if code, _, _ := runCLI(t, "ingest", "--db", db); code != 2 {
		t.Fatalf("ingest without a path: exit %d, want 2", code)
	}
	if code, _, _ := runCLI(t, "nope"); code != 2 {
		t.Fatalf("unknown subcommand: exit %d, want 2", code)
	}
}

func TestQueryCommands(t *testing.T) {
	dir := fixtureDir(t)
	db := filepath.Join(t.TempDir(), "a.db")
	if code, _, e := runCLI(t, "ingest", "--db", db, dir); code != 0 {
		t.Fatal(e)
	}
	_, out, _ := runCLI(t, "events", "--db", db, "--count", "--name", "Decrypt")
	if strings.TrimSpace(out) != "3" {
		t.Fatalf("count %q", out)
	}
	_, page1, _ := runCLI(t, "events", "--db", db, "--limit", "5")
	m := regexp.MustCompile(`next page: --after (\S+)`).FindStringSubmatch(page1)
	if m == nil || strings.Count(page1, "\n") != 7 {
		t.Fatalf("page 1:\n%s", page1)
	}
	_, page2, _ := runCLI(t, "events", "--db", db, "--limit", "5", "--after", m[1], "--json")
	var p2 struct {
		Events []store.Event `json:"events"`
		Next   string        `json:"next"`
	}
	if err := json.Unmarshal([]byte(page2), &p2); err != nil || len(p2.Events) != 5 {
		t.Fatalf("page 2: %v\n%s", err, page2)
	}
	for _, e := range p2.Events {
		if strings.Contains(page1, e.EventID) {
			t.Fatalf("event %s on both pages", e.EventID)
		}
	}
	// raw prints the record exactly as delivered.
	_, raw, _ := runCLI(t, "raw", "--db", db, "5c1e7d2a-0002-4b8e-9e6f-1a2b3c4d5e02")
	src, _ := os.ReadFile(fixtures + "kms-shapes.json")
	if !strings.HasPrefix(raw, "{\n    \"eventVersion\": \"1.08\",\n    \"userIdentity\": {\"type\": \"AssumedRole\"") || !bytes.Contains(src, []byte(strings.TrimSuffix(raw, "\n"))) {
		t.Fatalf("raw record is not the delivered bytes:\n%s", raw)
	}
	// export writes a private file that loads again.
	exp := filepath.Join(t.TempDir(), "export.json")
	if code, _, e := runCLI(t, "export", "--db", db, "--key", "arn:aws:kms:eu-central-1:210987654321:key/9a8b7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4", "-o", exp); code != 0 {
		t.Fatal(e)
	}
	if fi, _ := os.Stat(exp); fi.Mode().Perm() != 0o600 {
		t.Fatalf("export mode %v", fi.Mode().Perm())
	}
	db2 := filepath.Join(t.TempDir(), "b.db")
	_, out, _ = runCLI(t, "ingest", "--db", db2, "--json", exp)
	var sum ingest.Summary
	json.Unmarshal([]byte(out), &sum)
	if sum.KMSNew != 5 {
		t.Fatalf("re-ingested export: %+v", sum)
	}
	_, cov, _ := runCLI(t, "coverage", "--db", db)
	if !strings.Contains(cov, "210987654321  eu-central-1  2024-06-03") {
		t.Fatalf("coverage:\n%s", cov)
	}
	_, keys, _ := runCLI(t, "keys", "--db", db)
	if !strings.Contains(keys, "arn:aws:kms:eu-central-1:210987654321:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0") {
		t.Fatalf("keys:\n%s", keys)
	}
}

func TestDefaultDatabaseIsPrivate(t *testing.T) {
	home := t.TempDir()
	cmd := child("audit", "ingest", "--no-progress", fixtureDir(t))
	cmd.Env = append(cmd.Env, "XDG_CONFIG_HOME="+filepath.Join(home, "config"), "HOME="+home)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	dir := filepath.Join(home, "config", "keyceremony")
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir: %v %v", err, fi)
	}
	if fi, err := os.Stat(filepath.Join(dir, "audit.db")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("db: %v %v", err, fi)
	}
}

func count(t *testing.T, db *sql.DB, q string) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// Kill -9 in the middle of an ingest, run it again, and compare with a
// clean load: nothing lost, nothing duplicated, the database consistent.
func TestKillAndResume(t *testing.T) {
	tree := t.TempDir()
	gen, err := cloudtrailgen.Generate(tree, cloudtrailgen.Config{KMSEvents: 60000, Days: 3, FileInterval: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	dbDir := t.TempDir()
	killed := filepath.Join(dbDir, "killed.db")
	clean := filepath.Join(dbDir, "clean.db")

	cmd := child("audit", "ingest", "--no-progress", "--db", killed, tree)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until some files are committed, then kill without warning.
	ro, err := sql.Open("sqlite", "file:"+killed+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n int64
		ro.QueryRow(`SELECT count(*) FROM files`).Scan(&n)
		if n >= 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("child committed nothing in 60s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	ro.Close()
	if cmd.ProcessState.Success() {
		t.Fatal("the child finished before it could be killed; make the tree larger")
	}

	for _, db := range []string{killed, clean} {
		c := child("audit", "ingest", "--no-progress", "--json", "--db", db, tree)
		out, err := c.Output()
		if err != nil {
			t.Fatalf("ingest %s: %v\n%s", db, err, out)
		}
	}
	k, err := sql.Open("sqlite", "file:"+killed)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if _, err := k.Exec(`ATTACH ? AS c`, clean); err != nil {
		t.Fatal(err)
	}
	var ok string
	k.QueryRow(`PRAGMA integrity_check`).Scan(&ok)
	if ok != "ok" {
		t.Fatalf("integrity_check: %s", ok)
	}
	for _, q := range []string{
		`SELECT count(*) FROM events`, `SELECT count(*) FROM files`, `SELECT count(*) FROM file_names`,
		`SELECT sum(kms_events) FROM coverage`, `SELECT sum(files) FROM coverage`, `SELECT sum(records) FROM coverage`,
	} {
		a, b := count(t, k, q), count(t, k, strings.Replace(q, "FROM ", "FROM c.", 1))
		if a != b {
			t.Errorf("%s: %d after kill and resume, %d in a clean load", q, a, b)
		}
	}
	if n := count(t, k, `SELECT count(*) FROM events`); n != int64(gen.KMSEvents) {
		t.Fatalf("%d events, generator wrote %d", n, gen.KMSEvents)
	}
	if n := count(t, k, `SELECT count(*) FROM (SELECT event_id FROM events EXCEPT SELECT event_id FROM c.events)`); n != 0 {
		t.Fatalf("%d events differ", n)
	}
	if n := count(t, k, `SELECT count(*) FROM events e LEFT JOIN raw_blocks b ON b.id = e.block WHERE b.id IS NULL`); n != 0 {
		t.Fatalf("%d events without their raw block", n)
	}
	if n := count(t, k, `SELECT count(*) FROM sqlite_schema WHERE type='index' AND name LIKE 'events_%'`); n != 7 {
		t.Fatalf("%d indexes after resume", n)
	}
	// Every raw record reads back.
	st, err := store.Open(context.Background(), killed)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var buf bytes.Buffer
	if n, err := st.ExportRaw(context.Background(), store.Filter{}, &buf); err != nil || n != gen.KMSEvents {
		t.Fatalf("export %d %v", n, err)
	}
}
