package store

import (
	"context"
	"database/sql"
	"time"
)

// Run states, as a reader sees them (RunInfo.State).
const (
	RunDone        = "done"
	RunCancelled   = "cancelled" // stopped by the user at a file boundary
	RunFailed      = "failed"    // stopped by a database error
	RunRunning     = "running"   // its process holds its lock now
	RunInterrupted = "interrupted"
)

// RunInfo is one ingest run with its state.
type RunInfo struct {
	ID        int64
	StartedAt time.Time
	// FinishedAt is zero for a run that is running or was interrupted.
	FinishedAt time.Time
	// HeartbeatAt is the run's last commit: where an interrupted run
	// stopped (zero for runs recorded before schema v7).
	HeartbeatAt time.Time
	Args        string
	// State is Status as recorded, except that a run recorded "running"
	// whose process no longer holds its lock is RunInterrupted.
	State                          string
	PID                            int64
	Host                           string
	FilesOK, FilesDup, FilesFailed int
	KMSNew, KMSDup, NonKMS         int
	Skipped, Warnings              int
}

// Runs lists every ingest run, oldest first, telling a run that is
// running (its process holds its lock) from one that was interrupted.
func (s *Store) Runs(ctx context.Context) ([]RunInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, started_at, finished_at, heartbeat_at, args, status, pid, host,
		files_ok, files_dup, files_failed, kms_new, kms_dup, non_kms, skipped, warnings FROM runs ORDER BY id`)
	if err != nil {
		return nil, err
	}
	var out []RunInfo
	for rows.Next() {
		var r RunInfo
		var started int64
		var finished, beat, pid sql.NullInt64
		var host sql.NullString
		if err := rows.Scan(&r.ID, &started, &finished, &beat, &r.Args, &r.State, &pid, &host, &r.FilesOK, &r.FilesDup,
			&r.FilesFailed, &r.KMSNew, &r.KMSDup, &r.NonKMS, &r.Skipped, &r.Warnings); err != nil {
			rows.Close()
			return nil, err
		}
		r.StartedAt, r.FinishedAt, r.HeartbeatAt = time.Unix(started, 0).UTC(), ptime(finished), ptime(beat)
		r.PID, r.Host = pid.Int64, host.String
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].State != RunRunning {
			continue
		}
		alive, err := runAlive(s.path, out[i].ID)
		if err != nil {
			return nil, err
		}
		if !alive {
			out[i].State = RunInterrupted
		}
	}
	return out, nil
}

// RunNoteInfo is a run note with its run.
type RunNoteInfo struct {
	Run int64
	RunNote
}

// RunNotes lists what every run skipped and warned about, by run, then
// in the order recorded.
func (s *Store) RunNotes(ctx context.Context) ([]RunNoteInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT run, kind, path, reason, coalesce(detail, '') FROM run_notes ORDER BY run, rowid`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []RunNoteInfo
	for rows.Next() {
		var n RunNoteInfo
		if err := rows.Scan(&n.Run, &n.Kind, &n.Path, &n.Reason, &n.Detail); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}
