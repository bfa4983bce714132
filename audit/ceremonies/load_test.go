package ceremonies

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/audit/ceremonies/ceremoniestest"
	"github.com/keyceremony/keyceremony/audit/store"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
)

const keyARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

var start = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// byokDir writes the output directory of a byok-wrap ceremony as the
// engine leaves it (ceremoniestest.WriteBYOK with its defaults). It
// returns the directory and the transcript.
func byokDir(t *testing.T, rehearsal bool, drop ...string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	return dir, ceremoniestest.WriteBYOK(t, dir, ceremoniestest.BYOK{Start: start, KeyARN: keyARN, Rehearsal: rehearsal, Drop: drop})
}

func TestLoadBYOKCeremony(t *testing.T) {
	dir, tr := byokDir(t, false)
	if !IsCeremony(dir) || !IsCeremony(tr) || IsCeremony(t.TempDir()) {
		t.Fatal("IsCeremony")
	}
	c, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep, _ := transcript.Verify(tr)
	final, _ := rep.Final()
	b := c.Facts.BYOK
	if c.FinalHash != final.Hash || c.Kind != "byok-wrap" || c.CeremonyID != "kms-key-2026-import" || c.Rehearsal || c.Entries != 6 ||
		c.BinarySHA256 != strings.Repeat("b", 64) || !c.Started.Equal(start) || !c.Ended.Equal(start.Add(4*time.Minute)) {
		t.Fatalf("ceremony %+v", c)
	}
	if b == nil || b.KeyARN != keyARN || b.WrappingAlgorithm != "RSA_AES_KEY_WRAP_SHA_256" || b.WrappingKeySpec != "RSA_4096" ||
		!b.ParametersValidTo.Equal(start.Add(20*time.Hour)) || !b.MaterialValidTo.Equal(start.AddDate(1, 0, 0)) || b.ImportType != "" ||
		b.MaterialFingerprint != "key check value 1a2b3c (AES-CMAC)" || b.EncryptedMaterialSHA256 != strings.Repeat("e", 64) || b.Import != nil {
		t.Fatalf("byok facts %+v", b)
	}
	if len(c.Participants) != 3 || c.Participants[2] != (store.Participant{Name: "Carol Chen", Role: "custodian"}) {
		t.Errorf("participants %+v", c.Participants)
	}
	if !strings.Contains(c.Anchors, "not yet compared with the signed paper") {
		t.Errorf("anchors %q", c.Anchors)
	}
	// With the paper's hash: checked; with another hash: refused.
	if c, err := Load(dir, Options{Expect: final.HashBytes()}); err != nil || !strings.Contains(c.Anchors, "checked against the paper") {
		t.Fatalf("with the paper's hash: %v", err)
	}
	if _, err := Load(dir, Options{Expect: bytes.Repeat([]byte{1}, 32)}); !IsRefused(err) || !strings.Contains(err.Error(), "paper") {
		t.Fatalf("with another hash: %v", err)
	}

	// The import result beside the files counts only when it names this
	// transcript and the manifest the wrap step recorded.
	manifest := sha256.Sum256([]byte(`{"keyId":"` + keyARN + `"}`))
	result := func(finalHash, manifestSum string) {
		os.Remove(filepath.Join(dir, importResultFile))
		data, _ := json.Marshal(map[string]any{"keyArn": keyARN, "keyMaterialId": "km-1", "keyState": "Enabled", "importedAt": start.Add(2 * time.Hour),
			"manifestSha256": manifestSum, "transcript": map[string]any{"finalHash": finalHash}})
		os.WriteFile(filepath.Join(dir, importResultFile), data, 0o600)
	}
	result(final.Hash, hex.EncodeToString(manifest[:]))
	if c, err := Load(dir, Options{}); err != nil || c.Facts.BYOK.Import == nil || c.Facts.BYOK.Import.KeyMaterialID != "km-1" {
		t.Fatalf("import result: %v %+v", err, c.Facts.BYOK.Import)
	}
	result(strings.Repeat("0", 64), hex.EncodeToString(manifest[:]))
	if c, _ := Load(dir, Options{}); c.Facts.BYOK.Import != nil {
		t.Error("an import result for another transcript was taken")
	}
	result(final.Hash, strings.Repeat("0", 64))
	if c, _ := Load(dir, Options{}); c.Facts.BYOK.Import != nil {
		t.Error("an import result for another manifest was taken")
	}
}

// Tampered, changed outputs, incomplete, rehearsal: refused by name.
func TestLoadRefusals(t *testing.T) {
	dir, tr := byokDir(t, false)
	raw, _ := os.ReadFile(tr)
	os.WriteFile(tr, bytes.Replace(raw, []byte("RSA_4096"), []byte("RSA_2048"), 1), 0o600)
	if _, err := Load(dir, Options{}); !IsRefused(err) || !strings.Contains(err.Error(), "entry 2 (step inputs)") || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("tampered entry: %v", err)
	}
	dir, _ = byokDir(t, false)
	os.WriteFile(filepath.Join(dir, "EncryptedKeyMaterial.bin"), []byte("other"), 0o600)
	if _, err := Load(dir, Options{}); !IsRefused(err) || !strings.Contains(err.Error(), "EncryptedKeyMaterial.bin has changed") {
		t.Fatalf("changed output: %v", err)
	}
	dir, _ = byokDir(t, false, transcript.StepPDF)
	if _, err := Load(dir, Options{}); !IsRefused(err) || !strings.Contains(err.Error(), "INCOMPLETE") {
		t.Fatalf("incomplete: %v", err)
	}
	dir, _ = byokDir(t, true)
	if _, err := Load(dir, Options{}); !IsRefused(err) || !strings.Contains(err.Error(), "REHEARSAL") {
		t.Fatalf("rehearsal: %v", err)
	}
	if c, err := Load(dir, Options{AllowRehearsal: true}); err != nil || !c.Rehearsal {
		t.Fatalf("rehearsal allowed: %v", err)
	}
}

// Ingest stores what verifies, records what is refused as a failed input
// of the run (with the transcript's SHA-256), and loads a directory again
// as the same ceremony.
func TestIngestRecordsRefusalsAsFailures(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	good, _ := byokDir(t, false)
	bad, badTr := byokDir(t, false)
	raw, _ := os.ReadFile(badTr)
	os.WriteFile(badTr, bytes.Replace(raw, []byte("Alice Adams"), []byte("Mallory M"), 1), 0o600)
	sum, err := Ingest(ctx, st, []string{good, bad}, []string{"audit", "ingest", good, bad}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Loaded != 1 || sum.Refused != 1 || sum.Items[1].Error == "" {
		t.Fatalf("summary %+v", sum)
	}
	cs, err := st.Ceremonies(ctx)
	if err != nil || len(cs) != 1 || cs[0].Facts.BYOK == nil || cs[0].Facts.BYOK.KeyARN != keyARN || cs[0].Run == 0 {
		t.Fatalf("stored %+v %v", cs, err)
	}
	fails, err := st.Failures(ctx)
	if err != nil || len(fails) != 1 || fails[0].Path != badTr || !strings.Contains(fails[0].Error, "refused") || len(fails[0].SHA256) != 32 {
		t.Fatalf("failures %+v %v", fails, err)
	}
	sum, err = Ingest(ctx, st, []string{good}, []string{"again"}, Options{})
	if err != nil || sum.Already != 1 {
		t.Fatalf("again: %+v %v", sum, err)
	}
	if cs, _ := st.Ceremonies(ctx); len(cs) != 1 {
		t.Errorf("%d ceremonies after loading one twice", len(cs))
	}
	runs, _ := st.Runs(ctx)
	if len(runs) != 2 || runs[0].State != "done" || runs[0].FilesFailed != 1 {
		t.Errorf("runs %+v", runs)
	}
}
