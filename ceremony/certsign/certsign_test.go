package certsign_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/certprofile"
	"github.com/keyceremony/keyceremony/ceremony/certsign"
	"github.com/keyceremony/keyceremony/ceremony/certsign/certsigntest"
)

// rootTemplate is a self-signed CA certificate zlint accepts, with serial n.
func rootTemplate(t *testing.T, k *ecdsa.PrivateKey, n int64) *x509.Certificate {
	ski, err := certprofile.SubjectKeyID(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	name := pkix.Name{CommonName: "Test Root CA", Organization: []string{"Example Corp"}, Country: []string{"DE"}}
	return &x509.Certificate{SerialNumber: big.NewInt(0x7a110000 + n), Subject: name, Issuer: name,
		NotBefore: now, NotAfter: now.AddDate(20, 0, 0), KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true, MaxPathLen: -1, SubjectKeyId: ski, SignatureAlgorithm: x509.ECDSAWithSHA384}
}

// TestConfirmThenSign: what is signed is what was linted and confirmed; a
// rebuilt object that differs, a missing confirmation, an object with lint
// errors and a key that is not the issuer's are refused before the key signs.
func TestConfirmThenSign(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	tmpl := certsign.Certificate(rootTemplate(t, k, 1), nil, &k.PublicKey)
	l, err := certsign.Lint(tmpl, certsign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.TBSSHA256()) != 64 || l.Certificate == nil {
		t.Fatalf("linted: %q %v", l.TBSSHA256(), l.Certificate)
	}

	// The same template, rebuilt: signed, and the signature verifies.
	c, err := certsign.Confirm(tmpl, certsign.Options{}, l.TBSSHA256())
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Sign(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Certificate.CheckSignatureFrom(s.Certificate); err != nil {
		t.Fatal(err)
	}
	if s.Certificate.SerialNumber.Cmp(rootTemplate(t, k, 1).SerialNumber) != 0 {
		t.Error("the signed certificate is not the linted one")
	}

	// Another serial than the one confirmed.
	other := certsign.Certificate(rootTemplate(t, k, 2), nil, &k.PublicKey)
	var mm *certsign.MismatchError
	if _, err := certsign.Confirm(other, certsign.Options{}, l.TBSSHA256()); !errors.As(err, &mm) || mm.Confirmed != l.TBSSHA256() || !strings.Contains(err.Error(), "nothing was signed") {
		t.Errorf("a different certificate was confirmed: %v", err)
	}
	if _, err := certsign.Confirm(tmpl, certsign.Options{}, ""); err == nil {
		t.Error("confirmed without a confirmed hash")
	}

	// Lint errors: a CA certificate without a subject.
	bad := rootTemplate(t, k, 3)
	bad.Subject, bad.Issuer = pkix.Name{}, pkix.Name{}
	badT := certsign.Certificate(bad, nil, &k.PublicKey)
	bl, err := certsign.Lint(badT, certsign.Options{})
	var le *certsign.LintError
	if !errors.As(err, &le) || bl == nil {
		t.Fatalf("no lint error for a CA without subject: %v", err)
	}
	if _, err := certsign.Confirm(badT, certsign.Options{}, bl.TBSSHA256()); !errors.As(err, &le) {
		t.Errorf("a certificate with lint errors was confirmed: %v", err)
	}

	// A key that is not the issuer's.
	wrong, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := c.Sign(wrong); err == nil || !strings.Contains(err.Error(), "not the issuer's") {
		t.Errorf("signed with another key: %v", err)
	}
}

// TestConfirmCRL: the same guard for a CRL.
func TestConfirmCRL(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	root := certsigntest.Sign(t, certsign.Certificate(rootTemplate(t, k, 1), nil, &k.PublicKey), k).Certificate
	now := time.Now().UTC().Truncate(time.Second)
	crl := func(n int64) certsign.Template {
		tmpl, err := certprofile.CRL(big.NewInt(n), now, now.AddDate(1, 0, 0), nil)
		if err != nil {
			t.Fatal(err)
		}
		return certsign.CRL(tmpl, root)
	}
	l, err := certsign.Lint(crl(7), certsign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mm *certsign.MismatchError
	if _, err := certsign.Confirm(crl(8), certsign.Options{}, l.TBSSHA256()); !errors.As(err, &mm) || mm.What != "CRL" {
		t.Errorf("another CRL number was confirmed: %v", err)
	}
	s := certsigntest.Sign(t, crl(7), k)
	if s.CRL == nil || s.CRL.Number.Int64() != 7 || s.CRL.CheckSignatureFrom(root) != nil {
		t.Errorf("signed CRL: %+v", s.CRL)
	}
}
