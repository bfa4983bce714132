package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// The writer's transactions: one per many files, a SAVEPOINT per file, the
// run record, and rolling a file back alone.

func (w *Writer) begin() error {
	if w.inTx {
		return nil
	}
	if err := w.exec("BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin write transaction: %w", err)
	}
	w.inTx, w.txEvents, w.txStarted = true, 0, time.Now()
	if err := w.syncOthers(); err != nil {
		w.conn.ExecContext(context.WithoutCancel(w.ctx), "ROLLBACK")
		w.inTx = false
		w.rollReset()
		return fmt.Errorf("begin write transaction: %w", err)
	}
	return nil
}

// syncOthers runs at the start of every write transaction, holding the
// write lock. If another connection (another ingest) has committed since
// this writer's last transaction, the row-id counters are read again and
// a bulk load's in-memory eventID set is abandoned: events may be written
// without the UNIQUE index on event_id only by the bulk load that dropped
// it, and only while its set is complete. Without a set, a missing index
// (a bulk load running elsewhere, or killed) is built before any event is
// written; what is committed is unique, so the build cannot fail on
// duplicates.
func (w *Writer) syncOthers() error {
	v, err := w.dataVersion()
	if err != nil {
		return err
	}
	if v != w.ver {
		if err := w.loadCounters(); err != nil {
			return err
		}
		w.dropIDs()
		w.ver = v
		w.othersWrote = true
	}
	if w.ids != nil {
		return nil
	}
	var n int
	if err := w.conn.QueryRowContext(w.ctx, `SELECT count(*) FROM sqlite_schema WHERE type='index' AND name=?`,
		uniqueIndex.name).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		if err := w.exec(uniqueIndex.sql); err != nil {
			return fmt.Errorf("build index %s: %w", uniqueIndex.name, err)
		}
	}
	return nil
}

func (w *Writer) dataVersion() (int64, error) {
	var v int64
	err := w.conn.QueryRowContext(w.ctx, "PRAGMA data_version").Scan(&v)
	return v, err
}

// Commit makes everything written so far durable. It is called on its own
// by CommitFile when the transaction is large or old, and by the ingest at
// the end; between files it is always safe.
func (w *Writer) Commit() error {
	if w.inFile {
		return errors.New("store: Commit inside a file")
	}
	if !w.inTx {
		return nil
	}
	// The rollups of what the transaction wrote commit with it.
	if err := w.rollFlush(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if w.run != 0 && w.lock != nil {
		// The run's heartbeat: the time of its last commit, which is where
		// it stopped if it is killed.
		if _, err := w.conn.ExecContext(w.ctx, `UPDATE runs SET heartbeat_at = ? WHERE id = ?`, time.Now().Unix(), w.run); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	if _, err := w.conn.ExecContext(context.WithoutCancel(w.ctx), "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	w.inTx = false
	return nil
}

// StartRun records an ingest run and returns its id. The run takes its
// lock (runlock.go) before its row becomes visible, so a reader never sees
// it "running" without a live lock; runs found "running" whose process is
// gone are marked interrupted here, and their stale lock files removed.
func (w *Writer) StartRun(args []string) (int64, error) {
	if w.inTx {
		if err := w.Commit(); err != nil {
			return 0, err
		}
	}
	// Not begin: it would build the UNIQUE index a killed bulk load left
	// out, which a new bulk load is about to drop again. Nothing but the
	// runs table is written here.
	if err := w.exec("BEGIN IMMEDIATE"); err != nil {
		return 0, fmt.Errorf("record ingest run: %w", err)
	}
	w.inTx, w.txEvents, w.txStarted = true, 0, time.Now()
	fail := func(err error) (int64, error) {
		w.conn.ExecContext(context.WithoutCancel(w.ctx), "ROLLBACK")
		w.inTx = false
		w.rollReset()
		return 0, fmt.Errorf("record ingest run: %w", err)
	}
	if err := w.markInterrupted(); err != nil {
		return fail(err)
	}
	host, _ := os.Hostname()
	now := time.Now().Unix()
	res, err := w.conn.ExecContext(w.ctx, `INSERT INTO runs (started_at, args, pid, host, heartbeat_at) VALUES (?, ?, ?, ?, ?)`,
		now, strings.Join(args, " "), os.Getpid(), host, now)
	if err != nil {
		return fail(err)
	}
	if w.run, err = res.LastInsertId(); err != nil {
		return fail(err)
	}
	if w.lock, err = lockRun(w.s.path, w.run); err != nil {
		w.run = 0
		return fail(err)
	}
	return w.run, w.Commit()
}

// markInterrupted marks the runs recorded as running whose process no
// longer holds their lock (killed, or crashed) as interrupted.
func (w *Writer) markInterrupted() error {
	rows, err := w.conn.QueryContext(w.ctx, `SELECT id FROM runs WHERE status = 'running'`)
	if err != nil {
		return err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		alive, err := runAlive(w.s.path, id)
		if err != nil || alive {
			continue // alive (another ingest), or not knowable here: left as it is
		}
		if _, err := w.conn.ExecContext(w.ctx, `UPDATE runs SET status = 'interrupted' WHERE id = ?`, id); err != nil {
			return err
		}
		removeStaleLock(w.s.path, id)
	}
	return nil
}

// RunTotals are the counters of a finished run.
type RunTotals struct {
	FilesOK, FilesDup, FilesFailed int
	KMSNew, KMSDup, NonKMS         int
	Status                         string // done, cancelled, failed
	// Notes are the entries the run skipped and its warnings.
	Notes []RunNote
}

// Run note kinds (run_notes.kind).
const (
	NoteSkipped = "skipped"
	NoteWarning = "warning"
)

// RunNote is one entry a run skipped (Path, Reason, Detail) or one warning
// (Reason).
type RunNote struct {
	Kind, Path, Reason, Detail string
}

// FinishRun commits and closes the run record with its notes, and
// releases the run's lock. A failed run (a database error stopped it)
// first rolls back what was not committed.
func (w *Writer) FinishRun(t RunTotals) error {
	defer w.lock.release()
	if t.Status == "failed" {
		if w.inFile {
			w.rollbackFile()
		}
		if w.inTx {
			w.conn.ExecContext(context.WithoutCancel(w.ctx), "ROLLBACK")
			w.inTx = false
			w.rollReset()
		}
	}
	if err := w.Commit(); err != nil {
		return err
	}
	if w.run == 0 {
		return nil
	}
	ctx := context.WithoutCancel(w.ctx)
	if err := w.begin(); err != nil {
		return err
	}
	skipped, warnings := 0, 0
	for _, n := range t.Notes {
		if n.Kind == NoteWarning {
			warnings++
		} else {
			skipped++
		}
		if _, err := w.conn.ExecContext(ctx, `INSERT INTO run_notes (run, kind, path, reason, detail) VALUES (?,?,?,?,?)`,
			w.run, n.Kind, n.Path, n.Reason, nullStr(n.Detail)); err != nil {
			return fmt.Errorf("record the run's notes: %w", err)
		}
	}
	now := time.Now().Unix()
	if _, err := w.conn.ExecContext(ctx, `UPDATE runs SET finished_at=?, heartbeat_at=?, files_ok=?, files_dup=?,
		files_failed=?, kms_new=?, kms_dup=?, non_kms=?, skipped=?, warnings=?, status=? WHERE id=?`,
		now, now, t.FilesOK, t.FilesDup, t.FilesFailed, t.KMSNew, t.KMSDup, t.NonKMS, skipped, warnings, t.Status, w.run); err != nil {
		return err
	}
	return w.Commit()
}

// KnownSHA reports whether a file with this SHA-256 is already loaded
// (including files loaded earlier in the current, uncommitted transaction).
func (w *Writer) KnownSHA(sum [32]byte) (int64, bool, error) {
	var id int64
	err := w.selFileBySHA.QueryRowContext(w.ctx, sum[:]).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return id, err == nil, err
}

// BeginFile starts a file. With savepoint, the file's rows can be rolled
// back alone (AbortFile) and a file whose SHA-256 turns out to be loaded
// already is undone at CommitFile: the ingest uses it for files it streams,
// whose end it has not seen yet. Without, the caller has already parsed the
// whole file and checked its SHA-256, and saves SQLite the sub-journal
// (a copy of every page the file touches), which costs more than the inserts.
func (w *Writer) BeginFile(meta FileMeta, savepoint bool) error {
	if w.inFile {
		return errors.New("store: BeginFile inside a file")
	}
	if err := w.begin(); err != nil {
		return err
	}
	if savepoint {
		if err := w.exec("SAVEPOINT file"); err != nil {
			return fmt.Errorf("begin file %s: %w", meta.Path, err)
		}
	}
	w.inFile, w.savepoint, w.meta = true, savepoint, meta
	w.fileID = w.nextFile
	w.savedBlock = w.nextBlock
	w.fileBlock, w.fileNew = 0, 0
	w.kmsNew, w.kmsDup = 0, 0
	clear(w.newPerDay)
	w.undo = w.undo[:0]
	w.fileIDs = w.fileIDs[:0]
	clear(w.rollFile)
	return nil
}

// CommitFile ends a file. A file whose SHA-256 is already in the database
// is rolled back and only its name recorded.
func (w *Writer) CommitFile(end FileEnd) (FileResult, error) {
	if !w.inFile {
		return FileResult{}, errors.New("store: CommitFile outside a file")
	}
	now := time.Now().Unix()
	if !w.savepoint {
		// The caller checked the SHA-256 before writing.
	} else if id, dup, err := w.KnownSHA(end.SHA256); err != nil {
		return FileResult{}, w.abort(err)
	} else if dup {
		if err := w.rollbackFile(); err != nil {
			return FileResult{}, err
		}
		if _, err := w.insName.ExecContext(w.ctx, id, w.meta.Path, now); err != nil {
			return FileResult{}, fmt.Errorf("record file name: %w", err)
		}
		return FileResult{FileID: id, Duplicate: true}, nil
	}
	m := w.meta
	var first, last any
	if end.Records > 0 {
		first, last = end.FirstTime, end.LastTime
	}
	if w.fileNew > 0 {
		if end.Block == nil || end.BlockCodec == 0 {
			return FileResult{}, w.abort(errors.New("store: records point into the file's own block, but it was not given"))
		}
		if _, err := w.insBlock.ExecContext(w.ctx, w.fileBlock, w.fileID, end.BlockCodec, end.BlockSize, end.Block, nil); err != nil {
			return FileResult{}, w.abort(fmt.Errorf("store raw block: %w", err))
		}
	}
	_, err := w.insFile.ExecContext(w.ctx, w.fileID, end.SHA256[:], m.Size, m.Path, end.Format, m.Compression,
		end.Records, w.kmsNew, w.kmsDup, end.NonKMS, first, last,
		nullStr(m.Account), nullStr(m.Region), nullStr(m.Day), now, nullable(w.run))
	if err == nil {
		_, err = w.insName.ExecContext(w.ctx, w.fileID, m.Path, now)
	}
	if err == nil {
		err = w.coverage(end)
	}
	if err == nil {
		err = w.putPCA(end.PCA)
	}
	if err != nil {
		return FileResult{}, w.abort(fmt.Errorf("record file: %w", err))
	}
	if w.savepoint {
		if err := w.exec("RELEASE file"); err != nil {
			return FileResult{}, w.abort(fmt.Errorf("release file: %w", err))
		}
	}
	w.inFile = false
	w.rollTx.mergeAll(w.rollFile)
	clear(w.rollFile)
	w.nextFile++
	res := FileResult{FileID: w.fileID, KMSNew: w.kmsNew, KMSDup: w.kmsDup}
	if w.txEvents >= w.MaxTxEvents || time.Since(w.txStarted) >= w.MaxTxAge {
		if err := w.Commit(); err != nil {
			return res, err
		}
	}
	return res, w.capIDs()
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// errNoSavepoint: a file written without a savepoint cannot be undone
// alone; the whole open transaction must go (the caller treats it as fatal
// and Close rolls back).
var errNoSavepoint = errors.New("store: file written without a savepoint cannot be rolled back alone")

func (w *Writer) rollbackFile() error {
	if !w.savepoint {
		w.inFile = false
		if _, err := w.conn.ExecContext(context.WithoutCancel(w.ctx), "ROLLBACK"); err == nil {
			w.inTx = false
		}
		w.resetCaches()
		w.rollReset()
		return errNoSavepoint
	}
	if err := w.exec("ROLLBACK TO file"); err != nil {
		return fmt.Errorf("roll back file: %w", err)
	}
	if err := w.exec("RELEASE file"); err != nil {
		return fmt.Errorf("roll back file: %w", err)
	}
	for i := len(w.undo) - 1; i >= 0; i-- {
		w.undo[i]()
	}
	clear(w.rollFile)
	w.undo = w.undo[:0]
	if w.ids != nil {
		for _, k := range w.fileIDs {
			w.ids.del(k)
		}
	}
	w.fileIDs = w.fileIDs[:0]
	w.nextBlock = w.savedBlock
	w.inFile = false
	return nil
}

func (w *Writer) abort(err error) error {
	if rerr := w.rollbackFile(); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}

// AbortFile rolls the current file back and records why it failed. sum may
// be nil when the file could not be read to the end.
func (w *Writer) AbortFile(cause error, sum []byte) error {
	if w.inFile {
		if err := w.rollbackFile(); err != nil {
			return err
		}
	}
	return w.RecordFailure(w.meta, cause, sum)
}

// RecordFailure notes a file that could not be loaded.
func (w *Writer) RecordFailure(meta FileMeta, cause error, sum []byte) error {
	if err := w.begin(); err != nil {
		return err
	}
	var s any
	if len(sum) > 0 {
		s = sum
	}
	_, err := w.insFailure.ExecContext(w.ctx, nullable(w.run), meta.Path, meta.Size, s, cause.Error(), time.Now().Unix())
	return err
}

// RecordName notes that a file already loaded was seen under another name.
func (w *Writer) RecordName(fileID int64, path string) error {
	if err := w.begin(); err != nil {
		return err
	}
	_, err := w.insName.ExecContext(w.ctx, fileID, path, time.Now().Unix())
	return err
}

// AbortFileQuietly rolls the current file back without recording a failure
// (the run was cancelled: the file is not at fault and will load next time).
func (w *Writer) AbortFileQuietly() error {
	if !w.inFile {
		return nil
	}
	return w.rollbackFile()
}
