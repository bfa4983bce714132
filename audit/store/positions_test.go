package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/audit/ingest"
	"github.com/keyceremony/keyceremony/audit/store"
	"github.com/keyceremony/keyceremony/test/cloudtrailgen"
)

// The chart aggregates agree with plain SQL over the documented view.
func TestDailyAndNameCounts(t *testing.T) {
	st := loadGenerated(t, cloudtrailgen.Config{KMSEvents: 3000, Days: 4, FileInterval: 3 * time.Hour}, nil)
	ctx := context.Background()
	for _, f := range []store.Filter{{}, {EventName: "Decrypt"}, {ErrorsOnly: true}} {
		days, err := st.DailyCounts(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		names, err := st.NameCounts(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		total, _ := st.CountEvents(ctx, f)
		var sumDays, sumNames int64
		for _, d := range days {
			var n int64
			q := `SELECT count(*) FROM events_v WHERE substr(time_utc,1,10) = ?`
			args := []any{d.Label}
			if f.EventName != "" {
				q += ` AND event_name = ?`
				args = append(args, f.EventName)
			}
			if f.ErrorsOnly {
				q += ` AND error_code IS NOT NULL`
			}
			st.DB().QueryRow(q, args...).Scan(&n)
			if n != d.N {
				t.Errorf("filter %+v day %s: %d, SQL says %d", f, d.Label, d.N, n)
			}
			sumDays += d.N
		}
		for _, n := range names {
			sumNames += n.N
		}
		if sumDays != total || sumNames != total || total == 0 {
			t.Errorf("filter %+v: days sum %d, names sum %d, count %d", f, sumDays, sumNames, total)
		}
		if f.EventName == "Decrypt" && (len(names) != 1 || names[0].Label != "Decrypt") {
			t.Errorf("name counts for Decrypt only: %+v", names)
		}
	}
}

// DayCounts (from the rollups, with the partial days at a period's ends
// counted from the events) equals a count of the events per day in SQL,
// and so does the count from the events alone, for periods that start and
// end at midnight, within a day, or both.
func TestDayCountsEqualSQL(t *testing.T) {
	cfg := cloudtrailgen.Config{KMSEvents: 4000, Days: 5, FileInterval: 3 * time.Hour}
	// Events at 00:00:00 and 23:59:59 of three days, several a second.
	st := loadGenerated(t, cfg, cloudtrailgen.EdgeTimes(cfg.Defaults().Start, 0, 1, 3))
	ctx := context.Background()
	d0 := cfg.Defaults().Start
	at := func(days int, h time.Duration) time.Time { return d0.AddDate(0, 0, days).Add(h) }
	for _, f := range []store.Filter{
		{},
		{EventName: "Decrypt", From: at(1, 0), To: at(3, 0)},
		{From: at(1, 7*time.Hour)},
		{To: at(3, 5*time.Hour)},
		{From: at(1, 7*time.Hour), To: at(3, 5*time.Hour), ErrorsOnly: true},
		{From: at(1, 7*time.Hour), To: at(2, 5*time.Hour)},
		{From: at(1, 7*time.Hour), To: at(2, 0)},
		{From: at(2, 0), To: at(2, 5*time.Hour)},
		{From: at(2, 3*time.Hour), To: at(2, 5*time.Hour)},
		{From: at(2, 3*time.Hour), To: at(2, 3*time.Hour)},
		{EventName: "NoSuchCall", From: at(1, 7*time.Hour)},
	} {
		q := `SELECT time/86400, count(*) FROM events e JOIN strs n ON n.id = e.name WHERE 1`
		var args []any
		if f.EventName != "" {
			q += ` AND n.s = ?`
			args = append(args, f.EventName)
		}
		if f.ErrorsOnly {
			q += ` AND e.error_code IS NOT NULL`
		}
		if !f.From.IsZero() {
			q += ` AND e.time >= ?`
			args = append(args, f.From.Unix())
		}
		if !f.To.IsZero() {
			q += ` AND e.time < ?`
			args = append(args, f.To.Unix())
		}
		rows, err := st.DB().Query(q+` GROUP BY 1 ORDER BY 1`, args...)
		if err != nil {
			t.Fatal(err)
		}
		var want []store.DayEvents
		for rows.Next() {
			var d store.DayEvents
			rows.Scan(&d.Day, &d.N)
			want = append(want, d)
		}
		rows.Close()
		if f.EventName != "NoSuchCall" && f.From != f.To && len(want) == 0 {
			t.Fatalf("filter %+v matches nothing: the test data should have some", f)
		}
		fast, err := st.DayCounts(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		slow, err := st.DayCountsFromEvents(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for name, got := range map[string][]store.DayEvents{"DayCounts": fast, "from the events": slow} {
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("filter %+v: %s %v, SQL %v", f, name, got, want)
			}
		}
	}
	// The whole days come from the rollups, the partial ones from the
	// events: with 1000 events too many in day 2's rollups, a period from
	// mid-day 1 to mid-day 3 counts them on day 2 only.
	f := store.Filter{From: at(1, 7*time.Hour), To: at(3, 5*time.Hour)}
	before, _ := st.DayCountsFromEvents(ctx, f)
	day2 := d0.Unix()/86400 + 2
	if _, err := st.DB().Exec(`UPDATE rollups SET events = events + 1000 WHERE (`+rollupKey+`) = (SELECT `+rollupKey+` FROM rollups WHERE day = ? LIMIT 1)`, day2); err != nil {
		t.Fatal(err)
	}
	after, err := st.DayCounts(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 3 || len(before) != 3 {
		t.Fatalf("%d days from the events, %d from DayCounts, want 3", len(before), len(after))
	}
	for i := range after {
		if d := after[i].N - before[i].N; d != map[bool]int64{true: 1000, false: 0}[after[i].Day == day2] {
			t.Errorf("day %d: DayCounts %d, the events %d", after[i].Day, after[i].N, before[i].N)
		}
	}
}

const rollupKey = `day, account, region, name, category, key, key2, error_code`

// loadGenerated ingests a generated trail, and a file of events at the
// given times, into a new database.
func loadGenerated(t *testing.T, cfg cloudtrailgen.Config, at []time.Time) *store.Store {
	t.Helper()
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if _, err := cloudtrailgen.Generate(logs, cfg); err != nil {
		t.Fatal(err)
	}
	if len(at) > 0 {
		if err := cloudtrailgen.WriteAt(filepath.Join(logs, "at.json"), 1, at); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(dir, "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := ingest.Run(ctx, st, []string{logs}, ingest.Options{}); err != nil {
		t.Fatal(err)
	}
	return st
}
