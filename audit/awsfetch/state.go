package awsfetch

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the driver audit/store uses
)

// The time ranges already fetched completely, per account and region, live
// in a small table of their own in the audit database, written through a
// connection of this package (the store's own tables are only ever written
// by its Writer). A range [from, to] (Unix seconds, inclusive) means every
// KMS event LookupEvents returns for that account and region with an
// eventTime in it is in the database.
const rangesSchema = `CREATE TABLE IF NOT EXISTS awsfetch_ranges(
	account TEXT NOT NULL, region TEXT NOT NULL,
	from_time INTEGER NOT NULL, to_time INTEGER NOT NULL, recorded_at INTEGER NOT NULL)`

type span struct{ from, to int64 }

type stateDB struct{ db *sql.DB }

func openState(ctx context.Context, path string) (*stateDB, error) {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	db, err := sql.Open("sqlite", "file:"+esc.Replace(path)+"?_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, rangesSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create the fetch state table in %s: %w", path, err)
	}
	return &stateDB{db: db}, nil
}

func (s *stateDB) Close() error { return s.db.Close() }

func (s *stateDB) load(ctx context.Context, account, region string) ([]span, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT from_time, to_time FROM awsfetch_ranges WHERE account = ? AND region = ? ORDER BY from_time`, account, region)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []span
	for rows.Next() {
		var sp span
		if err := rows.Scan(&sp.from, &sp.to); err != nil {
			return nil, err
		}
		out = append(out, sp)
	}
	return merge(out), rows.Err()
}

// add records sp as fetched, merging it with what is there.
func (s *stateDB) add(ctx context.Context, account, region string, sp span, now time.Time) error {
	if sp.from > sp.to {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT from_time, to_time FROM awsfetch_ranges WHERE account = ? AND region = ?`, account, region)
	if err != nil {
		return err
	}
	all := []span{sp}
	for rows.Next() {
		var x span
		if err := rows.Scan(&x.from, &x.to); err != nil {
			rows.Close()
			return err
		}
		all = append(all, x)
	}
	rows.Close()
	if _, err := tx.ExecContext(ctx, `DELETE FROM awsfetch_ranges WHERE account = ? AND region = ?`, account, region); err != nil {
		return err
	}
	for _, x := range merge(all) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO awsfetch_ranges(account, region, from_time, to_time, recorded_at) VALUES (?, ?, ?, ?, ?)`,
			account, region, x.from, x.to, now.Unix()); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// merge sorts spans and joins overlapping or adjacent ones.
func merge(in []span) []span {
	sort.Slice(in, func(i, j int) bool { return in[i].from < in[j].from })
	var out []span
	for _, x := range in {
		if x.from > x.to {
			continue
		}
		if n := len(out); n > 0 && x.from <= out[n-1].to+1 {
			out[n-1].to = max(out[n-1].to, x.to)
			continue
		}
		out = append(out, x)
	}
	return out
}

// gaps is [from, to] minus the (merged) spans done, oldest first.
func gaps(from, to int64, done []span) []span {
	var out []span
	cur := from
	for _, d := range done {
		if d.to < cur {
			continue
		}
		if d.from > to {
			break
		}
		if d.from > cur {
			out = append(out, span{cur, d.from - 1})
		}
		cur = d.to + 1
		if cur > to {
			return out
		}
	}
	if cur <= to {
		out = append(out, span{cur, to})
	}
	return out
}
