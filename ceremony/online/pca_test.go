package online_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/smithy-go"

	"github.com/keyceremony/keyceremony/ceremony/certprofile"
	"github.com/keyceremony/keyceremony/ceremony/certsign"
	"github.com/keyceremony/keyceremony/ceremony/certsign/certsigntest"
	"github.com/keyceremony/keyceremony/ceremony/online"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/softhsm/softhsmtest"
	"github.com/keyceremony/keyceremony/test/awsfake"
)

type testRoot struct {
	signer crypto.Signer
	cert   *x509.Certificate
}

// rehearsalRoot makes a root CA whose key lives on a SoftHSM token, linted
// and signed with certsign as the root-generation ceremony does.
func rehearsalRoot(t *testing.T, label string) *testRoot {
	t.Helper()
	if label != "PCA" {
		// Only one SoftHSM configuration per process at a time: another
		// root's key is made in software.
		k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return makeRoot(t, label, k, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	}
	tok := softhsmtest.LoggedIn(t, label)
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
	return makeRoot(t, label, signer, serial)
}

func makeRoot(t *testing.T, label string, signer crypto.Signer, serial []byte) *testRoot {
	cert := certsigntest.Root(t, pkix.Name{CommonName: "REHEARSAL " + label + " Root CA", Organization: []string{"Example Corp"}, Country: []string{"DE"}}, signer, serial)
	return &testRoot{signer: signer, cert: cert}
}

// signCSR plays the ca-signing ceremony: it signs the CSR file and writes
// the ceremony's outputs to a new directory.
func signCSR(t *testing.T, root *testRoot, csrPath, caARN string) string {
	t.Helper()
	data, err := os.ReadFile(csrPath)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := certprofile.ParseCSR(data)
	if err != nil {
		t.Fatal(err)
	}
	p := certprofile.Profile{AcceptCSRSubject: true, Validity: 5 * 365 * 24 * time.Hour, MaxPathLen: 0,
		CRLDistribution: []string{"http://crl.example.com/root.crl"}, IssuingCertURLs: []string{"http://pki.example.com/root.crt"},
		Policies: []string{"2.5.29.32.0"}, AllowedKeys: []string{"ec-p384"}}
	tmpl, _, err := certprofile.Subordinate(csr, root.cert, p, []byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sub := certsigntest.Sign(t, certsign.Certificate(tmpl, root.cert, csr.PublicKey), root.signer).Certificate
	dir := t.TempDir()
	doc, err := certprofile.ACMPCAJSON(caARN, sub, root.cert)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, online.SubordinateFile), certprofile.PEM(sub), 0o600)
	os.WriteFile(filepath.Join(dir, online.ChainFile), certprofile.PEM(root.cert), 0o600)
	os.WriteFile(filepath.Join(dir, online.PCAImportFile), doc, 0o600)
	return dir
}

func TestPCARoundTrip(t *testing.T) {
	srv := awsfake.NewPCA(t)
	ctx := context.Background()
	conn := connect(t, srv.Server)
	p, err := online.NewPCA(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	arn := srv.AddSubordinate(t, "Example Issuing CA 1")
	other := srv.AddSubordinate(t, "Example Issuing CA 2")
	root := rehearsalRoot(t, "PCA")

	csrPath := filepath.Join(t.TempDir(), "issuing-ca.csr")
	csr, err := p.GetCSR(ctx, arn, csrPath)
	if err != nil {
		t.Fatal(err)
	}
	if csr.Subject.CommonName != "Example Issuing CA 1" {
		t.Errorf("CSR subject %s", csr.Subject)
	}
	if _, err := p.GetCSR(ctx, arn, csrPath); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("CSR over an existing file: %v", err)
	}
	dir := signCSR(t, root, csrPath, arn)

	// The other CA's certificate is refused before anything is sent.
	otherCSR := filepath.Join(t.TempDir(), "other.csr")
	if _, err := p.GetCSR(ctx, other, otherCSR); err != nil {
		t.Fatal(err)
	}
	otherDir := signCSR(t, root, otherCSR, other)
	os.Remove(filepath.Join(otherDir, online.PCAImportFile))
	if _, err := p.ImportCertificate(ctx, arn, otherDir, time.Now()); err == nil || !strings.Contains(err.Error(), "not for") {
		t.Errorf("certificate of another CA: %v", err)
	}
	// acm-pca-import.json made for one CA is refused for another.
	if _, err := p.ImportCertificate(ctx, other, dir, time.Now()); err == nil || !strings.Contains(err.Error(), "was made for") {
		t.Errorf("import document for another ARN: %v", err)
	}
	// A chain that is not the issuer: refused locally.
	wrongChain := t.TempDir()
	sub, _ := os.ReadFile(filepath.Join(dir, online.SubordinateFile))
	os.WriteFile(filepath.Join(wrongChain, online.SubordinateFile), sub, 0o600)
	os.WriteFile(filepath.Join(wrongChain, online.ChainFile), certprofile.PEM(rehearsalRoot(t, "Other").cert), 0o600)
	if _, err := p.ImportCertificate(ctx, arn, wrongChain, time.Now()); err == nil || !strings.Contains(err.Error(), "does not chain") {
		t.Errorf("wrong chain: %v", err)
	}
	if srv.Calls("ImportCertificateAuthorityCertificate") != 0 || srv.Status(arn) != "PENDING_CERTIFICATE" {
		t.Fatal("a refused certificate was sent")
	}

	res, err := p.ImportCertificate(ctx, arn, dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "ACTIVE" || srv.Status(arn) != "ACTIVE" || res.Serial != "123456789abcdef001" || len(res.ChainSHA256) != 1 {
		t.Errorf("result %+v", res)
	}
	cert, chain := srv.Installed(arn)
	if string(cert) != string(sub) || !strings.Contains(string(chain), "BEGIN CERTIFICATE") {
		t.Error("the server holds other certificates")
	}
	if _, err := os.Stat(filepath.Join(dir, online.PCAImportResultFile)); err != nil {
		t.Errorf("no evidence written: %v", err)
	}
	for _, r := range srv.Requests {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256") || r.Header.Get("X-Amz-Target") != "ACMPrivateCA."+r.Operation {
			t.Errorf("request %s: auth %q target %q", r.Operation, r.Header.Get("Authorization"), r.Header.Get("X-Amz-Target"))
		}
	}
}

// The server's own checks, through the SDK directly: it refuses a chain the
// certificate does not verify against, and a certificate for another key.
func TestPCAServerValidates(t *testing.T) {
	srv := awsfake.NewPCA(t)
	ctx := context.Background()
	cfg, err := connect(t, srv.Server).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	client := acmpca.NewFromConfig(cfg, func(o *acmpca.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	arn := srv.AddSubordinate(t, "Example Issuing CA 1")
	other := srv.AddSubordinate(t, "Example Issuing CA 2")
	p, _ := online.NewPCA(ctx, connect(t, srv.Server))
	csrPath := filepath.Join(t.TempDir(), "ca.csr")
	if _, err := p.GetCSR(ctx, arn, csrPath); err != nil {
		t.Fatal(err)
	}
	root := rehearsalRoot(t, "PCA")
	dir := signCSR(t, root, csrPath, arn)
	sub, _ := os.ReadFile(filepath.Join(dir, online.SubordinateFile))
	code := func(err error) string {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return ae.ErrorCode()
		}
		return ""
	}
	_, err = client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: aws.String(arn), Certificate: sub, CertificateChain: certprofile.PEM(rehearsalRoot(t, "Wrong").cert)})
	if code(err) != "InvalidRequestException" {
		t.Errorf("wrong chain: %v", err)
	}
	_, err = client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: aws.String(other), Certificate: sub, CertificateChain: certprofile.PEM(root.cert)})
	if code(err) != "CertificateMismatchException" {
		t.Errorf("another CA's certificate: %v", err)
	}
	_, err = client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: aws.String(arn), Certificate: []byte("not a cert"), CertificateChain: certprofile.PEM(root.cert)})
	if code(err) != "MalformedCertificateException" {
		t.Errorf("garbage: %v", err)
	}
	if srv.Status(arn) != "PENDING_CERTIFICATE" {
		t.Error("a refused import changed the CA")
	}
}
