package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Rollups: the events counted per UTC day, account, region, event name,
// category, key, second key, principal, calling service and error code
// (schema v10, table rollups), with the group's first and last event by
// (time, row id) and its count per UTC hour. They are maintained by the
// writer in the transaction that writes the events, so what is committed
// always agrees with the events table, also after a killed ingest: new
// events are added as they are inserted (per file, undone with the file),
// and the days of events whose columns an update changed (an alias
// resolved to its key, a conflict settled in favour of another record) are
// counted again from the events before the commit. Reports and the Audit
// page's charts read them instead of every event.

// RollupKey is one group of events. Ids are those of the events columns;
// 0 where the column is NULL.
type RollupKey struct {
	Day                             int64 // Unix day (UnixDay)
	Account, Region, Name, Category int64
	Key, Key2, Principal, InvokedBy int64
	ErrorCode                       int64
}

// RollupVal is what a group counts.
type RollupVal struct {
	Events             int64
	FirstTime, FirstID int64 // the first event by (time, id)
	LastTime, LastID   int64 // the last
	Hours              [24]int64
}

func (v *RollupVal) add(t, id int64) {
	if v.Events == 0 || t < v.FirstTime || t == v.FirstTime && id < v.FirstID {
		v.FirstTime, v.FirstID = t, id
	}
	if v.Events == 0 || t > v.LastTime || t == v.LastTime && id > v.LastID {
		v.LastTime, v.LastID = t, id
	}
	v.Events++
	v.Hours[(t-UnixDay(t)*86400)/3600]++
}

func (v *RollupVal) merge(o *RollupVal) {
	if o.Events == 0 {
		return
	}
	if v.Events == 0 || o.FirstTime < v.FirstTime || o.FirstTime == v.FirstTime && o.FirstID < v.FirstID {
		v.FirstTime, v.FirstID = o.FirstTime, o.FirstID
	}
	if v.Events == 0 || o.LastTime > v.LastTime || o.LastTime == v.LastTime && o.LastID > v.LastID {
		v.LastTime, v.LastID = o.LastTime, o.LastID
	}
	v.Events += o.Events
	for i := range v.Hours {
		v.Hours[i] += o.Hours[i]
	}
}

// Rollups is a set of groups. Keys and values hold no pointer, so the
// garbage collector never scans the map (a bulk load's transaction holds
// a hundred thousand groups).
type Rollups map[RollupKey]RollupVal

func (r Rollups) add(k RollupKey, t, id int64) {
	v := r[k]
	v.add(t, id)
	r[k] = v
}

func (r Rollups) mergeAll(o Rollups) {
	for k, ov := range o {
		v := r[k]
		v.merge(&ov)
		r[k] = v
	}
}

// rollupCols are the columns of the rollups table in the order of
// RollupKey then RollupVal.
const rollupCols = `day, account, region, name, category, key, key2, principal, invoked_by, error_code,
	events, first_time, first_id, last_time, last_id,
	h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15, h16, h17, h18, h19, h20, h21, h22, h23`

const nRollupCols = 39

// rollupsTable is the v10 migration's table.
const rollupsTable = `CREATE TABLE rollups (
	day        INTEGER NOT NULL,
	account    INTEGER NOT NULL,
	region     INTEGER NOT NULL,
	name       INTEGER NOT NULL,
	category   INTEGER NOT NULL,
	key        INTEGER NOT NULL,
	key2       INTEGER NOT NULL,
	principal  INTEGER NOT NULL,
	invoked_by INTEGER NOT NULL,
	error_code INTEGER NOT NULL,
	events     INTEGER NOT NULL,
	first_time INTEGER NOT NULL,
	first_id   INTEGER NOT NULL,
	last_time  INTEGER NOT NULL,
	last_id    INTEGER NOT NULL,
	h0 INTEGER NOT NULL, h1 INTEGER NOT NULL, h2 INTEGER NOT NULL, h3 INTEGER NOT NULL, h4 INTEGER NOT NULL, h5 INTEGER NOT NULL,
	h6 INTEGER NOT NULL, h7 INTEGER NOT NULL, h8 INTEGER NOT NULL, h9 INTEGER NOT NULL, h10 INTEGER NOT NULL, h11 INTEGER NOT NULL,
	h12 INTEGER NOT NULL, h13 INTEGER NOT NULL, h14 INTEGER NOT NULL, h15 INTEGER NOT NULL, h16 INTEGER NOT NULL, h17 INTEGER NOT NULL,
	h18 INTEGER NOT NULL, h19 INTEGER NOT NULL, h20 INTEGER NOT NULL, h21 INTEGER NOT NULL, h22 INTEGER NOT NULL, h23 INTEGER NOT NULL,
	PRIMARY KEY (day, account, region, name, category, key, key2, principal, invoked_by, error_code)
) WITHOUT ROWID;
CREATE INDEX rollups_key ON rollups(key, day) WHERE key <> 0;`

// rollupEventCols are the events columns a group is made of, in
// RollupKey order after the time, preceded by the row id.
const rollupEventCols = `id, time, coalesce(account,0), coalesce(region,0), name, category, coalesce(key,0), coalesce(key2,0),
	coalesce(principal,0), coalesce(invoked_by,0), coalesce(error_code,0)`

// countEvents adds the events the query selects (rollupEventCols, then
// args) to r.
func countEvents(ctx context.Context, q Querier, r Rollups, where string, args ...any) error {
	rows, err := q.QueryContext(ctx, `SELECT `+rollupEventCols+` FROM events `+where, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var k RollupKey
	var id, t int64
	for rows.Next() {
		if err := rows.Scan(&id, &t, &k.Account, &k.Region, &k.Name, &k.Category, &k.Key, &k.Key2, &k.Principal, &k.InvokedBy, &k.ErrorCode); err != nil {
			return err
		}
		k.Day = UnixDay(t)
		r.add(k, t, id)
	}
	return rows.Err()
}

// CountRollups counts the groups from the events themselves (a full pass):
// what the rollups table must hold.
func (s *Store) CountRollups(ctx context.Context) (Rollups, error) {
	r := Rollups{}
	if err := countEvents(ctx, s.db, r, ""); err != nil {
		return nil, fmt.Errorf("count the events per group: %w", err)
	}
	return r, nil
}

// ReadRollups reads the rollups table whole.
func (s *Store) ReadRollups(ctx context.Context) (Rollups, error) {
	r := Rollups{}
	err := ScanRollups(ctx, s.db, "", nil, func(k RollupKey, v *RollupVal) error {
		r[k] = *v
		return nil
	})
	return r, err
}

// ScanRollups calls f for each group the condition selects (SQL on the
// rollups columns, "" for all), in primary key order; v is reused.
func ScanRollups(ctx context.Context, q Querier, where string, args []any, f func(k RollupKey, v *RollupVal) error) error {
	if where != "" {
		where = " WHERE " + where
	}
	rows, err := q.QueryContext(ctx, `SELECT `+rollupCols+` FROM rollups`+where+
		` ORDER BY day, account, region, name, category, key, key2, principal, invoked_by, error_code`, args...)
	if err != nil {
		return fmt.Errorf("read the rollups: %w", err)
	}
	defer rows.Close()
	var k RollupKey
	var v RollupVal
	dst := []any{&k.Day, &k.Account, &k.Region, &k.Name, &k.Category, &k.Key, &k.Key2, &k.Principal, &k.InvokedBy, &k.ErrorCode,
		&v.Events, &v.FirstTime, &v.FirstID, &v.LastTime, &v.LastID}
	for i := range v.Hours {
		dst = append(dst, &v.Hours[i])
	}
	for rows.Next() {
		if err := rows.Scan(dst...); err != nil {
			return fmt.Errorf("read the rollups: %w", err)
		}
		if err := f(k, &v); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the rollups: %w", err)
	}
	return nil
}

// DiffRollups describes how two sets of groups differ ("" when equal), at
// most a few groups.
func DiffRollups(got, want Rollups) string {
	var diffs []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("missing %+v: %+v", k, w))
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("group %+v: %+v, want %+v", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("extra %+v: %+v", k, g))
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

// rollupArgs appends the columns of one group.
func rollupArgs(a []any, k RollupKey, v *RollupVal) []any {
	a = append(a, k.Day, k.Account, k.Region, k.Name, k.Category, k.Key, k.Key2, k.Principal, k.InvokedBy, k.ErrorCode,
		v.Events, v.FirstTime, v.FirstID, v.LastTime, v.LastID)
	for _, h := range v.Hours {
		a = append(a, h)
	}
	return a
}

// rollupUpsertRows is the number of groups per upsert statement.
const rollupUpsertRows = 32

// rollupUpsert adds groups to the table: a group stored already gets the
// counts added and its first and last event moved if these come before or
// after.
func rollupUpsert(n int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", nRollupCols), ",") + ")"
	var b strings.Builder
	b.WriteString("INSERT INTO rollups (" + rollupCols + ") VALUES ")
	b.WriteString(strings.TrimSuffix(strings.Repeat(row+",", n), ","))
	b.WriteString(` ON CONFLICT (day, account, region, name, category, key, key2, principal, invoked_by, error_code) DO UPDATE SET
	events = events + excluded.events,
	first_id = CASE WHEN excluded.first_time < first_time OR excluded.first_time = first_time AND excluded.first_id < first_id
		THEN excluded.first_id ELSE first_id END,
	first_time = min(first_time, excluded.first_time),
	last_id = CASE WHEN excluded.last_time > last_time OR excluded.last_time = last_time AND excluded.last_id > last_id
		THEN excluded.last_id ELSE last_id END,
	last_time = max(last_time, excluded.last_time)`)
	for i := 0; i < 24; i++ {
		h := "h" + strconv.Itoa(i)
		b.WriteString(", " + h + " = " + h + " + excluded." + h)
	}
	return b.String()
}

// writeRollups adds the groups of r to the table (in key order, so the
// B-tree is written in place rather than at random).
func writeRollups(ctx context.Context, conn *sql.Conn, r Rollups, stmts map[int]*sql.Stmt) error {
	if len(r) == 0 {
		return nil
	}
	keys := make([]RollupKey, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
	args := make([]any, 0, nRollupCols*rollupUpsertRows)
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
			v := r[k]
			args = rollupArgs(args, k, &v)
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("store the rollups: %w", err)
		}
		keys = keys[n:]
	}
	return nil
}

func (k RollupKey) less(o RollupKey) bool {
	a := [...]int64{k.Day, k.Account, k.Region, k.Name, k.Category, k.Key, k.Key2, k.Principal, k.InvokedBy, k.ErrorCode}
	b := [...]int64{o.Day, o.Account, o.Region, o.Name, o.Category, o.Key, o.Key2, o.Principal, o.InvokedBy, o.ErrorCode}
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// recountDays makes the rollups of the given days equal to a count of
// their events (in the caller's transaction). Only the groups that differ
// are written: an alias resolved at the end of a bulk load moves a few
// thousand events, and rewriting every group of their days cost more than
// the count.
func recountDays(ctx context.Context, conn *sql.Conn, days []int64, stmts map[int]*sql.Stmt) error {
	if len(days) == 0 {
		return nil
	}
	sort.Slice(days, func(i, j int) bool { return days[i] < days[j] })
	r, stored := Rollups{}, Rollups{}
	// Runs of consecutive days are one time range each (the events_time
	// index serves them; a bulk load without it scans once per run).
	for i := 0; i < len(days); {
		j := i + 1
		for j < len(days) && days[j] == days[j-1]+1 {
			j++
		}
		from, to := days[i]*86400, (days[j-1]+1)*86400
		if err := countEvents(ctx, conn, r, `WHERE time >= ? AND time < ?`, from, to); err != nil {
			return fmt.Errorf("recount the rollups: %w", err)
		}
		if err := ScanRollups(ctx, conn, "day >= ? AND day <= ?", []any{days[i], days[j-1]}, func(k RollupKey, v *RollupVal) error {
			stored[k] = *v
			return nil
		}); err != nil {
			return err
		}
		i = j
	}
	changed := Rollups{}
	for k, v := range r {
		if old, ok := stored[k]; !ok || old != v {
			changed[k] = v
		}
	}
	var gone []RollupKey
	for k := range stored {
		if _, ok := r[k]; !ok {
			gone = append(gone, k)
		} else if _, ok := changed[k]; ok {
			gone = append(gone, k) // replaced: deleted, then written whole
		}
	}
	for _, k := range gone {
		if _, err := conn.ExecContext(ctx, `DELETE FROM rollups WHERE day = ? AND account = ? AND region = ? AND name = ? AND category = ?
			AND key = ? AND key2 = ? AND principal = ? AND invoked_by = ? AND error_code = ?`,
			k.Day, k.Account, k.Region, k.Name, k.Category, k.Key, k.Key2, k.Principal, k.InvokedBy, k.ErrorCode); err != nil {
			return fmt.Errorf("recount the rollups: %w", err)
		}
	}
	return writeRollups(ctx, conn, changed, stmts)
}

// backfillRollups completes the v10 upgrade: the rollups of the events
// already stored, counted a few days at a time through the time index so
// that memory follows the groups of a few days, not of the database.
func backfillRollups(ctx context.Context, conn *sql.Conn) error {
	var lo, hi sql.NullInt64
	if err := conn.QueryRowContext(ctx, `SELECT min(time), max(time) FROM events`).Scan(&lo, &hi); err != nil || !lo.Valid {
		return err
	}
	stmts := map[int]*sql.Stmt{}
	defer func() {
		for _, st := range stmts {
			st.Close()
		}
	}()
	var indexed int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type='index' AND name='events_time'`).Scan(&indexed); err != nil {
		return err
	}
	if indexed == 0 { // a bulk load was killed: one pass (its next ingest builds the index)
		r := Rollups{}
		if err := countEvents(ctx, conn, r, ""); err != nil {
			return fmt.Errorf("count the stored events: %w", err)
		}
		return writeRollups(ctx, conn, r, stmts)
	}
	const chunk = 4 // days per pass
	for d := UnixDay(lo.Int64); d <= UnixDay(hi.Int64); d += chunk {
		days := make([]int64, 0, chunk)
		for i := int64(0); i < chunk; i++ {
			days = append(days, d+i)
		}
		if err := recountDays(ctx, conn, days, stmts); err != nil {
			return fmt.Errorf("count the stored events: %w", err)
		}
	}
	return nil
}
