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
// day order: the data of a daily-usage chart. From the rollups when they
// can answer (rollupFilter), else from the events.
func (s *Store) DailyCounts(ctx context.Context, f Filter) ([]Count, error) {
	if where, args, ok, err := s.rollupFilter(ctx, f); err != nil || ok {
		if err != nil || where == "" {
			return nil, err
		}
		return s.counts(ctx, `SELECT strftime('%Y-%m-%d', day*86400, 'unixepoch'), sum(events) FROM rollups r WHERE `+where+
			` GROUP BY day ORDER BY day`, args)
	}
	return s.grouped(ctx, f, `SELECT strftime('%Y-%m-%d', time, 'unixepoch') AS d, count(*) FROM events WHERE id IN (%s) GROUP BY d ORDER BY d`)
}

// NameCounts counts the events matching f per event name, most frequent
// first: the data of an operations-mix chart.
func (s *Store) NameCounts(ctx context.Context, f Filter) ([]Count, error) {
	if where, args, ok, err := s.rollupFilter(ctx, f); err != nil || ok {
		if err != nil || where == "" {
			return nil, err
		}
		return s.counts(ctx, `SELECT n.s, sum(r.events) AS c FROM rollups r JOIN strs n ON n.id = r.name WHERE `+where+
			` GROUP BY n.s ORDER BY c DESC, n.s`, args)
	}
	return s.grouped(ctx, f, `SELECT n.s, count(*) AS c FROM events e JOIN strs n ON n.id = e.name WHERE e.id IN (%s) GROUP BY n.s ORDER BY c DESC, n.s`)
}

// rollupFilter is f as a condition on the rollups table, if the rollups
// can answer it exactly: whole UTC days (or no bound), no alias and no
// principal filter (neither is a rollup column). An empty condition with ok means
// that nothing matches.
func (s *Store) rollupFilter(ctx context.Context, f Filter) (where string, args []any, ok bool, err error) {
	if f.Alias != "" || f.Principal != "" || !f.From.IsZero() && f.From.Unix()%86400 != 0 || !f.To.IsZero() && f.To.Unix()%86400 != 0 {
		return "", nil, false, nil
	}
	conds := []string{"1"}
	if f.KeyARN != "" {
		ids, err := s.ids(ctx, `SELECT id FROM keys WHERE arn = ? OR key_id = ?`, f.KeyARN, f.KeyARN)
		if err != nil || len(ids) == 0 {
			return "", nil, true, err
		}
		conds = append(conds, "(r.key IN "+InList(ids)+" OR r.key2 IN "+InList(ids)+")")
	}
	for _, c := range []struct{ v, col string }{{f.EventName, "r.name"}, {f.Account, "r.account"}, {f.Region, "r.region"}} {
		if c.v == "" {
			continue
		}
		ids, err := s.ids(ctx, `SELECT id FROM strs WHERE s = ?`, c.v)
		if err != nil || len(ids) == 0 {
			return "", nil, true, err
		}
		conds = append(conds, c.col+" = ?")
		args = append(args, ids[0])
	}
	if f.ErrorsOnly {
		conds = append(conds, "r.error_code <> 0")
	}
	if !f.From.IsZero() {
		conds = append(conds, "r.day >= ?")
		args = append(args, f.From.Unix()/86400)
	}
	if !f.To.IsZero() {
		conds = append(conds, "r.day < ?")
		args = append(args, f.To.Unix()/86400)
	}
	return strings.Join(conds, " AND "), args, true, nil
}

func (s *Store) counts(ctx context.Context, q string, args []any) ([]Count, error) {
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

func (s *Store) grouped(ctx context.Context, f Filter, outer string) ([]Count, error) {
	p, err := s.plan(ctx, f)
	if err != nil || p.empty {
		return nil, err
	}
	inner, args := p.sql(Newest, nil, 0)
	// The id query selects (id, time); keep the ids.
	return s.counts(ctx, strings.Replace(outer, "%s", "SELECT id FROM ("+inner+")", 1), args)
}
