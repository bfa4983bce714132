// Package browse is the data source behind the GUI's event table: random
// access by row number over a filtered, ordered listing of ten million
// events or more, without loading them and without walking them first.
//
// Open reads how many events each UTC day holds (store.DayCounts: from the
// rollups, milliseconds at any size; for a filter they cannot answer, such
// as a principal or an alias, one indexed count per day with events). Those
// counts place every day in the listing: day i holds rows bounds[i] up to
// bounds[i+1]. A page is then one query: a keyset cursor at the nearest day
// edge (UTC midnight, where one day ends and the next begins) or at the
// nearest page already fetched, the rows in between skipped inside SQLite,
// read forwards or backwards whichever skips fewer (at most half a day); a
// page across a day edge is two queries from that edge, skipping nothing.
// The listing's order is store.Events' own ((time, id), descending or
// ascending), so row numbers are those of keyset paging.
//
// Skipping costs an index step per row, plus a table lookup per row when
// the filter has a condition no index holds (account, region): half a day
// of ten million events over 90 days is about 55,000 rows.
package browse

import (
	"context"
	"math"
	"sort"
	"sync"

	"github.com/keyceremony/keyceremony/audit/store"
)

// DefaultPageSize balances query count against memory.
const DefaultPageSize = 200

// maxPages bounds the pages held in memory (about 200 * 64 rows).
const maxPages = 64

// Source is one listing: a filter and an order.
type Source struct {
	st       *store.Store
	filter   store.Filter
	order    store.Order
	pageSize int
	days     []store.DayEvents // in the listing's order
	bounds   []int64           // bounds[i]: the first row of days[i]; bounds[len(days)] = total
	total    int64

	mu       sync.Mutex
	pages    map[int][]store.Event
	used     map[int]uint64 // page -> last use, for eviction
	tick     uint64
	inflight map[int]bool
	// Cursors learned from the pages fetched so far (a few bytes a page):
	// after[g] is followed by rows g, g+1, ... in the listing's order,
	// before[g] by rows g-1, g-2, ... in the reverse order. Scrolling on
	// from a page then skips nothing.
	after, before map[int64]store.Cursor
	// OnPage, when set, is called (from a background goroutine) after a page
	// requested with Request has arrived.
	OnPage func(page int, err error)
}

// Open places the listing's days. It costs a read of the rollups when they
// can answer the filter, else a count of the matching events inside SQLite;
// ctx cancels it.
func Open(ctx context.Context, st *store.Store, f store.Filter, order store.Order, pageSize int) (*Source, error) {
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	days, err := st.DayCounts(ctx, f)
	if err != nil {
		return nil, err
	}
	if order == store.Newest {
		for i, j := 0, len(days)-1; i < j; i, j = i+1, j-1 {
			days[i], days[j] = days[j], days[i]
		}
	}
	bounds := make([]int64, len(days)+1)
	for i, d := range days {
		bounds[i+1] = bounds[i] + d.N
	}
	return &Source{st: st, filter: f, order: order, pageSize: pageSize, days: days, bounds: bounds, total: bounds[len(days)],
		pages: map[int][]store.Event{}, used: map[int]uint64{}, inflight: map[int]bool{},
		after: map[int64]store.Cursor{}, before: map[int64]store.Cursor{}}, nil
}

// Len is the number of rows.
func (s *Source) Len() int { return int(s.total) }

// PageSize is the number of rows per page.
func (s *Source) PageSize() int { return s.pageSize }

// Days is the number of rows per UTC day, in day order (the daily chart's
// data, without a second count).
func (s *Source) Days() []store.DayEvents {
	out := append([]store.DayEvents(nil), s.days...)
	if s.order == store.Newest {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

// Row returns row i if its page is in memory.
func (s *Source) Row(i int) (store.Event, bool) {
	if i < 0 || int64(i) >= s.total {
		return store.Event{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pg, ok := s.pages[i/s.pageSize]
	if !ok || i%s.pageSize >= len(pg) {
		return store.Event{}, false
	}
	s.tick++
	s.used[i/s.pageSize] = s.tick
	return pg[i%s.pageSize], true
}

// part is one query of a page: n rows after cur, skipping skip rows, in
// the listing's order or (reverse) in the opposite one.
type part struct {
	cur     store.Cursor
	skip, n int64
	reverse bool
}

// pagePlan chooses the queries of rows [r, r+n) that skip the fewest rows.
// None when the page before or after has been fetched (scrolling on); two
// when the page spans the end of a day: its rows up to the day's edge read
// backwards from it, the rest forwards from it. Otherwise the page lies in
// one day and is read forwards from the nearest known position at or
// before r (the day's start, or a page fetched before) or backwards from
// the nearest at or after r+n: at most half a day is skipped.
func (s *Source) pagePlan(r, n int64) []part {
	ps, e := int64(s.pageSize), r+n
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.after[r]; ok {
		return []part{{cur: c, n: n}}
	}
	if c, ok := s.before[e]; ok {
		return []part{{cur: c, n: n, reverse: true}}
	}
	i := sort.Search(len(s.days), func(i int) bool { return s.bounds[i+1] > r }) // r's day
	start, end := s.bounds[i], s.bounds[i+1]
	if e > end {
		return []part{{cur: s.edge(i + 1), n: end - r, reverse: true}, {cur: s.edge(i + 1), n: e - end}}
	}
	fwd := part{cur: s.edge(i), skip: r - start, n: n}
	for g := r - ps; g > start; g -= ps {
		if c, ok := s.after[g]; ok {
			fwd = part{cur: c, skip: r - g, n: n}
			break
		}
	}
	back := part{cur: s.edge(i + 1), skip: end - e, n: n, reverse: true}
	for g := e + ps; g < end; g += ps {
		if c, ok := s.before[g]; ok {
			back = part{cur: c, skip: g - e, n: n, reverse: true}
			break
		}
	}
	if back.skip < fwd.skip {
		return []part{back}
	}
	return []part{fwd}
}

// edge is the cursor at the start of the listing's day i (the end of the
// last day for i = len(days)): the UTC midnight between two days, with an
// id below every row's, so that rows follow it from the day on in the
// listing's order and up to it in the reverse order.
func (s *Source) edge(i int) store.Cursor {
	var t int64
	switch {
	case i < len(s.days) && s.order == store.Newest:
		t = (s.days[i].Day + 1) * 86400
	case i < len(s.days):
		t = s.days[i].Day * 86400
	case s.order == store.Newest:
		t = s.days[i-1].Day * 86400
	default:
		t = (s.days[i-1].Day + 1) * 86400
	}
	return store.Cursor{Time: t, ID: math.MinInt64}
}

// Fetch loads page k (rows k*PageSize ...) and keeps it.
func (s *Source) Fetch(ctx context.Context, k int) ([]store.Event, error) {
	r := int64(k) * int64(s.pageSize)
	if k < 0 || r >= s.total {
		return nil, nil
	}
	n := min(int64(s.pageSize), s.total-r)
	var evs []store.Event
	for _, pt := range s.pagePlan(r, n) {
		got, err := s.read(ctx, pt)
		if err != nil {
			return nil, err
		}
		evs = append(evs, got...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// A page short of its rows means that the events changed since Open
	// (an ingest running meanwhile): keep it, but learn nothing from it.
	if int64(len(evs)) == n {
		s.after[r+n] = cursorOf(evs[n-1])
		s.before[r] = cursorOf(evs[0])
	}
	s.tick++
	s.pages[k], s.used[k] = evs, s.tick
	for len(s.pages) > maxPages {
		oldest, at := -1, ^uint64(0)
		for p, t := range s.used {
			if t < at {
				oldest, at = p, t
			}
		}
		delete(s.pages, oldest)
		delete(s.used, oldest)
	}
	return evs, nil
}

// read runs one query of a page.
func (s *Source) read(ctx context.Context, pt part) ([]store.Event, error) {
	order := s.order
	if pt.reverse {
		order = store.Oldest
		if s.order == store.Oldest {
			order = store.Newest
		}
	}
	pg, err := s.st.EventsFrom(ctx, s.filter, order, &pt.cur, int(pt.skip), int(pt.n))
	if err != nil {
		return nil, err
	}
	evs := pg.Events
	if pt.reverse {
		for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
			evs[i], evs[j] = evs[j], evs[i]
		}
	}
	return evs, nil
}

func cursorOf(e store.Event) store.Cursor { return store.Cursor{Time: e.Time.Unix(), ID: e.ID} }

// Request fetches row i's page in the background unless it is in memory or
// already on its way; OnPage reports its arrival.
func (s *Source) Request(ctx context.Context, i int) {
	k := i / s.pageSize
	s.mu.Lock()
	if _, ok := s.pages[k]; ok || s.inflight[k] {
		s.mu.Unlock()
		return
	}
	s.inflight[k] = true
	s.mu.Unlock()
	go func() {
		_, err := s.Fetch(ctx, k)
		s.mu.Lock()
		delete(s.inflight, k)
		s.mu.Unlock()
		if s.OnPage != nil {
			s.OnPage(k, err)
		}
	}()
}

// Cached is the number of pages in memory.
func (s *Source) Cached() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pages)
}
