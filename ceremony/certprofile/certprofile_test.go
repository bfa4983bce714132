package certprofile_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/certprofile"
	"github.com/keyceremony/keyceremony/ceremony/certsign"
	"github.com/keyceremony/keyceremony/ceremony/certsign/certsigntest"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/softhsm/softhsmtest"
)

// rootCA is a root key in a real SoftHSM token and its self-signed certificate.
type rootCA struct {
	tok    *hsm.Token
	signer crypto.Signer
	cert   *x509.Certificate
	pem    string // path of root.pem
	dir    string
}

func newRoot(t *testing.T) *rootCA {
	t.Helper()
	tok := softhsmtest.LoggedIn(t, "Root")
	key, err := tok.GenerateKey(context.Background(), hsm.KeySpec{Type: hsm.ECP384, Label: "root"})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := key.Signer()
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := tok.Random(16)
	serial[0] &= 0x7f
	cert := certsigntest.Root(t, pkix.Name{CommonName: "Example Root CA 2026", Organization: []string{"Example Corp"}, Country: []string{"DE"}}, signer, serial)
	dir := t.TempDir()
	p := filepath.Join(dir, "root.pem")
	os.WriteFile(p, certprofile.PEM(cert), 0o600)
	return &rootCA{tok: tok, signer: signer, cert: cert, pem: p, dir: dir}
}

func profile() certprofile.Profile {
	return certprofile.Profile{
		Subject:         &pkix.Name{CommonName: "Example Issuing CA 1", Organization: []string{"Example Corp"}, Country: []string{"DE"}},
		Validity:        5 * 365 * 24 * time.Hour,
		MaxPathLen:      0,
		CRLDistribution: []string{"http://crl.example.com/root.crl"},
		IssuingCertURLs: []string{"http://pki.example.com/root.crt"},
		Policies:        []string{"2.5.29.32.0"},
		AllowedKeys:     []string{"ec-p384", "rsa-4096"},
	}
}

// opensslCSR makes a CSR with openssl, asking for extensions the profile must ignore.
func opensslCSR(t *testing.T, dir, name string, keyArgs ...string) []byte {
	t.Helper()
	key := filepath.Join(dir, name+".key")
	csr := filepath.Join(dir, name+".csr")
	args := append([]string{"req", "-new", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=CSR Subject " + name,
		"-addext", "subjectAltName=DNS:evil.example.com", "-addext", "basicConstraints=critical,CA:TRUE,pathlen:5"}, keyArgs...)
	if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	b, err := os.ReadFile(csr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func opensslVerify(t *testing.T, caFile, certFile string) {
	t.Helper()
	out, err := exec.Command("openssl", "verify", "-CAfile", caFile, certFile).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK") {
		t.Fatalf("openssl verify -CAfile %s %s: %v\n%s", caFile, certFile, err, out)
	}
}

var (
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidSKI              = asn1.ObjectIdentifier{2, 5, 29, 14}
	oidAKI              = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidCRLDP            = asn1.ObjectIdentifier{2, 5, 29, 31}
	oidAIA              = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 1}
	oidPolicies         = asn1.ObjectIdentifier{2, 5, 29, 32}
)

func TestSubordinateFromOpenSSLCSRs(t *testing.T) {
	root := newRoot(t)
	for _, tc := range []struct {
		name    string
		keyArgs []string
	}{
		{"p384", []string{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"}},
		{"rsa4096", []string{"-newkey", "rsa:4096"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			csr, err := certprofile.ParseCSR(opensslCSR(t, root.dir, tc.name, tc.keyArgs...))
			if err != nil {
				t.Fatal(err)
			}
			serial, _ := root.tok.Random(20)
			tmpl, notes, err := certprofile.Subordinate(csr, root.cert, profile(), serial, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, "ignored") }) {
				t.Errorf("notes %q do not say the CSR's extensions were ignored", notes)
			}
			sub := certsigntest.Sign(t, certsign.Certificate(tmpl, root.cert, csr.PublicKey), root.signer).Certificate
			p := filepath.Join(root.dir, tc.name+"-sub.pem")
			os.WriteFile(p, certprofile.PEM(sub), 0o600)
			opensslVerify(t, root.pem, p)

			var got []string
			for _, e := range sub.Extensions {
				got = append(got, e.Id.String())
			}
			want := []string{oidKeyUsage.String(), oidBasicConstraints.String(), oidSKI.String(), oidAKI.String(), oidAIA.String(), oidCRLDP.String(), oidPolicies.String()}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("extensions %v, want exactly the profile's %v", got, want)
			}
			if len(sub.DNSNames) != 0 || sub.MaxPathLen != 0 || !sub.MaxPathLenZero {
				t.Errorf("CSR's requests leaked: SAN %v pathlen %d", sub.DNSNames, sub.MaxPathLen)
			}
			if sub.Subject.CommonName != "Example Issuing CA 1" {
				t.Errorf("subject %q is not the profile's", sub.Subject)
			}
			if sub.SerialNumber.BitLen() < 64 {
				t.Errorf("serial has %d bits", sub.SerialNumber.BitLen())
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	root := newRoot(t)
	good := opensslCSR(t, root.dir, "good", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384")

	// A CSR whose signature is broken.
	block, _ := pem.Decode(good)
	der := slices.Clone(block.Bytes)
	der[len(der)-3] ^= 0xff
	if _, err := certprofile.ParseCSR(der); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("broken CSR signature: %v", err)
	}

	serial, _ := root.tok.Random(16)
	// A key the profile does not allow.
	p256 := opensslCSR(t, root.dir, "p256", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256")
	csr, err := certprofile.ParseCSR(p256)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := certprofile.Subordinate(csr, root.cert, profile(), serial, time.Now()); err == nil || !strings.Contains(err.Error(), "ec-p256") {
		t.Errorf("disallowed key: %v", err)
	}
	// A validity beyond the root's.
	csr, _ = certprofile.ParseCSR(good)
	p := profile()
	p.NotAfter = root.cert.NotAfter.Add(24 * time.Hour)
	if _, _, err := certprofile.Subordinate(csr, root.cert, p, serial, time.Now()); err == nil || !strings.Contains(err.Error(), "after the issuer expires") {
		t.Errorf("too long validity: %v", err)
	}
	// A relative validity is clipped, and the operator is told.
	p = profile()
	p.Validity = 20 * 365 * 24 * time.Hour
	tmpl, notes, err := certprofile.Subordinate(csr, root.cert, p, serial, time.Now())
	if err != nil || !tmpl.NotAfter.Equal(root.cert.NotAfter) || !slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, "clipped") }) {
		t.Errorf("clipping: %v %v %v", tmpl.NotAfter, notes, err)
	}
	// A profile that zlint rejects never reaches the token: a CA certificate with no subject.
	p = profile()
	p.Subject = &pkix.Name{}
	tmpl, _, _ = certprofile.Subordinate(csr, root.cert, p, serial, time.Now())
	bad := certsign.Certificate(tmpl, root.cert, csr.PublicKey)
	l, err := certsign.Lint(bad, certsign.Options{})
	var le *certsign.LintError
	if !errors.As(err, &le) || l == nil || len(l.Results.Errors) == 0 {
		t.Fatalf("empty subject: lint error = %v", err)
	}
	if _, err := certsign.Confirm(bad, certsign.Options{}, l.TBSSHA256()); !errors.As(err, &le) {
		t.Errorf("a certificate with lint errors was confirmed for signing: %v", err)
	}
	// The token's key must be the issuer's.
	other, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	sub := certsign.Certificate(mustSub(t, csr, root, serial), root.cert, csr.PublicKey)
	l, err = certsign.Lint(sub, certsign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := certsign.Confirm(sub, certsign.Options{}, l.TBSSHA256())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sign(other); err == nil {
		t.Error("signed with a key that is not the issuer's")
	}
}

func mustSub(t *testing.T, csr *x509.CertificateRequest, root *rootCA, serial []byte) *x509.Certificate {
	tmpl, _, err := certprofile.Subordinate(csr, root.cert, profile(), serial, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

func TestCRLNumbersIncreaseAndOpenSSLVerifies(t *testing.T) {
	root := newRoot(t)
	medium := t.TempDir()
	var last *big.Int
	for i := 0; i < 3; i++ {
		n, err := certprofile.NextCRLNumber(medium)
		if err != nil {
			t.Fatal(err)
		}
		if last != nil && n.Cmp(last) <= 0 {
			t.Fatalf("CRL number %s after %s", n, last)
		}
		now := time.Now().UTC().Truncate(time.Second)
		tmpl, err := certprofile.CRL(n, now, now.AddDate(0, 0, 30), []certprofile.Revoked{{Serial: big.NewInt(0x1234567 + int64(i)), Time: now.Add(-time.Hour), Reason: 1}})
		if err != nil {
			t.Fatal(err)
		}
		signed := certsigntest.Sign(t, certsign.CRL(tmpl, root.cert), root.signer)
		der, crl := signed.DER, signed.CRL
		if crl.Number.Cmp(n) != 0 {
			t.Errorf("CRL carries number %s, want %s", crl.Number, n)
		}
		p := filepath.Join(root.dir, "root.crl")
		os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o600)
		out, err := exec.Command("openssl", "crl", "-in", p, "-CAfile", root.pem, "-verify", "-noout").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "verify OK") {
			t.Fatalf("openssl crl -verify: %v\n%s", err, out)
		}
		if err := certprofile.StoreCRLNumber(medium, n); err != nil {
			t.Fatal(err)
		}
		last = n
	}
	if last.Int64() != 3 {
		t.Errorf("last CRL number %s, want 3", last)
	}
	os.WriteFile(filepath.Join(medium, certprofile.CRLCounterFile), []byte("garbage"), 0o600)
	if _, err := certprofile.NextCRLNumber(medium); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("damaged counter: %v", err)
	}
	at := time.Now()
	if _, err := certprofile.CRL(big.NewInt(1), at, at, nil); err == nil {
		t.Error("a CRL with next update = this update was accepted")
	}
}

func TestCrossSign(t *testing.T) {
	root := newRoot(t)
	// Another root, in software, as a partner organisation would have.
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ski, _ := certprofile.SubjectKeyID(&k.PublicKey)
	now := time.Now().UTC().Truncate(time.Second)
	otherTmpl := &x509.Certificate{SerialNumber: big.NewInt(99), Subject: pkix.Name{CommonName: "Partner Root", Organization: []string{"Partner"}, Country: []string{"FR"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(3, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: ski}
	der, _ := x509.CreateCertificate(rand.Reader, otherTmpl, otherTmpl, &k.PublicKey, k)
	other, _ := x509.ParseCertificate(der)

	serial, _ := root.tok.Random(16)
	p := profile()
	p.MaxPathLen = 1
	tmpl, _, err := certprofile.CrossSign(other, root.cert, p, serial, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cross := certsigntest.Sign(t, certsign.Certificate(tmpl, root.cert, other.PublicKey), root.signer).Certificate
	if err := certprofile.CheckCrossCertificate(cross, other); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root.dir, "cross.pem")
	os.WriteFile(path, certprofile.PEM(cross), 0o600)
	opensslVerify(t, root.pem, path)
	if !cross.NotAfter.Equal(other.NotAfter) {
		t.Errorf("cross-certificate ends %v, original %v", cross.NotAfter, other.NotAfter)
	}
	// Another certificate's subject is refused by the check.
	if err := certprofile.CheckCrossCertificate(cross, root.cert); err == nil {
		t.Error("CheckCrossCertificate accepted a different original")
	}
}

func TestACMPCAJSON(t *testing.T) {
	root := newRoot(t)
	b, err := certprofile.ACMPCAJSON("arn:aws:acm-pca:eu-west-1:111122223333:certificate-authority/11111111-2222-3333-4444-555555555555", root.cert, root.cert)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"CertificateAuthorityArn": "arn:aws:acm-pca:`, `"Certificate": "LS0tLS1CRUdJTi`, `"CertificateChain": "LS0tLS1CRUdJTi`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s:\n%s", want, b)
		}
	}
}

// TestCSRMessages: an empty, cut or foreign file gets a sentence a person
// can act on, not an ASN.1 error; a CSR signed with SHA-1 is refused unless
// the policy allows it.
func TestCSRMessages(t *testing.T) {
	dir := t.TempDir()
	good := opensslCSR(t, dir, "good", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384")
	block, _ := pem.Decode(good)
	der := block.Bytes
	cut := len(good) * 2 / 3
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"empty":              {nil, "the file is empty (0 bytes)"},
		"blank":              {[]byte("\n \n"), "the file is empty (3 bytes)"},
		"PEM cut short":      {good[:cut], "the PEM block is cut short or damaged"},
		"DER cut short":      {der[:100], fmt.Sprintf("the CSR is truncated at byte 100: its DER header announces %d bytes", len(der))},
		"DER header cut":     {der[:3], "the CSR is truncated at byte 3"},
		"DER with a trailer": {append(slices.Clone(der), 0, 0), "the CSR has 2 bytes after its end"},
		"not a CSR":          {[]byte("hello, this is a letter"), "neither PEM (-----BEGIN CERTIFICATE REQUEST-----) nor DER"},
		"a certificate":      {[]byte("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"), `the file holds a PEM "CERTIFICATE", not a CERTIFICATE REQUEST`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := certprofile.ParseCSR(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "asn1:") {
				t.Errorf("%v, want %q", err, tc.want)
			}
		})
	}
	sha1CSR := opensslCSR(t, dir, "sha1", "-newkey", "rsa:2048", "-sha1")
	if _, err := certprofile.ParseCSR(sha1CSR); err == nil || !strings.Contains(err.Error(), "signed with SHA1-RSA, a broken hash") || !strings.Contains(err.Error(), "allow_sha1_csr: true") {
		t.Errorf("SHA-1 CSR: %v", err)
	}
	if csr, err := certprofile.ParseCSRWith(sha1CSR, certprofile.CSRPolicy{AllowSHA1: true}); err != nil || csr.SignatureAlgorithm != x509.SHA1WithRSA {
		t.Errorf("SHA-1 CSR allowed by the script: %v", err)
	}
}

// TestPathLengthOfTheRoot: a root whose pathLen is 0 signs no CA; under a
// root with pathLen 1 a subordinate needs max_path_length 0.
func TestPathLengthOfTheRoot(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	dir := t.TempDir()
	csr, err := certprofile.ParseCSR(opensslCSR(t, dir, "sub", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"))
	if err != nil {
		t.Fatal(err)
	}
	serial := []byte{0x40, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	rootWith := func(pathLen int) *x509.Certificate {
		now := time.Now()
		tmpl, _ := certprofile.Root(pkix.Name{CommonName: "Root", Organization: []string{"Example"}, Country: []string{"DE"}}, now.Add(-time.Hour), now.AddDate(5, 0, 0), pathLen, key.Public(), serial)
		tmpl.SignatureAlgorithm = x509.ECDSAWithSHA384
		return certsigntest.Sign(t, certsign.Certificate(tmpl, nil, key.Public()), key).Certificate
	}
	p := profile()
	if _, _, err := certprofile.Subordinate(csr, rootWith(0), p, serial, time.Now()); err == nil || !strings.Contains(err.Error(), "path length constraint is 0: it may sign end-entity certificates only") {
		t.Errorf("root with pathLen 0: %v", err)
	}
	p.MaxPathLen = -1
	if _, _, err := certprofile.Subordinate(csr, rootWith(1), p, serial, time.Now()); err == nil || !strings.Contains(err.Error(), "must have max_path_length below 1 (the profile says none)") {
		t.Errorf("root with pathLen 1, subordinate without: %v", err)
	}
	p.MaxPathLen = 0
	if _, _, err := certprofile.Subordinate(csr, rootWith(1), p, serial, time.Now()); err != nil {
		t.Errorf("root with pathLen 1, subordinate with 0: %v", err)
	}
}
