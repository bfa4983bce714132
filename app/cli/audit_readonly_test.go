package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadOnlyAuditCommandsNeverCreateTheDatabase: the commands that only
// read the audit database refuse one that does not exist, say how to make
// it, and leave no file behind (a mistyped --db must not answer "no
// events" from a database it just created).
func TestReadOnlyAuditCommandsNeverCreateTheDatabase(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "typo.db")
	for _, args := range [][]string{
		{"events"},
		{"raw", "0f0e0d0c-0b0a-4909-8807-060504030201"},
		{"export", "-o", filepath.Join(dir, "out.jsonl")},
		{"coverage"},
		{"keys"},
	} {
		t.Run(args[0], func(t *testing.T) {
			full := append([]string{"audit", args[0], "--db", db}, args[1:]...)
			_, stderr, err := run(t, "", full...)
			if err == nil {
				t.Fatalf("%v: no error for a database that does not exist (stderr %q)", full, stderr)
			}
			if msg := err.Error(); !strings.Contains(msg, db) || !strings.Contains(msg, "keyceremony audit ingest") {
				t.Errorf("%v: error %q names neither the database nor how to make it", full, msg)
			}
			if _, err := os.Stat(db); !os.IsNotExist(err) {
				t.Fatalf("%v: the database file exists after the command (%v)", full, err)
			}
			for _, side := range []string{"-wal", "-shm"} {
				if _, err := os.Stat(db + side); !os.IsNotExist(err) {
					t.Errorf("%v: %s left behind", full, db+side)
				}
			}
		})
	}
}
