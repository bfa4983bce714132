package online_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/kmsimport"
	"github.com/keyceremony/keyceremony/ceremony/online"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/softhsm/softhsmtest"
	"github.com/keyceremony/keyceremony/test/awsfake"
)

func connect(t *testing.T, s *awsfake.Server) online.Connection {
	t.Helper()
	awsfake.IsolateEnv(t)
	return online.Connection{Region: "eu-west-1", Endpoint: s.URL, RootCAs: s.CertPool()}
}

// wrapInToken plays the air-gapped ceremony's part on a SoftHSM token: it
// reads the bundle, wraps a token key and writes the ceremony's outputs.
func wrapInToken(t *testing.T, bundleDir, outDir string, spec kmsimport.KeySpec, imp kmsimport.Import) *hsm.Key {
	t.Helper()
	tok := softhsmtest.LoggedIn(t, "BYOK")
	data, err := os.ReadFile(filepath.Join(bundleDir, online.ParametersFile))
	if err != nil {
		t.Fatal(err)
	}
	params, err := kmsimport.ParseParametersJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := kmsimport.Spec(spec)
	key, err := tok.GenerateKey(context.Background(), hsm.KeySpec{Type: info.TokenType, Label: "byok-" + string(spec), Extractable: true})
	if err != nil {
		t.Fatal(err)
	}
	req := kmsimport.Request{Params: params, Spec: spec, Algorithm: kmsimport.RSAAESKeyWrapSHA256, Import: imp}
	res, err := kmsimport.Wrap(context.Background(), tok, key, req, hsm.WrapOptions{AllowHostSteps: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kmsimport.WriteOutputs(outDir, res, params.ImportToken); err != nil {
		t.Fatal(err)
	}
	return key
}

func TestBYOKRoundTrip(t *testing.T) {
	srv := awsfake.NewKMS(t)
	ctx := context.Background()
	k, err := online.NewKMS(ctx, connect(t, srv.Server))
	if err != nil {
		t.Fatal(err)
	}
	bundleDir := t.TempDir()
	b, err := k.PrepareBYOK(ctx, online.PrepareRequest{KeySpec: kmsimport.SymmetricDefault, Algorithm: kmsimport.RSAAESKeyWrapSHA256, WrappingKeySpec: kmsimport.WrappingRSA4096, Description: "BYOK test"}, bundleDir)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Created || srv.State(b.KeyARN) != "PendingImport" {
		t.Fatalf("prepare: created=%v state=%s", b.Created, srv.State(b.KeyARN))
	}
	outDir := t.TempDir()
	key := wrapInToken(t, bundleDir, outDir, kmsimport.SymmetricDefault, kmsimport.Import{ExpirationModel: kmsimport.KeyMaterialExpires, ValidTo: time.Now().Add(90 * 24 * time.Hour).Truncate(time.Second)})

	res, err := k.ImportBYOK(ctx, outDir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.KeyState != "Enabled" || res.KeyMaterialID == "" {
		t.Errorf("import result %+v", res)
	}
	// The server unwrapped the material with its private key: it is the token's key.
	material := srv.Material(b.KeyARN)
	block := []byte("sixteen byte blk")
	want, _ := key.EncryptBlock(block)
	c, err := aes.NewCipher(material)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 16)
	c.Encrypt(got, block)
	if !bytes.Equal(got, want) {
		t.Fatal("AWS holds different material from the token's key")
	}
	if _, err := os.Stat(filepath.Join(outDir, online.ImportResultFile)); err != nil {
		t.Errorf("no import evidence written: %v", err)
	}
	// Every request was signed and carried the KMS target.
	for _, r := range srv.Requests {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256") || r.Header.Get("X-Amz-Target") != "TrentService."+r.Operation {
			t.Errorf("request %s: auth %q target %q", r.Operation, r.Header.Get("Authorization"), r.Header.Get("X-Amz-Target"))
		}
	}
}

func TestBYOKImportRefusals(t *testing.T) {
	srv := awsfake.NewKMS(t)
	ctx := context.Background()
	k, err := online.NewKMS(ctx, connect(t, srv.Server))
	if err != nil {
		t.Fatal(err)
	}
	bundleDir := t.TempDir()
	if _, err := k.PrepareBYOK(ctx, online.PrepareRequest{KeySpec: kmsimport.HMAC256, Algorithm: kmsimport.RSAAESKeyWrapSHA256, WrappingKeySpec: kmsimport.WrappingRSA2048}, bundleDir); err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	wrapInToken(t, bundleDir, outDir, kmsimport.HMAC256, kmsimport.Import{ExpirationModel: kmsimport.KeyMaterialDoesNotExpire})

	// A file changed after the ceremony is refused before anything is sent.
	p := filepath.Join(outDir, kmsimport.EncryptedKeyMaterialFile)
	orig, _ := os.ReadFile(p)
	os.WriteFile(p, append(bytes.Clone(orig), 0), 0o600)
	calls := srv.Calls("ImportKeyMaterial")
	if _, err := k.ImportBYOK(ctx, outDir, time.Now()); err == nil || !strings.Contains(err.Error(), "does not match the SHA-256") {
		t.Errorf("tampered file: %v", err)
	}
	if srv.Calls("ImportKeyMaterial") != calls {
		t.Error("a tampered file was sent to AWS")
	}
	os.WriteFile(p, orig, 0o600)

	// AWS errors come back with what to do.
	srv.FailNext("ImportKeyMaterial", awsfake.APIError{Status: 400, Type: "ExpiredImportTokenException", Message: "expired"})
	if _, err := k.ImportBYOK(ctx, outDir, time.Now()); err == nil || !strings.Contains(err.Error(), "prepare again") {
		t.Errorf("expired token: %v", err)
	}
	// Existing keys must be EXTERNAL and of the spec asked for.
	if _, err := k.PrepareBYOK(ctx, online.PrepareRequest{KeyID: "nope", KeySpec: kmsimport.HMAC256, Algorithm: kmsimport.RSAAESKeyWrapSHA256, WrappingKeySpec: kmsimport.WrappingRSA2048}, t.TempDir()); err == nil || !strings.Contains(err.Error(), "no such key") {
		t.Errorf("unknown key: %v", err)
	}
	// Then the real import succeeds.
	if _, err := k.ImportBYOK(ctx, outDir, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// recordWrap writes a ceremony transcript beside the import files whose wrap
// step records them, as the byok-wrap ceremony's transcript does.
func recordWrap(t *testing.T, dir string) {
	t.Helper()
	w, err := transcript.Create(filepath.Join(dir, "kms-import.transcript.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Append(transcript.Entry{Step: "begin", Action: "Script identified"}); err != nil {
		t.Fatal(err)
	}
	var outs []transcript.File
	for _, name := range []string{kmsimport.EncryptedKeyMaterialFile, kmsimport.ImportTokenFile, kmsimport.ManifestFile, kmsimport.InstructionsFile} {
		f, err := transcript.HashFile(filepath.Join(dir, name), name)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, f)
	}
	if _, err := w.Append(transcript.Entry{Step: "wrap", Action: "Key material wrapped for AWS KMS", Outputs: outs}); err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"finish", transcript.StepPDF} {
		if _, err := w.Append(transcript.Entry{Step: step, Action: step}); err != nil {
			t.Fatal(err)
		}
	}
}

// editManifest rewrites the manifest as an insider would to match a replaced
// material file.
func editManifest(t *testing.T, dir string, material []byte) {
	t.Helper()
	p := filepath.Join(dir, kmsimport.ManifestFile)
	raw, _ := os.ReadFile(p)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(material)
	m["files"].(map[string]any)[kmsimport.EncryptedKeyMaterialFile] = hex.EncodeToString(sum[:])
	raw, _ = json.MarshalIndent(m, "", "  ")
	os.WriteFile(p, raw, 0o600)
	os.WriteFile(filepath.Join(dir, kmsimport.EncryptedKeyMaterialFile), material, 0o600)
}

// TestBYOKImportChecksFilesAndTranscript: material files that cannot be what
// a ceremony wrote (empty, or the wrong size for the algorithm and wrapping
// key) are refused before anything is sent, even with the manifest edited
// to match; a transcript beside the files must verify and record this
// manifest; an import checked against it says so.
func TestBYOKImportChecksFilesAndTranscript(t *testing.T) {
	srv := awsfake.NewKMS(t)
	ctx := context.Background()
	k, err := online.NewKMS(ctx, connect(t, srv.Server))
	if err != nil {
		t.Fatal(err)
	}
	bundleDir := t.TempDir()
	if _, err := k.PrepareBYOK(ctx, online.PrepareRequest{KeySpec: kmsimport.SymmetricDefault, Algorithm: kmsimport.RSAAESKeyWrapSHA256, WrappingKeySpec: kmsimport.WrappingRSA4096}, bundleDir); err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	wrapInToken(t, bundleDir, outDir, kmsimport.SymmetricDefault, kmsimport.Import{ExpirationModel: kmsimport.KeyMaterialDoesNotExpire})
	material, _ := os.ReadFile(filepath.Join(outDir, kmsimport.EncryptedKeyMaterialFile))
	manifest, _ := os.ReadFile(filepath.Join(outDir, kmsimport.ManifestFile))
	if len(material) != 512+40 {
		t.Fatalf("RSA_AES_KEY_WRAP of 32 bytes under RSA-4096 is %d bytes, want 552", len(material))
	}
	calls := srv.Calls("ImportKeyMaterial")
	for _, tc := range []struct {
		data []byte
		want string
	}{
		{[]byte{}, "EncryptedKeyMaterial.bin is empty"},
		{bytes.Repeat([]byte{7}, 100), "has 100 bytes, but SYMMETRIC_DEFAULT material wrapped with RSA_AES_KEY_WRAP_SHA_256 under an RSA_4096 key has 552 bytes"},
		{append(bytes.Clone(material), 0, 0, 0, 0, 0, 0, 0, 0), "has 560 bytes"},
	} {
		editManifest(t, outDir, tc.data)
		if _, err := k.ImportBYOK(ctx, outDir, time.Now()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d-byte material: %v, want %q", len(tc.data), err, tc.want)
		}
	}
	if srv.Calls("ImportKeyMaterial") != calls {
		t.Fatal("a refused file was sent to AWS")
	}
	os.WriteFile(filepath.Join(outDir, kmsimport.EncryptedKeyMaterialFile), material, 0o600)
	os.WriteFile(filepath.Join(outDir, kmsimport.ManifestFile), manifest, 0o600)

	// The transcript records the files; a manifest edited afterwards (the
	// command, say) no longer matches it.
	recordWrap(t, outDir)
	edited := bytes.Replace(manifest, []byte("aws kms import-key-material"), []byte("aws kms  import-key-material"), 1)
	os.WriteFile(filepath.Join(outDir, kmsimport.ManifestFile), edited, 0o600)
	if _, err := k.ImportBYOK(ctx, outDir, time.Now()); err == nil || !strings.Contains(err.Error(), "transcript") {
		t.Errorf("edited manifest with a transcript beside it: %v", err)
	}
	if srv.Calls("ImportKeyMaterial") != calls {
		t.Fatal("files the transcript does not record were sent to AWS")
	}
	os.WriteFile(filepath.Join(outDir, kmsimport.ManifestFile), manifest, 0o600)
	res, err := k.ImportBYOK(ctx, outDir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.Transcript == nil || res.Transcript.WrapEntry != 2 || !strings.HasSuffix(res.Transcript.Path, "kms-import.transcript.jsonl") {
		t.Errorf("import result does not name the transcript it was checked against: %+v", res.Transcript)
	}
}
