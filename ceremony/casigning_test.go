package ceremony

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"

	"github.com/keyceremony/keyceremony/ceremony/certsign"
	"github.com/keyceremony/keyceremony/ceremony/quorum"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
)

// rootFixture is a completed root-generation ceremony from the shipped
// template (cards only, no backup): the token it enrolled under the quorum,
// and its outputs in w.dir/ceremony-output, where the signing, CRL and BYOK
// templates expect them.
type rootFixture struct {
	w      *world
	out    string
	cert   string // the root certificate (PEM)
	record string
}

func newRootFixture(t *testing.T, label string) *rootFixture {
	t.Helper()
	return newRootFixtureIn(t, newWorld(t, label))
}

// newRootFixtureIn runs the root ceremony in w, on w's token.
func newRootFixtureIn(t *testing.T, w *world) *rootFixture {
	t.Helper()
	out := filepath.Join(w.dir, "ceremony-output")
	s := w.writeScript("root.yaml", "root-generation.yaml", w.uri, out,
		"delivery: [card, file]", "delivery: [card]", "not_before: 2026-12-01T00:00:00Z", "not_before: "+today(), "backup: true", "backup: false")
	if _, err := w.run(s, w.cardsOnly("root", "Carol Chen", "Dan Diaz", "Erin Evans"), Options{}); err != nil {
		t.Fatalf("root ceremony: %v\n%s", err, w.log.String())
	}
	return &rootFixture{w: w, out: out, cert: filepath.Join(out, "example-root-2026.cert.pem"), record: filepath.Join(out, "example-root-2026.quorum.json")}
}

// quorumPrompter confirms everything and has three custodians type their
// shares from the cards of the root ceremony.
func (f *rootFixture) quorumPrompter(who ...string) *typist {
	if len(who) == 0 {
		who = []string{"Dan Diaz", "Frank Fox", "Grace Gray"}
	}
	return f.w.cardsOnly("root", who...)
}

// opensslCSR makes a CSR with openssl req, asking for extensions the profile
// must not let through (a SAN, a long path length, digitalSignature).
func opensslCSR(t *testing.T, dir, name string, keyArgs ...string) string {
	t.Helper()
	csr := filepath.Join(dir, name+".csr")
	args := append([]string{"req", "-new", "-nodes", "-keyout", filepath.Join(t.TempDir(), name+".key"), "-out", csr,
		"-subj", "/C=DE/O=CSR Org/CN=CSR Subject " + name,
		"-addext", "subjectAltName=DNS:evil.example.com", "-addext", "basicConstraints=critical,CA:TRUE,pathlen:5",
		"-addext", "keyUsage=critical,digitalSignature,keyCertSign"}, keyArgs...)
	if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	return csr
}

func opensslVerify(t *testing.T, caFile, certFile string) {
	t.Helper()
	out, err := exec.Command("openssl", "verify", "-CAfile", caFile, certFile).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK") {
		t.Fatalf("openssl verify -CAfile %s %s: %v\n%s", caFile, certFile, err, out)
	}
}

func opensslCRLVerify(t *testing.T, caFile, crlFile string) {
	t.Helper()
	out, err := exec.Command("openssl", "crl", "-in", crlFile, "-CAfile", caFile, "-verify", "-noout").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "verify OK") {
		t.Fatalf("openssl crl -verify %s: %v\n%s", crlFile, err, out)
	}
}

func zlintErrors(t *testing.T, der []byte) []string {
	t.Helper()
	zc, err := zx509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	var errs []string
	for name, r := range zlint.LintCertificate(zc).Results {
		if r.Status == lint.Error || r.Status == lint.Fatal {
			errs = append(errs, name+": "+r.Details)
		}
	}
	return errs
}

func extensionIDs(c *x509.Certificate) []string {
	var ids []string
	for _, e := range c.Extensions {
		ids = append(ids, e.Id.String())
	}
	slices.Sort(ids)
	return ids
}

const (
	extKeyUsage   = "2.5.29.15"
	extBasic      = "2.5.29.19"
	extSKI        = "2.5.29.14"
	extAKI        = "2.5.29.35"
	extCRLDP      = "2.5.29.31"
	extAIA        = "1.3.6.1.5.5.7.1.1"
	extPolicies   = "2.5.29.32"
	extNameConstr = "2.5.29.30"
)

func readCRL(t *testing.T, path string) *x509.RevocationList {
	t.Helper()
	der, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return crl
}

func entryByStep(t *testing.T, rep *transcript.Report, step string) transcript.Entry {
	t.Helper()
	for _, en := range rep.Entries {
		if en.Step == step && en.OK() {
			return en
		}
	}
	t.Fatalf("no entry for step %s", step)
	return transcript.Entry{}
}

// TestCASigning runs the shipped ca-signing and crl templates against the
// token of one root ceremony: subordinate CAs from openssl CSRs (P-384 and
// RSA-4096), CRLs whose numbers increase across ceremonies, a
// cross-certificate, and the refusals, each checked with openssl and zlint.
func TestCASigning(t *testing.T) {
	f := newRootFixture(t, "Root 2026")
	w := f.w
	inputs := filepath.Join(w.dir, "inputs")
	if err := os.MkdirAll(inputs, 0o700); err != nil {
		t.Fatal(err)
	}
	c := &caSigningRun{f: f, inputs: inputs, root: readCert(t, f.cert),
		p384CSR: opensslCSR(t, inputs, "p384", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384")}
	t.Run("P-384 subordinate and CRL from the template", c.subordinateP384)
	t.Run("RSA-4096 subordinate with the CSR's subject, name constraints and clipped validity", c.subordinateRSA)
	t.Run("CRL numbers increase across CRL ceremonies", c.crlNumbersIncrease)
	t.Run("cross-certificate", c.crossCertificate)
	t.Run("refusals before anything is signed", c.refusals)
	t.Run("a CSR swapped during the ceremony is refused, recorded, and the ceremony resumes", c.swappedCSR)

	// No PIN or share reached the outputs, transcripts, PDFs, scripts, the
	// temporary directory or the log of any of these ceremonies.
	shares := w.sharesFromCards("root", custodians...)
	sec := unlockWith(t, mustRecord(t, f.record), shares[1], shares[3], shares[4])
	pin, _ := sec.PIN(quorum.UserPIN, 255)
	so, _ := sec.PIN(quorum.SOPIN, 255)
	assertNoSecrets(t, w, shares, [][]byte{pin, so}, w.dir, w.tmp)
}

// caSigningRun is what the parts of TestCASigning share: the root ceremony's
// token and outputs, the inputs directory, the root certificate, a P-384
// CSR. The parts run in order: the CRL numbers they expect follow on.
type caSigningRun struct {
	f       *rootFixture
	inputs  string
	root    *x509.Certificate
	p384CSR string
}

// csrPath is the template's CSR line; csrAt names another CSR, pinned by
// the test's writeScript as a reviewer pins it.
var csrPath = csrAt("issuing-ca-1.csr")

func csrAt(name string) string {
	return "csr: {path: inputs/" + name + ", sha256: \"" + strings.Repeat("0", 64) + "\"}"
}

// subordinateP384: a P-384 subordinate and the CRL from the shipped template.
func (c *caSigningRun) subordinateP384(t *testing.T) {
	f, w, root := c.f, c.f.w, c.root
	out := filepath.Join(w.dir, "p384-out")
	s := w.writeScript("p384.yaml", "ca-signing.yaml", w.uri, out,
		csrPath, csrAt("p384.csr"))
	res, err := w.run(s, f.quorumPrompter(), Options{})
	if err != nil {
		t.Fatalf("ceremony: %v\n%s", err, w.log.String())
	}
	subPEM := filepath.Join(out, "example-issuing-ca-1-2026.subordinate.pem")
	opensslVerify(t, f.cert, subPEM)
	sub := readCert(t, subPEM)
	// Exactly the profile's extensions: no SAN, and the CSR's path
	// length and digitalSignature were not taken.
	want := []string{extKeyUsage, extBasic, extSKI, extAKI, extCRLDP, extAIA, extPolicies}
	slices.Sort(want)
	if got := extensionIDs(sub); !slices.Equal(got, want) {
		t.Errorf("extensions %v, want exactly the profile's %v", got, want)
	}
	if len(sub.DNSNames) != 0 || sub.MaxPathLen != 0 || !sub.MaxPathLenZero || sub.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("the CSR's requests leaked: SAN %v pathlen %d ku %v", sub.DNSNames, sub.MaxPathLen, sub.KeyUsage)
	}
	if sub.Subject.String() != "CN=Example Corp Issuing CA 1,O=Example Corp,C=DE" {
		t.Errorf("subject %q is not the profile's", sub.Subject)
	}
	if !bytes.Equal(sub.AuthorityKeyId, root.SubjectKeyId) || sub.CRLDistributionPoints[0] != "http://crl.example.com/root-2026.crl" ||
		sub.IssuingCertificateURL[0] != "http://pki.example.com/root-2026.crt" || sub.PolicyIdentifiers[0].String() != "2.5.29.32.0" {
		t.Errorf("AKI/CRLDP/AIA/policies: %x %v %v %v", sub.AuthorityKeyId, sub.CRLDistributionPoints, sub.IssuingCertificateURL, sub.PolicyIdentifiers)
	}
	if sub.SerialNumber.BitLen() < 120 {
		t.Errorf("serial has %d bits", sub.SerialNumber.BitLen())
	}
	if d := sub.NotAfter.Sub(sub.NotBefore); d != 3650*24*time.Hour {
		t.Errorf("validity %v, want the profile's 3650 days", d)
	}
	if errs := zlintErrors(t, sub.Raw); len(errs) > 0 {
		t.Errorf("zlint: %v", errs)
	}
	// The chain file is the root; the ACM PCA JSON carries both, base64.
	chain, _ := os.ReadFile(filepath.Join(out, "example-issuing-ca-1-2026.chain.pem"))
	rootPEM, _ := os.ReadFile(f.cert)
	if !bytes.Equal(chain, rootPEM) {
		t.Error("chain.pem is not the root certificate")
	}
	var imp struct{ CertificateAuthorityArn, Certificate, CertificateChain string }
	raw, _ := os.ReadFile(filepath.Join(out, "example-issuing-ca-1-2026.acm-pca-import.json"))
	if err := json.Unmarshal(raw, &imp); err != nil {
		t.Fatal(err)
	}
	subBytes, _ := os.ReadFile(subPEM)
	if c, _ := base64.StdEncoding.DecodeString(imp.Certificate); !bytes.Equal(c, subBytes) {
		t.Error("import JSON Certificate is not the subordinate PEM")
	}
	if c, _ := base64.StdEncoding.DecodeString(imp.CertificateChain); !bytes.Equal(c, rootPEM) {
		t.Error("import JSON CertificateChain is not the root PEM")
	}
	if !strings.HasPrefix(imp.CertificateAuthorityArn, "arn:aws:acm-pca:eu-west-1:111122223333:certificate-authority/") {
		t.Errorf("ARN %q", imp.CertificateAuthorityArn)
	}

	// The CRL from the same script: number 1, verified by openssl, and
	// the counter on the medium advanced.
	crlDER := filepath.Join(out, "example-issuing-ca-1-2026.crl.der")
	opensslCRLVerify(t, f.cert, filepath.Join(out, "example-issuing-ca-1-2026.crl.pem"))
	if crl := readCRL(t, crlDER); crl.Number.Int64() != 1 || crl.CheckSignatureFrom(root) != nil {
		t.Errorf("CRL number %v", crl.Number)
	}
	if b, _ := os.ReadFile(filepath.Join(f.out, "crlnumber")); strings.TrimSpace(string(b)) != "1" {
		t.Errorf("counter file %q, want 1", b)
	}

	if d := os.Getenv("KC_DUMP"); d != "" {
		raw, _ := os.ReadFile(res.Transcript)
		os.WriteFile(filepath.Join(d, "ca-signing.jsonl"), raw, 0o600)
		os.WriteFile(filepath.Join(d, "ca-signing.log"), w.log.Bytes(), 0o600)
	}
	rep, err := transcript.Verify(res.Transcript)
	if err != nil {
		t.Fatal(err)
	}
	in := entryByStep(t, rep, "inputs")
	if got := in.Detail("csr requested extensions (ignored: the profile decides)"); !strings.Contains(got, "2.5.29.17") {
		t.Errorf("the CSR's requested SAN is not recorded as ignored: %q", got)
	}
	lintEntry := entryByStep(t, rep, "lint-subordinate")
	signEntry := entryByStep(t, rep, "sign-subordinate")
	if lintEntry.Detail("tbs sha256") == "" || lintEntry.Detail("tbs sha256") != signEntry.Detail("tbs sha256") || lintEntry.Detail("lint errors") != "" {
		t.Errorf("lint/sign TBS: %q %q errors %q", lintEntry.Detail("tbs sha256"), signEntry.Detail("tbs sha256"), lintEntry.Detail("lint errors"))
	}
	if signEntry.Detail("certificate sha256") != fingerprintHex(sub.Raw) {
		t.Error("the transcript's certificate hash is not the certificate's")
	}
	if entryByStep(t, rep, "sign-crl").Detail("crl number") != "1" {
		t.Error("the transcript does not record CRL number 1")
	}
	for _, o := range res.Outputs {
		if fi, err := os.Stat(o); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("output %s: %v %v", o, fi.Mode(), err)
		}
	}
	if pdf := pdfText(t, res.PDF); !strings.Contains(pdf, "Subordinate CA certificate") || !strings.Contains(pdf, "sign-crl") {
		t.Error("the transcript PDF lacks the subordinate fingerprint or the CRL step")
	}
}

// subordinateRSA: an RSA-4096 subordinate with the CSR's subject, name
// constraints and a validity clipped to the root's.
func (c *caSigningRun) subordinateRSA(t *testing.T) {
	f, w, inputs, root := c.f, c.f.w, c.inputs, c.root
	opensslCSR(t, inputs, "rsa4096", "-newkey", "rsa:4096")
	out := filepath.Join(w.dir, "rsa-out")
	s := w.writeScript("rsa.yaml", "ca-signing.yaml", "pkcs11:serial="+w.serial, out,
		"id: example-issuing-ca-1-2026", "id: example-issuing-ca-2",
		csrPath, csrAt("rsa4096.csr"),
		`      subject:
        common_name: Example Corp Issuing CA 1
        organization: Example Corp
        country: DE
`, "      accept_csr_subject: true\n",
		"validity_days: 3650", "validity_days: 9000",
		"digital_signature: false", "digital_signature: true",
		"      policies: [2.5.29.32.0]\n", "      policies: [2.5.29.32.0]\n      permitted_dns_domains: [example.com]\n")
	s = rewrite(t, s, cutSection("  crl:\n"))
	res, err := w.run(s, f.quorumPrompter("Carol Chen", "Erin Evans", "Grace Gray"), Options{})
	if err != nil {
		t.Fatalf("ceremony: %v\n%s", err, w.log.String())
	}
	subPEM := filepath.Join(out, "example-issuing-ca-2.subordinate.pem")
	opensslVerify(t, f.cert, subPEM)
	sub := readCert(t, subPEM)
	want := []string{extKeyUsage, extBasic, extSKI, extAKI, extCRLDP, extAIA, extPolicies, extNameConstr}
	slices.Sort(want)
	if got := extensionIDs(sub); !slices.Equal(got, want) {
		t.Errorf("extensions %v, want exactly the profile's %v", got, want)
	}
	if sub.Subject.CommonName != "CSR Subject rsa4096" || sub.Subject.Organization[0] != "CSR Org" {
		t.Errorf("subject %q is not the CSR's", sub.Subject)
	}
	if sub.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign|x509.KeyUsageDigitalSignature || !slices.Equal(sub.PermittedDNSDomains, []string{"example.com"}) || !sub.PermittedDNSDomainsCritical {
		t.Errorf("key usage %v, name constraints %v", sub.KeyUsage, sub.PermittedDNSDomains)
	}
	if !sub.NotAfter.Equal(root.NotAfter) {
		t.Errorf("validity ends %v, want clipped to the root's %v", sub.NotAfter, root.NotAfter)
	}
	if errs := zlintErrors(t, sub.Raw); len(errs) > 0 {
		t.Errorf("zlint: %v", errs)
	}
	rep, _ := transcript.Verify(res.Transcript)
	if n := entryByStep(t, rep, "lint-subordinate").Detail("note"); !strings.Contains(n, "clipped") {
		t.Errorf("clipping not recorded: %q", n)
	}
	if _, err := os.Stat(filepath.Join(out, "example-issuing-ca-2.crl.der")); err == nil {
		t.Error("a CRL was issued by a script without a crl section")
	}
}

// crlNumbersIncrease: CRL numbers increase across CRL ceremonies, and a
// counter restored from an old copy is caught.
func (c *caSigningRun) crlNumbersIncrease(t *testing.T) {
	f, w := c.f, c.f.w
	var last *big.Int
	var lastPath string
	for i, id := range []string{"example-root-2026-crl-a", "example-root-2026-crl-b"} {
		out := filepath.Join(w.dir, id)
		edits := []string{"id: example-root-2026-crl-2027", "id: " + id}
		if lastPath != "" {
			edits = append(edits, "    next_update_days: 365\n", "    previous: {path: "+lastPath+"}\n    next_update_days: 365\n")
		}
		s := w.writeScript(id+".yaml", "crl.yaml", "pkcs11:serial="+w.serial, out, edits...)
		res, err := w.run(s, f.quorumPrompter(), Options{})
		if err != nil {
			t.Fatalf("CRL ceremony %d: %v\n%s", i+1, err, w.log.String())
		}
		lastPath = filepath.Join(out, id+".crl.der")
		opensslCRLVerify(t, f.cert, filepath.Join(out, id+".crl.pem"))
		crl := readCRL(t, lastPath)
		if last != nil && crl.Number.Cmp(last) <= 0 {
			t.Fatalf("CRL number %s after %s", crl.Number, last)
		}
		last = crl.Number
		if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Text(16) != "7a11035c902e4d8b" || crl.RevokedCertificateEntries[0].ReasonCode != 5 {
			t.Errorf("revoked entries %+v", crl.RevokedCertificateEntries)
		}
		if d := crl.NextUpdate.Sub(crl.ThisUpdate); d != 365*24*time.Hour {
			t.Errorf("next update %v after this update", d)
		}
		rep, _ := transcript.Verify(res.Transcript)
		if got := entryByStep(t, rep, "sign-crl").Detail("crl number"); got != crl.Number.String() {
			t.Errorf("transcript records CRL number %s, the CRL has %s", got, crl.Number)
		}
	}
	if last.Int64() != 3 {
		t.Errorf("third CRL of this root has number %s, want 3", last)
	}
	// A counter restored from an old copy would reuse a number: the
	// previous CRL catches it before anything is signed.
	os.WriteFile(filepath.Join(f.out, "crlnumber"), []byte("1\n"), 0o600)
	defer os.WriteFile(filepath.Join(f.out, "crlnumber"), []byte("3\n"), 0o600)
	s := w.writeScript("crl-old-counter.yaml", "crl.yaml", "pkcs11:serial="+w.serial, filepath.Join(w.dir, "crl-old-counter"),
		"id: example-root-2026-crl-2027", "id: example-root-2026-crl-c",
		"    next_update_days: 365\n", "    previous: {path: "+lastPath+"}\n    next_update_days: 365\n")
	if _, err := w.run(s, f.quorumPrompter(), Options{}); err == nil || !strings.Contains(err.Error(), "the previous CRL already has number 3") {
		t.Fatalf("old counter: %v", err)
	}
}

// crossCertificate: a cross-certificate for a partner root.
func (c *caSigningRun) crossCertificate(t *testing.T) {
	f, w, inputs, root := c.f, c.f.w, c.inputs, c.root
	partner := filepath.Join(inputs, "partner-root.pem")
	if out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-nodes",
		"-keyout", filepath.Join(t.TempDir(), "partner.key"), "-out", partner, "-days", "1500", "-subj", "/C=FR/O=Partner/CN=Partner Root CA",
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign").CombinedOutput(); err != nil {
		t.Fatalf("openssl req -x509: %v\n%s", err, out)
	}
	out := filepath.Join(w.dir, "cross-out")
	s := w.writeScript("cross.yaml", "ca-signing.yaml", "pkcs11:serial="+w.serial, out, "id: example-issuing-ca-1-2026", "id: example-partner-cross")
	s = rewrite(t, s, func(text string) string {
		return text[:strings.Index(text, "  subordinate:\n")] + `  cross_certificate:
    certificate: {path: inputs/partner-root.pem}
    profile:
      max_path_length: 1
      policies: [2.5.29.32.0]
      crl_distribution_points: [http://crl.example.com/root-2026.crl]
      issuing_certificate_urls: [http://pki.example.com/root-2026.crt]
      allowed_keys: [ec-p384]
output:
` + text[strings.Index(text, "output:\n")+len("output:\n"):]
	})
	if _, err := w.run(s, f.quorumPrompter(), Options{}); err != nil {
		t.Fatalf("ceremony: %v\n%s", err, w.log.String())
	}
	crossPEM := filepath.Join(out, "example-partner-cross.cross-certificate.pem")
	opensslVerify(t, f.cert, crossPEM)
	cross, orig := readCert(t, crossPEM), readCert(t, partner)
	if !bytes.Equal(cross.RawSubject, orig.RawSubject) || !certsign.SamePublicKey(cross.PublicKey, orig.PublicKey) || !cross.NotAfter.Equal(orig.NotAfter) {
		t.Errorf("cross-certificate %s until %v; original %s until %v", cross.Subject, cross.NotAfter, orig.Subject, orig.NotAfter)
	}
	if !bytes.Equal(cross.RawIssuer, root.RawSubject) || cross.MaxPathLen != 1 {
		t.Errorf("issuer %s pathlen %d", cross.Issuer, cross.MaxPathLen)
	}
	if errs := zlintErrors(t, cross.Raw); len(errs) > 0 {
		t.Errorf("zlint: %v", errs)
	}
}

// refusals: wrong inputs are refused before anything is signed.
func (c *caSigningRun) refusals(t *testing.T) {
	f, w, inputs, p384CSR := c.f, c.f.w, c.inputs, c.p384CSR
	opensslCSR(t, inputs, "p256", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256")
	good, _ := os.ReadFile(p384CSR)
	blk, _ := pem.Decode(good)
	der := slices.Clone(blk.Bytes)
	der[len(der)-3] ^= 0xff // inside the signature
	os.WriteFile(filepath.Join(inputs, "broken.csr"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), 0o600)
	cases := []struct {
		name  string
		edits []string
		want  string
	}{
		{"broken CSR signature", []string{csrPath, csrAt("broken.csr")}, "signing.subordinate.csr: inputs/broken.csr: the CSR's signature does not verify"},
		{"key not allowed", []string{csrPath, csrAt("p256.csr")}, "the subject key is ec-p256, which the profile does not allow (allowed: ec-p384, rsa-4096, rsa-3072)"},
		{"longer than the root", []string{csrPath, csrAt("p384.csr"), "validity_days: 3650", "not_after: 2050-01-01T00:00:00Z"}, "after the issuer expires"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(w.dir, "refused-"+strings.ReplaceAll(tc.name, " ", "-"))
			s := w.writeScript("refused.yaml", "ca-signing.yaml", "pkcs11:serial="+w.serial, out, tc.edits...)
			_, err := w.run(s, f.quorumPrompter(), Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Error("the refused ceremony created its output directory")
			}
		})
	}
	if b, _ := os.ReadFile(filepath.Join(f.out, "crlnumber")); strings.TrimSpace(string(b)) != "3" {
		t.Errorf("a refused ceremony moved the CRL counter to %q", b)
	}
}

// swappedCSR: a CSR swapped during the ceremony is refused, recorded, and
// the ceremony resumes once the right one is back.
func (c *caSigningRun) swappedCSR(t *testing.T) {
	f, w, inputs, p384CSR := c.f, c.f.w, c.inputs, c.p384CSR
	csr := filepath.Join(inputs, "swap.csr")
	good, _ := os.ReadFile(p384CSR)
	os.WriteFile(csr, good, 0o600)
	out := filepath.Join(w.dir, "swap-out")
	s := w.writeScript("swap.yaml", "ca-signing.yaml", "pkcs11:serial="+w.serial, out,
		"id: example-issuing-ca-1-2026", "id: example-issuing-ca-swap", csrPath, csrAt("swap.csr"))
	s = rewrite(t, s, cutSection("  crl:\n"))
	e, err := New(s, Options{UnattendedTest: true, Prompter: f.quorumPrompter()})
	if err != nil {
		t.Fatal(err)
	}
	// Between review (New) and the inputs step, someone brings the P-256
	// CSR: the script's pin, checked again on the bytes the step reads,
	// refuses it.
	p256, _ := os.ReadFile(filepath.Join(inputs, "p256.csr"))
	os.WriteFile(csr, p256, 0o600)
	if _, err := e.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "nothing was signed") || !strings.Contains(err.Error(), "it is not the reviewed file") {
		t.Fatalf("swapped CSR: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(out, "*.pem")); len(m) != 0 {
		t.Fatalf("something was written: %v", m)
	}
	tr := filepath.Join(out, "example-issuing-ca-swap.transcript.jsonl")
	rep, err := transcript.Verify(tr)
	if err != nil {
		t.Fatal(err)
	}
	if last := rep.Last(); last.Step != "inputs" || last.OK() || !strings.Contains(last.Error, "the script pins") || !slices.ContainsFunc(last.Inputs, func(f transcript.File) bool { return f.SHA256 == hashOf(p256) }) {
		t.Fatalf("last entry %+v", last)
	}
	os.WriteFile(csr, good, 0o600)
	res, err := w.run(s, f.quorumPrompter(), Options{})
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, w.log.String())
	}
	if !res.Resumed {
		t.Error("not resumed")
	}
	opensslVerify(t, f.cert, filepath.Join(out, "example-issuing-ca-swap.subordinate.pem"))
	if _, err := transcript.Verify(res.Transcript); err != nil {
		t.Fatal(err)
	}
}

func fingerprintHex(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// cutSection removes a script's text from the line marker up to the output
// section.
func cutSection(marker string) func(string) string {
	return func(text string) string {
		i, j := strings.Index(text, marker), strings.Index(text, "output:\n")
		if i < 0 || j < i {
			panic("cutSection: " + marker + " not before output:")
		}
		return text[:i] + text[j:]
	}
}

// rewrite edits a script written by writeScript and loads it again.
func rewrite(t *testing.T, s *script.Script, edit func(string) string) *script.Script {
	t.Helper()
	raw, err := os.ReadFile(s.Path)
	if err != nil {
		t.Fatal(err)
	}
	edited := edit(string(raw))
	if edited == string(raw) {
		t.Fatal("rewrite changed nothing")
	}
	if err := os.WriteFile(s.Path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := script.Load(s.Path)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustRecord(t *testing.T, path string) *quorum.Record {
	t.Helper()
	rec, err := quorum.ReadRecord(path)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}
