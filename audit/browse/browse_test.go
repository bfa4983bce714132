package browse_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/audit/browse"
	"github.com/keyceremony/keyceremony/audit/ingest"
	"github.com/keyceremony/keyceremony/audit/store"
	"github.com/keyceremony/keyceremony/test/cloudtrailgen"
)

// loadDB generates CloudTrail logs with n KMS events and ingests them.
func loadDB(tb testing.TB, dir string, n int) *store.Store {
	tb.Helper()
	ctx := context.Background()
	logs := filepath.Join(dir, "logs")
	if _, err := cloudtrailgen.Generate(logs, cloudtrailgen.Config{KMSEvents: n, Days: 10, FileInterval: time.Hour}); err != nil {
		tb.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(dir, "audit.db"))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := ingest.Run(ctx, st, []string{logs}, ingest.Options{}); err != nil {
		tb.Fatal(err)
	}
	return st
}

// moved is an event that named only an alias, loaded before the alias's
// history was known and resolved to its key later (its rollup group moved).
type moved struct{ eventID, key, alias string }

// loadMovedDB ingests the later days of a generated trail first, then the
// whole trail: the calls of the later days that named only an alias are
// resolved to their keys by the second load, which moves them from one
// rollup group to another.
func loadMovedDB(t *testing.T) (*store.Store, moved, time.Time) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	tree := filepath.Join(dir, "logs")
	cfg := cloudtrailgen.Config{KMSEvents: 20000, Days: 4, FileInterval: 2 * time.Hour, DupRatio: 0.2}
	if _, err := cloudtrailgen.Generate(tree, cfg); err != nil {
		t.Fatal(err)
	}
	start := cfg.Defaults().Start
	late := filepath.Join(dir, "late")
	if n, err := cloudtrailgen.CopyDaysFrom(tree, late, start.AddDate(0, 0, 2).Format("2006-01-02")); err != nil || n == 0 {
		t.Fatalf("copy the later days: %d files, %v", n, err)
	}
	st, err := store.Open(ctx, filepath.Join(dir, "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := ingest.Run(ctx, st, []string{late}, ingest.Options{}); err != nil {
		t.Fatal(err)
	}
	var unresolved []string
	rows, err := st.DB().Query(`SELECT event_id FROM events WHERE key IS NULL AND alias IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id any
		rows.Scan(&id)
		unresolved = append(unresolved, store.EventIDString(id))
	}
	rows.Close()
	if _, err := ingest.Run(ctx, st, []string{tree}, ingest.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, id := range unresolved {
		e, err := st.EventByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if e.KeyARN != "" && e.AliasARN != "" {
			return st, moved{eventID: id, key: e.KeyARN, alias: e.AliasARN}, start
		}
	}
	t.Fatalf("no event of the later days was resolved through its alias by the second load (%d unresolved after the first)", len(unresolved))
	return nil, moved{}, start
}

// pagesByPageStarts is the listing as the Audit page showed it before the
// day index: every page start from store.PageStarts, each page one keyset query.
func pagesByPageStarts(t *testing.T, st *store.Store, f store.Filter, order store.Order, size int) ([][]store.Event, int64) {
	t.Helper()
	ctx := context.Background()
	starts, total, err := st.PageStarts(ctx, f, order, size)
	if err != nil {
		t.Fatal(err)
	}
	var pages [][]store.Event
	for _, c := range starts {
		pg, err := st.Events(ctx, f, order, c, size)
		if err != nil {
			t.Fatal(err)
		}
		if len(pg.Events) > 0 {
			pages = append(pages, pg.Events)
		}
	}
	return pages, total
}

// Every page of the source, fetched in order and in a random order, holds
// exactly the rows of the PageStarts listing (the GUI's before), for
// filters the rollups answer and filters they cannot, in both orders, on a
// database with events at equal times across page boundaries and an event
// whose rollup group moved when its alias was resolved.
func TestPagesMatchPageStarts(t *testing.T) {
	st, mv, start := loadMovedDB(t)
	ctx := context.Background()
	var account, region, principal string
	if err := st.DB().QueryRow(`SELECT a.s, r.s, p.arn FROM events e JOIN strs a ON a.id = e.account JOIN strs r ON r.id = e.region
		JOIN principals p ON p.id = e.principal GROUP BY e.principal ORDER BY count(*) DESC LIMIT 1`).Scan(&account, &region, &principal); err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	const size = 131
	splitTies, movedSeen := 0, 0
	for ti, tc := range []struct {
		name string
		f    store.Filter
	}{
		{"all", store.Filter{}},
		{"errors only", store.Filter{ErrorsOnly: true}},
		{"one event name", store.Filter{EventName: "Decrypt"}},
		{"the moved event's key", store.Filter{KeyARN: mv.key}},
		{"one account", store.Filter{Account: account}},
		{"one region and event name", store.Filter{Region: region, EventName: "GenerateDataKey"}},
		{"whole days", store.Filter{From: start.Add(day), To: start.Add(3 * day)}},
		{"principal (not in the rollups)", store.Filter{Principal: principal}},
		{"alias (not in the rollups)", store.Filter{Alias: mv.alias}},
		{"from mid-day", store.Filter{From: start.Add(day + 7*time.Hour + 13*time.Minute), To: start.Add(3 * day)}},
		{"mid-day to mid-day", store.Filter{From: start.Add(day + 7*time.Hour), To: start.Add(3*day + 5*time.Hour)}},
		{"within a day", store.Filter{From: start.Add(2*day + time.Hour), To: start.Add(2*day + 9*time.Hour)}},
		{"nothing", store.Filter{EventName: "NoSuchCall"}},
	} {
		for _, order := range []store.Order{store.Newest, store.Oldest} {
			name := tc.name + map[store.Order]string{store.Newest: ", newest", store.Oldest: ", oldest"}[order]
			t.Run(name, func(t *testing.T) {
				want, total := pagesByPageStarts(t, st, tc.f, order, size)
				if n, _ := st.CountEvents(ctx, tc.f); n != total {
					t.Fatalf("PageStarts counts %d rows, CountEvents %d", total, n)
				}
				if tc.name != "nothing" && len(want) < 2 {
					t.Fatalf("%d pages: the filter should match more of the test data", len(want))
				}
				for k := 1; k < len(want); k++ {
					if want[k-1][size-1].Time.Equal(want[k][0].Time) {
						splitTies++
					}
				}
				for _, pg := range want {
					for _, e := range pg {
						if e.EventID == mv.eventID {
							movedSeen++
						}
					}
				}
				rng := rand.New(rand.NewPCG(uint64(len(want)), uint64(order)))
				fetches := []struct {
					name  string
					pages []int
				}{
					{"at random", rng.Perm(len(want))},
					{"in order", seq(len(want))},
					{"backwards", rev(seq(len(want)))},
				}
				if ti%2 == 1 { // at random only, to keep the test short
					fetches = fetches[:1]
				}
				for _, fetch := range fetches {
					src, err := browse.Open(ctx, st, tc.f, order, size)
					if err != nil {
						t.Fatal(err)
					}
					if int64(src.Len()) != total {
						t.Fatalf("Len %d, PageStarts counts %d", src.Len(), total)
					}
					var maxDay int64
					for _, d := range src.Days() {
						maxDay = max(maxDay, d.N)
					}
					for i, k := range fetch.pages {
						// The cost: at most half a day is skipped, and none
						// when the page before (in order) or after
						// (backwards) has been fetched.
						skip := src.SeekSkip(k)
						if 2*skip > maxDay || i > 0 && fetch.name != "at random" && skip != 0 {
							t.Fatalf("%s: page %d skips %d rows (the largest day has %d)", fetch.name, k, skip, maxDay)
						}
						got, err := src.Fetch(ctx, k)
						if err != nil {
							t.Fatal(err)
						}
						if len(got) != len(want[k]) {
							t.Fatalf("%s: page %d has %d rows, want %d", fetch.name, k, len(got), len(want[k]))
						}
						for i := range got {
							if got[i].EventID != want[k][i].EventID {
								t.Fatalf("%s: row %d is %s (%s), PageStarts lists %s (%s)", fetch.name, k*size+i,
									got[i].EventID, got[i].Time, want[k][i].EventID, want[k][i].Time)
							}
							if r, ok := src.Row(k*size + i); ok && r.EventID != got[i].EventID {
								t.Fatalf("%s: Row(%d) is %s, its page says %s", fetch.name, k*size+i, r.EventID, got[i].EventID)
							}
						}
					}
					if pg, err := src.Fetch(ctx, len(want)); err != nil || pg != nil {
						t.Fatalf("the page after the last: %d rows, %v", len(pg), err)
					}
					if src.Cached() > 64 {
						t.Errorf("%d pages held in memory", src.Cached())
					}
				}
			})
		}
	}
	t.Logf("%d page boundaries between events of the same second; the moved event in %d listings", splitTies, movedSeen)
	if splitTies == 0 {
		t.Error("no page boundary falls between events of the same second: the test does not exercise ties")
	}
	if movedSeen == 0 {
		t.Error("the moved event was in no listing")
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func rev(s []int) []int {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
	return s
}

// The chart's days are the listing's: one per UTC day with events, in day
// order, summing to Len.
func TestDaysSumToLen(t *testing.T) {
	st := loadDB(t, t.TempDir(), 3000)
	defer st.Close()
	ctx := context.Background()
	for _, order := range []store.Order{store.Newest, store.Oldest} {
		src, err := browse.Open(ctx, st, store.Filter{EventName: "Decrypt"}, order, 50)
		if err != nil {
			t.Fatal(err)
		}
		want, err := st.DailyCounts(ctx, store.Filter{EventName: "Decrypt"})
		if err != nil {
			t.Fatal(err)
		}
		got := store.DayLabels(src.Days())
		var sum int64
		for i := range got {
			sum += got[i].N
		}
		if len(got) != len(want) || len(got) < 5 || sum != int64(src.Len()) {
			t.Fatalf("order %v: %d days summing to %d, Len %d; DailyCounts has %d days", order, len(got), sum, src.Len(), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("order %v: day %d is %+v, DailyCounts says %+v", order, i, got[i], want[i])
			}
		}
	}
}

// Events at the very edges of days (00:00:00 and 23:59:59, several at the
// same second), a day without events between days with events, page sizes
// from 1 up: every page in both orders, fetched forwards, backwards and at
// random, holds the rows of the PageStarts listing.
func TestPagesAtDayEdges(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	logs := filepath.Join(dir, "logs")
	times := cloudtrailgen.EdgeTimes(time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), 0, 1, 3) // no events on day 2
	n := len(times)
	if err := cloudtrailgen.WriteAt(filepath.Join(logs, "edges.json"), 1, times); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(dir, "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := ingest.Run(ctx, st, []string{logs}, ingest.Options{}); err != nil {
		t.Fatal(err)
	}
	if total, _ := st.CountEvents(ctx, store.Filter{}); total != int64(n) {
		t.Fatalf("%d events stored, %d written", total, n)
	}
	for size := 1; size <= 10; size++ {
		for _, order := range []store.Order{store.Newest, store.Oldest} {
			want, total := pagesByPageStarts(t, st, store.Filter{}, order, size)
			for _, pages := range [][]int{seq(len(want)), rev(seq(len(want))), rand.New(rand.NewPCG(uint64(size), 0)).Perm(len(want))} {
				src, err := browse.Open(ctx, st, store.Filter{}, order, size)
				if err != nil {
					t.Fatal(err)
				}
				if int64(src.Len()) != total {
					t.Fatalf("Len %d, want %d", src.Len(), total)
				}
				for _, k := range pages {
					got, err := src.Fetch(ctx, k)
					if err != nil {
						t.Fatal(err)
					}
					if len(got) != len(want[k]) {
						t.Fatalf("size %d order %v: page %d has %d rows, want %d", size, order, k, len(got), len(want[k]))
					}
					for i := range got {
						if got[i].EventID != want[k][i].EventID {
							t.Fatalf("size %d order %v pages %v: row %d is %s, want %s", size, order, pages, k*size+i, got[i].EventID, want[k][i].EventID)
						}
					}
				}
			}
		}
	}
}
