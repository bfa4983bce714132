package store

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"time"
)

// A bulk load: the secondary indexes and the UNIQUE index on event_id are
// dropped, and duplicates are found in an in-memory set of every stored
// eventID instead.

// eventKey is an eventID as the UNIQUE index compares it: the 16 bytes of
// a canonical UUID (stored as a blob), or the text of anything else.
type eventKey struct {
	uuid [16]byte
	text string // "" for a UUID
	isID bool   // a UUID
}

// idSet is the set of stored eventIDs a bulk load deduplicates with, each
// with the fingerprint of the record stored (0 when unknown: stored
// before schema v8), to tell a duplicate from a conflict.
type idSet struct {
	uuids *uuidTable
	texts map[string]uint64 // ids that are not UUIDs (rare: hand-made records)
}

func keyOf(id string) eventKey {
	if u, ok := uuid16(id); ok {
		return eventKey{uuid: u, isID: true}
	}
	return eventKey{text: id}
}

// get returns the stored record's fingerprint, if the eventID is stored.
func (s *idSet) get(k eventKey) (uint64, bool) {
	if k.isID {
		return s.uuids.get(k.uuid)
	}
	fp, ok := s.texts[k.text]
	return fp, ok
}

func (s *idSet) add(k eventKey, fp uint64) {
	if k.isID {
		s.uuids.put(k.uuid, fp)
	} else {
		s.texts[k.text] = fp
	}
}

func (s *idSet) del(k eventKey) {
	if k.isID {
		s.uuids.del(k.uuid)
	} else {
		delete(s.texts, k.text)
	}
}

func (s *idSet) len() int { return s.uuids.len() + len(s.texts) }

// bytes is about what the set holds: the UUID table, and the text ids at
// a generous 64 bytes each (map slot, string header and bytes).
func (s *idSet) bytes() int64 { return s.uuids.bytes() + int64(len(s.texts))*64 }

// DefaultMaxBulkIDs is Writer.MaxBulkIDs unless set: 24M eventIDs, about
// 0.8 GB of set (uuidTable). It is a bound, not a tuning: deduplicating
// through the UNIQUE index instead costs far more (measured 2026-12-03
// with a cap of 3M on the 10M-event tree: past the cap the load went on at
// less than half its speed), so the cap sits where the set's memory, not
// its speed, becomes the problem on a 16 GB laptop.
const DefaultMaxBulkIDs = 24 << 20

func (w *Writer) dropIDs() {
	if w.ids != nil {
		w.ids = nil
		w.fileIDs = nil
		w.fitMemoryLimit()
		debug.FreeOSMemory() // tens of MiB at a million events
	}
}

// fitMemoryLimit raises the process's soft memory limit (debug.SetMemoryLimit,
// which the CLI sets to keep the short-lived parsed batches from piling
// up) by the size of the eventID set while it lives, and puts it back
// when the set goes: the set is long-lived, and a limit it fills leaves
// the collector running back to back to no avail (measured 2026-12-03 on
// the 10M-event tree: 1,653 collections in the first 100 s, a fifth of
// the CPU, the heap at its goal of 491 MB after each). No limit set:
// nothing to do.
func (w *Writer) fitMemoryLimit() {
	if w.baseLimit < 0 {
		w.baseLimit = debug.SetMemoryLimit(-1)
	}
	if w.baseLimit == math.MaxInt64 {
		return
	}
	lim := w.baseLimit
	if w.ids != nil {
		// A set under half the limit leaves the rest room enough, and
		// raising the limit then only lets the heap grow (at a million
		// events, 45 MiB more peak RSS for no gain).
		if set := w.ids.bytes(); set >= w.baseLimit/2 {
			lim += set
		}
	}
	debug.SetMemoryLimit(lim)
}

// capIDs ends the in-memory deduplication of a bulk load whose set has
// reached MaxBulkIDs, between files: the transaction commits, the set is
// dropped, and the next transaction (begin, syncOthers) builds the UNIQUE
// index before it writes an event.
func (w *Writer) capIDs() error {
	if w.ids == nil || w.MaxBulkIDs <= 0 || w.ids.len() < w.MaxBulkIDs {
		return nil
	}
	if err := w.Commit(); err != nil {
		return err
	}
	w.dropIDs()
	return nil
}

// loadIDs reads every stored eventID into a new set.
func (w *Writer) loadIDs() error {
	// The ingest estimates new events from the files' sizes: 21 % low on
	// the generated trails (793,226 for 1,000,000). A shard that fills
	// grows by half, so a low guess costs a little time and memory.
	size := w.maxEvent + max(w.BulkEvents, 0)*13/10
	if w.MaxBulkIDs > 0 {
		size = min(size, int64(w.MaxBulkIDs))
	}
	set := &idSet{uuids: newUUIDTable(int(size)), texts: map[string]uint64{}}
	rows, err := w.conn.QueryContext(w.ctx, `SELECT event_id, coalesce(fp, 0) FROM events`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var v any
		var fp int64
		if err := rows.Scan(&v, &fp); err != nil {
			return err
		}
		switch v := v.(type) {
		case []byte:
			if len(v) != 16 {
				return fmt.Errorf("store: event_id blob of %d bytes", len(v))
			}
			set.uuids.put([16]byte(v), uint64(fp))
		case string:
			set.texts[v] = uint64(fp)
		default:
			return fmt.Errorf("store: event_id of type %T", v)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	w.ids = set
	w.fitMemoryLimit()
	return nil
}

// EventCount is the number of stored events (a bulk-load heuristic).
func (w *Writer) EventCount() (int64, error) {
	var n int64
	err := w.conn.QueryRowContext(w.ctx, `SELECT coalesce(max(id),0) FROM events`).Scan(&n)
	return n, err
}

// DropIndexes starts a bulk load: the secondary indexes and the UNIQUE
// index on event_id go until BuildIndexes (or the next ingest) recreates
// them. Deduplication moves to memory: every stored eventID is loaded into
// a set, which the load extends; begin checks that no other connection
// writes meanwhile, and if one does, rebuilds the UNIQUE index before
// writing anything else. A load killed half-way leaves unique events
// without the index; the next writer builds it before its first event.
func (w *Writer) DropIndexes() error {
	if w.inFile {
		return errors.New("store: DropIndexes inside a file")
	}
	if w.inTx {
		if err := w.Commit(); err != nil {
			return err
		}
	}
	// Not begin: it would build the UNIQUE index a killed load left out.
	if err := w.exec("BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin write transaction: %w", err)
	}
	w.inTx, w.txEvents, w.txStarted = true, 0, time.Now()
	if err := w.loadCounters(); err != nil {
		return err
	}
	// A table that holds MaxBulkIDs events already would fill the set at
	// once: its UNIQUE index stays, and only the secondary ones go.
	keepUnique := w.MaxBulkIDs > 0 && w.maxEvent >= int64(w.MaxBulkIDs)
	for _, ix := range allIndexes() {
		if keepUnique && ix.name == uniqueIndex.name {
			continue
		}
		if err := w.exec("DROP INDEX IF EXISTS " + ix.name); err != nil {
			return fmt.Errorf("drop index %s: %w", ix.name, err)
		}
	}
	if !keepUnique {
		if err := w.loadIDs(); err != nil {
			return fmt.Errorf("read event ids: %w", err)
		}
	}
	if err := w.Commit(); err != nil {
		w.dropIDs()
		return err
	}
	// Our own commits leave data_version as it is; anyone else's changes it.
	v, err := w.dataVersion()
	if err != nil {
		w.dropIDs()
		return err
	}
	w.ver = v
	return nil
}

// BuildIndexes creates the secondary indexes that are missing.
func (w *Writer) BuildIndexes() error {
	if w.inFile {
		return errors.New("store: BuildIndexes inside a file")
	}
	// The build is the one part of a load with a core to spare (the
	// workers are done): the sorter's helper threads sort its runs on the
	// others. Measured on the quiet 2-core machine (2026-12-03, 1M events,
	// alternated): indexing 12.9 s with none, 9.4-9.6 s with two. (On
	// 2026-11-23 under other builds they measured no better: under load
	// there is no core to spare.)
	// The sorter keeps up to cache_size in memory and, with temp_store=MEMORY,
	// its spilled runs too: for the build, a smaller cache and on-disk temp
	// runs keep the process under its memory target (the runs stay in the
	// OS page cache anyway).
	w.exec(fmt.Sprintf("PRAGMA threads = %d", min(runtime.GOMAXPROCS(0), 4)))
	w.exec("PRAGMA temp_store = FILE")
	w.exec("PRAGMA cache_size = -16384")
	defer func() {
		w.exec("PRAGMA temp_store = MEMORY")
		w.exec("PRAGMA cache_size = -49152")
	}()
	if err := w.begin(); err != nil {
		return err
	}
	// The set is no longer needed once the UNIQUE index is back; freeing
	// it first leaves its memory to the sorter.
	w.dropIDs()
	for _, ix := range allIndexes() {
		if err := w.exec(ix.sql); err != nil {
			return fmt.Errorf("build index %s: %w", ix.name, err)
		}
	}
	return w.Commit()
}
