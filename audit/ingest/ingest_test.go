package ingest

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/audit/cloudtrail"
	"github.com/keyceremony/keyceremony/audit/store"
	"github.com/keyceremony/keyceremony/test/cloudtrailgen"
)

var bg = context.Background()

const ctData = "../cloudtrail/testdata/"

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(bg, filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func run(t *testing.T, st *store.Store, paths []string, opt Options) *Summary {
	t.Helper()
	sum, err := Run(bg, st, paths, opt)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func generate(t *testing.T, cfg cloudtrailgen.Config) (string, cloudtrailgen.Stats) {
	t.Helper()
	dir := t.TempDir()
	st, err := cloudtrailgen.Generate(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return dir, st
}

func TestIngestGeneratedTree(t *testing.T) {
	dir, gen := generate(t, cloudtrailgen.Config{KMSEvents: 6000, Days: 4, FileInterval: 2 * time.Hour, DupRatio: 0.2})
	// The third: a bulk load whose eventID set is capped at a tenth of the
	// events, so that most of it deduplicates through the UNIQUE index
	// built half-way (store.Writer.MaxBulkIDs).
	for _, opt := range []Options{{Bulk: BulkOff}, {Bulk: BulkOn}, {Bulk: BulkOn, MaxBulkIDs: 600}} {
		t.Run(fmt.Sprintf("bulk=%d,maxids=%d", opt.Bulk, opt.MaxBulkIDs), func(t *testing.T) {
			st := openStore(t)
			sum := run(t, st, []string{dir}, opt)
			if sum.FilesOK != gen.Files || sum.FilesDuplicate != gen.DuplicateFiles || sum.FilesFailed != 0 {
				t.Fatalf("files %d ok %d dup %d failed; generator wrote %d + %d copies",
					sum.FilesOK, sum.FilesDuplicate, sum.FilesFailed, gen.Files, gen.DuplicateFiles)
			}
			if sum.KMSNew != int64(gen.KMSEvents) || sum.KMSDuplicate != int64(gen.KMSDuplicates) || sum.NonKMS != int64(gen.NonKMS) {
				t.Fatalf("KMS new %d dup %d, non-KMS %d; want %d %d %d",
					sum.KMSNew, sum.KMSDuplicate, sum.NonKMS, gen.KMSEvents, gen.KMSDuplicates, gen.NonKMS)
			}
			if gen.KMSDuplicates == 0 || gen.DuplicateFiles == 0 {
				t.Fatal("generator produced no duplicates to test with")
			}
			n, _ := st.CountEvents(bg, store.Filter{ErrorsOnly: true})
			if n != int64(gen.Errors) {
				t.Fatalf("%d failed calls stored, generator wrote %d", n, gen.Errors)
			}
			// Coverage shows the missing day and the trail without KMS events.
			cov, err := st.Coverage(bg, true)
			if err != nil {
				t.Fatal(err)
			}
			var gap, noKMS, kmsDays int
			for _, c := range cov {
				if c.Account == "111122223333" && c.Region == "us-east-1" && c.Day == gen.GapDay {
					if c.Files != 0 {
						t.Fatalf("gap day has %d files", c.Files)
					}
					gap++
				}
				if c.Account == gen.NoKMSTrail[0] && c.Region == gen.NoKMSTrail[1] && c.Files > 0 {
					if c.KMSRecords != 0 {
						t.Fatal("trail without KMS events has KMS records")
					}
					noKMS++
				}
				kmsDays += c.KMSEvents
			}
			if gap != 1 || noKMS == 0 || kmsDays != gen.KMSEvents {
				t.Fatalf("coverage: gap rows %d, no-KMS rows %d, KMS events %d", gap, noKMS, kmsDays)
			}
			// Indexes are all there after a bulk load.
			var idx int
			st.DB().QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type='index' AND tbl_name='events' AND name LIKE 'events_%'`).Scan(&idx)
			if idx != 8 {
				t.Fatalf("%d secondary indexes", idx)
			}
			// Loading again is a no-op.
			again := run(t, st, []string{dir}, Options{})
			if again.FilesOK != 0 || again.KMSNew != 0 || again.FilesDuplicate != gen.Files+gen.DuplicateFiles {
				t.Fatalf("second run %+v", again)
			}
			tot, _ := st.Totals(bg)
			if tot.Events != int64(gen.KMSEvents) {
				t.Fatalf("%d events after the second run", tot.Events)
			}
		})
	}
}

// fixtureRaw returns every delivery of every KMS record of the fixtures by
// eventID: the same event appears in several files (as CloudTrail can
// deliver it twice), and whichever delivery is loaded first is the one kept.
func fixtureRaw(t *testing.T) map[string][][]byte {
	t.Helper()
	out := map[string][][]byte{}
	for _, name := range []string{"kms-shapes.json", "lookup-events.json", "lake.jsonl"} {
		f, err := os.Open(ctData + name)
		if err != nil {
			t.Fatal(err)
		}
		rd := cloudtrail.NewReader(f)
		for {
			raw, err := rd.Next()
			if err == io.EOF {
				break
			}
			var r cloudtrail.Record
			if err := cloudtrail.Parse(raw, &r); err != nil {
				t.Fatal(err)
			}
			if r.IsKMS() {
				out[r.EventID] = append(out[r.EventID], bytes.Clone(raw))
			}
		}
		f.Close()
	}
	return out
}

func oneOf(b []byte, set [][]byte) bool {
	for _, x := range set {
		if bytes.Equal(b, x) {
			return true
		}
	}
	return false
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(dst), 0o700)
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func gzipFile(t *testing.T, src, dst string) {
	t.Helper()
	b, _ := os.ReadFile(src)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	os.MkdirAll(filepath.Dir(dst), 0o700)
	os.WriteFile(dst, buf.Bytes(), 0o600)
}

// Every input shape, loaded normally and as a bulk load (indexes dropped,
// aliases resolved by one pass over the table before the indexes are
// built): the same events, keys, aliases and raw records.
func TestIngestEveryShape(t *testing.T) {
	for _, bulk := range []BulkMode{BulkAuto, BulkOn} {
		t.Run(fmt.Sprint("bulk=", bulk), func(t *testing.T) { ingestEveryShape(t, bulk) })
	}
}

func ingestEveryShape(t *testing.T, bulk BulkMode) {
	dir := t.TempDir()
	gzipFile(t, ctData+"kms-shapes.json", filepath.Join(dir, "AWSLogs/210987654321/CloudTrail/eu-central-1/2024/06/03/210987654321_CloudTrail_eu-central-1_20240603T0915Z_x.json.gz"))
	copyFile(t, ctData+"lookup-events.json", filepath.Join(dir, "lookup.json"))
	copyFile(t, ctData+"lake.jsonl", filepath.Join(dir, "lake.jsonl"))
	copyFile(t, "testdata/inventory-combined.json", filepath.Join(dir, "inv/combined.json"))
	copyFile(t, "testdata/describe-key.json", filepath.Join(dir, "inv/describe-key.json"))
	copyFile(t, "testdata/rotation-status.json", filepath.Join(dir, "inv/rotation.json"))
	copyFile(t, "testdata/list-aliases.json", filepath.Join(dir, "inv/aliases.json"))
	copyFile(t, "testdata/list-keys.json", filepath.Join(dir, "inv/keys.json"))
	copyFile(t, "testdata/imported-alias-denied.jsonl", filepath.Join(dir, "denied.jsonl"))
	os.WriteFile(filepath.Join(dir, "README.txt"), []byte("notes"), 0o600)

	st := openStore(t)
	sum := run(t, st, []string{dir}, Options{Bulk: bulk})
	// kms-shapes: 13 KMS + 1 other. lookup-events: 3 KMS already seen + 1 other.
	// lake.jsonl: 4 KMS already seen (one in Athena's lower case).
	// denied.jsonl: 1 new KMS event naming only alias/imported.
	if sum.FilesOK != 4 || sum.InventoryFiles != 5 || sum.FilesFailed != 0 || sum.FilesIgnored != 1 {
		t.Fatalf("files %+v", sum)
	}
	if sum.KMSNew != 14 || sum.KMSDuplicate != 7 || sum.NonKMS != 2 {
		t.Fatalf("KMS new %d dup %d non-KMS %d", sum.KMSNew, sum.KMSDuplicate, sum.NonKMS)
	}
	// The same events as a lookup-events string and as Lake/Athena lines
	// (lower-case members, bodies as JSON text) state the same facts: they
	// are duplicates, not conflicts.
	if c, _ := st.Conflicts(bg); sum.Conflicts != 0 || len(c) != 0 {
		t.Fatalf("conflicts %d %+v", sum.Conflicts, c)
	}

	// Byte-equal export of every record, through both read paths.
	raws := fixtureRaw(t)
	var out bytes.Buffer
	n, err := st.ExportRaw(bg, store.Filter{}, &out)
	if err != nil || n != 14 {
		t.Fatalf("export %d %v", n, err)
	}
	rd := cloudtrail.NewReader(&out)
	exported := 0
	for {
		raw, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("exported document: %v", err)
		}
		var r cloudtrail.Record
		cloudtrail.Parse(raw, &r)
		if want, ok := raws[r.EventID]; ok && !oneOf(raw, want) {
			t.Fatalf("export of %s is not byte-equal", r.EventID)
		}
		exported++
	}
	if exported != 14 {
		t.Fatalf("%d exported", exported)
	}
	for id, want := range raws {
		got, err := st.RawEvent(bg, id)
		if err != nil || !oneOf(got, want) {
			t.Fatalf("raw %s: %v", id, err)
		}
	}

	ev := func(id string) store.Event {
		e, err := st.EventByID(bg, id)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	keyA := "arn:aws:kms:eu-central-1:210987654321:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	keyC := "arn:aws:kms:eu-central-1:210987654321:key/3c3c3c3c-1111-2222-3333-444455556666"
	if e := ev("5c1e7d2a-0001-4b8e-9e6f-1a2b3c4d5e01"); e.KeyARN != keyA || e.KeySource != "resources" {
		t.Errorf("Decrypt without keyId: %s (%s)", e.KeyARN, e.KeySource)
	}
	if e := ev("5c1e7d2a-0010-4b8e-9e6f-1a2b3c4d5e10"); e.KeyARN != keyA || e.KeySource != "alias-history" {
		t.Errorf("alias via history: %s (%s)", e.KeyARN, e.KeySource)
	}
	if e := ev("5c1e7d2a-0099-4b8e-9e6f-1a2b3c4d5e99"); e.KeyARN != keyC || e.KeySource != "alias-inventory" {
		t.Errorf("alias via inventory: %s (%s)", e.KeyARN, e.KeySource)
	}
	if e := ev("5c1e7d2a-0007-4b8e-9e6f-1a2b3c4d5e07"); e.DeletionDate != time.Date(2024, 6, 23, 18, 58, 30, 0, time.UTC) {
		t.Errorf("deletion date %v", e.DeletionDate)
	}
	if e := ev("5c1e7d2a-0006-4b8e-9e6f-1a2b3c4d5e06"); e.ValidTo != time.Date(2025, 1, 1, 20, 0, 0, 0, time.UTC) {
		t.Errorf("valid to %v", e.ValidTo)
	}
	if e := ev("5c1e7d2a-0004-4b8e-9e6f-1a2b3c4d5e04"); e.Category != "service" || e.RotationType != "AUTOMATIC" || e.InvokedBy != "AWS Internal" {
		t.Errorf("RotateKey %+v", e)
	}

	keys, err := st.Keys(bg)
	if err != nil {
		t.Fatal(err)
	}
	byARN := map[string]store.KeyInfo{}
	for _, k := range keys {
		byARN[k.ARN] = k
	}
	c := byARN[keyC]
	if !c.InInventory || c.Origin != "EXTERNAL" || c.Manager != "CUSTOMER" || c.State != "Enabled" ||
		c.ValidTo != time.Date(2025, 1, 1, 20, 0, 0, 0, time.UTC) || c.ExpirationModel != "KEY_MATERIAL_EXPIRES" {
		t.Errorf("imported key inventory %+v", c)
	}
	a := byARN[keyA]
	if a.RotationEnabled == nil || !*a.RotationEnabled || a.RotationPeriodDays != 180 ||
		a.NextRotation != time.Date(2024, 11, 30, 0, 0, 0, 0, time.UTC) || a.Spec != "SYMMETRIC_DEFAULT" {
		t.Errorf("rotating key inventory %+v", a)
	}
	if a.Events == 0 || len(c.Aliases) != 1 {
		t.Errorf("use/aliases: %d events, aliases %v", a.Events, c.Aliases)
	}
	if _, ok := byARN["arn:aws:kms:eu-central-1:210987654321:key/5d5d5d5d-0000-0000-0000-000000000005"]; !ok {
		t.Error("list-keys key missing")
	}
}

func TestIngestBadInputs(t *testing.T) {
	good, _ := os.ReadFile(ctData + "kms-shapes.json")
	rec := func(extra string) string {
		return `{"Records":[{"eventID":"11111111-2222-3333-4444-555555555555","eventTime":"2024-01-01T00:00:00Z","eventSource":"kms.amazonaws.com","eventName":"Decrypt"},` + extra + `]}`
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(rec(`{"eventID":"x","eventTime":"2024-01-01T00:00:00Z"}`)))
	zw.Close()
	corrupt := bytes.Clone(gz.Bytes())
	corrupt[len(corrupt)/2] ^= 0xff
	truncGz := gz.Bytes()[:gz.Len()-12]

	tests := []struct {
		name, file string
		data       []byte
		want       string
	}{
		{"corrupt gzip", "a.json.gz", corrupt, "gzip: "},
		{"truncated gzip", "b.json.gz", truncGz, "unexpected EOF"},
		{"truncated JSON", "c.json", good[:len(good)/2], "file truncated?"},
		{"record without eventID", "d.json", []byte(rec(`{"eventTime":"2024-01-01T00:00:00Z","eventSource":"kms.amazonaws.com"}`)), "record 2: record has no eventID"},
		{"unparsable time", "e.json", []byte(rec(`{"eventID":"y","eventTime":"Jan 1st"}`)), `record 2: unparsable eventTime "Jan 1st"`},
		{"non-UTF-8", "f.json", []byte(rec("{\"eventID\":\"z\",\"eventTime\":\"2024-01-01T00:00:00Z\",\"userAgent\":\"\xc3\x28\"}")), "record 2: invalid UTF-8"},
		{"not JSON", "g.json", []byte("hello"), "expected a JSON object"},
		{"empty", "h.json", nil, "file is empty"},
		{"bad inventory", "i.json", []byte(`{"KeyRotationEnabled": true}`), "cannot be attributed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "good.json"), good, 0o600)
			os.WriteFile(filepath.Join(dir, tc.file), tc.data, 0o600)
			st := openStore(t)
			sum := run(t, st, []string{dir}, Options{})
			if sum.FilesFailed != 1 || len(sum.Failed) != 1 || sum.FilesOK != 1 {
				t.Fatalf("summary %+v", sum)
			}
			if f := sum.Failed[0]; !strings.HasSuffix(f.Path, tc.file) || !strings.Contains(f.Error, tc.want) {
				t.Fatalf("failure %+v, want %q", f, tc.want)
			}
			// Nothing of the bad file is stored: its first record is valid
			// but must not be there.
			tot, _ := st.Totals(bg)
			if tot.Events != 13 || tot.Files != 1 {
				t.Fatalf("totals %+v", tot)
			}
			fl, _ := st.Failures(bg)
			if len(fl) != 1 || !strings.Contains(fl[0].Error, "ingest "+filepath.Join(dir, tc.file)) {
				t.Fatalf("failures table %+v", fl)
			}
		})
	}
}

// bigFile writes a log file of about size bytes with n-th record broken
// when bad is true; it returns the number of KMS records.
func bigFile(t *testing.T, path string, size int, bad bool) int {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufioWriter(f)
	w.WriteString(`{"Records":[` + "\n")
	pad := strings.Repeat("p", 900)
	n := 0
	for written := 0; written < size; n++ {
		if n > 0 {
			w.WriteString(",\n")
		}
		s := fmt.Sprintf(`{"eventVersion":"1.08","eventID":"%08x-0000-4000-8000-%012x","eventTime":"2024-01-01T%02d:%02d:00Z","eventSource":"kms.amazonaws.com","eventName":"Decrypt","awsRegion":"eu-west-1","recipientAccountId":"111122223333","resources":[{"ARN":"arn:aws:kms:eu-west-1:111122223333:key/k%d"}],"pad":"%s"}`,
			n, n, (n/60)%24, n%60, n%7, pad)
		w.WriteString(s)
		written += len(s) + 2
	}
	if bad {
		w.WriteString(`,{"eventTime":"2024-01-01T00:00:00Z"}`)
	}
	w.WriteString("]}\n")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestIngestLargeFileStreamsAndRollsBack(t *testing.T) {
	dir := t.TempDir()
	// Larger than what a worker holds before streaming to the writer, with
	// a bad record at the very end: everything written must be undone.
	big := filepath.Join(dir, "big.json")
	bigFile(t, big, 3*streamThreshold, true)
	st := openStore(t)
	sum := run(t, st, []string{big}, Options{})
	if sum.FilesFailed != 1 || !strings.Contains(sum.Failed[0].Error, "has no eventID") {
		t.Fatalf("summary %+v", sum)
	}
	tot, _ := st.Totals(bg)
	if tot.Events != 0 || tot.Blocks != 0 {
		t.Fatalf("partial file committed: %+v", tot)
	}
	n := bigFile(t, big, 3*streamThreshold, false)
	sum = run(t, st, []string{big}, Options{})
	if sum.FilesOK != 1 || sum.KMSNew != int64(n) {
		t.Fatalf("summary %+v, want %d events", sum, n)
	}
}

// A 200 MB single file loads with bounded memory: the heap never holds
// the file, only a few blocks of it.
func TestIngest200MBFileBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and loads a 200 MB file")
	}
	dir := t.TempDir()
	big := filepath.Join(dir, "huge.json")
	n := bigFile(t, big, 200<<20, false)
	st := openStore(t)
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	sum := run(t, st, []string{big}, Options{})
	close(stop)
	<-done
	if sum.FilesOK != 1 || sum.KMSNew != int64(n) {
		t.Fatalf("summary %+v, want %d", sum, n)
	}
	if p := peak.Load(); p > 120<<20 {
		t.Fatalf("heap peaked at %d MiB for a 200 MiB file", p>>20)
	}
}

func TestIngestStdinAndArchives(t *testing.T) {
	dir, gen := generate(t, cloudtrailgen.Config{KMSEvents: 1500, Days: 2, FileInterval: 6 * time.Hour, DuplicateFiles: 1, NoGaps: true})
	// Pack the tree as .tar.gz and .zip.
	var tarBuf, zipBuf bytes.Buffer
	gzw := gzip.NewWriter(&tarBuf)
	tw := tar.NewWriter(gzw)
	zw := zip.NewWriter(&zipBuf)
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if d.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		tw.WriteHeader(&tar.Header{Name: rel, Mode: 0o600, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
		w, _ := zw.Create(rel)
		w.Write(b)
		return nil
	})
	tw.Close()
	gzw.Close()
	zw.Close()
	arch := t.TempDir()
	os.WriteFile(filepath.Join(arch, "logs.tar.gz"), tarBuf.Bytes(), 0o600)
	os.WriteFile(filepath.Join(arch, "logs.zip"), zipBuf.Bytes(), 0o600)

	st := openStore(t)
	sum := run(t, st, []string{filepath.Join(arch, "logs.tar.gz")}, Options{})
	if sum.FilesOK != gen.Files || sum.KMSNew != int64(gen.KMSEvents) || sum.KMSDuplicate != int64(gen.KMSDuplicates) {
		t.Fatalf("tar: %+v", sum)
	}
	files, _ := st.Files(bg)
	if !strings.Contains(files[0].Path, "logs.tar.gz!AWSLogs/") {
		t.Fatalf("member path %s", files[0].Path)
	}
	// The same members from the zip are known by their SHA-256.
	sum = run(t, st, []string{filepath.Join(arch, "logs.zip")}, Options{})
	if sum.FilesOK != 0 || sum.FilesDuplicate != gen.Files+gen.DuplicateFiles {
		t.Fatalf("zip: %+v", sum)
	}
	// Standard input: a gzipped log file.
	st2 := openStore(t)
	var gzBuf bytes.Buffer
	g := gzip.NewWriter(&gzBuf)
	b, _ := os.ReadFile(ctData + "kms-shapes.json")
	g.Write(b)
	g.Close()
	sum = run(t, st2, []string{"-"}, Options{Stdin: bytes.NewReader(gzBuf.Bytes())})
	if sum.FilesOK != 1 || sum.KMSNew != 13 {
		t.Fatalf("stdin: %+v", sum)
	}
	sum = run(t, st2, []string{"-"}, Options{Stdin: bytes.NewReader(gzBuf.Bytes())})
	if sum.FilesDuplicate != 1 || sum.KMSNew != 0 {
		t.Fatalf("stdin again: %+v", sum)
	}
}

func TestIngestCancelThenResume(t *testing.T) {
	dir, gen := generate(t, cloudtrailgen.Config{KMSEvents: 20000, Days: 2, FileInterval: 30 * time.Minute})
	st := openStore(t)
	ctx, cancel := context.WithCancel(bg)
	var progressed atomic.Bool
	sum, err := Run(ctx, st, []string{dir}, Options{Workers: 1, ProgressEvery: time.Millisecond, Progress: func(p Progress) {
		if p.FilesDone >= 5 && progressed.CompareAndSwap(false, true) {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) || sum == nil || !sum.Cancelled {
		t.Fatalf("cancelled run: %v %+v", err, sum)
	}
	if sum.FilesOK == 0 || sum.FilesOK >= gen.Files {
		t.Fatalf("cancel did not stop mid-way: %d of %d files", sum.FilesOK, gen.Files)
	}
	first := sum.KMSNew
	sum = run(t, st, []string{dir}, Options{})
	if first+sum.KMSNew != int64(gen.KMSEvents) {
		t.Fatalf("resumed: %d + %d events, want %d", first, sum.KMSNew, gen.KMSEvents)
	}
	tot, _ := st.Totals(bg)
	if tot.Events != int64(gen.KMSEvents) || tot.Files != int64(gen.Files) {
		t.Fatalf("totals %+v", tot)
	}
}

func bufioWriter(w io.Writer) *bufio.Writer { return bufio.NewWriterSize(w, 1<<20) }

// A gzip log file is kept as delivered: one raw block holding the file's
// own bytes (store.CodecGzip), the records pointed at inside it, byte for
// byte; so is a file of several gzip members. Records that are not
// verbatim slices of the file (lookup-events, whose record is a decoded
// string) and files that inflate to more than maxFileBlock get DEFLATE
// blocks of their own, as before.
func TestIngestKeepsGzipFilesAsEvidence(t *testing.T) {
	dir := t.TempDir()
	plain, _ := os.ReadFile(ctData + "kms-shapes.json")
	gz := func(parts ...[]byte) []byte {
		var buf bytes.Buffer
		for _, p := range parts {
			zw := gzip.NewWriter(&buf)
			zw.Write(p)
			zw.Close()
		}
		return buf.Bytes()
	}
	logFile := gz(plain)
	// The same records split in two documents, one gzip member each.
	var doc struct{ Records []json.RawMessage }
	if err := json.Unmarshal(plain, &doc); err != nil {
		t.Fatal(err)
	}
	half := func(recs []json.RawMessage) []byte {
		b, _ := json.Marshal(map[string]any{"Records": recs})
		return b
	}
	members := gz(half(doc.Records[:7]), []byte("\n"), half(doc.Records[7:]))
	lookup, _ := os.ReadFile(ctData + "lookup-events.json")
	big := gz(append(append([]byte{}, plain...), bytes.Repeat([]byte(" "), maxFileBlock+1)...))
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	raws := fixtureRaw(t)
	for _, c := range []struct {
		name        string
		data        []byte
		codec, kept int // codec of the blocks; kept: 1 when the block is the file itself
	}{
		{"log.json.gz", logFile, store.CodecGzip, 1},
		{"members.json.gz", members, store.CodecGzip, 1},
		{"lookup.json.gz", gz(lookup), store.CodecDeflate, 0},
		{"big.json.gz", big, store.CodecDeflate, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := openStore(t)
			sum := run(t, st, []string{write(c.name, c.data)}, Options{})
			if sum.FilesOK != 1 || sum.KMSNew == 0 {
				t.Fatalf("summary %+v", sum)
			}
			rows, err := st.DB().Query(`SELECT codec, size, data FROM raw_blocks`)
			if err != nil {
				t.Fatal(err)
			}
			n, kept := 0, 0
			for rows.Next() {
				var codec, size int
				var data []byte
				if err := rows.Scan(&codec, &size, &data); err != nil {
					t.Fatal(err)
				}
				n++
				if codec != c.codec {
					t.Errorf("block of codec %d, want %d", codec, c.codec)
				}
				if bytes.Equal(data, c.data) {
					kept++
				}
			}
			rows.Close()
			if n == 0 || kept != c.kept {
				t.Fatalf("%d blocks, %d of them the file itself (want %d)", n, kept, c.kept)
			}
			var out bytes.Buffer
			if got, err := st.ExportRaw(bg, store.Filter{}, &out); err != nil || int64(got) != sum.KMSNew {
				t.Fatalf("export %d %v", got, err)
			}
			rd := cloudtrail.NewReader(&out)
			for {
				raw, err := rd.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				var r cloudtrail.Record
				cloudtrail.Parse(raw, &r)
				// A record as it is in the fixtures, or (the file of two
				// members re-encodes them) as it is in the file given.
				zr, _ := gzip.NewReader(bytes.NewReader(c.data))
				given, _ := io.ReadAll(zr)
				if !oneOf(raw, raws[r.EventID]) && !(c.kept == 1 && bytes.Contains(given, raw)) {
					t.Fatalf("%s: export of %s is not byte-equal", c.name, r.EventID)
				}
				if got, err := st.RawEvent(bg, r.EventID); err != nil || !bytes.Equal(got, raw) {
					t.Fatalf("%s: raw %s: %v", c.name, r.EventID, err)
				}
			}
		})
	}
}
