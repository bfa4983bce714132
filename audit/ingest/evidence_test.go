package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/keyceremony/keyceremony/audit/cloudtrail"
	"github.com/keyceremony/keyceremony/audit/store"
)

// The evidence tests: nothing skipped without saying so, failed inputs
// named with their SHA-256, conflicting records kept by a rule that does
// not depend on the order of the inputs. Fixtures: testdata/evidence.

const evDir = "testdata/evidence/"

// copyTree copies a fixture directory.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		copyFile(t, p, filepath.Join(to, rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func skippedReasons(sk []Skipped) map[string]string {
	m := map[string]string{}
	for _, s := range sk {
		m[s.Path[strings.LastIndexAny(s.Path, "/!")+1:]] = s.Reason
	}
	return m
}

// TestWalkFollowsLinksAndNamesWhatItSkips: an account's folder that is a
// symbolic link is loaded (it was skipped silently: "1 loaded" with an
// account missing); a link back up the tree is a loop, named; every
// entry left out is in the summary and the run's provenance with its
// reason; a broken link is a failed input.
func TestWalkFollowsLinksAndNamesWhatItSkips(t *testing.T) {
	root := t.TempDir()
	logs := filepath.Join(root, "AWSLogs")
	copyTree(t, evDir+"tree/111122223333", filepath.Join(logs, "111122223333"))
	copyTree(t, evDir+"tree/444455556666", filepath.Join(root, "elsewhere", "444455556666"))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(filepath.Join("..", "elsewhere", "444455556666"), filepath.Join(logs, "444455556666")))
	must(os.Symlink("../..", filepath.Join(logs, "111122223333", "CloudTrail", "up")))
	must(os.WriteFile(filepath.Join(logs, ".DS_Store"), []byte("x"), 0o600))
	must(os.MkdirAll(filepath.Join(logs, "111122223333", "CloudTrail-Digest"), 0o755))
	must(os.WriteFile(filepath.Join(logs, "111122223333", "CloudTrail-Digest", "d.json.gz"), []byte("x"), 0o600))
	must(os.WriteFile(filepath.Join(logs, "README.txt"), []byte("notes"), 0o600))
	must(syscall.Mkfifo(filepath.Join(logs, "pipe.json"), 0o600))
	must(os.Symlink("/nonexistent/gone.json", filepath.Join(logs, "dangling.json")))

	st := openStore(t)
	sum := run(t, st, []string{logs}, Options{})
	if sum.FilesOK != 2 || sum.KMSNew != 2 {
		t.Fatalf("both accounts must load (one through a symbolic link): %+v", sum)
	}
	want := map[string]string{".DS_Store": SkipHidden, "CloudTrail-Digest": SkipDigest, "README.txt": SkipName,
		"pipe.json": SkipNotRegular, "up": SkipLoop}
	if got := skippedReasons(sum.Skipped); fmt.Sprint(got) != fmt.Sprint(want) || sum.FilesSkipped != len(want) {
		t.Fatalf("skipped %v (%d), want %v", got, sum.FilesSkipped, want)
	}
	for _, s := range sum.Skipped {
		if s.Reason == SkipLoop && !strings.Contains(s.Detail, "links back to "+logs) {
			t.Fatalf("the loop must name where it leads: %+v", s)
		}
	}
	if sum.FilesFailed != 1 || !strings.HasSuffix(sum.Failed[0].Path, "dangling.json") ||
		!strings.Contains(sum.Failed[0].Error, "symbolic link to /nonexistent/gone.json cannot be followed") {
		t.Fatalf("a broken link is a failed input: %+v", sum.Failed)
	}
	// The JSON summary and the run's provenance say the same.
	b, _ := json.Marshal(sum)
	if !strings.Contains(string(b), `"files_skipped":5`) || !strings.Contains(string(b), `"reason":"symbolic link loop"`) {
		t.Fatalf("JSON summary: %s", b)
	}
	notes, err := st.RunNotes(bg)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range notes {
		got = append(got, filepath.Base(n.Path)+"="+n.Reason)
	}
	sort.Strings(got)
	if strings.Join(got, ",") != ".DS_Store=hidden,CloudTrail-Digest=CloudTrail digest,README.txt=not a log file name,pipe.json=not a regular file,up=symbolic link loop" {
		t.Fatalf("run notes %v", got)
	}
	runs, _ := st.Runs(bg)
	if len(runs) != 1 || runs[0].Skipped != 5 || runs[0].State != store.RunDone {
		t.Fatalf("runs %+v", runs)
	}

	// A symbolic link to a directory named on the command line (no
	// trailing slash) is walked too.
	st2 := openStore(t)
	sum = run(t, st2, []string{filepath.Join(logs, "444455556666")}, Options{})
	if sum.FilesOK != 1 || sum.KMSNew != 1 {
		t.Fatalf("a linked directory named as an argument: %+v", sum)
	}
}

// TestUnreadableSubdirectoryLoadsTheRest: a directory the ingest may not
// read is a failed input; the other directories and arguments load (it
// aborted the whole ingest). Permissions do not stop root, so as root the
// ingest runs in a child process as nobody.
func TestUnreadableSubdirectoryLoadsTheRest(t *testing.T) {
	root := t.TempDir()
	logs := filepath.Join(root, "AWSLogs")
	copyTree(t, evDir+"tree/111122223333", filepath.Join(logs, "111122223333"))
	copyTree(t, evDir+"tree/444455556666", filepath.Join(logs, "444455556666"))
	locked := filepath.Join(logs, "444455556666", "CloudTrail", "eu-west-1", "2025", "05", "20")
	other := filepath.Join(root, "other.json")
	copyFile(t, evDir+"decrypt-ok.json", other)
	db := filepath.Join(root, "db", "audit.db")
	if err := os.MkdirAll(filepath.Dir(db), 0o777); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Dir(root), root, filepath.Dir(db)} {
		os.Chmod(d, 0o777)
	}
	filepath.WalkDir(logs, func(p string, d fs.DirEntry, err error) error {
		if d.IsDir() {
			os.Chmod(p, 0o755)
		} else {
			os.Chmod(p, 0o644)
		}
		return nil
	})
	os.Chmod(other, 0o644)
	if err := os.Chmod(locked, 0o000); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o755) })

	var sum Summary
	if os.Geteuid() == 0 {
		// The test binary lives in a directory only root may enter.
		bin := filepath.Join(root, "ingest.test")
		copyFile(t, os.Args[0], bin)
		os.Chmod(bin, 0o755)
		cmd := exec.Command(bin, "-test.run=^TestIngestChildProcess$")
		cmd.Env = append(os.Environ(), "KC_INGEST_CHILD="+db+"\n"+logs+"\n"+other)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child ingest as nobody: %v\n%s", err, out)
		}
		i := strings.Index(string(out), "{")
		j := strings.LastIndex(string(out), "}")
		if i < 0 || j < i || json.Unmarshal(out[i:j+1], &sum) != nil {
			t.Fatalf("child output: %s", out)
		}
	} else {
		st, err := store.Open(bg, db)
		if err != nil {
			t.Fatal(err)
		}
		s := run(t, st, []string{logs, other}, Options{})
		st.Close()
		sum = *s
	}
	if sum.FilesOK != 2 || sum.KMSNew != 3 || sum.FilesFailed != 1 {
		t.Fatalf("the readable account and the other argument must load: %+v", sum)
	}
	if f := sum.Failed[0]; f.Path != locked || !strings.Contains(f.Error, "read directory") || !strings.Contains(f.Error, "permission denied") {
		t.Fatalf("failed input %+v, want %s", f, locked)
	}
	st, err := store.Open(bg, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fails, _ := st.Failures(bg)
	if len(fails) != 1 || fails[0].Path != locked {
		t.Fatalf("failures table %+v", fails)
	}
}

// TestIngestChildProcess is the child of TestUnreadableSubdirectoryLoadsTheRest
// (it does nothing unless KC_INGEST_CHILD names a database and paths).
func TestIngestChildProcess(t *testing.T) {
	spec := os.Getenv("KC_INGEST_CHILD")
	if spec == "" {
		return
	}
	parts := strings.Split(spec, "\n")
	st, err := store.Open(bg, parts[0])
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sum, err := Run(bg, st, parts[1:], Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(sum)
	fmt.Println(string(b))
}

// TestArchiveMembersAreNamed: a member whose name leaves the archive
// ("../../x.json") is read in memory (nothing written outside) and named
// in a warning; hidden, digest, unknown and link members are counted and
// named as skipped.
func TestArchiveMembersAreNamed(t *testing.T) {
	st := openStore(t)
	sum := run(t, st, []string{evDir + "traversal.tar"}, Options{})
	if sum.FilesOK != 2 || sum.KMSNew != 2 {
		t.Fatalf("both members with records load: %+v", sum)
	}
	if len(sum.Warnings) != 1 || !strings.Contains(sum.Warnings[0], "traversal.tar!../../x.json: the member's name leaves the archive") {
		t.Fatalf("warnings %q", sum.Warnings)
	}
	want := map[string]string{".hidden.json": SkipHidden, "d.json.gz": SkipDigest, "notes.txt": SkipName, "link.json": SkipNotRegular}
	if got := skippedReasons(sum.Skipped); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("skipped %v, want %v", got, want)
	}
	notes, _ := st.RunNotes(bg)
	warned := false
	for _, n := range notes {
		warned = warned || (n.Kind == store.NoteWarning && strings.Contains(n.Reason, "../../x.json"))
	}
	if !warned || len(notes) != 5 {
		t.Fatalf("run notes %+v", notes)
	}
}

// TestFailedFilesNamedWithSHA256: every failed file is in the summary and
// the failures table with its path, error and SHA-256 (it was NULL), and a
// numeric eventTime says what was found (it said "no eventTime").
func TestFailedFilesNamedWithSHA256(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, evDir+"epoch-time.json", filepath.Join(dir, "epoch-time.json"))
	good, _ := os.ReadFile(evDir + "decrypt-ok.json")
	os.WriteFile(filepath.Join(dir, "truncated.json"), good[:len(good)/2], 0o600)
	gzipFile(t, evDir+"decrypt-ok.json", filepath.Join(dir, "broken.json.gz"))
	gz, _ := os.ReadFile(filepath.Join(dir, "broken.json.gz"))
	gz[len(gz)/2] ^= 0xff
	os.WriteFile(filepath.Join(dir, "broken.json.gz"), gz, 0o600)
	big := filepath.Join(dir, "big.json") // streamed, not read whole
	bigFile(t, big, smallFile+1<<20, true)

	st := openStore(t)
	sum := run(t, st, []string{dir}, Options{})
	if sum.FilesFailed != 4 || sum.FilesOK != 0 {
		t.Fatalf("summary %+v", sum)
	}
	fails, err := st.Failures(bg)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]store.Failure{}
	for _, f := range fails {
		byName[filepath.Base(f.Path)] = f
	}
	for _, f := range sum.Failed {
		data, _ := os.ReadFile(f.Path)
		want := sha256.Sum256(data)
		row := byName[filepath.Base(f.Path)]
		if f.SHA256 != hex.EncodeToString(want[:]) || hex.EncodeToString(row.SHA256) != f.SHA256 || row.Size != int64(len(data)) {
			t.Errorf("%s: summary SHA-256 %q, table %x (size %d), want %x (%d bytes)", f.Path, f.SHA256, row.SHA256, row.Size, want, len(data))
		}
	}
	if e := byName["epoch-time.json"].Error; !strings.Contains(e, "record 1: eventTime is 1747773900, a number (as epoch time: 2025-05-20T20:45:00Z), not an ISO 8601 time string") {
		t.Fatalf("epoch eventTime: %s", e)
	}
}

// TestConflictingRecordsKeptByOneRule: two records with one eventID that
// state different facts (a Decrypt that succeeded and one refused) are
// not duplicates: the event keeps the one with the smaller fingerprint
// and the other is kept as a conflict with its file and offset, whatever
// the number of workers, the order of the files, or whether they load in
// one run or two. A record that states the same facts in another layout
// is a duplicate, not a conflict.
func TestConflictingRecordsKeptByOneRule(t *testing.T) {
	fps := map[string]uint64{} // errorCode ("" or AccessDeniedException) -> fingerprint, of the first pair
	for _, f := range []string{"decrypt-ok.json", "decrypt-refused.json"} {
		data, _ := os.ReadFile(evDir + f)
		rd := cloudtrail.NewReader(strings.NewReader(string(data)))
		raw, err := rd.Next()
		if err != nil {
			t.Fatal(err)
		}
		var r cloudtrail.Record
		if err := cloudtrail.Parse(raw, &r); err != nil {
			t.Fatal(err)
		}
		fps[r.ErrorCode] = r.Fingerprint()
	}
	keptErr := ""
	if fps["AccessDeniedException"] < fps[""] {
		keptErr = "AccessDeniedException"
	}
	const e1, e3 = "b7d0a1c2-3f4e-4a5b-8c6d-7e8f90a1b2c3", "5f6e7d8c-9b0a-4c1d-a2e3-f4a5b6c7d8e9"
	files := []string{"decrypt-ok.json", "decrypt-refused.json", "decrypt-pair.json", "decrypt-ok-reformatted.json"}
	rng := rand.New(rand.NewSource(17))
	for trial := 0; trial < 8; trial++ {
		order := append([]string(nil), files...)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		workers := []int{1, 2, 4}[trial%3]
		split := trial%2 == 1 // two runs: the first half, then the rest
		t.Run(fmt.Sprintf("workers=%d,runs=%d,%s", workers, map[bool]int{false: 1, true: 2}[split], strings.Join(order, ",")), func(t *testing.T) {
			dir := t.TempDir()
			var paths []string
			for _, f := range order {
				p := filepath.Join(dir, f)
				copyFile(t, evDir+f, p)
				paths = append(paths, p)
			}
			st := openStore(t)
			conflicts := 0
			if split {
				conflicts += run(t, st, paths[:2], Options{Workers: workers}).Conflicts
				conflicts += run(t, st, paths[2:], Options{Workers: workers}).Conflicts
			} else {
				sum := run(t, st, paths, Options{Workers: workers})
				conflicts = sum.Conflicts
				if sum.KMSNew != 3 || sum.KMSDuplicate != 3 {
					t.Fatalf("events new %d, duplicate %d (two conflicts and a reformatted duplicate)", sum.KMSNew, sum.KMSDuplicate)
				}
			}
			if conflicts != 2 {
				t.Fatalf("conflicts %d, want 2", conflicts)
			}
			// An event settled in favour of the other record moved groups.
			checkRollups(t, st, "after the conflicts are settled")
			ev, err := st.EventByID(bg, e1)
			if err != nil {
				t.Fatal(err)
			}
			if ev.ErrorCode != keptErr {
				t.Fatalf("event %s kept the record with error %q, want %q (the smaller fingerprint)", e1, ev.ErrorCode, keptErr)
			}
			list, err := st.Conflicts(bg)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 2 || list[0].EventID != e3 || list[1].EventID != e1 {
				t.Fatalf("conflicts %+v", list)
			}
			for _, c := range list {
				if !c.Settled || c.Kept.Name != "Decrypt" || c.Other.Name != "Decrypt" || c.Kept.ErrorCode == c.Other.ErrorCode {
					t.Fatalf("conflict %+v", c)
				}
				// Each record's file and offset point at it.
				for _, side := range []store.ConflictRecord{c.Kept, c.Other} {
					data, err := os.ReadFile(filepath.Join(dir, filepath.Base(side.File)))
					if err != nil || side.Offset < 0 || data[side.Offset] != '{' ||
						!strings.Contains(string(data[side.Offset:min(int(side.Offset)+1500, len(data))]), c.EventID) {
						t.Fatalf("%s: offset %d in %s does not start its record", c.EventID, side.Offset, side.File)
					}
				}
			}
			if c := list[1]; c.Other.ErrorCode == keptErr {
				t.Fatalf("the other record must be the one not kept: %+v", c)
			}
			// The event's evidence is a record with the kept facts (the
			// reformatted copy states the same as decrypt-ok's).
			raw, err := st.RawEvent(bg, e1)
			if err != nil {
				t.Fatal(err)
			}
			var r cloudtrail.Record
			if err := cloudtrail.Parse(raw, &r); err != nil || r.Fingerprint() != min(fps[""], fps["AccessDeniedException"]) {
				t.Fatalf("the event's record %s", raw)
			}
		})
	}
}
