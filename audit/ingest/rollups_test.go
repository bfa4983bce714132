package ingest

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/audit/store"
	"github.com/keyceremony/keyceremony/test/cloudtrailgen"
)

// checkRollups compares the rollups table with a recount of the events.
func checkRollups(t *testing.T, st *store.Store, when string) store.Rollups {
	t.Helper()
	got, err := st.ReadRollups(bg)
	if err != nil {
		t.Fatal(err)
	}
	want, err := st.CountRollups(bg)
	if err != nil {
		t.Fatal(err)
	}
	if d := store.DiffRollups(got, want); d != "" {
		t.Fatalf("%s: the rollups differ from a recount of the events: %s", when, d)
	}
	var n int64
	for _, v := range got {
		if v <= 0 {
			t.Fatalf("%s: a group of %d events is stored", when, v)
		}
		n += v
	}
	events, _ := st.CountEvents(bg, store.Filter{})
	if n != events {
		t.Fatalf("%s: the rollups count %d events, the table holds %d", when, n, events)
	}
	return got
}

// splitTree copies the files of a generated tree whose day is on or after
// cut into a new tree (the later days), so that they can be loaded first.
func splitTree(t *testing.T, tree, cut string) string {
	t.Helper()
	late := t.TempDir()
	n, err := cloudtrailgen.CopyDaysFrom(tree, late, cut)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("no file of %s is on or after %s", tree, cut)
	}
	return late
}

// TestRollupsEqualRecount: the rollups equal a recount of the events after
// a load of the later days (the calls that named only an alias cannot be
// resolved yet: the alias changes are on the first day), after the whole
// tree (those events move to their keys' groups), after loading it again
// (nothing changes), in a bulk load and one file at a time.
func TestRollupsEqualRecount(t *testing.T) {
	tree, gen := generate(t, cloudtrailgen.Config{KMSEvents: 8000, Days: 4, FileInterval: 2 * time.Hour, DupRatio: 0.2})
	start := cloudtrailgen.Config{}.Defaults().Start
	late := splitTree(t, tree, start.AddDate(0, 0, 2).Format("2006-01-02"))
	for _, bulk := range []BulkMode{BulkOn, BulkOff} {
		t.Run(fmt.Sprint("bulk=", bulk), func(t *testing.T) {
			st := openStore(t)
			run(t, st, []string{late}, Options{Bulk: bulk})
			first := checkRollups(t, st, "the later days")
			var unresolved int64
			st.DB().QueryRow(`SELECT count(*) FROM events WHERE key IS NULL AND alias IS NOT NULL`).Scan(&unresolved)
			run(t, st, []string{tree}, Options{Bulk: bulk})
			all := checkRollups(t, st, "the whole tree")
			var moved int64
			st.DB().QueryRow(`SELECT count(*) FROM events WHERE key IS NOT NULL AND key_source = 4`).Scan(&moved)
			if len(all) <= len(first) || moved == 0 {
				t.Fatalf("the test does not exercise moves: %d then %d groups, %d events resolved through an alias (%d unresolved before)",
					len(first), len(all), moved, unresolved)
			}
			if n, _ := st.CountEvents(bg, store.Filter{}); n != int64(gen.KMSEvents) {
				t.Fatalf("%d events, generated %d", n, gen.KMSEvents)
			}
			run(t, st, []string{tree}, Options{Bulk: bulk})
			if again := checkRollups(t, st, "a re-ingest"); store.DiffRollups(again, all) != "" {
				t.Fatal("a re-ingest changed the rollups")
			}
		})
	}
}

// TestRollupsAfterKill: an ingest killed with SIGKILL in the middle leaves
// rollups that equal the events it committed, and the resumed ingest ends
// with the rollups of a clean load.
func TestRollupsAfterKill(t *testing.T) {
	tree, _ := generate(t, cloudtrailgen.Config{KMSEvents: 60000, Days: 3, FileInterval: 15 * time.Minute})
	dir := t.TempDir()
	db := filepath.Join(dir, "killed.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestIngestChildProcess$")
	cmd.Env = append(os.Environ(), "KC_INGEST_CHILD="+db+"\n"+tree)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, out)
	st, err := store.Open(bg, db)
	if err != nil {
		cmd.Process.Kill()
		t.Fatal(err)
	}
	defer st.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n int64
		st.DB().QueryRow(`SELECT count(*) FROM files`).Scan(&n)
		if n >= 20 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the child committed nothing in 60 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if cmd.ProcessState.Success() {
		t.Fatal("the child finished before it could be killed; make the tree larger")
	}
	var files int64
	st.DB().QueryRow(`SELECT count(*) FROM files`).Scan(&files)
	killed := checkRollups(t, st, "after kill -9")
	if len(killed) == 0 {
		t.Fatal("nothing committed before the kill")
	}
	run(t, st, []string{tree}, Options{})
	resumed := checkRollups(t, st, "after the resumed ingest")

	clean := openStore(t)
	run(t, clean, []string{tree}, Options{})
	want := checkRollups(t, clean, "a clean load")
	// Row ids differ between the two databases (files commit in another
	// order): compare by names, times and counts.
	a, b := named(t, st, resumed), named(t, clean, want)
	if len(a) != len(b) {
		t.Fatalf("%d groups after kill and resume, %d in a clean load (killed after %d files)", len(a), len(b), files)
	}
	for k, v := range b {
		if a[k] != v {
			t.Fatalf("group %s: %v after kill and resume, %v in a clean load", k, a[k], v)
		}
	}
}

// named names the groups by their strings, ARNs and times instead of
// row ids (which differ between two databases of the same events).
func named(t *testing.T, st *store.Store, r store.Rollups) map[string]int64 {
	t.Helper()
	names := map[string]map[int64]string{}
	for table, q := range map[string]string{
		"strs": `SELECT id, s FROM strs`, "keys": `SELECT id, arn FROM keys`,
	} {
		names[table] = map[int64]string{0: ""}
		rows, err := st.DB().Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id int64
			var s string
			rows.Scan(&id, &s)
			names[table][id] = s
		}
		rows.Close()
	}
	s, k := names["strs"], names["keys"]
	m := map[string]int64{}
	for key, v := range r {
		m[fmt.Sprint(key.Day, s[key.Account], s[key.Region], s[key.Name], key.Category, k[key.Key], k[key.Key2], s[key.ErrorCode])] = v
	}
	return m
}

// TestRollupsBackfilledByMigration: a database of the schema before the
// rollups gets them, equal to a recount, when it is opened.
func TestRollupsBackfilledByMigration(t *testing.T) {
	tree, _ := generate(t, cloudtrailgen.Config{KMSEvents: 3000, Days: 3, FileInterval: 2 * time.Hour})
	db := filepath.Join(t.TempDir(), "audit.db")
	st, err := store.Open(bg, db)
	if err != nil {
		t.Fatal(err)
	}
	run(t, st, []string{tree}, Options{})
	want := checkRollups(t, st, "the load")
	// Back to the schema before (v10): no rollups table, nor what came after.
	if _, err := st.DB().Exec(`DROP TABLE rollups; DROP INDEX events_alias_unresolved; UPDATE schema_version SET version = 10`); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = store.Open(bg, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got := checkRollups(t, st, "the upgrade"); store.DiffRollups(got, want) != "" {
		t.Fatal("the back-filled rollups differ from those kept at ingest")
	}
}

// TestChartCountsFromRollups: the Audit page's daily and per-operation
// counts (from the rollups for whole days) equal the events the listing's
// own query counts, for each filter the rollups answer and for those they
// do not (an alias, a period from noon).
func TestChartCountsFromRollups(t *testing.T) {
	tree, _ := generate(t, cloudtrailgen.Config{KMSEvents: 6000, Days: 4, FileInterval: 2 * time.Hour, ErrorRatio: 0.05})
	st := openStore(t)
	run(t, st, []string{tree}, Options{})
	var keyARN, role, account, region string
	st.DB().QueryRow(`SELECT k.arn, k.account, k.region FROM events e JOIN keys k ON k.id = e.key GROUP BY e.key ORDER BY count(*) DESC LIMIT 1`).
		Scan(&keyARN, &account, &region)
	st.DB().QueryRow(`SELECT p.role_arn FROM events e JOIN principals p ON p.id = e.principal WHERE p.role_arn <> ''
		GROUP BY p.role_arn ORDER BY count(*) DESC LIMIT 1`).Scan(&role)
	day := cloudtrailgen.Config{}.Defaults().Start.Add(24 * time.Hour)
	for _, f := range []store.Filter{
		{},
		{KeyARN: keyARN},
		{Principal: role, ErrorsOnly: true},
		{EventName: "Decrypt", Account: account, Region: region},
		{From: day, To: day.Add(48 * time.Hour)},
		{From: day.Add(12 * time.Hour)},
		{Alias: "alias/rotating"},
		{EventName: "NoSuchCall"},
	} {
		days, err := st.DailyCounts(bg, f)
		if err != nil {
			t.Fatal(err)
		}
		names, err := st.NameCounts(bg, f)
		if err != nil {
			t.Fatal(err)
		}
		total, _ := st.CountEvents(bg, f)
		if f.EventName != "NoSuchCall" && (total == 0 || len(days) == 0 || len(names) == 0) {
			t.Fatalf("%+v: nothing to compare (%d events)", f, total)
		}
		var sum int64
		for _, c := range days {
			g := f
			d, _ := time.Parse("2006-01-02", c.Label)
			if g.From.Before(d) {
				g.From = d
			}
			if g.To.IsZero() || g.To.After(d.Add(24*time.Hour)) {
				g.To = d.Add(24 * time.Hour)
			}
			if n, _ := st.CountEvents(bg, g); n != c.N {
				t.Fatalf("%+v: day %s counts %d, the events %d", f, c.Label, c.N, n)
			}
			sum += c.N
		}
		if sum != total {
			t.Fatalf("%+v: the days count %d, the events %d", f, sum, total)
		}
		sum = 0
		for _, c := range names {
			if f.EventName != "" && c.Label != f.EventName {
				t.Fatalf("%+v: operation %s", f, c.Label)
			}
			g := f
			g.EventName = c.Label
			if n, _ := st.CountEvents(bg, g); n != c.N {
				t.Fatalf("%+v: %s counts %d, the events %d", f, c.Label, c.N, n)
			}
			sum += c.N
		}
		if sum != total {
			t.Fatalf("%+v: the operations count %d, the events %d", f, sum, total)
		}
	}
}
