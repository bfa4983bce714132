package s3trail_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/audit/ingest"
	"github.com/keyceremony/keyceremony/audit/s3trail"
	"github.com/keyceremony/keyceremony/audit/store"
	"github.com/keyceremony/keyceremony/test/awsfake"
	"github.com/keyceremony/keyceremony/test/cloudtrailgen"
)

const (
	acctA = "111122223333"
	acctB = "444455556666"
	orgID = "o-abcdefghij"
	acctC = "777788889999" // in the organisation trail
)

// trailBucket fills a bucket with a generated trail under the prefix
// "trail": two accounts, two regions, five days from 2025-03-01, every
// third file encrypted with SSE-KMS (no MD5 ETag), plus digest files, an
// organisation folder and a stray nested key. It returns the generated
// tree (relative path -> content).
func trailBucket(t *testing.T, srv *awsfake.S3) map[string][]byte {
	t.Helper()
	gen := t.TempDir()
	if _, err := cloudtrailgen.Generate(gen, cloudtrailgen.Config{KMSEvents: 400, Accounts: []string{acctA, acctB}, Regions: []string{"eu-west-1", "us-east-1"},
		Start: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), Days: 5, FileInterval: 6 * time.Hour, NoGaps: true, Workers: 1}); err != nil {
		t.Fatal(err)
	}
	srv.AddBucket("trail-logs", false)
	files := map[string][]byte{}
	i := 0
	err := filepath.WalkDir(gen, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(gen, p)
		rel = filepath.ToSlash(rel)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files[rel] = data
		i++
		srv.AddObject("trail-logs", "trail/"+rel, data, i%3 == 0)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.AddObject("trail-logs", "trail/AWSLogs/"+acctA+"/CloudTrail-Digest/eu-west-1/2025/03/02/"+acctA+"_CloudTrail-Digest_eu-west-1_trail_eu-west-1_20250302T000000Z.json.gz", []byte("digest"), false)
	srv.AddObject("trail-logs", "trail/AWSLogs/"+acctA+"/CloudTrail/eu-west-1/2025/03/02/nested/odd.json.gz", []byte("odd"), false)
	srv.AddObject("trail-logs", "trail/AWSLogs/"+orgID+"/"+acctC+"/CloudTrail/eu-central-1/2025/03/02/"+acctC+"_CloudTrail_eu-central-1_20250302T0000Z_org.json.gz", files[firstKey(files)], false)
	return files
}

func firstKey(m map[string][]byte) string {
	for k := range m {
		return k
	}
	return ""
}

// inRange says whether a generated file is for the account and a day of
// 2025-03-02..03.
func inRange(rel, account string) bool {
	return strings.HasPrefix(rel, "AWSLogs/"+account+"/CloudTrail/") && (strings.Contains(rel, "/2025/03/02/") || strings.Contains(rel, "/2025/03/03/"))
}

// localFiles walks the download directory: relative path -> content, and
// checks the modes on the way.
func localFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	got := map[string][]byte{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		info, _ := d.Info()
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.IsDir() && rel != "." && info.Mode().Perm() != 0o700: // "." is the caller's
			t.Errorf("directory %s has mode %v", rel, info.Mode().Perm())
		case !d.IsDir() && info.Mode().Perm() != 0o600:
			t.Errorf("file %s has mode %v", rel, info.Mode().Perm())
		case !d.IsDir():
			got[filepath.ToSlash(rel)], _ = os.ReadFile(p)
		}
		return nil
	})
	return got
}

func TestTrailDownloadResumesAndIngests(t *testing.T) {
	srv := awsfake.NewS3(t)
	srv.ListPageSize = 3 // every day's listing pages
	files := trailBucket(t, srv)
	ctx := context.Background()
	tl := s3trail.New(srv.AWSConfig("eu-west-1"), srv.URL)
	dir := filepath.Join(t.TempDir(), "logs")
	var want []string
	for rel := range files {
		if inRange(rel, acctA) {
			want = append(want, rel)
		}
	}
	// One file arrives damaged once: detected by its MD5 and fetched again.
	var damaged string
	for _, rel := range want {
		if o := srv.Get("trail-logs", "trail/"+rel); o.SSE == "AES256" {
			damaged = rel
			break
		}
	}
	srv.CorruptNext("trail-logs", "trail/"+damaged, 1)
	req := s3trail.Request{Bucket: "trail-logs", Prefix: "/trail/", Accounts: []string{acctA},
		From: time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC), To: time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC), Dir: dir}
	var last s3trail.Progress
	req.Progress = func(p s3trail.Progress) { last = p }
	sum, err := tl.Download(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	kms := 0
	for _, rel := range want {
		if srv.Get("trail-logs", "trail/"+rel).SSE == "aws:kms" {
			kms++
		}
	}
	if sum.Listed != len(want) || sum.Downloaded != len(want) || sum.Skipped != 0 || sum.MD5Verified != len(want)-kms || sum.Retried != 1 ||
		len(sum.Ignored) != 1 || !strings.HasSuffix(sum.Ignored[0], "nested/odd.json.gz") || strings.Join(sum.Regions, ",") != "eu-west-1,us-east-1" || len(sum.DayDirs) != 4 {
		t.Errorf("summary %+v (want %d files, %d under SSE-KMS)", sum, len(want), kms)
	}
	if last.Downloaded != len(want) || last.Day != "2025-03-03" {
		t.Errorf("last progress %+v", last)
	}
	// Exactly the range's files, byte for byte, in the layout the ingest reads.
	got := localFiles(t, dir)
	if len(got) != len(want) {
		t.Errorf("%d files on disk, want %d", len(got), len(want))
	}
	for _, rel := range want {
		if !bytes.Equal(got[rel], files[rel]) {
			t.Errorf("%s differs or is missing", rel)
		}
	}
	for _, r := range srv.Requests {
		if r.Operation == "GetObject" && r.Header.Get("If-Match") == "" {
			t.Error("GetObject without If-Match")
			break
		}
	}

	// Again: nothing downloaded.
	gets := srv.Calls("GetObject")
	sum, err = tl.Download(ctx, req)
	if err != nil || sum.Downloaded != 0 || sum.Skipped != len(want) || srv.Calls("GetObject") != gets {
		t.Errorf("rerun: %v %+v, %d downloads", err, sum, srv.Calls("GetObject")-gets)
	}
	// A file cut short (an interrupted copy) is replaced.
	os.WriteFile(filepath.Join(dir, filepath.FromSlash(want[0])), []byte("short"), 0o600)
	sum, err = tl.Download(ctx, req)
	if err != nil || sum.Downloaded != 1 || sum.Replaced != 1 || !bytes.Equal(localFiles(t, dir)[want[0]], files[want[0]]) {
		t.Errorf("replace: %v %+v", err, sum)
	}

	// The ingest reads the day folders as they are.
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	res, err := ingest.Run(ctx, st, sum.DayDirs, ingest.Options{Workers: 1})
	if err != nil || res.FilesFailed != 0 || res.FilesOK+res.FilesDuplicate != len(want) || res.KMSNew == 0 {
		t.Fatalf("ingest: %v %+v", err, res)
	}
	cov, err := st.Coverage(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	days := map[string]bool{}
	for _, c := range cov {
		if c.Files == 0 {
			continue
		}
		days[c.Day] = true
		if c.Account != acctA {
			t.Errorf("coverage of another account: %+v", c)
		}
	}
	if len(days) != 2 || !days["2025-03-02"] || !days["2025-03-03"] {
		t.Errorf("coverage days %v", days)
	}
}

func TestTrailDownloadDiscoversAndFails(t *testing.T) {
	srv := awsfake.NewS3(t)
	files := trailBucket(t, srv)
	ctx := context.Background()
	tl := s3trail.New(srv.AWSConfig("eu-west-1"), srv.URL)
	day := time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC)

	// No accounts given: every account folder, organisation ones included.
	dir := t.TempDir()
	sum, err := tl.Download(ctx, s3trail.Request{Bucket: "trail-logs", Prefix: "trail", From: day, To: day, Dir: dir, Regions: []string{"eu-west-1", "eu-central-1"}})
	if err != nil {
		t.Fatal(err)
	}
	want := 1 // the organisation trail's file
	for rel := range files {
		if strings.Contains(rel, "/eu-west-1/2025/03/02/") {
			want++
		}
	}
	if strings.Join(sum.Accounts, ",") != acctA+","+acctB+","+acctC || sum.Downloaded != want {
		t.Errorf("discovery: %+v, want %d files", sum, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "AWSLogs", orgID, acctC, "CloudTrail", "eu-central-1", "2025", "03", "02")); err != nil {
		t.Errorf("organisation layout: %v", err)
	}

	// A file that keeps arriving damaged fails alone; the rest is kept.
	var bad string
	for rel := range files {
		if inRange(rel, acctB) && strings.Contains(rel, "/2025/03/02/") && srv.Get("trail-logs", "trail/"+rel).SSE == "AES256" {
			bad = rel
			break
		}
	}
	srv.CorruptNext("trail-logs", "trail/"+bad, 10)
	dir = t.TempDir()
	sum, err = tl.Download(ctx, s3trail.Request{Bucket: "trail-logs", Prefix: "trail", Accounts: []string{acctB}, From: day, To: day, Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "1 of") || len(sum.Failed) != 1 || !strings.Contains(sum.Failed[0], "damaged in transit") || sum.Downloaded != sum.Listed-1 {
		t.Errorf("damaged file: %v %+v", err, sum)
	}
	for rel := range localFiles(t, dir) {
		if rel == bad || strings.HasSuffix(rel, ".part") {
			t.Errorf("left on disk: %s", rel)
		}
	}

	// Refusals before any call, and AWS's refusal explained.
	calls := len(srv.Requests)
	for _, r := range []s3trail.Request{
		{Bucket: "trail-logs", Dir: dir, From: day, To: day.AddDate(0, 0, -1)},
		{Bucket: "trail-logs", Dir: dir, From: day, To: day, Accounts: []string{"../../etc"}},
		{Bucket: "trail-logs", Dir: dir, From: day, To: day, Regions: []string{"eu-west-1/../x"}},
		{Bucket: "trail-logs", Dir: dir, From: day, To: day.AddDate(20, 0, 0)},
	} {
		if _, err := tl.Download(ctx, r); err == nil {
			t.Errorf("accepted %+v", r)
		}
	}
	if len(srv.Requests) != calls {
		t.Error("a refused request reached S3")
	}
	srv.FailNext("ListObjectsV2", awsfake.APIError{Status: 403, Type: "AccessDenied", Message: "Access Denied"})
	if _, err := tl.Download(ctx, s3trail.Request{Bucket: "trail-logs", Prefix: "trail", From: day, To: day, Dir: dir}); err == nil || !strings.Contains(err.Error(), "s3:ListBucket") {
		t.Errorf("denied: %v", err)
	}
}

func TestParseList(t *testing.T) {
	for in, want := range map[string]string{
		"":                              "",
		" , ":                           "",
		"111122223333":                  "111122223333",
		"111122223333, 444455556666 ,,": "111122223333|444455556666",
	} {
		if got := strings.Join(s3trail.ParseList(in), "|"); got != want {
			t.Errorf("ParseList(%q) = %q, want %q", in, got, want)
		}
	}
}
