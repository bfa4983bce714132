package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/test/awsfake"
)

// awsEnv isolates the credential chain and trusts the fake through
// AWS_CA_BUNDLE, as the CLI would trust a VPC endpoint's private CA.
func awsEnv(t *testing.T, srv *awsfake.Server) {
	t.Helper()
	awsfake.IsolateEnv(t)
	srv.TrustFromEnv(t)
}

// The CLI fetches through the real SDK with the real clock: a few pages.
func TestAuditFetchCLI(t *testing.T) {
	srv := awsfake.NewCloudTrail(t)
	awsEnv(t, srv.Server)
	now := time.Now().UTC()
	srv.AddKMSEvents(120, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	db := filepath.Join(t.TempDir(), "audit.db")
	args := []string{"audit", "fetch", "--db", db, "--region", "eu-west-1", "--endpoint-url", srv.URL, "--from", now.Add(-72 * time.Hour).Format(time.RFC3339)}
	out, errOut, err := run(t, "", args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if !strings.Contains(out, "Account 111122223333, region eu-west-1") || !strings.Contains(out, "3 pages, 120 KMS events: 120 new, 0 already loaded") {
		t.Errorf("output:\n%s", out)
	}
	if !strings.Contains(errOut, "ETA") {
		t.Errorf("no progress on stderr:\n%s", errOut)
	}
	// Again: only the last minutes are asked for, nothing new.
	out, _, err = run(t, "", append(args, "--no-progress")...)
	if err != nil || !strings.Contains(out, "0 new") || strings.Contains(out, "120 KMS events") {
		t.Errorf("rerun: %v\n%s", err, out)
	}
	// The events are in the database for the other audit commands.
	out, _, err = run(t, "", "audit", "events", "--db", db, "--count")
	if err != nil || !strings.Contains(out, "120") {
		t.Errorf("audit events --count: %v %s", err, out)
	}
	// Denied: said plainly.
	srv.FailNext("LookupEvents", awsfake.APIError{Status: 400, Type: "AccessDeniedException", Message: "not authorized"})
	_, _, err = run(t, "", "audit", "fetch", "--db", db, "--region", "eu-west-1", "--endpoint-url", srv.URL, "--no-progress")
	if err == nil || !strings.Contains(err.Error(), "cloudtrail:LookupEvents") {
		t.Errorf("denied: %v", err)
	}
	if _, _, err := run(t, "", "audit", "fetch", "--db", db, "--from", "yesterday"); err == nil || !strings.Contains(err.Error(), "--from") {
		t.Errorf("bad --from: %v", err)
	}
}

func TestAWSPCACLI(t *testing.T) {
	srv := awsfake.NewPCA(t)
	awsEnv(t, srv.Server)
	arn := srv.AddSubordinate(t, "Example Issuing CA 1")
	csr := filepath.Join(t.TempDir(), "ca.csr")
	out, _, err := run(t, "", "aws", "pca", "get-csr", "--region", "eu-west-1", "--endpoint-url", srv.URL, "--ca-arn", arn, "-o", csr)
	if err != nil || !strings.Contains(out, "CN=Example Issuing CA 1") || !strings.Contains(out, "ec-p384") {
		t.Fatalf("get-csr: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(csr); !strings.Contains(string(b), "BEGIN CERTIFICATE REQUEST") {
		t.Errorf("CSR file: %s", b)
	}
	// A directory without the ceremony's outputs is refused before any call.
	_, _, err = run(t, "", "aws", "pca", "import-cert", "--region", "eu-west-1", "--endpoint-url", srv.URL, t.TempDir(), "--ca-arn", arn)
	if err == nil || !strings.Contains(err.Error(), "acm-pca-import.json") || srv.Calls("ImportCertificateAuthorityCertificate") != 0 {
		t.Errorf("import-cert of an empty directory: %v", err)
	}
	if _, _, err := run(t, "", "aws", "pca", "get-csr", "--ca-arn", arn); err == nil {
		t.Error("get-csr without -o accepted")
	}
}

func TestArchivePutCLI(t *testing.T) {
	srv := awsfake.NewS3(t)
	awsEnv(t, srv.Server)
	srv.AddBucket("evidence", true)
	srv.AddBucket("plain", false)
	f := filepath.Join(t.TempDir(), "report.pdf")
	os.WriteFile(f, []byte("%PDF-1.4 report"), 0o600)
	until := time.Now().AddDate(1, 0, 0).Format("2006-01-02")
	out, _, err := run(t, "", "archive", "put", "--region", "eu-west-1", "--endpoint-url", srv.URL, "--bucket", "evidence", "--mode", "GOVERNANCE", "--retain-until", until, f)
	if err != nil || !strings.Contains(out, "s3://evidence/report.pdf version v1-") {
		t.Fatalf("put: %v\n%s", err, out)
	}
	if o := srv.Get("evidence", "report.pdf"); o == nil || o.LockMode != "GOVERNANCE" || o.RetainUntil != until+"T00:00:00Z" {
		t.Errorf("stored %+v", o)
	}
	_, _, err = run(t, "", "archive", "put", "--region", "eu-west-1", "--endpoint-url", srv.URL, "--bucket", "plain", "--mode", "GOVERNANCE", "--retain-until", until, f)
	if err == nil || !strings.Contains(err.Error(), "does not have Object Lock enabled") {
		t.Errorf("plain bucket: %v", err)
	}
}
