// Package store is the SQLite database of the audit: KMS events with their
// raw CloudTrail evidence, the provenance of every ingested file, per-day
// coverage, and the key inventory. It owns the schema and its migrations,
// the single writer the ingest pipeline feeds, and the read APIs the reports
// and the GUI use.
//
// The database is a plain SQLite file (modernc.org/sqlite, no cgo) in WAL
// mode, so readers (the GUI's event table) keep working while an ingest
// writes. Files it creates are 0600.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Store is an open audit database. It is safe for concurrent use; writes go
// through one Writer at a time (SQLite allows a single writer).
type Store struct {
	db   *sql.DB
	path string
}

// DefaultPath is os.UserConfigDir()/keyceremony/audit.db.
func DefaultPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the user config directory for the audit database: %w", err)
	}
	return filepath.Join(dir, "keyceremony", "audit.db"), nil
}

// dsn builds a SQLite URI. Pragmas: WAL so readers never block the writer,
// synchronous=NORMAL (durable against a crashed or killed process, which is
// what matters for an ingest that can simply be re-run; a power loss may
// drop the last commits but never corrupts), a busy timeout so a reader
// opening mid-checkpoint waits instead of failing, and a 48 MiB page cache
// to keep index pages of a bulk load in memory.
func dsn(path string) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	// page_size only takes effect on a new database, and must come before
	// WAL is enabled: 16 KiB pages mean a quarter of the I/O calls of the
	// 4 KiB default and hold the compressed evidence blocks with less overflow.
	return "file:" + esc.Replace(path) +
		"?_pragma=page_size(16384)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)" +
		"&_pragma=foreign_keys(0)&_pragma=cache_size(-49152)&_pragma=temp_store(MEMORY)"
}

// Open opens (creating if needed) the database at path and upgrades its
// schema. The directory is created 0700 and the file 0600.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open audit database %s: %w", path, err)
	}
	// Create the file ourselves so it is 0600 from its first byte; SQLite
	// gives the -wal and -shm files the same mode as the database.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit database %s: %w", path, err)
	}
	f.Close()
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("open audit database %s: %w", path, err)
	}
	// A handful of connections: one writer plus concurrent readers.
	db.SetMaxOpenConns(4)
	s := &Store{db: db, path: path}
	if err := s.migrate(ctx, SchemaVersion); err != nil {
		db.Close()
		return nil, fmt.Errorf("open audit database %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Path is the database file.
func (s *Store) Path() string { return s.path }

// DB exposes the database for read-only ad-hoc queries (reports may need
// SQL this package does not anticipate). Never write through it.
func (s *Store) DB() *sql.DB { return s.db }

// ErrNewerSchema means the database was written by a newer keyceremony.
var ErrNewerSchema = errors.New("database schema is newer than this program")

// Version returns the schema version of the database.
func (s *Store) Version(ctx context.Context) (int, error) {
	return version(ctx, s.db)
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func version(ctx context.Context, q querier) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type='table' AND name='schema_version'`).Scan(&n)
	if err != nil || n == 0 {
		return 0, err
	}
	var v int
	err = q.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
	return v, err
}

// migrate upgrades the schema to target inside one IMMEDIATE transaction:
// two processes opening an old database at once serialise here, and a
// failure rolls the whole upgrade back.
func (s *Store) migrate(ctx context.Context, target int) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("lock for schema upgrade: %w", err)
	}
	done := false
	defer func() {
		if !done {
			conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	v, err := version(ctx, conn)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("%w: the database is at schema v%d, this keyceremony knows up to v%d; use a newer keyceremony", ErrNewerSchema, v, len(migrations))
	}
	for i := v; i < target; i++ {
		if _, err := conn.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("upgrade schema v%d to v%d: %w", i, i+1, err)
		}
		if code := migrationCode[i]; code != nil {
			if err := code(ctx, conn); err != nil {
				return fmt.Errorf("upgrade schema v%d to v%d: %w", i, i+1, err)
			}
		}
		if _, err := conn.ExecContext(ctx, `UPDATE schema_version SET version = ?`, i+1); err != nil {
			return fmt.Errorf("upgrade schema v%d to v%d: %w", i, i+1, err)
		}
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit schema upgrade: %w", err)
	}
	done = true
	return nil
}

// MissingIndexes lists the indexes a bulk load dropped and has not
// rebuilt yet: the load is running, or was killed (the next ingest
// rebuilds them; queries still work meanwhile, only slower). Open does not
// rebuild them itself so that a reader opening the database during a bulk
// load never competes with it for the write lock.
func (s *Store) MissingIndexes(ctx context.Context) ([]string, error) {
	var names []string
	for _, ix := range allIndexes() {
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type='index' AND name=?`, ix.name).Scan(&n); err != nil {
			return nil, err
		}
		if n == 0 {
			names = append(names, ix.name)
		}
	}
	return names, nil
}

// allIndexes is the unique index on event_id then the secondary indexes.
func allIndexes() []struct{ name, sql string } {
	return append([]struct{ name, sql string }{uniqueIndex}, secondaryIndexes...)
}
