package store

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/audit/cloudtrail"
	"github.com/keyceremony/keyceremony/audit/inventory"
)

var ctx = context.Background()

func openTemp(t *testing.T) *Store {
	t.Helper()
	st, err := Open(ctx, filepath.Join(t.TempDir(), "sub", "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// fixture parses the cloudtrail package's hand-written records.
func fixture(t *testing.T) (kms []cloudtrail.Record, raw map[string][]byte) {
	t.Helper()
	f, err := os.Open("../cloudtrail/testdata/kms-shapes.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd := cloudtrail.NewReader(f)
	raw = map[string][]byte{}
	for {
		b, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.Clone(b)
		var r cloudtrail.Record
		if err := cloudtrail.Parse(b, &r); err != nil {
			t.Fatal(err)
		}
		if r.IsKMS() {
			kms = append(kms, r)
			raw[r.EventID] = b
		}
	}
	return kms, raw
}

func batch(t *testing.T, recs []cloudtrail.Record) *Batch {
	t.Helper()
	var rawBuf, comp bytes.Buffer
	for _, r := range recs {
		rawBuf.Write(r.Raw)
	}
	zw, _ := flate.NewWriter(&comp, 2)
	zw.Write(rawBuf.Bytes())
	zw.Close()
	return &Batch{Records: recs, Block: comp.Bytes(), RawSize: rawBuf.Len()}
}

// load writes recs as one file named name.
func load(t *testing.T, st *Store, name string, recs []cloudtrail.Record, savepoint bool) FileResult {
	t.Helper()
	w, err := st.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.BeginFile(FileMeta{Path: name}, savepoint); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.AddBatch(batch(t, recs)); err != nil {
		t.Fatal(err)
	}
	res, err := w.CommitFile(FileEnd{SHA256: sha256.Sum256([]byte(name)), Records: len(recs), Format: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.ResolveAliases(); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return res
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keyceremony")
	path := filepath.Join(dir, "audit.db")
	st, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kms, _ := fixture(t)
	load(t, st, "a", kms[:1], false)
	fi, _ := os.Stat(dir)
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v", fi.Mode().Perm())
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	if v, err := st.Version(ctx); err != nil || v != SchemaVersion {
		t.Fatalf("version %d %v", v, err)
	}
}

func TestMigrateUpgradesOldDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	// A database as version 1 of this code left it, with an event in it.
	st, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	os.Remove(path)
	os.Remove(path + "-wal")
	os.Remove(path + "-shm")
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	old := &Store{db: db}
	if err := old.migrate(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO events (time, event_id, name, category, key_source, block, off, len) VALUES (1, 'x', 1, 0, 0, 1, 0, 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	st, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if v, _ := st.Version(ctx); v != SchemaVersion {
		t.Fatalf("upgraded to v%d, want v%d", v, SchemaVersion)
	}
	var n int
	st.db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'events_errors_time'`).Scan(&n)
	if n != 1 {
		t.Fatal("v2 index missing after upgrade")
	}
	st.db.QueryRow(`SELECT count(*) FROM events WHERE event_id = 'x'`).Scan(&n)
	if n != 1 {
		t.Fatal("event lost in upgrade")
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	st, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	st.db.Exec(`UPDATE schema_version SET version = 99`)
	st.Close()
	_, err = Open(ctx, path)
	if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "v99") {
		t.Fatalf("err = %v", err)
	}
}

func TestWriterDedupeAndByteExactRaw(t *testing.T) {
	st := openTemp(t)
	kms, raws := fixture(t)
	res := load(t, st, "first", kms, false)
	if res.KMSNew != len(kms) || res.KMSDup != 0 {
		t.Fatalf("first load %+v", res)
	}
	// The same events delivered again in another file are duplicates.
	res = load(t, st, "again", kms[3:7], false)
	if res.KMSNew != 0 || res.KMSDup != 4 {
		t.Fatalf("second load %+v", res)
	}
	// A mix: the duplicate rows are told apart from the new ones.
	mix := append([]cloudtrail.Record{}, kms[0:2]...)
	extra := kms[2]
	extra.EventID = "not-a-uuid-id"
	mix = append(mix, extra)
	res = load(t, st, "mix", mix, false)
	if res.KMSNew != 1 || res.KMSDup != 2 {
		t.Fatalf("mixed load %+v", res)
	}
	tot, _ := st.Totals(ctx)
	if tot.Events != int64(len(kms)+1) {
		t.Fatalf("%d events", tot.Events)
	}
	for id, want := range raws {
		got, err := st.RawEvent(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("raw of %s differs", id)
		}
	}
	if _, err := st.RawEvent(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	// No block was stored for the all-duplicate file.
	if tot.Blocks != 2 {
		t.Fatalf("%d blocks, want 2", tot.Blocks)
	}
}

func TestAbortFileRollsBackAlone(t *testing.T) {
	st := openTemp(t)
	kms, _ := fixture(t)
	w, err := st.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// One good file, then one that fails half-way in the same transaction.
	w.BeginFile(FileMeta{Path: "good"}, true)
	w.AddBatch(batch(t, kms[:2]))
	if _, err := w.CommitFile(FileEnd{SHA256: sha256.Sum256([]byte("good"))}); err != nil {
		t.Fatal(err)
	}
	w.BeginFile(FileMeta{Path: "bad"}, true)
	if _, _, err := w.AddBatch(batch(t, kms[2:])); err != nil {
		t.Fatal(err)
	}
	if err := w.AbortFile(errors.New("record 9: broken"), nil); err != nil {
		t.Fatal(err)
	}
	// The dimension rows of the aborted file are gone; the caches must not
	// point at them: loading the same records again must work.
	w.BeginFile(FileMeta{Path: "retry"}, true)
	if _, _, err := w.AddBatch(batch(t, kms[2:])); err != nil {
		t.Fatal(err)
	}
	if _, err := w.CommitFile(FileEnd{SHA256: sha256.Sum256([]byte("retry"))}); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	tot, _ := st.Totals(ctx)
	if tot.Events != int64(len(kms)) || tot.Files != 2 {
		t.Fatalf("totals %+v", tot)
	}
	var orphans int
	st.db.QueryRow(`SELECT count(*) FROM events e LEFT JOIN keys k ON k.id = e.key WHERE e.key IS NOT NULL AND k.id IS NULL`).Scan(&orphans)
	if orphans != 0 {
		t.Fatalf("%d events point at missing keys", orphans)
	}
	f, _ := st.Failures(ctx)
	if len(f) != 1 || f[0].Path != "bad" || !strings.Contains(f[0].Error, "record 9") {
		t.Fatalf("failures %+v", f)
	}
}

func TestSameSHAUnderAnotherName(t *testing.T) {
	st := openTemp(t)
	kms, _ := fixture(t)
	w, _ := st.NewWriter(ctx)
	defer w.Close()
	sum := sha256.Sum256([]byte("content"))
	for _, name := range []string{"a.json.gz", "copy/a.json.gz"} {
		w.BeginFile(FileMeta{Path: name}, true)
		w.AddBatch(batch(t, kms))
		res, err := w.CommitFile(FileEnd{SHA256: sum})
		if err != nil {
			t.Fatal(err)
		}
		if name != "a.json.gz" && !res.Duplicate {
			t.Fatal("second name not recognised by SHA-256")
		}
	}
	w.Commit()
	files, _ := st.Files(ctx)
	if len(files) != 1 || len(files[0].Names) != 2 {
		t.Fatalf("files %+v", files)
	}
}

func TestAliasResolutionFollowsHistory(t *testing.T) {
	st := openTemp(t)
	kms, _ := fixture(t)
	load(t, st, "all", kms, false)
	for id, want := range map[string]string{
		"5c1e7d2a-0010-4b8e-9e6f-1a2b3c4d5e10": "arn:aws:kms:eu-central-1:210987654321:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", // before UpdateAlias
		"5c1e7d2a-0011-4b8e-9e6f-1a2b3c4d5e11": "arn:aws:kms:eu-central-1:210987654321:key/9a8b7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4", // after
	} {
		e, err := st.EventByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if e.KeyARN != want || e.KeySource != "alias-history" {
			t.Errorf("%s: key %s (%s), want %s", id, e.KeyARN, e.KeySource, want)
		}
	}
	al, _ := st.Aliases(ctx)
	if len(al) != 1 || !strings.HasSuffix(al[0].KeyARN, "9a8b7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4") {
		t.Fatalf("aliases %+v", al)
	}
}

func TestEventsFiltersAndKeysetPaging(t *testing.T) {
	st := openTemp(t)
	kms, _ := fixture(t)
	load(t, st, "all", kms, false)
	keyB := "arn:aws:kms:eu-central-1:210987654321:key/9a8b7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4"
	tests := []struct {
		name string
		f    Filter
		want int
	}{
		{"all", Filter{}, 13},
		{"key (both ReEncrypt slots)", Filter{KeyARN: keyB}, 5}, // ReEncrypt dst, ScheduleKeyDeletion, UpdateAlias, GenerateDataKey, denied after update
		{"key id", Filter{KeyARN: "9a8b7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4"}, 5},
		{"alias", Filter{Alias: "alias/payments"}, 9}, // named the alias, or used one of its two keys
		{"principal", Filter{Principal: "arn:aws:iam::210987654321:user/dana"}, 7},
		{"role", Filter{Principal: "arn:aws:iam::210987654321:role/Rewrapper"}, 1},
		{"name", Filter{EventName: "Decrypt"}, 3},
		{"errors", Filter{ErrorsOnly: true}, 2},
		{"errors on key", Filter{ErrorsOnly: true, KeyARN: keyB}, 1},
		{"account", Filter{Account: "210987654321"}, 13},
		{"region none", Filter{Region: "us-east-1"}, 0},
		{"time range", Filter{From: time.Date(2024, 6, 3, 0, 0, 0, 0, time.UTC), To: time.Date(2024, 6, 4, 0, 0, 0, 0, time.UTC)}, 6},
		{"unknown key", Filter{KeyARN: "nope"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := st.CountEvents(ctx, tc.f)
			if err != nil || n != int64(tc.want) {
				t.Fatalf("count %d %v, want %d", n, err, tc.want)
			}
			for _, order := range []Order{Newest, Oldest} {
				var seen []Event
				var cur *Cursor
				for pages := 0; ; pages++ {
					pg, err := st.Events(ctx, tc.f, order, cur, 2)
					if err != nil {
						t.Fatal(err)
					}
					seen = append(seen, pg.Events...)
					if pg.Next == nil {
						break
					}
					if pages > 20 {
						t.Fatal("paging does not end")
					}
					cur = pg.Next
				}
				if len(seen) != tc.want {
					t.Fatalf("order %d: paged %d events, want %d", order, len(seen), tc.want)
				}
				ids := map[int64]bool{}
				for i, e := range seen {
					if ids[e.ID] {
						t.Fatalf("event %d twice", e.ID)
					}
					ids[e.ID] = true
					if i > 0 {
						a, b := seen[i-1], e
						before := a.Time.Before(b.Time) || (a.Time.Equal(b.Time) && a.ID < b.ID)
						if (order == Oldest) != before {
							t.Fatalf("order %d broken at %d", order, i)
						}
					}
				}
			}
		})
	}
}

// The GUI pages over a million rows: every filter must be answered from an
// index, never by scanning the events table or sorting all matches.
func TestQueryPlansUseIndexes(t *testing.T) {
	st := openTemp(t)
	kms, _ := fixture(t)
	load(t, st, "all", kms, false)
	cur := &Cursor{Time: 1 << 40, ID: 1 << 40}
	for _, f := range []Filter{
		{}, {KeyARN: kms[0].KeyARN}, {Alias: "alias/payments"}, {Principal: kms[0].PrincipalARN},
		{EventName: "Decrypt"}, {ErrorsOnly: true}, {From: time.Unix(0, 0), To: time.Unix(1<<40, 0)},
	} {
		p, err := st.plan(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, order := range []Order{Newest, Oldest} {
			q, args := p.sql(order, cur, 0, 50)
			plan := queryPlan(t, st, q, args...)
			all := strings.Join(plan, " | ")
			for _, d := range plan {
				if strings.HasPrefix(d, "SCAN e") && !strings.Contains(d, "INDEX") {
					t.Errorf("%+v: full scan: %s", f, all)
				}
				if len(p.branches) == 1 && strings.Contains(d, "TEMP B-TREE") {
					t.Errorf("%+v: sorts instead of walking an index: %s", f, all)
				}
			}
		}
	}
}

// queryPlan is SQLite's EXPLAIN QUERY PLAN of q, one detail per step.
func queryPlan(t *testing.T, st *Store, q string, args ...any) []string {
	t.Helper()
	rows, err := st.db.Query("EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		rows.Scan(&id, &parent, &unused, &detail)
		plan = append(plan, detail)
	}
	return plan
}

func TestCoverageFillsGaps(t *testing.T) {
	st := openTemp(t)
	w, _ := st.NewWriter(ctx)
	defer w.Close()
	day := func(d string) int64 { t, _ := time.Parse("2006-01-02", d); return t.Unix() / 86400 }
	for _, d := range []string{"2024-06-01", "2024-06-04"} {
		w.BeginFile(FileMeta{Path: d, Account: "1", Region: "r", Day: d}, false)
		w.CommitFile(FileEnd{SHA256: sha256.Sum256([]byte(d)), Records: 5,
			Days: map[DayKey]*DayCount{{"1", "r", day(d)}: {Records: 5}}})
	}
	w.Commit()
	cov, err := st.Coverage(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cov {
		got = append(got, c.Day+":"+string(rune('0'+c.Files)))
	}
	if strings.Join(got, " ") != "2024-06-01:1 2024-06-02:0 2024-06-03:0 2024-06-04:1" {
		t.Fatalf("coverage %v", got)
	}
}

// v4 keeps the lifecycle facts in event_details, written by the ingest;
// a v3 database gets the same rows from its raw records when opened.
func TestDetailsWrittenAndBackfilledFromV3(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v3.db")
	st, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	kms, _ := fixture(t)
	load(t, st, "a", kms, true)
	dump := func(st *Store) []string {
		rows, err := st.DB().Query(`SELECT n.s, coalesce(d.key_spec,''), coalesce(d.origin,''), coalesce(d.key_manager,''),
			coalesce(d.description,''), coalesce(d.multi_region,-1), coalesce(d.rotation_period_days,0), coalesce(d.import_type,''),
			coalesce(d.expiration_model,''), coalesce(d.key_material,'')
			FROM event_details d JOIN events e ON e.id = d.event JOIN strs n ON n.id = e.name ORDER BY e.id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			v := make([]any, 10)
			p := make([]any, 10)
			for i := range v {
				p[i] = &v[i]
			}
			if err := rows.Scan(p...); err != nil {
				t.Fatal(err)
			}
			parts := make([]string, len(v))
			for i := range v {
				parts[i] = fmt.Sprint(v[i])
			}
			out = append(out, strings.Join(parts, "|"))
		}
		return out
	}
	written := dump(st)
	// kms-shapes.json: CreateKey (EXTERNAL), RotateKey, ImportKeyMaterial.
	want := []string{
		"CreateKey|SYMMETRIC_DEFAULT|EXTERNAL|CUSTOMER|imported key|-1|0|||",
		"RotateKey|||||-1|0|||",
		"ImportKeyMaterial|||||-1|0|NEW_KEY_MATERIAL|KEY_MATERIAL_EXPIRES|ffee000011112222333344445555666677778888999900001111222233334444",
	}
	if strings.Join(written, "\n") != strings.Join(want, "\n") {
		t.Fatalf("event_details written by the ingest:\n%s\nwant:\n%s", strings.Join(written, "\n"), strings.Join(want, "\n"))
	}
	// Back to v3 as that version left it: no event_details (nor what later
	// versions added), the v1 view.
	for _, q := range []string{`DROP VIEW events_v`, `DROP TABLE event_details`, `DROP TABLE aggregates`, `DROP TABLE aggregate_sources`,
		`DROP TABLE run_notes`, `ALTER TABLE runs DROP COLUMN pid`, `ALTER TABLE runs DROP COLUMN host`,
		`ALTER TABLE runs DROP COLUMN heartbeat_at`, `ALTER TABLE runs DROP COLUMN skipped`, `ALTER TABLE runs DROP COLUMN warnings`,
		`DROP TABLE conflicts`, `ALTER TABLE events DROP COLUMN fp`, `ALTER TABLE raw_blocks DROP COLUMN src_offs`, `DROP TABLE key_materials`,
		`DROP TABLE ceremonies`, `DROP TABLE pca_events`, `DROP TABLE rollups`, eventsView, `UPDATE schema_version SET version = 3`} {
		if _, err := st.DB().Exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
	st.Close()

	st, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if v, _ := st.Version(ctx); v != SchemaVersion || SchemaVersion < 5 {
		t.Fatalf("version %d after upgrade (code v%d)", v, SchemaVersion)
	}
	if got := dump(st); strings.Join(got, "\n") != strings.Join(written, "\n") {
		t.Fatalf("backfilled:\n%s\nwritten by the ingest:\n%s", strings.Join(got, "\n"), strings.Join(written, "\n"))
	}
	var spec string
	if err := st.DB().QueryRow(`SELECT key_spec FROM events_v WHERE event_name = 'CreateKey'`).Scan(&spec); err != nil || spec != "SYMMETRIC_DEFAULT" {
		t.Fatalf("events_v key_spec %q %v", spec, err)
	}
}

// Record strings alias the ingest's batch buffers, which are reused once a
// batch is written. The per-day counts of new events are kept until the
// file commits, so their keys must not alias a buffer: a Go map assignment
// to an existing string key replaces the stored key with the new one, and
// the 1M-event benchmark database had coverage rows named by fragments of
// other records ("eventSour" in account "\",\"tls").
func TestCoverageKeysOutliveRecordBuffers(t *testing.T) {
	st := openTemp(t)
	kms, _ := fixture(t)
	size := 0
	for _, r := range kms {
		size += len(r.Raw)
	}
	buf := make([]byte, 0, size) // never reallocated: records keep aliasing it
	var recs []cloudtrail.Record
	for _, r := range kms {
		if r.Account != "210987654321" || r.Region != "eu-central-1" {
			continue
		}
		start := len(buf)
		buf = append(buf, r.Raw...)
		var rec cloudtrail.Record
		if err := cloudtrail.Parse(buf[start:len(buf):len(buf)], &rec); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	if len(recs) < 3 {
		t.Fatalf("%d fixture records in one account and region", len(recs))
	}
	w, err := st.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.BeginFile(FileMeta{Path: "f"}, true); err != nil {
		t.Fatal(err)
	}
	for i := range recs { // one batch per record: every day key is seen again
		if _, _, err := w.AddBatch(batch(t, recs[i:i+1])); err != nil {
			t.Fatal(err)
		}
	}
	for i := range buf {
		buf[i] = 'x' // the ingest reuses the buffer for the next batch
	}
	if _, err := w.CommitFile(FileEnd{SHA256: sha256.Sum256([]byte("f")), Records: len(recs), Format: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	rows, err := st.DB().Query(`SELECT account, region, kms_events FROM coverage`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	total := 0
	for rows.Next() {
		var a, r string
		var n int
		if err := rows.Scan(&a, &r, &n); err != nil {
			t.Fatal(err)
		}
		if a != "210987654321" || r != "eu-central-1" {
			t.Errorf("coverage row named %q/%q", a, r)
		}
		total += n
	}
	if total != len(recs) {
		t.Fatalf("coverage counts %d new events, want %d", total, len(recs))
	}
}

// Alias changes known only from aggregates (an Athena count of the
// CreateAlias and UpdateAlias calls, the records themselves not loaded)
// extend the alias history: events that named only the alias are resolved
// by it when the aggregates are imported, and AliasResolver, which the
// reports use for aggregates naming an alias, answers the same.
func TestAggregatedAliasChangesResolveRecords(t *testing.T) {
	st := openTemp(t)
	kms, _ := fixture(t)
	var rest []cloudtrail.Record
	var changes []Aggregate
	var from, to time.Time
	for _, r := range kms {
		if r.Name != "CreateAlias" && r.Name != "UpdateAlias" {
			rest = append(rest, r)
			continue
		}
		day := time.Unix(r.Time, 0).UTC().Truncate(24 * time.Hour)
		if from.IsZero() || day.Before(from) {
			from = day
		}
		if day.AddDate(0, 0, 1).After(to) {
			to = day.AddDate(0, 0, 1)
		}
		changes = append(changes, Aggregate{Day: day.Format("2006-01-02"), Account: r.Account, Region: r.Region, Name: r.Name,
			Category: r.Category, KeyARN: r.KeyARN, AliasARN: r.AliasARN, AliasTarget: r.AliasTarget,
			PrincipalARN: r.PrincipalARN, PrincipalType: r.PrincipalType, PrincipalAccount: r.PrincipalAccount, RoleARN: r.RoleARN,
			Events: 1, First: r.Time, Last: r.Time})
	}
	if len(changes) != 2 {
		t.Fatalf("the fixture has %d alias changes, the test expects CreateAlias and UpdateAlias", len(changes))
	}
	load(t, st, "without the alias changes", rest, false)
	const before, after = "5c1e7d2a-0010-4b8e-9e6f-1a2b3c4d5e10", "5c1e7d2a-0011-4b8e-9e6f-1a2b3c4d5e11"
	want := map[string]string{
		before: "arn:aws:kms:eu-central-1:210987654321:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
		after:  "arn:aws:kms:eu-central-1:210987654321:key/9a8b7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4",
	}
	for id := range want {
		if e, err := st.EventByID(ctx, id); err != nil || e.KeyARN != "" {
			t.Fatalf("%s resolved (%q, %v) with no alias history", id, e.KeyARN, err)
		}
	}

	w, err := st.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.ImportAggregates(AggregateSource{Kind: "athena", QueryID: "q1", Query: "SELECT ...", From: from, To: to,
		Rows: 2, Events: 2, StartedAt: to, FinishedAt: to}, changes); err != nil {
		t.Fatal(err)
	}
	res := NewAliasResolver(ctx, st.DB())
	var alias int64
	if err := st.DB().QueryRow(`SELECT id FROM aliases WHERE arn = ?`, changes[0].AliasARN).Scan(&alias); err != nil {
		t.Fatal(err)
	}
	for id, arn := range want {
		e, err := st.EventByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if e.KeyARN != arn || e.KeySource != "alias-history" {
			t.Errorf("%s: key %s (%s) after the aggregates, want %s", id, e.KeyARN, e.KeySource, arn)
		}
		k, err := res.KeyAt(alias, e.Time.Unix())
		var got string
		if err == nil {
			err = st.DB().QueryRow(`SELECT arn FROM keys WHERE id = ?`, k).Scan(&got)
		}
		if err != nil || got != arn {
			t.Errorf("AliasResolver at %s: key %d %q (%v), want %s", e.Time, k, got, err, arn)
		}
	}
}

// TestKeyMaterialsStoredAndBackfilled: the key-material history of an
// inventory (ListKeyRotations) is stored per key and material; a later
// snapshot updates a material without erasing its rotation date; and a
// database of schema v8 gets it from its inventory fragments on upgrade.
func TestKeyMaterialsStoredAndBackfilled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	st, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	arn := "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	doc := func(at, rotations string) []*inventory.Doc {
		docs, err := inventory.Parse(strings.NewReader(`{"Inventory":{"GeneratedAt":"`+at+`","Region":"eu-west-1","Keys":[
			{"KeyMetadata":{"Arn":"`+arn+`","Origin":"AWS_KMS"},"Rotations":[`+rotations+`]}]}}`), 0)
		if err != nil {
			t.Fatal(err)
		}
		return docs
	}
	importDoc := func(name string, docs []*inventory.Doc) {
		w, err := st.NewWriter(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if err := w.BeginFile(FileMeta{Path: name}, false); err != nil {
			t.Fatal(err)
		}
		if _, err := w.ImportInventory(docs, []byte{3, 0}, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := w.CommitFile(FileEnd{SHA256: sha256.Sum256([]byte(name)), Format: "kms-inventory"}); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	importDoc("a.json", doc("2025-03-01T00:00:00Z", `{"KeyMaterialId":"m0","KeyMaterialState":"NON_CURRENT"},
		{"KeyMaterialId":"m1","KeyMaterialState":"CURRENT","RotationDate":"2024-06-01T00:00:00Z","RotationType":"AUTOMATIC"}`))
	// Later: m1 is no longer current; the snapshot omits its rotation date.
	importDoc("b.json", doc("2025-04-01T00:00:00Z", `{"KeyMaterialId":"m1","KeyMaterialState":"NON_CURRENT"},
		{"KeyMaterialId":"m2","KeyMaterialState":"CURRENT","RotationDate":"2025-03-20T00:00:00Z","RotationType":"ON_DEMAND"}`))
	dump := func() string {
		rows, err := st.DB().Query(`SELECT material_id, state, coalesce(rotation_date, 0), coalesce(rotation_type, ''), as_of FROM key_materials ORDER BY material_id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var id, state, typ string
			var rot, asOf int64
			rows.Scan(&id, &state, &rot, &typ, &asOf)
			out = append(out, fmt.Sprintf("%s %s %s %s %s", id, state, time.Unix(rot, 0).UTC().Format("2006-01-02"), typ, time.Unix(asOf, 0).UTC().Format("2006-01-02")))
		}
		return strings.Join(out, "\n")
	}
	want := "m0 NON_CURRENT 1970-01-01  2025-03-01\nm1 NON_CURRENT 2024-06-01 AUTOMATIC 2025-04-01\nm2 CURRENT 2025-03-20 ON_DEMAND 2025-04-01"
	if got := dump(); got != want {
		t.Fatalf("key materials:\n%s\nwant:\n%s", got, want)
	}
	// Back to v8: the table goes (and the ceremonies of v10 and the rollups of v11, which the
	// upgrade creates again); the upgrade fills it from the inventory's
	// fragment (the latest document's).
	for _, q := range []string{`DROP TABLE key_materials`, `DROP TABLE ceremonies`, `DROP TABLE pca_events`, `DROP TABLE IF EXISTS rollups`, `UPDATE schema_version SET version = 8`} {
		if _, err := st.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	if st, err = Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got := dump(); got != "m1 NON_CURRENT 1970-01-01  2025-04-01\nm2 CURRENT 2025-03-20 ON_DEMAND 2025-04-01" {
		t.Fatalf("backfilled key materials:\n%s", got)
	}
}

// Every ingest looks for events whose alias is not resolved yet: from the
// partial index events_alias_unresolved (v12: it holds those events only,
// each looked up for its row id), never by visiting the alias's events (a
// pass over millions of rows at ten million events).
func TestUnresolvedAliasesFromTheirIndex(t *testing.T) {
	st := openTemp(t)
	all := strings.Join(queryPlan(t, st, UnresolvedAliasesQuery, int64(1)<<40), " | ")
	if !strings.Contains(all, "INDEX events_alias_unresolved") {
		t.Fatalf("the unresolved aliases are not read from their index: %s", all)
	}
}

// An alias change loaded after the events it governs: the events resolved
// already (through the older history) are resolved again, not only those
// without a key. Events added later under an unchanged history are
// resolved on their own (the pending aliases), the others left as they are.
func TestAliasChangeLoadedLaterResolvesAgain(t *testing.T) {
	st := openTemp(t)
	kms, _ := fixture(t)
	var update []cloudtrail.Record
	var rest []cloudtrail.Record
	for _, r := range kms {
		if r.Name == "UpdateAlias" {
			update = append(update, r)
		} else {
			rest = append(rest, r)
		}
	}
	if len(update) != 1 {
		t.Fatalf("fixture has %d UpdateAlias records", len(update))
	}
	load(t, st, "without the update", rest, false)
	keyA := "arn:aws:kms:eu-central-1:210987654321:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	keyB := "arn:aws:kms:eu-central-1:210987654321:key/9a8b7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4"
	after := "5c1e7d2a-0011-4b8e-9e6f-1a2b3c4d5e11" // named the alias after the update
	if e, err := st.EventByID(ctx, after); err != nil || e.KeyARN != keyA {
		t.Fatalf("before the update is loaded: %+v %v, want %s", e, err, keyA)
	}
	load(t, st, "the update", update, false)
	for id, want := range map[string]string{"5c1e7d2a-0010-4b8e-9e6f-1a2b3c4d5e10": keyA, after: keyB} {
		e, err := st.EventByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if e.KeyARN != want || e.KeySource != "alias-history" {
			t.Errorf("%s: key %s (%s), want %s", id, e.KeyARN, e.KeySource, want)
		}
	}
	// One more call naming the alias only (history unchanged): resolved
	// on its own.
	var again cloudtrail.Record
	for _, r := range kms {
		if r.EventID == after {
			raw := bytes.Replace(r.Raw, []byte(after), []byte("5c1e7d2a-0099-4b8e-9e6f-1a2b3c4d5e99"), 1)
			if err := cloudtrail.Parse(raw, &again); err != nil {
				t.Fatal(err)
			}
		}
	}
	if again.KeyARN != "" || again.AliasARN == "" {
		t.Fatalf("the copied record names key %q, alias %q: want an alias only", again.KeyARN, again.AliasARN)
	}
	load(t, st, "one more call", []cloudtrail.Record{again}, false)
	if e, err := st.EventByID(ctx, again.EventID); err != nil || e.KeyARN != keyB || e.KeySource != "alias-history" {
		t.Fatalf("a later call naming the alias: %+v %v, want %s from the alias history", e, err, keyB)
	}
}
