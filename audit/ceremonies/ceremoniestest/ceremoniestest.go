// Package ceremoniestest writes ceremony output directories as the engine
// leaves them (the output files, and a transcript chaining the entries the
// audit loader reads, with the outputs' SHA-256), for tests of the audit
// half only: the audit never links the engine or a token, so its tests
// build the evidence they load here. The transcripts verify with the real
// verifier; the end-to-end tests run real ceremonies.
package ceremoniestest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/ceremony/transcript/transcripttest"
)

// TranscriptSuffix ends a transcript's name (ceremonies.TranscriptSuffix).
const TranscriptSuffix = ".transcript.jsonl"

// The people of every ceremony written here.
var (
	Admin     = transcript.Actor{Name: "Alice Adams", Role: "administrator"}
	Witness   = transcript.Actor{Name: "Wendy Webb", Role: "witness"}
	Custodian = transcript.Actor{Name: "Carol Chen", Role: "custodian"}
)

// BYOK is a byok-wrap ceremony; zero fields take the defaults noted.
type BYOK struct {
	ID                string    // "kms-key-2026-import"
	Title             string    // "KMS key 2026"
	Start             time.Time // required: the first entry; the others follow a minute apart
	KeyARN            string    // required
	KeySpec           string    // SYMMETRIC_DEFAULT
	WrappingAlgorithm string    // RSA_AES_KEY_WRAP_SHA_256
	WrappingKeySpec   string    // RSA_4096
	ParametersValidTo time.Time // Start + 20 h
	ExpirationModel   string    // KEY_MATERIAL_EXPIRES
	MaterialValidTo   time.Time // Start + 1 year, when the material expires
	ImportType        string    // "" (first import), NEW_KEY_MATERIAL or EXISTING_KEY_MATERIAL
	Rehearsal         bool
	Drop              []string // steps left out (a damaged or incomplete transcript)
}

// ManifestFile is the import manifest the wrap step writes.
const ManifestFile = "import-manifest.json"

// WriteBYOK writes a byok-wrap ceremony's directory into dir: begin,
// inputs, byok-key, wrap (EncryptedKeyMaterial.bin, ImportToken.bin, the
// manifest), finish, transcript-pdf. It returns the transcript's path.
func WriteBYOK(t testing.TB, dir string, b BYOK) string {
	t.Helper()
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&b.ID, "kms-key-2026-import")
	def(&b.Title, "KMS key 2026")
	def(&b.KeySpec, "SYMMETRIC_DEFAULT")
	def(&b.WrappingAlgorithm, "RSA_AES_KEY_WRAP_SHA_256")
	def(&b.WrappingKeySpec, "RSA_4096")
	def(&b.ExpirationModel, "KEY_MATERIAL_EXPIRES")
	if b.ParametersValidTo.IsZero() {
		b.ParametersValidTo = b.Start.Add(20 * time.Hour)
	}
	if b.MaterialValidTo.IsZero() && b.ExpirationModel == "KEY_MATERIAL_EXPIRES" {
		b.MaterialValidTo = b.Start.AddDate(1, 0, 0)
	}
	importType := "first import (no --import-type)"
	if b.ImportType != "" {
		importType = b.ImportType + " (re-import)"
	}
	inputs := details("kms key", b.KeyARN, "key spec", b.KeySpec, "wrapping algorithm", b.WrappingAlgorithm, "wrapping key spec", b.WrappingKeySpec,
		"wrapping public key sha256", strings.Repeat("9", 64), "parameters valid to", b.ParametersValidTo.UTC().Format(time.RFC3339),
		"expiration model", b.ExpirationModel)
	if !b.MaterialValidTo.IsZero() {
		inputs = append(inputs, details("material valid to", b.MaterialValidTo.UTC().Format(time.RFC3339))...)
	}
	inputs = append(inputs, details("import type", importType)...)
	admin := []transcript.Actor{Admin, Witness}
	entries := []transcript.Entry{
		begin(b.ID, b.Title, "byok-wrap"),
		{Step: "inputs", Action: "Import parameters checked", Actors: admin, Details: inputs},
		{Step: "byok-key", Action: "Key material ready", Actors: admin, Details: details("key check value", "1a2b3c (AES-CMAC)")},
		{Step: "wrap", Action: "Key material wrapped", Actors: append(admin, Custodian),
			Outputs: []transcript.File{output(t, dir, "EncryptedKeyMaterial.bin", []byte("wrapped "+b.ID)), output(t, dir, "ImportToken.bin", []byte("token")),
				output(t, dir, ManifestFile, []byte(`{"keyId":"`+b.KeyARN+`"}`))},
			Details: details("encrypted key material sha256", strings.Repeat("e", 64))},
		{Step: "finish", Action: "Finished", Actors: admin},
		{Step: transcript.StepPDF, Action: "Transcript PDF", Outputs: []transcript.File{output(t, dir, b.ID+".transcript.pdf", []byte("%PDF"))}},
	}
	return write(t, dir, b.ID, b.Start, b.Rehearsal, entries, b.Drop)
}

// CASigning is a ca-signing ceremony that signs a subordinate CA's
// certificate for an AWS Private CA.
type CASigning struct {
	ID      string    // "issuing-ca-2026"
	Start   time.Time // required
	CAARN   string    // required
	Subject string    // "Example Issuing CA 1"
}

// WriteCASigning writes a ca-signing ceremony's directory into dir, with
// the subordinate certificate (signed by a throwaway root) and the
// acm-pca-import.json naming the CA. It returns the transcript's path and
// the size of the certificate's PEM file (what CloudTrail records of it).
func WriteCASigning(t testing.TB, dir string, c CASigning) (string, int64) {
	t.Helper()
	if c.ID == "" {
		c.ID = "issuing-ca-2026"
	}
	if c.Subject == "" {
		c.Subject = "Example Issuing CA 1"
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	root := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Example Root CA"}, NotBefore: c.Start.Add(-time.Hour),
		NotAfter: c.Start.AddDate(10, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	sub := &x509.Certificate{SerialNumber: big.NewInt(0x2026), Subject: pkix.Name{CommonName: c.Subject}, NotBefore: c.Start,
		NotAfter: c.Start.AddDate(3, 0, 0), IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, sub, root, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	doc, _ := json.Marshal(map[string]string{"CertificateAuthorityArn": c.CAARN, "Certificate": string(certPEM)})
	admin := []transcript.Actor{Admin, Witness}
	cert := output(t, dir, c.ID+".subordinate.pem", certPEM)
	entries := []transcript.Entry{
		begin(c.ID, "Issuing CA "+c.Subject, "ca-signing"),
		{Step: "inputs", Action: "CSR checked", Actors: admin, Details: details("acm pca arn", c.CAARN)},
		{Step: "sign-subordinate", Action: "Subordinate certificate signed", Actors: append(admin, Custodian),
			Outputs: []transcript.File{cert, output(t, dir, c.ID+".chain.pem", []byte("chain")), output(t, dir, c.ID+".acm-pca-import.json", doc)},
			Details: details("serial", "2026")},
		{Step: "finish", Action: "Finished", Actors: admin},
		{Step: transcript.StepPDF, Action: "Transcript PDF", Outputs: []transcript.File{output(t, dir, c.ID+".transcript.pdf", []byte("%PDF"))}},
	}
	return write(t, dir, c.ID, c.Start, false, entries, nil), cert.Size
}

func begin(id, title, kind string) transcript.Entry {
	return transcript.Entry{Step: "begin", Action: "Ceremony started", Details: details("ceremony id", id, "title", title, "kind", kind,
		"script sha256", strings.Repeat("5", 64), "binary version", "1.2.3", "binary sha256", strings.Repeat("b", 64))}
}

func details(kv ...string) []transcript.Detail {
	var ds []transcript.Detail
	for i := 0; i < len(kv); i += 2 {
		ds = append(ds, transcript.Detail{Key: kv[i], Value: kv[i+1]})
	}
	return ds
}

// output writes one output file and returns it as the transcript records it.
func output(t testing.TB, dir, name string, content []byte) transcript.File {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := transcript.HashFile(filepath.Join(dir, name), name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// write chains the entries (a minute apart from start, every person's
// confirmation at the entry's time) into dir/ID.transcript.jsonl.
func write(t testing.TB, dir, id string, start time.Time, rehearsal bool, entries []transcript.Entry, drop []string) string {
	t.Helper()
	var kept []transcript.Entry
	for i, e := range entries {
		if slices.Contains(drop, e.Step) {
			continue
		}
		e.Result, e.Time, e.Rehearsal = transcript.ResultOK, start.Add(time.Duration(i)*time.Minute), rehearsal
		e.Actors = slices.Clone(e.Actors)
		for j := range e.Actors {
			e.Actors[j].Time = start
		}
		kept = append(kept, e)
	}
	tr := filepath.Join(dir, id+TranscriptSuffix)
	transcripttest.Write(t, tr, kept)
	return tr
}
