package online_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/online"
	"github.com/keyceremony/keyceremony/test/awsfake"
)

func TestArchiveObjectLock(t *testing.T) {
	srv := awsfake.NewS3(t)
	srv.AddBucket("evidence", true)
	srv.AddBucket("plain", false)
	ctx := context.Background()
	a, err := online.NewArchive(ctx, connect(t, srv.Server))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	transcript := filepath.Join(dir, "root-2026.transcript.jsonl")
	pdf := filepath.Join(dir, "root-2026.transcript.pdf")
	os.WriteFile(transcript, []byte(`{"seq":1,"kind":"start"}`+"\n"), 0o600)
	os.WriteFile(pdf, []byte("%PDF-1.4 transcript"), 0o600)
	until := time.Now().AddDate(7, 0, 0).UTC().Truncate(time.Second)

	res, err := a.Put(ctx, online.ArchiveRequest{Bucket: "evidence", Prefix: "ceremonies/root-2026", Mode: "COMPLIANCE", RetainUntil: until, Files: []string{transcript, pdf}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Key != "ceremonies/root-2026/root-2026.transcript.jsonl" || res[0].VersionID == "" {
		t.Fatalf("result %+v", res)
	}
	obj := srv.Get("evidence", "ceremonies/root-2026/root-2026.transcript.pdf")
	sum := sha256.Sum256([]byte("%PDF-1.4 transcript"))
	if obj == nil || obj.LockMode != "COMPLIANCE" || obj.RetainUntil != until.Format(time.RFC3339) || obj.ChecksumSHA256 != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Fatalf("stored %+v", obj)
	}
	for _, r := range srv.Requests {
		if r.Operation == "PutObject" && (r.Header.Get("X-Amz-Object-Lock-Mode") != "COMPLIANCE" || r.Header.Get("X-Amz-Checksum-Sha256") == "" ||
			!strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256")) {
			t.Errorf("PutObject headers %v", r.Header)
		}
	}
	// A bucket without Object Lock is refused, and nothing is uploaded.
	puts := srv.Calls("PutObject")
	_, err = a.Put(ctx, online.ArchiveRequest{Bucket: "plain", Mode: "GOVERNANCE", RetainUntil: until, Files: []string{transcript}}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "does not have Object Lock enabled") || srv.Calls("PutObject") != puts {
		t.Errorf("bucket without Object Lock: %v", err)
	}
	// Wrong mode, past date: refused locally.
	if _, err := a.Put(ctx, online.ArchiveRequest{Bucket: "evidence", Mode: "LEGAL", RetainUntil: until, Files: []string{pdf}}, time.Now()); err == nil || !strings.Contains(err.Error(), "COMPLIANCE") {
		t.Errorf("mode: %v", err)
	}
	if _, err := a.Put(ctx, online.ArchiveRequest{Bucket: "evidence", Mode: "GOVERNANCE", RetainUntil: time.Now().Add(-time.Hour), Files: []string{pdf}}, time.Now()); err == nil {
		t.Error("past retain-until accepted")
	}
	// S3's checksum refusal comes back explained.
	srv.FailNext("PutObject", awsfake.APIError{Status: 400, Type: "BadDigest", Message: "The SHA256 you specified did not match the calculated checksum."})
	if _, err := a.Put(ctx, online.ArchiveRequest{Bucket: "evidence", Mode: "GOVERNANCE", RetainUntil: until, Files: []string{pdf}}, time.Now()); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("bad digest: %v", err)
	}
}
