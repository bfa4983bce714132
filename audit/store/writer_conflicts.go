package store

import (
	"bytes"
	"compress/flate"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/keyceremony/keyceremony/audit/cloudtrail"
)

// Conflicts: two records with one eventID that state different facts (a
// successful and a refused Decrypt, say) are evidence that something is
// wrong with one of the deliveries, not duplicates to drop. Each is kept:
// the event row holds the record with the smaller fingerprint
// (cloudtrail.Record.Fingerprint, the SHA-256 of what the record states),
// the conflicts table every other one with its file and offset. The rule
// depends only on the records, never on the order files arrive in (worker
// scheduling, argument order, separate runs), so the same evidence always
// gives the same events.
//
// While files load, a record whose eventID is stored already is compared
// with the stored record's fingerprint; a different one is staged in
// conflicts (state 0, in the file's own savepoint). ResolveConflicts, at
// the end of the ingest, settles each staged record against the event:
// equal after all (an event stored before schema v8, without a
// fingerprint) removes it; otherwise the smaller fingerprint is the
// event's and the other stays as a conflict (state 1), once per differing
// record: when one record was delivered in several files, the conflict
// names one of them.

// Conflict states (conflicts.state).
const (
	ConflictStaged  = 0 // not compared yet (the ingest that found it was interrupted)
	ConflictSettled = 1 // a record differing from the event's
)

// checkDuplicate stages record i, whose eventID is stored already, when
// it states something else than the stored record. storedFP holds the
// stored fingerprints a bulk load knows from its set.
func (w *Writer) checkDuplicate(i int, r *cloudtrail.Record, k *eventKey, storedFP map[int]uint64) error {
	fp, ok := storedFP[i]
	if !ok {
		var v sql.NullInt64
		if err := w.conn.QueryRowContext(w.ctx, `SELECT fp FROM events WHERE event_id = ?`, k.value(r.EventID)).Scan(&v); err != nil {
			return fmt.Errorf("compare event %s with the stored one: %w", r.EventID, err)
		}
		fp = uint64(v.Int64)
	}
	if fp != 0 && fp == r.FP {
		return nil // the same facts: a duplicate delivery
	}
	var off any
	if r.Offset >= 0 {
		off = r.Offset
	}
	if _, err := w.conn.ExecContext(w.ctx, `INSERT INTO conflicts (event_id, file, off, raw, run) VALUES (?,?,?,?,?)`,
		k.value(r.EventID), w.fileID, off, r.Raw, nullable(w.run)); err != nil {
		return fmt.Errorf("keep the conflicting record of event %s: %w", r.EventID, err)
	}
	return nil
}

// value is the event_id column value of an eventID.
func (k *eventKey) value(eventID string) any {
	if k.isID {
		return k.uuid[:]
	}
	return eventID
}

// srcOffsets encodes, for a DEFLATE block, where each record starts in its
// file: per record, the uvarint length of its raw bytes and the uvarint
// of its offset plus one (0: not a slice of the file). nil when no record
// has an offset.
func srcOffsets(recs []cloudtrail.Record) []byte {
	any := false
	for i := range recs {
		if recs[i].Offset >= 0 {
			any = true
			break
		}
	}
	if !any {
		return nil
	}
	b := make([]byte, 0, 6*len(recs))
	for i := range recs {
		b = binary.AppendUvarint(b, uint64(len(recs[i].Raw)))
		b = binary.AppendUvarint(b, uint64(recs[i].Offset+1))
	}
	return b
}

// srcOffsetAt reads from a block's src_offs where the record at off in the
// block starts in its file (-1 when not recorded).
func srcOffsetAt(enc []byte, off int64) int64 {
	pos := int64(0)
	for len(enc) > 0 {
		n, k := binary.Uvarint(enc)
		if k <= 0 {
			return -1
		}
		enc = enc[k:]
		so, k := binary.Uvarint(enc)
		if k <= 0 {
			return -1
		}
		enc = enc[k:]
		if pos == off {
			return int64(so) - 1
		}
		pos += int64(n)
	}
	return -1
}

// stored is the event row a staged record is compared with.
type stored struct {
	id, fp, block, off, n, file, codec int64
	srcOffs                            []byte
}

// ResolveConflicts settles every staged record (this run's, and those an
// interrupted run left) and returns how many differ from their event.
func (w *Writer) ResolveConflicts() (int, error) {
	if w.inFile {
		return 0, errors.New("store: ResolveConflicts inside a file")
	}
	if err := w.begin(); err != nil {
		return 0, err
	}
	settled := 0
	var cache blockCacheConn
	last := int64(0)
	for {
		type staged struct {
			id, file int64
			off      sql.NullInt64
			raw      []byte
		}
		var batch []staged
		rows, err := w.conn.QueryContext(w.ctx, `SELECT id, file, off, raw FROM conflicts WHERE state = 0 AND id > ? ORDER BY id LIMIT 256`, last)
		if err != nil {
			return settled, err
		}
		for rows.Next() {
			var s staged
			if err := rows.Scan(&s.id, &s.file, &s.off, &s.raw); err != nil {
				rows.Close()
				return settled, err
			}
			batch = append(batch, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return settled, err
		}
		if len(batch) == 0 {
			break
		}
		for _, s := range batch {
			last = s.id
			var rec cloudtrail.Record
			if err := cloudtrail.Parse(s.raw, &rec); err != nil {
				return settled, fmt.Errorf("staged record %d: %w", s.id, err)
			}
			rec.FP = rec.Fingerprint()
			rec.Offset = -1
			if s.off.Valid {
				rec.Offset = s.off.Int64
			}
			n, err := w.settle(s.id, s.file, &rec, &cache)
			if err != nil {
				return settled, fmt.Errorf("settle the records of event %s: %w", rec.EventID, err)
			}
			settled += n
		}
	}
	return settled, w.Commit()
}

// settle compares one staged record with its event: 0 when it states the
// same (removed), 1 when it differs (kept as a conflict; the event keeps
// the smaller fingerprint of the two).
func (w *Writer) settle(id, file int64, rec *cloudtrail.Record, cache *blockCacheConn) (int, error) {
	k := keyOf(rec.EventID)
	var e stored
	var fp sql.NullInt64
	err := w.conn.QueryRowContext(w.ctx, `SELECT e.id, e.fp, e.block, e.off, e.len, b.file, b.codec, b.src_offs
		FROM events e JOIN raw_blocks b ON b.id = e.block WHERE e.event_id = ?`, k.value(rec.EventID)).
		Scan(&e.id, &fp, &e.block, &e.off, &e.n, &e.file, &e.codec, &e.srcOffs)
	if err != nil {
		return 0, fmt.Errorf("find the stored event: %w", err)
	}
	var old cloudtrail.Record
	var raw []byte
	readOld := func() error {
		if raw != nil {
			return nil
		}
		if raw, err = cache.raw(w, e.block, e.off, e.n); err != nil {
			return err
		}
		if err := cloudtrail.Parse(raw, &old); err != nil {
			return fmt.Errorf("the stored record: %w", err)
		}
		return nil
	}
	e.fp = fp.Int64
	if !fp.Valid {
		// Stored before schema v8: record its fingerprint now.
		if err := readOld(); err != nil {
			return 0, err
		}
		e.fp = int64(old.Fingerprint())
		if _, err := w.conn.ExecContext(w.ctx, `UPDATE events SET fp = ? WHERE id = ?`, e.fp, e.id); err != nil {
			return 0, err
		}
	}
	drop := func() (int, error) {
		_, err := w.conn.ExecContext(w.ctx, `DELETE FROM conflicts WHERE id = ?`, id)
		return 0, err
	}
	if uint64(e.fp) == rec.FP {
		return drop() // the same facts as the event: a duplicate
	}
	keptApart := func(fp int64) (bool, error) {
		var n int
		err := w.conn.QueryRowContext(w.ctx, `SELECT count(*) FROM conflicts WHERE event_id = ? AND fp = ? AND state = 1`, k.value(rec.EventID), fp).Scan(&n)
		return n > 0, err
	}
	if rec.FP > uint64(e.fp) {
		// One row per record differing from the event: another delivery
		// of a record kept apart already is a duplicate of that one.
		if dup, err := keptApart(int64(rec.FP)); err != nil || dup {
			if err != nil {
				return 0, err
			}
			return drop()
		}
		_, err := w.conn.ExecContext(w.ctx, `UPDATE conflicts SET state = 1, fp = ?, run = ? WHERE id = ?`, int64(rec.FP), nullable(w.run), id)
		return 1, err
	}
	if err := readOld(); err != nil {
		return 0, err
	}
	// The staged record has the smaller fingerprint: it becomes the event,
	// and the stored one the conflict (with its own file and offset).
	oldOff := e.off
	if e.codec != CodecGzip {
		oldOff = srcOffsetAt(e.srcOffs, e.off)
	}
	if err := w.replaceEvent(e, file, rec, &old); err != nil {
		return 0, err
	}
	if dup, err := keptApart(e.fp); err != nil || dup {
		if err != nil {
			return 0, err
		}
		return drop()
	}
	var off any
	if oldOff >= 0 {
		off = oldOff
	}
	_, err = w.conn.ExecContext(w.ctx, `UPDATE conflicts SET state = 1, fp = ?, file = ?, off = ?, raw = ?, run = ? WHERE id = ?`,
		e.fp, e.file, off, raw, nullable(w.run), id)
	return 1, err
}

// replaceEvent puts rec (read from file, Raw its bytes) in the place of
// the event row e, whose record old it was: its evidence block, columns,
// details and alias history, and the counts that name which file brought
// the event.
func (w *Writer) replaceEvent(e stored, file int64, rec *cloudtrail.Record, old *cloudtrail.Record) error {
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, 2)
	fw.Write(rec.Raw)
	if err := fw.Close(); err != nil {
		return err
	}
	block := w.nextBlock
	one := []cloudtrail.Record{*rec}
	if _, err := w.insBlock.ExecContext(w.ctx, block, file, CodecDeflate, len(rec.Raw), buf.Bytes(), srcOffsets(one)); err != nil {
		return fmt.Errorf("store the record's evidence: %w", err)
	}
	w.nextBlock++
	k := keyOf(rec.EventID)
	args := make([]any, nEventCols)
	al, _, err := w.fill(rec, &k, block, 0, args)
	if err != nil {
		return err
	}
	var oldAlias sql.NullInt64
	if err := w.conn.QueryRowContext(w.ctx, `SELECT alias FROM events WHERE id = ?`, e.id).Scan(&oldAlias); err != nil {
		return err
	}
	// The event leaves its group for the record's.
	if err := w.rollOut(`WHERE id = ?`, e.id); err != nil {
		return err
	}
	w.rollAdd(args)
	if oldAlias.Valid {
		w.markAlias(oldAlias.Int64, math.MinInt64)
	}
	set := `UPDATE events SET ` + eventColumns + ` = (` + placeholders(nEventCols) + `) WHERE id = ?`
	if _, err := w.conn.ExecContext(w.ctx, set, append(args, e.id)...); err != nil {
		return fmt.Errorf("replace the event: %w", err)
	}
	if _, err := w.conn.ExecContext(w.ctx, `DELETE FROM event_details WHERE event = ?`, e.id); err != nil {
		return err
	}
	if rec.HasDetail() {
		if _, err := w.insDetail.ExecContext(w.ctx, detailArgs(e.id, &rec.Detail)...); err != nil {
			return err
		}
	}
	if _, err := w.conn.ExecContext(w.ctx, `DELETE FROM alias_targets WHERE source = ? AND event = ?`, sourceEvent, e.id); err != nil {
		return err
	}
	if al != 0 && aliasChange(rec) {
		var target int64
		if rec.AliasTarget != "" {
			if target, err = w.key(rec.AliasTarget); err != nil {
				return err
			}
		}
		if _, err := w.insTarget.ExecContext(w.ctx, al, nullable(target), rec.Time, sourceEvent, e.id); err != nil {
			return err
		}
		w.markAlias(al, math.MinInt64)
	}
	// The event now comes from file, no longer from the stored record's.
	if _, err := w.conn.ExecContext(w.ctx, `UPDATE files SET kms_new = kms_new - 1, kms_dup = kms_dup + 1 WHERE id = ?`, e.file); err != nil {
		return err
	}
	if _, err := w.conn.ExecContext(w.ctx, `UPDATE files SET kms_new = kms_new + 1, kms_dup = kms_dup - 1 WHERE id = ?`, file); err != nil {
		return err
	}
	oldDay, newDay := dayString(UnixDay(old.Time)), dayString(UnixDay(rec.Time))
	if old.Account != rec.Account || old.Region != rec.Region || oldDay != newDay {
		if _, err := w.conn.ExecContext(w.ctx, `UPDATE coverage SET kms_events = kms_events - 1 WHERE account = ? AND region = ? AND day = ?`,
			old.Account, old.Region, oldDay); err != nil {
			return err
		}
		if _, err := w.covUpsert.ExecContext(w.ctx, rec.Account, rec.Region, newDay, 0, 0, 0, 1); err != nil {
			return err
		}
	}
	return nil
}

func placeholders(n int) string {
	b := make([]byte, 0, 2*n)
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '?')
	}
	return string(b)
}

// blockCacheConn keeps the last block read through the writer's
// connection (staged records of one file usually point into one block).
type blockCacheConn struct {
	id   int64
	data []byte
}

func (c *blockCacheConn) raw(w *Writer, block, off, n int64) ([]byte, error) {
	if c.data == nil || c.id != block {
		data, err := readBlock(w.ctx, w.conn, block)
		if err != nil {
			return nil, err
		}
		c.id, c.data = block, data
	}
	if off < 0 || off+n > int64(len(c.data)) {
		return nil, fmt.Errorf("raw record outside its block %d (database damaged?)", block)
	}
	return append([]byte(nil), c.data[off:off+n]...), nil
}

// AliasesDirty reports whether some alias's events need resolving again.
func (w *Writer) AliasesDirty() bool { return len(w.dirtyAlias)+len(w.pendingAlias) > 0 }
