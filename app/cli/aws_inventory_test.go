package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/test/awsfake"
)

// aws inventory writes a file that audit ingest loads and audit keys shows.
func TestAWSInventoryCLI(t *testing.T) {
	srv := awsfake.NewKMS(t)
	awsEnv(t, srv.Server)
	srv.PageSize = 1
	rot := srv.AddKey(awsfake.KeyOptions{RotationEnabled: true, Description: "payments"})
	srv.AddKey(awsfake.KeyOptions{Spec: "ECC_NIST_P256"})
	srv.AddAlias("alias/payments", rot)
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.json")
	out, errOut, err := run(t, "", "aws", "inventory", "--region", "eu-west-1", "--endpoint-url", srv.URL, "-o", inv)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if !strings.Contains(out, "2 keys, 1 aliases") || !strings.Contains(out, "keyceremony audit ingest "+inv) || !strings.Contains(errOut, "2 of 2 keys examined") {
		t.Errorf("output:\n%s\nstderr:\n%s", out, errOut)
	}
	if strings.Contains(out+errOut, "secret") {
		t.Error("credentials in the output")
	}
	db := filepath.Join(dir, "audit.db")
	if out, errOut, err := run(t, "", "audit", "ingest", "--db", db, "--no-progress", inv); err != nil {
		t.Fatalf("ingest: %v\n%s%s", err, out, errOut)
	}
	out, _, err = run(t, "", "audit", "keys", "--db", db)
	if err != nil || !strings.Contains(out, rot) || !strings.Contains(out, "alias/payments") || !strings.Contains(out, "365d") || strings.Count(out, ":key/") != 2 {
		t.Errorf("audit keys: %v\n%s", err, out)
	}
	// Never over an existing file; no arguments: usage.
	if _, _, err := run(t, "", "aws", "inventory", "--region", "eu-west-1", "--endpoint-url", srv.URL, "-o", inv); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("existing file: %v", err)
	}
	if _, _, err := run(t, "", "aws", "inventory"); err == nil || !strings.Contains(err.Error(), "-o FILE") {
		t.Errorf("no -o: %v", err)
	}
	if st, _ := os.Stat(inv); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
}
