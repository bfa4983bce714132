package store

import (
	"context"
	"fmt"
	"math"
	"strings"
)

// PageStarts walks the listing (f, order) once, reading only the indexed
// (time, id) pairs, and returns the cursor each page of size `every` starts
// after: starts[0] is nil (the first page), starts[k] the last row of page
// k-1. With it a table can jump to any page with one keyset query, so page
// 10,000 costs what page 1 costs, without OFFSET. It also returns the row count.
func (s *Store) PageStarts(ctx context.Context, f Filter, order Order, every int) ([]*Cursor, int64, error) {
	if every <= 0 {
		return nil, 0, fmt.Errorf("page size must be positive")
	}
	p, err := s.plan(ctx, f)
	if err != nil || p.empty {
		return []*Cursor{nil}, 0, err
	}
	// An ordered scan without a practical limit; sql() adds ORDER BY only
	// together with LIMIT.
	q, args := p.sql(order, nil, math.MaxInt32)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("index events: %w", err)
	}
	defer rows.Close()
	starts := []*Cursor{nil}
	var n int64
	var c Cursor
	for rows.Next() {
		if err := rows.Scan(&c.ID, &c.Time); err != nil {
			return nil, 0, err
		}
		n++
		if n%int64(every) == 0 {
			cc := c
			starts = append(starts, &cc)
		}
		if n%65536 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, 0, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	if n > 0 && n%int64(every) == 0 {
		starts = starts[:len(starts)-1] // no empty last page
	}
	return starts, n, nil
}

// Count is a labelled number of events.
type Count struct {
	Label string
	N     int64
}

// DailyCounts counts the events matching f per UTC day (YYYY-MM-DD), in
// day order: the data of a daily-usage chart.
func (s *Store) DailyCounts(ctx context.Context, f Filter) ([]Count, error) {
	return s.grouped(ctx, f, `SELECT strftime('%Y-%m-%d', time, 'unixepoch') AS d, count(*) FROM events WHERE id IN (%s) GROUP BY d ORDER BY d`)
}

// NameCounts counts the events matching f per event name, most frequent
// first: the data of an operations-mix chart.
func (s *Store) NameCounts(ctx context.Context, f Filter) ([]Count, error) {
	return s.grouped(ctx, f, `SELECT n.s, count(*) AS c FROM events e JOIN strs n ON n.id = e.name WHERE e.id IN (%s) GROUP BY n.s ORDER BY c DESC, n.s`)
}

func (s *Store) grouped(ctx context.Context, f Filter, outer string) ([]Count, error) {
	p, err := s.plan(ctx, f)
	if err != nil || p.empty {
		return nil, err
	}
	inner, args := p.sql(Newest, nil, 0)
	// The id query selects (id, time); keep the ids.
	q := strings.Replace(outer, "%s", "SELECT id FROM ("+inner+")", 1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("count events: %w", err)
	}
	defer rows.Close()
	var out []Count
	for rows.Next() {
		var c Count
		if err := rows.Scan(&c.Label, &c.N); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
