package store

import (
	"database/sql"
	"strings"

	"github.com/keyceremony/keyceremony/audit/cloudtrail"
)

// The dimension caches map a value to its row id. They are loaded whole
// when the writer starts, so a miss almost always means a new row; a value
// added inside a file that is then rolled back leaves the cache too (undo).

type principalKey struct{ arn, typ, account string }

// Where an alias target comes from (alias_targets.source).
const (
	sourceEvent     = 1
	sourceInventory = 2
)

// upsert inserts a dimension row and returns its id, or the id of the row
// another writer added meanwhile (INSERT OR IGNORE then SELECT: cheaper
// than RETURNING through database/sql on the common path).
func (w *Writer) upsert(ins *sql.Stmt, sel string, args ...any) (int64, error) {
	res, err := ins.ExecContext(w.ctx, args...)
	if err != nil {
		return 0, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return 0, err
	} else if n == 1 {
		return res.LastInsertId()
	}
	var id int64
	err = w.conn.QueryRowContext(w.ctx, sel, args...).Scan(&id)
	return id, err
}

func (w *Writer) str(s string) (int64, error) {
	if v, ok := w.strs[s]; ok {
		return v, nil
	}
	s = strings.Clone(s) // s may alias a record buffer
	v, err := w.upsert(w.insStr, `SELECT id FROM strs WHERE s = ?`, s)
	if err != nil {
		return 0, err
	}
	w.strs[s] = v
	w.undo = append(w.undo, func() { delete(w.strs, s) })
	return v, nil
}

func (w *Writer) principal(r *cloudtrail.Record) (int64, error) {
	if r.PrincipalARN == "" && r.PrincipalType == "" && r.PrincipalAccount == "" {
		return 0, nil
	}
	k := principalKey{r.PrincipalARN, r.PrincipalType, r.PrincipalAccount}
	if v, ok := w.principals[k]; ok {
		return v, nil
	}
	k = principalKey{strings.Clone(k.arn), strings.Clone(k.typ), strings.Clone(k.account)}
	res, err := w.insPrincipal.ExecContext(w.ctx, k.arn, k.typ, k.account, strings.Clone(r.RoleARN))
	if err != nil {
		return 0, err
	}
	var v int64
	if n, _ := res.RowsAffected(); n == 1 {
		v, err = res.LastInsertId()
	} else {
		err = w.conn.QueryRowContext(w.ctx, `SELECT id FROM principals WHERE arn = ? AND type = ? AND account = ?`,
			k.arn, k.typ, k.account).Scan(&v)
	}
	if err != nil {
		return 0, err
	}
	w.principals[k] = v
	w.undo = append(w.undo, func() { delete(w.principals, k) })
	return v, nil
}

// arnParts splits arn:partition:service:region:account:resource.
func arnParts(arn string) (region, account, resource string) {
	p := strings.SplitN(arn, ":", 6)
	if len(p) < 6 {
		return "", "", arn
	}
	return p[3], p[4], p[5]
}

func (w *Writer) key(arn string) (int64, error) {
	if v, ok := w.keys[arn]; ok {
		return v, nil
	}
	arn = strings.Clone(arn)
	region, account, res := arnParts(arn)
	v, err := w.upsert(w.insKey, `SELECT id FROM keys WHERE arn = ?1`, arn, account, region, strings.TrimPrefix(res, "key/"))
	if err != nil {
		return 0, err
	}
	w.keys[arn] = v
	w.undo = append(w.undo, func() { delete(w.keys, arn) })
	return v, nil
}

func (w *Writer) alias(arn string) (int64, error) {
	if v, ok := w.aliases[arn]; ok {
		return v, nil
	}
	arn = strings.Clone(arn)
	region, account, res := arnParts(arn)
	v, err := w.upsert(w.insAlias, `SELECT id FROM aliases WHERE arn = ?1`, arn, account, region, res)
	if err != nil {
		return 0, err
	}
	w.aliases[arn] = v
	w.undo = append(w.undo, func() { delete(w.aliases, arn) })
	return v, nil
}

// PreloadDims reads every dimension row (strings, principals, keys,
// aliases) into the writer's caches. Without it each is read on its first
// use, which is cheaper for a small ingest into a large database (at ten
// million events the preload is 0.65 of the 4 CPU-seconds of adding a
// day) and dearer for a large one; the ingest preloads when it expects
// many events.
func (w *Writer) PreloadDims() error {
	w.dimsLoaded = true
	return w.loadCaches()
}

// loadCaches reads every dimension row into the caches.
func (w *Writer) loadCaches() error {
	load := func(q string, f func(rows *sql.Rows) error) error {
		rows, err := w.conn.QueryContext(w.ctx, q)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := f(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	var id int64
	var a, b, c string
	if err := load(`SELECT id, s FROM strs`, func(r *sql.Rows) error {
		err := r.Scan(&id, &a)
		w.strs[a] = id
		return err
	}); err != nil {
		return err
	}
	if err := load(`SELECT id, arn, type, account FROM principals`, func(r *sql.Rows) error {
		err := r.Scan(&id, &a, &b, &c)
		w.principals[principalKey{a, b, c}] = id
		return err
	}); err != nil {
		return err
	}
	if err := load(`SELECT id, arn FROM keys`, func(r *sql.Rows) error {
		err := r.Scan(&id, &a)
		w.keys[a] = id
		return err
	}); err != nil {
		return err
	}
	return load(`SELECT id, arn FROM aliases`, func(r *sql.Rows) error {
		err := r.Scan(&id, &a)
		w.aliases[a] = id
		return err
	})
}

// resetCaches forgets every cached id after a whole-transaction rollback.
func (w *Writer) resetCaches() {
	clear(w.strs)
	clear(w.principals)
	clear(w.keys)
	clear(w.aliases)
	w.undo = w.undo[:0]
	w.loadCounters()
	if w.dimsLoaded {
		w.loadCaches()
	}
	// The set held the rolled-back transaction's ids too: reload it from
	// what is committed (without the write lock, hence its version first).
	v, err := w.dataVersion()
	if err != nil {
		w.ver = -1 // unknown: the next begin reloads
	} else {
		w.ver = v
	}
	if w.ids != nil {
		w.dropIDs()
		if err != nil || w.loadIDs() != nil {
			w.dropIDs()
		}
	}
}
