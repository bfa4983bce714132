package browse_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/audit/browse"
	"github.com/keyceremony/keyceremony/audit/store"
)

// benchStore opens the benchmarks' database: KC_BROWSE_DB, an existing
// audit database (used as it is; point it at a copy, the store may upgrade
// its schema), or else one of KC_BROWSE_EVENTS events (default 200,000;
// make bench uses 1,000,000) over 10 days, built once and kept in the user
// cache directory.
func benchStore(b *testing.B) *store.Store {
	b.Helper()
	ctx := context.Background()
	if path := os.Getenv("KC_BROWSE_DB"); path != "" {
		if _, err := os.Stat(path); err != nil {
			b.Fatalf("KC_BROWSE_DB: %v", err)
		}
		st, err := store.Open(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		return st
	}
	n := 200000
	if v, err := strconv.Atoi(os.Getenv("KC_BROWSE_EVENTS")); err == nil && v > 0 {
		n = v
	}
	cache, _ := os.UserCacheDir()
	dir := filepath.Join(cache, "keyceremony-bench", "browse-"+strconv.Itoa(n))
	if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
		st, err := store.Open(ctx, filepath.Join(dir, "audit.db"))
		if err != nil {
			b.Fatal(err)
		}
		return st
	}
	os.RemoveAll(dir)
	os.MkdirAll(dir, 0o700)
	st := loadDB(b, dir, n)
	os.WriteFile(filepath.Join(dir, "ready"), nil, 0o600)
	return st
}

// benchFilters are listings a reviewer opens: everything (the Audit page's
// first view), one account (a condition outside the index), and one
// principal (which the rollups cannot answer: its days are counted from
// the events).
func benchFilters(b *testing.B, st *store.Store) []struct {
	name string
	f    store.Filter
} {
	b.Helper()
	var account, principal string
	// The account and principal of the newest event a principal ARN
	// (not an AWS service) made: found without a scan.
	if err := st.DB().QueryRow(`SELECT a.s, p.arn FROM events e JOIN strs a ON a.id = e.account JOIN principals p ON p.id = e.principal
		WHERE p.arn <> '' ORDER BY e.id DESC LIMIT 1`).Scan(&account, &principal); err != nil {
		b.Fatal(err)
	}
	return []struct {
		name string
		f    store.Filter
	}{
		{"all", store.Filter{}},
		{"account", store.Filter{Account: account}},
		{"principal", store.Filter{Principal: principal}},
	}
}

// BenchmarkOpen opens the listing the Audit page shows (Open is what runs
// before the table and its count appear), newest first; also for a period
// from 01:00 on the third day (its first day counted from the events).
func BenchmarkOpen(b *testing.B) {
	st := benchStore(b)
	defer st.Close()
	ctx := context.Background()
	var first int64
	if err := st.DB().QueryRow(`SELECT min(time) FROM events`).Scan(&first); err != nil {
		b.Fatal(err)
	}
	filters := append(benchFilters(b, st), struct {
		name string
		f    store.Filter
	}{"from-mid-day", store.Filter{From: time.Unix((first/86400+2)*86400+3600, 0)}})
	for _, bf := range filters {
		b.Run(bf.name, func(b *testing.B) {
			var rows int
			for i := 0; i < b.N; i++ {
				src, err := browse.Open(ctx, st, bf.f, store.Newest, browse.DefaultPageSize)
				if err != nil {
					b.Fatal(err)
				}
				rows = src.Len()
			}
			b.ReportMetric(float64(rows), "rows")
		})
	}
}

// BenchmarkPageFetch fetches pages of 200 rows, newest first: random pages
// (a person dragging the scroll bar), the first and the last page, and the
// page in the middle of a day, the farthest from any day's edge (the most
// rows skipped; each fetched page is new to its source).
func BenchmarkPageFetch(b *testing.B) {
	st := benchStore(b)
	defer st.Close()
	ctx := context.Background()
	for _, bf := range benchFilters(b, st) {
		src, err := browse.Open(ctx, st, bf.f, store.Newest, browse.DefaultPageSize)
		if err != nil {
			b.Fatal(err)
		}
		ps := src.PageSize()
		pages := (src.Len() + ps - 1) / ps
		// The middle page of each day, in the listing's order (newest first).
		var mid []int
		row := 0
		days := src.Days()
		for i := len(days) - 1; i >= 0; i-- {
			mid = append(mid, (row+int(days[i].N)/2)/ps)
			row += int(days[i].N)
		}
		for _, pos := range []struct {
			name string
			page func(i int) int
		}{
			{"random", func(i int) int { return (i*7919 + 13) % pages }},
			{"first", func(int) int { return 0 }},
			{"last", func(int) int { return pages - 1 }},
			{"mid-day", func(i int) int { return mid[i%len(mid)] }},
		} {
			b.Run(bf.name+"/"+pos.name, func(b *testing.B) {
				// A new source per position: pages learned by one do not
				// help another.
				src, err := browse.Open(ctx, st, bf.f, store.Newest, browse.DefaultPageSize)
				if err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					k := pos.page(i)
					pg, err := src.Fetch(ctx, k)
					if err != nil {
						b.Fatal(err)
					}
					if want := min(ps, src.Len()-k*ps); len(pg) != want {
						b.Fatalf("page %d: %d rows, want %d", k, len(pg), want)
					}
				}
				b.ReportMetric(float64(src.Len()), "rows")
			})
		}
	}
}
