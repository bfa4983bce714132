package store

import (
	"context"
	"fmt"
	"math"
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
