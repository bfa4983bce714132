package store

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/keyceremony/keyceremony/audit/cloudtrail"
)

// Inserting events: runs of records in multi-row INSERTs on the driver
// connection, alias changes and lifecycle events one by one.

// AddBatch stores one block and its records, skipping events already
// stored (same eventID). It returns how many were new.
func (w *Writer) AddBatch(b *Batch) (newEvents, dups int, err error) {
	if !w.inFile {
		return 0, 0, errors.New("store: AddBatch outside a file")
	}
	if len(b.Records) == 0 {
		return 0, 0, nil
	}
	blockID := w.nextBlock
	offs := make([]int, len(b.Records))
	if b.FileOffs != nil {
		if len(b.FileOffs) != len(b.Records) {
			return 0, 0, errors.New("store: batch with a file offset per record expected")
		}
		if w.fileBlock == 0 {
			w.fileBlock = w.nextBlock
			w.nextBlock++
		}
		blockID = w.fileBlock
		for i, o := range b.FileOffs {
			offs[i] = int(o)
		}
	} else {
		off := 0
		for i := range b.Records {
			offs[i] = off
			off += len(b.Records[i].Raw)
		}
	}
	if len(b.keys) != len(b.Records) {
		b.Prepare()
	}
	isNew := make([]bool, len(b.Records))
	// storedFP: for a record found in the bulk load's set, the fingerprint
	// of the record stored under its eventID (duplicate or conflict).
	var storedFP map[int]uint64
	// sel: the records to insert. During a bulk load, the ones whose
	// eventID is not in the set yet (duplicates are settled here, the
	// UNIQUE index being dropped); otherwise all, and INSERT OR IGNORE
	// tells which were new.
	sel := w.sel[:0]
	for i := range b.Records {
		if w.ids == nil {
			sel = append(sel, i)
			continue
		}
		k := b.keys[i]
		if fp, ok := w.ids.get(k); ok {
			if storedFP == nil {
				storedFP = map[int]uint64{}
			}
			storedFP[i] = fp
			continue
		}
		if !k.isID {
			k.text = strings.Clone(k.text) // may alias a record buffer
		}
		w.ids.add(k, b.Records[i].FP)
		if w.ids.len()%(1<<16) == 0 {
			w.fitMemoryLimit()
		}
		w.fileIDs = append(w.fileIDs, k)
		sel = append(sel, i)
	}
	w.sel = sel
	// Alias changes and lifecycle events go one by one (their row id is
	// needed for the alias history and event_details); runs of other
	// records go in multi-row INSERTs, which cost a fraction of one
	// statement per row.
	for k := 0; k < len(sel); {
		i := sel[k]
		if oneByOne(&b.Records[i]) {
			if isNew[i], err = w.insertOne(&b.Records[i], &b.keys[i], blockID, offs[i]); err != nil {
				return 0, 0, fmt.Errorf("store event %s: %w", b.Records[i].EventID, err)
			}
			k++
			continue
		}
		j := k
		for j < len(sel) && j-k < multiRows && !oneByOne(&b.Records[sel[j]]) {
			j++
		}
		if err := w.insertMany(b.Records, b.keys, sel[k:j], blockID, offs, isNew); err != nil {
			return 0, 0, fmt.Errorf("store events: %w", err)
		}
		k = j
	}
	for i := range b.Records {
		r := &b.Records[i]
		if !isNew[i] {
			if err := w.checkDuplicate(i, r, &b.keys[i], storedFP); err != nil {
				return 0, 0, err
			}
		}
		if isNew[i] {
			newEvents++
			dk := DayKey{r.Account, r.Region, UnixDay(r.Time)}
			// A map key outlives the record buffer it may alias, so it is
			// cloned when added; and the map is never assigned to for an
			// existing key: Go then replaces the stored key with the new
			// one (string keys), which would alias the buffer again.
			if n := w.newPerDay[dk]; n != nil {
				*n++
			} else {
				dk.Account, dk.Region = strings.Clone(dk.Account), strings.Clone(dk.Region)
				one := 1
				w.newPerDay[dk] = &one
			}
		} else {
			dups++
		}
	}
	// A block whose records were all stored before holds nothing new:
	// skip it (re-ingesting the same events in another file adds no bytes).
	switch {
	case newEvents == 0:
	case b.FileOffs != nil:
		w.fileNew += newEvents // the file's block goes in at CommitFile
	default:
		if _, err := w.insBlock.ExecContext(w.ctx, blockID, w.fileID, CodecDeflate, b.RawSize, b.Block, srcOffsets(b.Records)); err != nil {
			return 0, 0, fmt.Errorf("store raw block: %w", err)
		}
		w.nextBlock++
	}
	w.kmsNew += newEvents
	w.kmsDup += dups
	w.txEvents += len(b.Records)
	return newEvents, dups, nil
}

// oneByOne: records whose row id is needed (see AddBatch).
func oneByOne(r *cloudtrail.Record) bool { return aliasChange(r) || r.HasDetail() }

func aliasChange(r *cloudtrail.Record) bool {
	switch r.Name {
	case "CreateAlias", "UpdateAlias", "DeleteAlias":
		return r.AliasARN != "" && r.ErrorCode == ""
	}
	return false
}

// multiRows is the number of rows per multi-row INSERT (25 columns each,
// well under SQLite's 32766 bound parameters).
const multiRows = 32

const eventColumns = `(time, event_id, name, category, read_only, account, region,
		principal, invoked_by, source_ip, user_agent, key, key2, key_source, alias, error_code, error_message,
		block, off, len, valid_to, deletion_date, rotation_type, key_material, fp)`

const nEventCols = 25

// manyStmt returns the prepared INSERT for n rows.
func (w *Writer) manyStmt(n int) (*sql.Stmt, error) {
	if st := w.insMany[n]; st != nil {
		return st, nil
	}
	st, err := w.conn.PrepareContext(w.ctx, manySQL(n))
	if err != nil {
		return nil, err
	}
	w.insMany[n] = st
	return st, nil
}

func manySQL(n int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", nEventCols), ",") + ")"
	return "INSERT OR IGNORE INTO events " + eventColumns + " VALUES " + strings.TrimSuffix(strings.Repeat(row+",", n), ",")
}

// execMany runs the INSERT of len(args)/nEventCols rows on the driver
// connection and returns how many rows it inserted.
func (w *Writer) execMany(args []any) (int64, error) {
	n := len(args) / nEventCols
	var affected int64
	err := w.conn.Raw(func(dc any) error {
		st := w.rawMany[n]
		if st == nil {
			pc, ok := dc.(driver.ConnPrepareContext)
			if !ok {
				return fmt.Errorf("the SQLite driver (%T) cannot prepare statements directly", dc)
			}
			s, err := pc.PrepareContext(w.ctx, manySQL(n))
			if err != nil {
				return err
			}
			st = s
			w.rawMany[n] = st
		}
		ec, ok := st.(driver.StmtExecContext)
		if !ok {
			return fmt.Errorf("the SQLite driver's statement (%T) cannot execute with a context", st)
		}
		nargs := w.nargs[:len(args)]
		for i, a := range args {
			nargs[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
		}
		res, err := ec.ExecContext(w.ctx, nargs)
		if err != nil {
			return err
		}
		affected, err = res.RowsAffected()
		return err
	})
	return affected, err
}

// insertMany inserts recs[idx[0]], recs[idx[1]], ... in one statement and
// sets isNew of those that were not stored yet.
func (w *Writer) insertMany(all []cloudtrail.Record, keys []eventKey, idx []int, block int64, offs []int, isNew []bool) error {
	args := w.margs[:len(idx)*nEventCols]
	for n, i := range idx {
		if _, _, err := w.fill(&all[i], &keys[i], block, offs[i], args[n*nEventCols:(n+1)*nEventCols]); err != nil {
			return fmt.Errorf("event %s: %w", all[i].EventID, err)
		}
	}
	n, err := w.execMany(args)
	if err != nil {
		return err
	}
	prev := w.maxEvent
	w.maxEvent += n
	if int(n) == len(idx) {
		for m, i := range idx {
			isNew[i] = true
			w.rollAdd(args[m*nEventCols : (m+1)*nEventCols])
		}
		return nil
	}
	if n == 0 {
		return nil
	}
	// Some were duplicates: the new rows are the ids after prev, in order
	// (rowids of an INTEGER PRIMARY KEY table grow from the maximum).
	rows, err := w.conn.QueryContext(w.ctx, `SELECT event_id FROM events WHERE id > ?`, prev)
	if err != nil {
		return err
	}
	defer rows.Close()
	inserted := map[string]bool{}
	for rows.Next() {
		var v any
		if err := rows.Scan(&v); err != nil {
			return err
		}
		inserted[EventIDString(v)] = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	// The first of several copies of an eventID in one statement is the
	// one inserted.
	for m, i := range idx {
		if id := all[i].EventID; inserted[id] {
			isNew[i] = true
			delete(inserted, id)
			w.rollAdd(args[m*nEventCols : (m+1)*nEventCols])
		}
	}
	return nil
}

// insertOne stores one record and, for a successful alias change, its
// place in the alias history.
func (w *Writer) insertOne(r *cloudtrail.Record, k *eventKey, block int64, off int) (bool, error) {
	al, _, err := w.fill(r, k, block, off, w.args)
	if err != nil {
		return false, err
	}
	st, err := w.manyStmt(1)
	if err != nil {
		return false, err
	}
	res, err := st.ExecContext(w.ctx, w.args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return false, err
	}
	w.maxEvent++
	w.rollAdd(w.args)
	var evID int64
	if r.HasDetail() || (al != 0 && aliasChange(r)) {
		if evID, err = res.LastInsertId(); err != nil {
			return true, err
		}
	}
	if r.HasDetail() {
		if _, err := w.insDetail.ExecContext(w.ctx, detailArgs(evID, &r.Detail)...); err != nil {
			return true, fmt.Errorf("store event details: %w", err)
		}
	}
	if al != 0 && aliasChange(r) {
		var target int64
		if r.AliasTarget != "" {
			if target, err = w.key(r.AliasTarget); err != nil {
				return true, err
			}
		}
		if _, err := w.insTarget.ExecContext(w.ctx, al, nullable(target), r.Time, sourceEvent, evID); err != nil {
			return true, err
		}
		// A change at r.Time decides only the events at or after it: pick
		// takes the last change at or before an event.
		w.markAlias(al, r.Time)
	}
	return true, nil
}

// fill writes the 25 column values of r into a.
func (w *Writer) fill(r *cloudtrail.Record, k *eventKey, block int64, off int, a []any) (alias, key int64, err error) {
	id := func(s string) any {
		if err != nil || s == "" {
			return nil
		}
		var v int64
		v, err = w.str(s)
		return v
	}
	a[0] = r.Time
	if k.isID {
		a[1] = k.uuid[:] // the batch outlives the statement; the driver copies it
	} else {
		a[1] = r.EventID
	}
	a[2] = id(r.Name)
	a[3] = int64(r.Category)
	if r.ReadOnly < 0 {
		a[4] = nil
	} else {
		a[4] = int64(r.ReadOnly)
	}
	a[5] = id(r.Account)
	a[6] = id(r.Region)
	var p int64
	if err == nil {
		p, err = w.principal(r)
	}
	a[7] = nullable(p)
	a[8] = id(r.InvokedBy)
	a[9] = id(r.SourceIP)
	a[10] = id(r.UserAgent)
	var k1, k2, al int64
	if err == nil && r.KeyARN != "" {
		k1, err = w.key(r.KeyARN)
	}
	if err == nil && r.KeyARN2 != "" {
		k2, err = w.key(r.KeyARN2)
	}
	if err == nil && r.AliasARN != "" {
		al, err = w.alias(r.AliasARN)
	}
	a[11] = nullable(k1)
	a[12] = nullable(k2)
	a[13] = int64(r.KeySource)
	a[14] = nullable(al)
	a[15] = id(r.ErrorCode)
	if r.ErrorMessage != "" {
		a[16] = r.ErrorMessage
	} else {
		a[16] = nil
	}
	a[17] = block
	a[18] = int64(off)
	a[19] = int64(len(r.Raw))
	a[20] = nullTime(r.ValidTo)
	a[21] = nullTime(r.DeletionDate)
	a[22] = id(r.RotationType)
	a[23] = id(r.KeyMaterialID)
	a[24] = int64(r.FP)
	if al != 0 && k1 == 0 {
		w.pendingAlias[al] = true // to be resolved through the alias history
	}
	return al, k1, err
}

func nullable(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

func nullTime(t int64) any {
	if t == 0 {
		return nil
	}
	return t
}
