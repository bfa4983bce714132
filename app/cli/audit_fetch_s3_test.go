package cli

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/test/awsfake"
	"github.com/keyceremony/keyceremony/test/cloudtrailgen"
)

// audit fetch --s3-bucket downloads one day of a trail and ingests it; the
// same command again downloads and loads nothing.
func TestAuditFetchS3CLI(t *testing.T) {
	srv := awsfake.NewS3(t)
	awsEnv(t, srv.Server)
	gen := t.TempDir()
	if _, err := cloudtrailgen.Generate(gen, cloudtrailgen.Config{KMSEvents: 120, Accounts: []string{"111122223333"}, Regions: []string{"eu-west-1"},
		Start: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), Days: 3, FileInterval: 8 * time.Hour, NoGaps: true, DuplicateFiles: -1, DupRatio: -1, Workers: 1}); err != nil {
		t.Fatal(err)
	}
	srv.AddBucket("org-trail", false)
	day2 := 0
	filepath.WalkDir(gen, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(gen, p)
			data, _ := os.ReadFile(p)
			srv.AddObject("org-trail", "cloudtrail/"+filepath.ToSlash(rel), data, false)
			if strings.Contains(filepath.ToSlash(rel), "/2025/03/02/") {
				day2++
			}
		}
		return err
	})
	dir, db := filepath.Join(t.TempDir(), "logs"), filepath.Join(t.TempDir(), "audit.db")
	args := []string{"audit", "fetch", "--region", "eu-west-1", "--endpoint-url", srv.URL, "--s3-bucket", "org-trail", "--s3-prefix", "cloudtrail",
		"--from", "2025-03-02", "--to", "2025-03-02", "--out", dir, "--ingest", "--db", db}
	out, errOut, err := run(t, "", args...)
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, out, errOut)
	}
	if !strings.Contains(out, "accounts 111122223333, regions eu-west-1") || !strings.Contains(out, "log files in the range") ||
		!strings.Contains(out, "Files:      "+strconv.Itoa(day2)+" loaded") {
		t.Errorf("output:\n%s", out)
	}
	out, _, err = run(t, "", append(args, "--no-progress")...)
	if err != nil || !strings.Contains(out, "0 downloaded") || !strings.Contains(out, strconv.Itoa(day2)+" already here") || !strings.Contains(out, "0 loaded, "+strconv.Itoa(day2)+" already loaded") {
		t.Errorf("rerun: %v\n%s", err, out)
	}
	out, _, err = run(t, "", "audit", "coverage", "--db", db)
	if err != nil || !strings.Contains(out, "2025-03-02") || strings.Contains(out, "2025-03-01") || strings.Contains(out, "2025-03-03") {
		t.Errorf("coverage: %v\n%s", err, out)
	}
	// S3-only flags without a bucket, and a bucket without days: usage.
	if _, _, err := run(t, "", "audit", "fetch", "--out", dir); err == nil || !strings.Contains(err.Error(), "go with --s3-bucket") {
		t.Errorf("--out alone: %v", err)
	}
	if _, _, err := run(t, "", "audit", "fetch", "--s3-bucket", "b", "--out", dir); err == nil || !strings.Contains(err.Error(), "--from, --to and --out") {
		t.Errorf("no days: %v", err)
	}
}
