package cli

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

const auditFixtures = "../../audit/cloudtrail/testdata/"

// auditCLI runs "keyceremony audit ARGS..." in this process.
func auditCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(append([]string{"audit"}, args...), &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

// auditChild runs this test binary as the CLI (see audit_child_test.go).
func auditChild(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "KC_AUDIT_CLI_CHILD=1")
	return cmd
}

func auditFixtureDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(auditFixtures + "kms-shapes.json")
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
	dir := auditFixtureDir(t)
	db := filepath.Join(t.TempDir(), "a.db")
	code, out, errOut := auditCLI(t, "ingest", dir, "--db", db, "--json")
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
	code, out, errOut = auditCLI(t, "ingest", "--db", db, dir)
	if code != 1 || !strings.Contains(errOut, "1 file(s) could not be loaded") ||
		!regexp.MustCompile(`FAILED .*broken.json \(SHA-256 [0-9a-f]{64}\): .*truncated`).MatchString(out) ||
		!strings.Contains(out, "0 loaded, 1 already loaded (same SHA-256), 1 failed") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if code, _, _ := auditCLI(t, "ingest", "--db", db); code != 2 {
		t.Fatalf("ingest without a path: exit %d, want 2", code)
	}
	if code, _, _ := auditCLI(t, "nope"); code != 2 {
		t.Fatalf("unknown subcommand: exit %d, want 2", code)
	}
}

func TestDefaultDatabaseIsPrivate(t *testing.T) {
	home := t.TempDir()
	cmd := auditChild("audit", "ingest", "--no-progress", auditFixtureDir(t))
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

func dbCount(t *testing.T, db *sql.DB, q string) int64 {
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

	cmd := auditChild("audit", "ingest", "--no-progress", "--db", killed, tree)
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
		c := auditChild("audit", "ingest", "--no-progress", "--json", "--db", db, tree)
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
		a, b := dbCount(t, k, q), dbCount(t, k, strings.Replace(q, "FROM ", "FROM c.", 1))
		if a != b {
			t.Errorf("%s: %d after kill and resume, %d in a clean load", q, a, b)
		}
	}
	if n := dbCount(t, k, `SELECT count(*) FROM events`); n != int64(gen.KMSEvents) {
		t.Fatalf("%d events, generator wrote %d", n, gen.KMSEvents)
	}
	if n := dbCount(t, k, `SELECT count(*) FROM (SELECT event_id FROM events EXCEPT SELECT event_id FROM c.events)`); n != 0 {
		t.Fatalf("%d events differ", n)
	}
	if n := dbCount(t, k, `SELECT count(*) FROM events e LEFT JOIN raw_blocks b ON b.id = e.block WHERE b.id IS NULL`); n != 0 {
		t.Fatalf("%d events without their raw block", n)
	}
	if n := dbCount(t, k, `SELECT count(*) FROM sqlite_schema WHERE type='index' AND name LIKE 'events_%'`); n != 8 {
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

// TestIngestNamesWhatItSkipsAndWarns: the printed summary names every
// entry not read, every warning and the conflicts (they were silent).
func TestIngestNamesWhatItSkipsAndWarns(t *testing.T) {
	db := filepath.Join(t.TempDir(), "a.db")
	ev := "../../audit/ingest/testdata/evidence/"
	code, out, errOut := auditCLI(t, "ingest", "--db", db, ev+"traversal.tar", ev+"decrypt-ok.json", ev+"decrypt-refused.json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"Skipped:    4 entries not read (1 CloudTrail digest, 1 hidden, 1 not a log file name, 1 not a regular file)",
		"SKIPPED " + ev + "traversal.tar!notes.txt: not a log file name (archive member)",
		"WARNING " + ev + "traversal.tar!../../x.json: the member's name leaves the archive",
		"Conflicts:  1 record(s) state something else than the stored record of their eventID"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}
