package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/audit/ingest"
	"github.com/keyceremony/keyceremony/audit/store"
)

func TestQueryCommands(t *testing.T) {
	dir := auditFixtureDir(t)
	db := filepath.Join(t.TempDir(), "a.db")
	if code, _, e := auditCLI(t, "ingest", "--db", db, dir); code != 0 {
		t.Fatal(e)
	}
	_, out, _ := auditCLI(t, "events", "--db", db, "--count", "--name", "Decrypt")
	if strings.TrimSpace(out) != "3" {
		t.Fatalf("count %q", out)
	}
	_, page1, _ := auditCLI(t, "events", "--db", db, "--limit", "5")
	m := regexp.MustCompile(`next page: --after (\S+)`).FindStringSubmatch(page1)
	if m == nil || strings.Count(page1, "\n") != 7 {
		t.Fatalf("page 1:\n%s", page1)
	}
	_, page2, _ := auditCLI(t, "events", "--db", db, "--limit", "5", "--after", m[1], "--json")
	var p2 struct {
		Events []store.Event `json:"events"`
		Next   string        `json:"next"`
	}
	if err := json.Unmarshal([]byte(page2), &p2); err != nil || len(p2.Events) != 5 {
		t.Fatalf("page 2: %v\n%s", err, page2)
	}
	for _, e := range p2.Events {
		if strings.Contains(page1, e.EventID) {
			t.Fatalf("event %s on both pages", e.EventID)
		}
	}
	// raw prints the record exactly as delivered.
	_, raw, _ := auditCLI(t, "raw", "--db", db, "5c1e7d2a-0002-4b8e-9e6f-1a2b3c4d5e02")
	src, _ := os.ReadFile(auditFixtures + "kms-shapes.json")
	if !strings.HasPrefix(raw, "{\n    \"eventVersion\": \"1.08\",\n    \"userIdentity\": {\"type\": \"AssumedRole\"") || !bytes.Contains(src, []byte(strings.TrimSuffix(raw, "\n"))) {
		t.Fatalf("raw record is not the delivered bytes:\n%s", raw)
	}
	// export writes a private file that loads again.
	exp := filepath.Join(t.TempDir(), "export.json")
	if code, _, e := auditCLI(t, "export", "--db", db, "--key", "arn:aws:kms:eu-central-1:210987654321:key/9a8b7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4", "-o", exp); code != 0 {
		t.Fatal(e)
	}
	if fi, _ := os.Stat(exp); fi.Mode().Perm() != 0o600 {
		t.Fatalf("export mode %v", fi.Mode().Perm())
	}
	db2 := filepath.Join(t.TempDir(), "b.db")
	_, out, _ = auditCLI(t, "ingest", "--db", db2, "--json", exp)
	var sum ingest.Summary
	json.Unmarshal([]byte(out), &sum)
	if sum.KMSNew != 5 {
		t.Fatalf("re-ingested export: %+v", sum)
	}
	_, cov, _ := auditCLI(t, "coverage", "--db", db)
	if !strings.Contains(cov, "210987654321  eu-central-1  2024-06-03") {
		t.Fatalf("coverage:\n%s", cov)
	}
	_, keys, _ := auditCLI(t, "keys", "--db", db)
	if !strings.Contains(keys, "arn:aws:kms:eu-central-1:210987654321:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0") {
		t.Fatalf("keys:\n%s", keys)
	}
}
