package cli

import (
	"context"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/audit/ceremonies/ceremoniestest"
	"github.com/keyceremony/keyceremony/audit/store"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
)

// audit ingest --expect CEREMONY=HASH: a ceremony's transcript is loaded
// only if it ends with the final hash on its signed paper, and the stored
// anchors say it was checked; a forged copy that ends elsewhere is refused
// by name; an --expect that names no ceremony of the command stops it.
func TestIngestCeremonyExpectsPaperHash(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "byok")
	tr := ceremoniestest.WriteBYOK(t, dir, ceremoniestest.BYOK{Start: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC),
		KeyARN: "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"})
	rep, err := transcript.Verify(tr)
	if err != nil {
		t.Fatal(err)
	}
	final, _ := rep.Final()
	paper := hex.EncodeToString(final.HashBytes())

	anchors := func(db string) string {
		st, err := store.Open(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		var a string
		st.DB().QueryRow(`SELECT coalesce(group_concat(anchors), '') FROM ceremonies`).Scan(&a)
		return a
	}

	db := filepath.Join(t.TempDir(), "a.db")
	if code, out, errOut := auditCLI(t, "ingest", "--db", db, "--expect", dir+"="+paper, dir); code != 0 {
		t.Fatalf("with the paper's hash: exit %d\n%s%s", code, out, errOut)
	}
	if a := anchors(db); !strings.Contains(a, "checked against the paper") {
		t.Fatalf("anchors %q: the comparison with the paper is not recorded", a)
	}

	// Another hash (the paper of another ceremony, or a forged medium).
	db2 := filepath.Join(t.TempDir(), "b.db")
	other := strings.Repeat("ab", 32)
	code, out, errOut := auditCLI(t, "ingest", "--db", db2, dir, "--expect", dir+"="+other)
	if code == 0 || !strings.Contains(out+errOut, "paper") || !strings.Contains(out+errOut, "refused") {
		t.Fatalf("another hash: exit %d\n%s%s", code, out, errOut)
	}
	if a := anchors(db2); a != "" {
		t.Fatalf("a refused transcript was stored: %q", a)
	}

	// An --expect for a path the command was not given, or malformed.
	for _, bad := range []string{filepath.Join(t.TempDir(), "elsewhere") + "=" + paper, dir + "=12", "no-equals-sign"} {
		code, out, errOut := auditCLI(t, "ingest", "--db", filepath.Join(t.TempDir(), "c.db"), "--expect", bad, dir)
		if code != 2 || !strings.Contains(errOut, "--expect") {
			t.Errorf("--expect %q: exit %d, want 2 with the flag named\n%s%s", bad, code, out, errOut)
		}
	}
}
