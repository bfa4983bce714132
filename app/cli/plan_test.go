package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/assets"
	"github.com/keyceremony/keyceremony/ceremony/certprofile"
	"github.com/keyceremony/keyceremony/ceremony/quorum"
)

// TestPlanReportsPCAOU: an AWS Private CA CSR carries OU in its subject;
// taken with accept_csr_subject: true, zlint refuses the CA certificate.
// `ceremony plan` (and the start of `run`, which validates the same way)
// says so before anyone is called in, with the one thing to do, and no
// token is touched (the script names a module that does not exist).
func TestPlanReportsPCAOU(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "ceremony-output"), 0o700)
	os.MkdirAll(filepath.Join(dir, "inputs"), 0o700)
	// The root ceremony's outputs: a quorum record and a root certificate.
	rec, sec, _, err := quorum.Split("example-root-2026", 3, []string{"Carol Chen", "Dan Diaz", "Erin Evans", "Frank Fox", "Grace Gray"})
	if err != nil {
		t.Fatal(err)
	}
	sec.Wipe()
	recRaw, _ := rec.Marshal()
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Example Root CA 2026", Organization: []string{"Example Corp"}, Country: []string{"DE"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(20, 0, 0), IsCA: true, BasicConstraintsValid: true, MaxPathLen: -1,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: []byte{1, 2, 3, 4}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(der)
	rootRaw := certprofile.PEM(root)
	// The CSR as AWS Private CA writes it: an OU in the subject.
	csrPath := filepath.Join(dir, "inputs", "issuing-ca-1.csr")
	if out, err := exec.Command("openssl", "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-keyout", filepath.Join(dir, "k.pem"),
		"-out", csrPath, "-subj", "/C=US/O=Example Corp/OU=Payments/CN=Example Issuing CA 1").CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v %s", err, out)
	}
	csrRaw, _ := os.ReadFile(csrPath)
	files := map[string][]byte{"ceremony-output/example-root-2026.quorum.json": recRaw, "ceremony-output/example-root-2026.cert.pem": rootRaw}
	for p, b := range files {
		os.WriteFile(filepath.Join(dir, p), b, 0o600)
	}
	files["inputs/issuing-ca-1.csr"] = csrRaw
	b, _ := fs.ReadFile(assets.Ceremonies, "ceremonies/ca-signing.yaml")
	s := string(b)
	for p, raw := range files {
		sum := sha256.Sum256(raw)
		s = strings.Replace(s, "{path: "+p+", sha256: \""+strings.Repeat("0", 64)+"\"}", fmt.Sprintf("{path: %s, sha256: %s}", p, hex.EncodeToString(sum[:])), 1)
	}
	s = strings.Replace(s, "module: /usr/lib/softhsm/libsofthsm2.so", "module: /nonexistent/libnothing.so", 1)
	s = strings.Replace(s, "      subject:\n        common_name: Example Corp Issuing CA 1\n        organization: Example Corp\n        country: DE\n", "      accept_csr_subject: true\n", 1)
	script := filepath.Join(dir, "pca.yaml")
	os.WriteFile(script, []byte(s), 0o600)

	_, _, err = run(t, "", "ceremony", "plan", script)
	if err == nil || !strings.Contains(err.Error(), "signing.subordinate.profile: the subordinate ca certificate this profile makes from these inputs fails zlint (e_subj_orgunit_in_ca_cert") ||
		!strings.Contains(err.Error(), "no one needs to be called in for it yet") || !strings.Contains(err.Error(), "instead of accept_csr_subject: true") ||
		strings.Contains(err.Error(), "resume") {
		t.Fatalf("plan of a PCA CSR taken with its OU: %v", err)
	}
	// The same profile with a subject of its own plans.
	s = strings.Replace(s, "      accept_csr_subject: true\n", "      subject: {common_name: Example Issuing CA 1, organization: Example Corp, country: US}\n", 1)
	os.WriteFile(script, []byte(s), 0o600)
	if out, _, err := run(t, "", "ceremony", "plan", script); err != nil || !strings.Contains(out, "Subordinate CA certificate linted [lint-subordinate]") {
		t.Fatalf("plan with the profile's subject: %v\n%s", err, out)
	}
}

// TestVerifyLegacyTranscript: a transcript of an earlier version still
// verifies, flagged loudly: without the paper's hash or an explicit
// --allow-unanchored it exits non-zero.
func TestVerifyLegacyTranscript(t *testing.T) {
	tr := filepath.Join("..", "..", "ceremony", "testdata", "legacy", "completed", "ceremony-output", "example-root-2026.transcript.jsonl")
	out, _, err := run(t, "", "ceremony", "verify", tr)
	if err == nil || !strings.Contains(out, "Anchors    NONE") || !strings.Contains(err.Error(), "NO ANCHORS") {
		t.Fatalf("verify of a legacy transcript: %v\n%s", err, out)
	}
	if _, _, err := run(t, "", "ceremony", "verify", "--allow-unanchored", tr); err != nil {
		t.Fatalf("--allow-unanchored: %v", err)
	}
	final := regexp.MustCompile(`Final hash \(entry \d+[^)]*\)\n  ([0-9a-f]{64})`).FindStringSubmatch(out)
	if final == nil {
		t.Fatalf("no final hash printed:\n%s", out)
	}
	if out, _, err := run(t, "", "ceremony", "verify", "--expect", final[1], tr); err != nil || !strings.Contains(out, "Transcript verified") {
		t.Fatalf("--expect with the paper's hash: %v\n%s", err, out)
	}
}
