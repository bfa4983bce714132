package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
)

// Rollups: the events counted per UTC day, account, region, event name,
// category, key, second key and error code (schema v11, table rollups):
// what a per-key or per-operation count and the Audit page's charts need,
// a few thousand groups a day however many events. They are maintained by
// the writer in the transaction that writes the events, so what is
// committed always agrees with the events table, also after a killed
// ingest: new events are added as they are inserted (per file, undone with
// the file), and an event whose columns an update changes (an alias
// resolved to its key, a conflict settled in favour of another record) is
// subtracted from its old group and added to its new one.
//
// The groups leave out the principal and the calling service on purpose:
// with them a group held under three events (370,000 groups for a million
// events of 13,000 principals), the table cost more to keep than it saved
// a reader, and the usage report, which needs them, was no faster from it
// than from the events.

// RollupKey is one group of events. Ids are those of the events columns;
// 0 where the column is NULL.
type RollupKey struct {
	Day                             int64 // Unix day (UnixDay)
	Account, Region, Name, Category int64
	Key, Key2, ErrorCode            int64
}

// Rollups is a set of groups and their event counts (or, in the writer,
// the changes to them). Keys and values hold no pointer, so the garbage
// collector never scans the map.
type Rollups map[RollupKey]int64

func (r Rollups) mergeAll(o Rollups) {
	for k, n := range o {
		r[k] += n
	}
}

// rollupKeyCols are the columns of a group, in RollupKey order.
const rollupKeyCols = `day, account, region, name, category, key, key2, error_code`

// rollupsTable is the v11 migration's table.
const rollupsTable = `CREATE TABLE rollups (
	day        INTEGER NOT NULL,
	account    INTEGER NOT NULL,
	region     INTEGER NOT NULL,
	name       INTEGER NOT NULL,
	category   INTEGER NOT NULL,
	key        INTEGER NOT NULL,
	key2       INTEGER NOT NULL,
	error_code INTEGER NOT NULL,
	events     INTEGER NOT NULL,
	PRIMARY KEY (` + rollupKeyCols + `)
) WITHOUT ROWID;
CREATE INDEX rollups_key ON rollups(key, day) WHERE key <> 0;`

// rollupEventCols are the events columns a group is made of: the time,
// then RollupKey's after the day.
const rollupEventCols = `time, coalesce(account,0), coalesce(region,0), name, category, coalesce(key,0), coalesce(key2,0),
	coalesce(error_code,0)`

// countEvents adds n for each event the query selects (where, then args)
// to r: 1 counts them, -1 takes them out.
func countEvents(ctx context.Context, q Querier, r Rollups, n int64, where string, args ...any) error {
	rows, err := q.QueryContext(ctx, `SELECT `+rollupEventCols+` FROM events `+where, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var k RollupKey
	var t int64
	for rows.Next() {
		if err := rows.Scan(&t, &k.Account, &k.Region, &k.Name, &k.Category, &k.Key, &k.Key2, &k.ErrorCode); err != nil {
			return err
		}
		k.Day = UnixDay(t)
		r[k] += n
	}
	return rows.Err()
}

// CountRollups counts the groups from the events themselves (a full pass):
// what the rollups table must hold.
func (s *Store) CountRollups(ctx context.Context) (Rollups, error) {
	r := Rollups{}
	if err := countEvents(ctx, s.db, r, 1, ""); err != nil {
		return nil, fmt.Errorf("count the events per group: %w", err)
	}
	return r, nil
}

// ReadRollups reads the rollups table whole.
func (s *Store) ReadRollups(ctx context.Context) (Rollups, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+rollupKeyCols+`, events FROM rollups`)
	if err != nil {
		return nil, fmt.Errorf("read the rollups: %w", err)
	}
	defer rows.Close()
	r := Rollups{}
	for rows.Next() {
		var k RollupKey
		var n int64
		if err := rows.Scan(&k.Day, &k.Account, &k.Region, &k.Name, &k.Category, &k.Key, &k.Key2, &k.ErrorCode, &n); err != nil {
			return nil, fmt.Errorf("read the rollups: %w", err)
		}
		r[k] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the rollups: %w", err)
	}
	return r, nil
}

// DiffRollups describes how two sets of groups differ ("" when equal), at
// most a few groups.
func DiffRollups(got, want Rollups) string {
	var diffs []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("missing %+v: %d", k, w))
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("group %+v: %d, want %d", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("extra %+v: %d", k, g))
		}
	}
	if len(diffs) == 0 {
		return ""
	}
	sort.Strings(diffs)
	n := len(diffs)
	if len(diffs) > 5 {
		diffs = diffs[:5]
	}
	return fmt.Sprintf("%d groups differ: %s", n, strings.Join(diffs, "; "))
}

// rollupUpsertRows is the number of groups per upsert statement.
const rollupUpsertRows = 64

// rollupUpsert adds changes to the groups' counts (a group not stored yet
// is inserted).
func rollupUpsert(n int) string {
	row := "(?,?,?,?,?,?,?,?,?)"
	return "INSERT INTO rollups (" + rollupKeyCols + ", events) VALUES " +
		strings.TrimSuffix(strings.Repeat(row+",", n), ",") +
		" ON CONFLICT (" + rollupKeyCols + ") DO UPDATE SET events = events + excluded.events"
}

// writeRollups applies the changes r to the table (in key order, so the
// B-tree is written in place rather than at random); a group whose count
// falls to zero is deleted.
func writeRollups(ctx context.Context, conn *sql.Conn, r Rollups, stmts map[int]*sql.Stmt) error {
	keys := make([]RollupKey, 0, len(r))
	var shrunk []RollupKey
	for k, n := range r {
		if n != 0 {
			keys = append(keys, k)
		}
		if n < 0 {
			shrunk = append(shrunk, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
	args := make([]any, 0, 9*rollupUpsertRows)
	for len(keys) > 0 {
		n := min(len(keys), rollupUpsertRows)
		st := stmts[n]
		if st == nil {
			var err error
			if st, err = conn.PrepareContext(ctx, rollupUpsert(n)); err != nil {
				return err
			}
			stmts[n] = st
		}
		args = args[:0]
		for _, k := range keys[:n] {
			args = append(args, k.Day, k.Account, k.Region, k.Name, k.Category, k.Key, k.Key2, k.ErrorCode, r[k])
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("store the rollups: %w", err)
		}
		keys = keys[n:]
	}
	for _, k := range shrunk {
		if _, err := conn.ExecContext(ctx, `DELETE FROM rollups WHERE day = ? AND account = ? AND region = ? AND name = ?
			AND category = ? AND key = ? AND key2 = ? AND error_code = ? AND events = 0`,
			k.Day, k.Account, k.Region, k.Name, k.Category, k.Key, k.Key2, k.ErrorCode); err != nil {
			return fmt.Errorf("store the rollups: %w", err)
		}
	}
	return nil
}

func (k RollupKey) less(o RollupKey) bool {
	a := [...]int64{k.Day, k.Account, k.Region, k.Name, k.Category, k.Key, k.Key2, k.ErrorCode}
	b := [...]int64{o.Day, o.Account, o.Region, o.Name, o.Category, o.Key, o.Key2, o.ErrorCode}
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// backfillRollups completes the v11 upgrade: the rollups of the events
// already stored, counted by SQLite itself (its sorter keeps memory
// bounded however many events there are).
func backfillRollups(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, `INSERT INTO rollups (`+rollupKeyCols+`, events)
		SELECT `+sqlUnixDay("time")+` AS d, coalesce(account,0) AS a, coalesce(region,0) AS r, name, category,
			coalesce(key,0) AS k, coalesce(key2,0) AS k2, coalesce(error_code,0) AS e, count(*)
		FROM events GROUP BY d, a, r, name, category, k, k2, e`)
	if err != nil {
		return fmt.Errorf("count the stored events: %w", err)
	}
	return nil
}
