// Package browse is the data source behind the GUI's event table: random
// access by row number over a filtered, ordered listing of a million events
// or more, without loading them and without OFFSET. It indexes page starts
// once (store.PageStarts: an index-only scan), then fetches any page with one
// keyset query and keeps a bounded number of pages in memory.
package browse

import (
	"context"
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
	starts   []*store.Cursor
	total    int64

	mu       sync.Mutex
	pages    map[int][]store.Event
	used     map[int]uint64 // page -> last use, for eviction
	tick     uint64
	inflight map[int]bool
	// OnPage, when set, is called (from a background goroutine) after a page
	// requested with Request has arrived.
	OnPage func(page int, err error)
}

// Open indexes the listing. It is the one slow call (proportional to the
// number of matching rows); ctx cancels it.
func Open(ctx context.Context, st *store.Store, f store.Filter, order store.Order, pageSize int) (*Source, error) {
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	starts, total, err := st.PageStarts(ctx, f, order, pageSize)
	if err != nil {
		return nil, err
	}
	return &Source{st: st, filter: f, order: order, pageSize: pageSize, starts: starts, total: total,
		pages: map[int][]store.Event{}, used: map[int]uint64{}, inflight: map[int]bool{}}, nil
}

// Len is the number of rows.
func (s *Source) Len() int { return int(s.total) }

// PageSize is the number of rows per page.
func (s *Source) PageSize() int { return s.pageSize }

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

// Fetch loads page k (rows k*PageSize ...) and keeps it.
func (s *Source) Fetch(ctx context.Context, k int) ([]store.Event, error) {
	if k < 0 || k >= len(s.starts) {
		return nil, nil
	}
	pg, err := s.st.Events(ctx, s.filter, s.order, s.starts[k], s.pageSize)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick++
	s.pages[k], s.used[k] = pg.Events, s.tick
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
	return pg.Events, nil
}

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
