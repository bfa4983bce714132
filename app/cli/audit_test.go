package cli

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/audit/store"
)

// The audit group is registered, its usage errors exit 2, and it runs a
// command on the database (the commands' own tests: audit_*_test.go).
func TestAuditGroupRegistered(t *testing.T) {
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb}
	err := Run(context.Background(), []string{"audit", "nope"}, env)
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), `unknown subcommand "nope" for audit`) {
		t.Fatalf("err = %v", err)
	}
	// The usage line names every command of the group, the reports and
	// the online ones too.
	err = Run(context.Background(), []string{"audit"}, env)
	if want := "keyceremony audit athena|coverage|events|export|fetch|ingest|keys|raw|report"; !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), want) {
		t.Fatalf("audit without a command: %v, want a usage error with %q", err, want)
	}
	db := filepath.Join(t.TempDir(), "a.db")
	st, err := store.Open(context.Background(), db) // an empty database (events never creates one)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := Run(context.Background(), []string{"audit", "events", "--db", db, "--count"}, env); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out.String()) != "0" {
		t.Fatalf("count on an empty database printed %q", out.String())
	}
	if code := Main([]string{"audit", "ingest"}, env); code != 2 {
		t.Fatalf("ingest without paths exited %d, want 2", code)
	}
}
