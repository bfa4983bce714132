// Package certsigntest signs, for tests, what a ceremony signs in two steps:
// it lints a template, confirms it with the hash the lint gave and has the
// signer sign it. It imports the testing package, so only tests import it.
package certsigntest

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/certprofile"
	"github.com/keyceremony/keyceremony/ceremony/certsign"
)

// Sign lints tmpl, confirms it and has signer sign it; any failure fails t.
func Sign(t testing.TB, tmpl certsign.Template, signer crypto.Signer) *certsign.Signed {
	t.Helper()
	l, err := certsign.Lint(tmpl, certsign.Options{})
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	c, err := certsign.Confirm(tmpl, certsign.Options{}, l.TBSSHA256())
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Sign(signer)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Root is a self-signed root CA certificate for signer's key, valid from an
// hour ago for ten years, signed with ECDSA-SHA384 (signer is a P-384 key).
func Root(t testing.TB, subject pkix.Name, signer crypto.Signer, serial []byte) *x509.Certificate {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	tmpl, err := certprofile.Root(subject, now.Add(-time.Hour), now.AddDate(10, 0, 0), -1, signer.Public(), serial)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SignatureAlgorithm = x509.ECDSAWithSHA384
	return Sign(t, certsign.Certificate(tmpl, nil, signer.Public()), signer).Certificate
}
