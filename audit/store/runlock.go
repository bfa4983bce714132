package store

import (
	"errors"
	"fmt"
	"os"
	"strconv"
)

// Whether an ingest run is alive: while it runs, a run holds an exclusive
// lock on a small file of its own next to the database,
// "<db>-run-<id>.lock". The operating system releases the lock when the
// process ends, however it ends (a kill -9 included), so a run recorded as
// "running" whose lock nobody holds was interrupted, at its last commit
// (runs.heartbeat_at). Another process reading meanwhile (a report, the
// GUI) can tell "an ingest is running" from "an ingest was interrupted at
// TIME" without writing anything. The locks are per open file (flock on
// Unix, LockFileEx on Windows), so a reader in the same process as the
// ingest (the GUI) sees them too.

func runLockPath(db string, run int64) string {
	return db + "-run-" + strconv.FormatInt(run, 10) + ".lock"
}

// runLock is a lock held by the run that took it.
type runLock struct {
	f    *os.File
	path string
}

// lockRun creates the run's lock file and locks it.
func lockRun(db string, run int64) (*runLock, error) {
	p := runLockPath(db, run)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create the run's lock file: %w", err)
	}
	held, err := tryLock(f)
	if err != nil || !held {
		f.Close()
		if err == nil {
			err = errors.New("another process holds it")
		}
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	return &runLock{f: f, path: p}, nil
}

// release unlocks and removes the lock file (closing it releases the lock).
func (l *runLock) release() {
	if l == nil || l.f == nil {
		return
	}
	os.Remove(l.path)
	l.f.Close()
	l.f = nil
}

// runAlive reports whether some process (this one included) holds the
// run's lock. A missing lock file means nobody does.
func runAlive(db string, run int64) (bool, error) {
	f, err := os.OpenFile(runLockPath(db, run), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	got, err := tryLock(f)
	if err != nil {
		return false, err
	}
	if got {
		unlock(f)
		return false, nil
	}
	return true, nil
}

// removeStaleLock deletes the lock file an interrupted run left behind.
func removeStaleLock(db string, run int64) { os.Remove(runLockPath(db, run)) }
