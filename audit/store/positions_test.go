package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/audit/ingest"
	"github.com/keyceremony/keyceremony/audit/store"
	"github.com/keyceremony/keyceremony/test/cloudtrailgen"
)

// The chart aggregates agree with plain SQL over the documented view.
func TestDailyAndNameCounts(t *testing.T) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if _, err := cloudtrailgen.Generate(logs, cloudtrailgen.Config{KMSEvents: 3000, Days: 4, FileInterval: 3 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(dir, "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := ingest.Run(ctx, st, []string{logs}, ingest.Options{}); err != nil {
		t.Fatal(err)
	}
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
