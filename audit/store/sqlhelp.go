package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
)

// Querier is what the helpers below query through: the store's pool, or
// the one connection a report reads through (*sql.Conn).
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// InList is the SQL list "(1,2,3)" of row ids, for IN. The ids are
// integers, so nothing needs quoting.
func InList(ids []int64) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	b.WriteByte(')')
	return b.String()
}

// StrIDs resolves strings to their ids in the strs table. A string that
// was never stored is absent from the map (no event names it).
func StrIDs(ctx context.Context, q Querier, names []string) (map[string]int64, error) {
	out := map[string]int64{}
	if len(names) == 0 {
		return out, nil
	}
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	rows, err := q.QueryContext(ctx, `SELECT id, s FROM strs WHERE s IN (`+strings.TrimSuffix(strings.Repeat("?,", len(names)), ",")+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var s string
		if err := rows.Scan(&id, &s); err != nil {
			return nil, err
		}
		out[s] = id
	}
	return out, rows.Err()
}

// StrsByID reads the strings of the given ids (in ascending order) from
// the strs table, 500 ids a query, and calls f for each, in id order.
func StrsByID(ctx context.Context, q Querier, ids []int64, f func(id int64, s string)) error {
	for len(ids) > 0 {
		n := min(len(ids), 500)
		rows, err := q.QueryContext(ctx, `SELECT id, s FROM strs WHERE id IN `+InList(ids[:n])+` ORDER BY id`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			var s string
			if err := rows.Scan(&id, &s); err != nil {
				rows.Close()
				return err
			}
			f(id, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}
