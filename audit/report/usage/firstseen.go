package usage

import (
	"database/sql"
	"fmt"
	"sort"
)

// firstSeen dates every identity's first event in the database. An
// identity named by its principal takes the principal's first event (from
// the principal index alone); one named by the service that called (AWS
// services share one principal) looks for an earlier event of that
// principal and service, which the same index finds in time order.
func (b *builder) firstSeen() error {
	// seen reads (principal, first time) pairs into the identities' dates.
	seen := func(section, query string) error {
		rows, err := b.db.QueryContext(b.ctx, query)
		if err != nil {
			return fmt.Errorf("date first use of principals: %w", err)
		}
		defer rows.Close()
		b.dig.Section(section)
		for rows.Next() {
			var pr, t int64
			if err := rows.Scan(&pr, &t); err != nil {
				return err
			}
			b.dig.Ints(pr, t)
			if p := b.princ[pr]; p != nil && p.ident >= 0 {
				b.seen(p.ident, pr, t)
			}
		}
		return rows.Err()
	}
	if err := seen("first-seen", FirstSeenQuery); err != nil {
		return err
	}
	if len(b.aggIdents) > 0 {
		// Principals the aggregates name: their first counted event.
		if err := seen("first-seen-aggregates", `SELECT principal, min(first_time) FROM aggregates
			WHERE principal IS NOT NULL GROUP BY principal ORDER BY principal`); err != nil {
			return err
		}
	}
	from := b.o.Scope.From.Unix()
	keys := make([][2]int64, 0, len(b.byInv))
	for k := range b.byInv {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i][0] < keys[j][0] || keys[i][0] == keys[j][0] && keys[i][1] < keys[j][1]
	})
	for _, k := range keys {
		i := b.byInv[k]
		id := b.idents[i]
		var t int64
		err := b.db.QueryRowContext(b.ctx, `SELECT time FROM events WHERE principal = ? AND coalesce(invoked_by, 0) = ? AND time < ?
			ORDER BY time LIMIT 1`, k[0], k[1], from).Scan(&t)
		switch {
		case err == sql.ErrNoRows:
			if id.calls > 0 {
				b.seen(i, k[0], id.periodFirst)
			}
		case err != nil:
			return fmt.Errorf("date first use of a service principal: %w", err)
		default:
			b.dig.Ints(k[0], k[1], t)
			b.seen(i, k[0], t)
		}
	}
	return nil
}

func (b *builder) seen(i int32, pr, t int64) {
	id := b.idents[i]
	if id.firstSeen < 0 || t < id.firstSeen {
		id.firstSeen, id.firstPrincipal = t, pr
	}
}
