package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// PageStarts walks the listing (f, order) once, reading only the indexed
// (time, id) pairs, and returns the cursor each page of size `every` starts
// after: starts[0] is nil (the first page), starts[k] the last row of page
// k-1, and the row count. Its cost grows with the matching rows (half a
// second a million), so the event table no longer uses it (audit/browse
// places pages from DayCounts); it is the reference listing its tests
// compare with, row by row.
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
	q, args := p.sql(order, nil, 0, math.MaxInt32)
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

// DayEvents is the number of events of one UTC day (a Unix day, UnixDay).
type DayEvents struct {
	Day, N int64
}

// DayCounts counts the events matching f per UTC day, in day order, days
// without events left out. From the rollups when they can answer
// (rollupFilter: milliseconds however many events), else by a count over
// the filter's index inside SQLite.
func (s *Store) DayCounts(ctx context.Context, f Filter) ([]DayEvents, error) {
	anyPeriod := f
	anyPeriod.From, anyPeriod.To = time.Time{}, time.Time{}
	if _, _, ok, err := s.rollupFilter(ctx, anyPeriod); err != nil || !ok {
		if err != nil {
			return nil, err
		}
		return s.dayCountsFromEvents(ctx, f)
	}
	// A period that starts or ends within a day: the whole days between
	// from the rollups, the partial days at its ends from the events.
	whole := f
	var head, tail []DayEvents
	if from, to := f.From.Unix(), f.To.Unix(); !f.From.IsZero() && from%86400 != 0 {
		next := (UnixDay(from) + 1) * 86400
		if f.To.IsZero() || to > next {
			part := f
			part.To = time.Unix(next, 0).UTC()
			var err error
			if head, err = s.dayCountsFromEvents(ctx, part); err != nil {
				return nil, err
			}
			whole.From = part.To
		}
	}
	if to := f.To.Unix(); !f.To.IsZero() && to%86400 != 0 && !whole.From.After(time.Unix(UnixDay(to)*86400, 0)) {
		part := whole
		part.From = time.Unix(UnixDay(to)*86400, 0).UTC()
		var err error
		if tail, err = s.dayCountsFromEvents(ctx, part); err != nil {
			return nil, err
		}
		whole.To = part.From
	}
	where, args, ok, err := s.rollupFilter(ctx, whole)
	if err != nil || !ok { // !ok: the period lies within one day
		if err != nil {
			return nil, err
		}
		return s.dayCountsFromEvents(ctx, f)
	}
	var days []DayEvents
	if where != "" {
		if days, err = s.dayCounts(ctx, `SELECT day, sum(events) FROM rollups r WHERE `+where+` GROUP BY day ORDER BY day`, args); err != nil {
			return nil, err
		}
	}
	return append(append(head, days...), tail...), nil
}

// dayCountsFromEvents is DayCounts counted from the events: for each day
// with a matching event (found with one keyset query from the day before),
// a count over the filter's index in that day. A GROUP BY over the
// listing would sort every matching row.
func (s *Store) dayCountsFromEvents(ctx context.Context, f Filter) ([]DayEvents, error) {
	p, err := s.plan(ctx, f)
	if err != nil || p.empty {
		return nil, err
	}
	var out []DayEvents
	var cur *Cursor
	for {
		q, args := p.sql(Oldest, cur, 0, 1)
		var id, t int64
		if err := s.db.QueryRowContext(ctx, q, args...).Scan(&id, &t); errors.Is(err, sql.ErrNoRows) {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("count events per day: %w", err)
		}
		d := UnixDay(t)
		day := *p
		day.preds = append(append([]string{}, p.preds...), "e.time >= ?", "e.time < ?")
		day.pargs = append(append([]any{}, p.pargs...), d*86400, (d+1)*86400)
		n, err := s.count(ctx, &day)
		if err != nil {
			return nil, err
		}
		out = append(out, DayEvents{Day: d, N: n})
		cur = &Cursor{Time: (d+1)*86400 - 1, ID: math.MaxInt64} // the next day on
	}
}

func (s *Store) dayCounts(ctx context.Context, q string, args []any) ([]DayEvents, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("count events per day: %w", err)
	}
	defer rows.Close()
	var out []DayEvents
	for rows.Next() {
		var c DayEvents
		if err := rows.Scan(&c.Day, &c.N); err != nil {
			return nil, fmt.Errorf("count events per day: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count events per day: %w", err)
	}
	return out, nil
}

// sqlUnixDay is UnixDay in SQL: floor(t / 86400), also before 1970.
func sqlUnixDay(t string) string {
	return t + `/86400 - (` + t + ` < 0 AND ` + t + ` % 86400 <> 0)`
}

// DailyCounts counts the events matching f per UTC day (YYYY-MM-DD), in
// day order: the data of a daily-usage chart.
func (s *Store) DailyCounts(ctx context.Context, f Filter) ([]Count, error) {
	days, err := s.DayCounts(ctx, f)
	if err != nil {
		return nil, err
	}
	return DayLabels(days), nil
}

// DayLabels labels day counts YYYY-MM-DD.
func DayLabels(days []DayEvents) []Count {
	out := make([]Count, 0, len(days))
	for _, d := range days {
		out = append(out, Count{Label: dayString(d.Day), N: d.N})
	}
	return out
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
	inner, args := p.sql(Newest, nil, 0, 0)
	// The id query selects (id, time); keep the ids.
	return s.counts(ctx, strings.Replace(outer, "%s", "SELECT id FROM ("+inner+")", 1), args)
}
