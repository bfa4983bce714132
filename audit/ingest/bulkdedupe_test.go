package ingest

import (
	"bytes"
	"compress/flate"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/keyceremony/keyceremony/audit/cloudtrail"
	"github.com/keyceremony/keyceremony/audit/store"
)

// A bulk load deduplicates eventIDs in memory while the UNIQUE index on
// event_id is dropped. These tests check the cases where that set could be
// wrong: a load killed before it rebuilt the index, another writer
// committing in the middle of the load, a file rolled back.

func kmsRecord(id string, sec int) string {
	return fmt.Sprintf(`{"eventVersion":"1.08","eventTime":"2025-03-01T00:%02d:%02dZ","eventSource":"kms.amazonaws.com",`+
		`"eventName":"Decrypt","awsRegion":"us-east-1","sourceIPAddress":"10.0.0.1","userAgent":"test",`+
		`"eventID":"%s","readOnly":true,"eventType":"AwsApiCall","recipientAccountId":"111122223333",`+
		`"userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/app/s","accountId":"111122223333"},`+
		`"resources":[{"accountId":"111122223333","type":"AWS::KMS::Key","ARN":"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}]}`,
		sec/60, sec%60, id)
}

func testID(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012x", n) }

// writeFile stores one file of records through w, as the ingest does.
func writeFile(t *testing.T, w *store.Writer, name string, savepoint bool, ids ...string) store.FileResult {
	t.Helper()
	var raw bytes.Buffer
	var recs []cloudtrail.Record
	for i, id := range ids {
		recs = append(recs, cloudtrail.Record{})
		b := []byte(kmsRecord(id, i))
		if err := cloudtrail.Parse(b, &recs[len(recs)-1]); err != nil {
			t.Fatal(err)
		}
		raw.Write(b)
	}
	var comp bytes.Buffer
	fw, _ := flate.NewWriter(&comp, 2)
	fw.Write(raw.Bytes())
	fw.Close()
	if err := w.BeginFile(store.FileMeta{Path: name, Compression: "none"}, savepoint); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.AddBatch(&store.Batch{Records: recs, Block: comp.Bytes(), RawSize: raw.Len()}); err != nil {
		t.Fatal(err)
	}
	var end store.FileEnd
	copy(end.SHA256[:], name)
	end.Records = len(ids)
	res, err := w.CommitFile(end)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func checkEvents(t *testing.T, st *store.Store, want int) {
	t.Helper()
	var n, distinct int
	if err := st.DB().QueryRow(`SELECT count(*), count(DISTINCT event_id) FROM events`).Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != want || distinct != want {
		t.Fatalf("%d events (%d distinct), want %d", n, distinct, want)
	}
}

func TestBulkLoadKilledThenResumed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	st, err := store.Open(bg, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w, err := st.NewWriter(bg)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.DropIndexes(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, w, "a", false, testID(1), testID(2), "not-a-uuid")
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	w.Close() // killed: the indexes were never rebuilt
	missing, err := st.MissingIndexes(bg)
	if err != nil || len(missing) != 9 || missing[0] != "event_id_unique" {
		t.Fatalf("missing indexes %v %v", missing, err)
	}

	// A small ingest (no bulk load) of records seen before and new ones:
	// the UNIQUE index comes back before its first event.
	dir := t.TempDir()
	doc := `{"Records":[` + kmsRecord(testID(2), 1) + "," + kmsRecord("not-a-uuid", 2) + "," + kmsRecord(testID(3), 3) + `]}`
	if err := os.WriteFile(filepath.Join(dir, "b.json"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := run(t, st, []string{dir}, Options{Bulk: BulkOff})
	if sum.KMSNew != 1 || sum.KMSDuplicate != 2 {
		t.Fatalf("new %d dup %d, want 1 2", sum.KMSNew, sum.KMSDuplicate)
	}
	checkEvents(t, st, 4)
	if missing, _ := st.MissingIndexes(bg); len(missing) != 0 {
		t.Fatalf("indexes still missing: %v", missing)
	}
}

func TestBulkLoadWithAnotherWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	stA, err := store.Open(bg, path)
	if err != nil {
		t.Fatal(err)
	}
	defer stA.Close()
	stB, err := store.Open(bg, path) // another process
	if err != nil {
		t.Fatal(err)
	}
	defer stB.Close()

	a, err := stA.NewWriter(bg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.DropIndexes(); err != nil {
		t.Fatal(err)
	}
	if r := writeFile(t, a, "a1", false, testID(1), testID(2)); r.KMSNew != 2 {
		t.Fatalf("a1: %+v", r)
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}

	// B writes between A's transactions: it must not trust the missing
	// index, and A must not trust its set afterwards.
	b, err := stB.NewWriter(bg)
	if err != nil {
		t.Fatal(err)
	}
	if r := writeFile(t, b, "b1", false, testID(2), testID(3)); r.KMSNew != 1 || r.KMSDup != 1 {
		t.Fatalf("b1: %+v", r)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	b.Close()

	if r := writeFile(t, a, "a2", false, testID(3), testID(4), testID(4)); r.KMSNew != 1 || r.KMSDup != 2 {
		t.Fatalf("a2: %+v", r)
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := a.BuildIndexes(); err != nil {
		t.Fatal(err)
	}
	checkEvents(t, stA, 4)
}

func TestBulkLoadRolledBackFile(t *testing.T) {
	st := openStore(t)
	w, err := st.NewWriter(bg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.DropIndexes(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, w, "a", false, testID(1))
	// A streamed file that fails half-way: its events leave the set too.
	if err := w.BeginFile(store.FileMeta{Path: "bad"}, true); err != nil {
		t.Fatal(err)
	}
	var rec cloudtrail.Record
	raw := []byte(kmsRecord(testID(2), 0))
	if err := cloudtrail.Parse(raw, &rec); err != nil {
		t.Fatal(err)
	}
	if n, _, err := w.AddBatch(&store.Batch{Records: []cloudtrail.Record{rec}, Block: []byte{3, 0}, RawSize: len(raw)}); err != nil || n != 1 {
		t.Fatalf("add %d %v", n, err)
	}
	if err := w.AbortFile(fmt.Errorf("bad record"), nil); err != nil {
		t.Fatal(err)
	}
	if r := writeFile(t, w, "b", false, testID(1), testID(2)); r.KMSNew != 1 || r.KMSDup != 1 {
		t.Fatalf("b: %+v", r)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := w.BuildIndexes(); err != nil {
		t.Fatal(err)
	}
	checkEvents(t, st, 2)
}

// A bulk load whose eventID set reaches its cap (Writer.MaxBulkIDs) goes
// on through the UNIQUE index, built at that point: duplicates of events
// stored before and after the switch are found, the secondary indexes
// still wait for the end.
func TestBulkLoadSetCapped(t *testing.T) {
	st := openStore(t)
	w, err := st.NewWriter(bg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.MaxBulkIDs = 3
	if err := w.DropIndexes(); err != nil {
		t.Fatal(err)
	}
	if r := writeFile(t, w, "a", false, testID(1), testID(2)); r.KMSNew != 2 {
		t.Fatalf("a: %+v", r)
	}
	missing, err := st.MissingIndexes(bg)
	if err != nil || len(missing) != 9 {
		t.Fatalf("below the cap: missing indexes %v %v", missing, err)
	}
	// The set reaches 3 entries: the load switches after this file.
	if r := writeFile(t, w, "b", false, testID(2), testID(3), "not-a-uuid"); r.KMSNew != 2 || r.KMSDup != 1 {
		t.Fatalf("b: %+v", r)
	}
	if r := writeFile(t, w, "c", false, testID(1), "not-a-uuid", testID(4), testID(4)); r.KMSNew != 1 || r.KMSDup != 3 {
		t.Fatalf("c (after the switch): %+v", r)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	missing, err = st.MissingIndexes(bg)
	if err != nil || len(missing) != 8 || slices.Contains(missing, "event_id_unique") {
		t.Fatalf("after the switch: missing indexes %v %v (want the 8 secondary ones, not the UNIQUE one)", missing, err)
	}
	if err := w.BuildIndexes(); err != nil {
		t.Fatal(err)
	}
	checkEvents(t, st, 5)
}
