package browse_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
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

// Every row of the source, read by number in random page order, is exactly
// the row the store's own keyset paging returns at that position.
func TestRowsMatchKeysetPaging(t *testing.T) {
	st := loadDB(t, t.TempDir(), 3000)
	defer st.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		f     store.Filter
		order store.Order
	}{
		{"all newest", store.Filter{}, store.Newest},
		{"all oldest", store.Filter{}, store.Oldest},
		{"errors only", store.Filter{ErrorsOnly: true}, store.Newest},
		{"one event name", store.Filter{EventName: "Decrypt"}, store.Oldest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want []store.Event
			var cur *store.Cursor
			for {
				pg, err := st.Events(ctx, tc.f, tc.order, cur, 500)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, pg.Events...)
				if pg.Next == nil {
					break
				}
				cur = pg.Next
			}
			n, _ := st.CountEvents(ctx, tc.f)
			src, err := browse.Open(ctx, st, tc.f, tc.order, 97)
			if err != nil {
				t.Fatal(err)
			}
			if src.Len() != len(want) || int64(src.Len()) != n {
				t.Fatalf("Len %d, paging %d, count %d", src.Len(), len(want), n)
			}
			if len(want) == 0 {
				t.Fatal("the filter matched nothing; the test data should have some")
			}
			pages := (src.Len() + 96) / 97
			for k := pages - 1; k >= 0; k -= 2 { // from the end, skipping, then the rest
				if _, err := src.Fetch(ctx, k); err != nil {
					t.Fatal(err)
				}
			}
			for k := 0; k < pages; k++ {
				if _, ok := src.Row(k * 97); !ok {
					if _, err := src.Fetch(ctx, k); err != nil {
						t.Fatal(err)
					}
				}
				for i := k * 97; i < min((k+1)*97, src.Len()); i++ {
					got, ok := src.Row(i)
					if !ok {
						t.Fatalf("row %d not in memory after fetching its page", i)
					}
					if got.EventID != want[i].EventID {
						t.Fatalf("row %d is %s, keyset paging says %s", i, got.EventID, want[i].EventID)
					}
				}
			}
			if src.Cached() > 64 {
				t.Errorf("%d pages held in memory", src.Cached())
			}
		})
	}
}

// BenchmarkPageFetch fetches random pages of a large database, as a person
// scrolling the event table does. KC_BROWSE_EVENTS sets its size (default
// 200,000; make bench uses 1,000,000). The database is built once and kept in
// the user cache directory.
func BenchmarkPageFetch(b *testing.B) {
	n := 200000
	if v, err := strconv.Atoi(os.Getenv("KC_BROWSE_EVENTS")); err == nil && v > 0 {
		n = v
	}
	cache, _ := os.UserCacheDir()
	dir := filepath.Join(cache, "keyceremony-bench", "browse-"+strconv.Itoa(n))
	var st *store.Store
	if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
		var err error
		if st, err = store.Open(context.Background(), filepath.Join(dir, "audit.db")); err != nil {
			b.Fatal(err)
		}
	} else {
		os.RemoveAll(dir)
		os.MkdirAll(dir, 0o700)
		st = loadDB(b, dir, n)
		os.WriteFile(filepath.Join(dir, "ready"), nil, 0o600)
	}
	defer st.Close()
	ctx := context.Background()
	start := time.Now()
	src, err := browse.Open(ctx, st, store.Filter{}, store.Newest, browse.DefaultPageSize)
	if err != nil {
		b.Fatal(err)
	}
	indexTime := time.Since(start)
	pages := (src.Len() + src.PageSize() - 1) / src.PageSize()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := (i * 7919) % pages
		if i%2 == 1 {
			k = pages - 1 - (i % 50) // the end of the table
		}
		if _, err := src.Fetch(ctx, k); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(src.Len()), "rows")
	// Reported after the loop: ResetTimer clears extra metrics.
	b.ReportMetric(float64(indexTime.Milliseconds()), "ms-index")
}
