// Package certsign is the only way Key Ceremony has a token sign a
// certificate or a CRL. It works in the two steps a ceremony separates by a
// confirmation:
//
//   - Lint builds the exact to-be-signed object with a throwaway software key
//     of the issuer's kind and runs zlint on it. The *Linted value shows what
//     will be signed and the SHA-256 of its to-be-signed bytes, which the
//     ceremony records and people confirm. It cannot be signed.
//   - Confirm builds it again from the same template, lints it again and
//     compares its to-be-signed hash with the confirmed one. Only the
//     resulting *Confirmed can be signed; Sign checks that the token's key is
//     the issuer's, that the token's signature verifies, and that the signed
//     bytes are the confirmed ones.
//
// So a certificate or CRL that was not linted, or differs from the one
// confirmed, never reaches the token.
package certsign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Template is a certificate or a CRL to be signed, with what building it
// takes: the parent certificate (nil for a self-signed certificate) and the
// subject's public key, or the CRL's issuer.
type Template struct {
	cert   *x509.Certificate
	parent *x509.Certificate
	pub    crypto.PublicKey
	crl    *x509.RevocationList
	issuer *x509.Certificate // the CRL's
}

// Certificate is the certificate tmpl for pub, issued by parent (nil for a
// self-signed certificate, whose issuer key is pub).
func Certificate(tmpl, parent *x509.Certificate, pub crypto.PublicKey) Template {
	return Template{cert: tmpl, parent: parent, pub: pub}
}

// CRL is the revocation list tmpl issued by issuer.
func CRL(tmpl *x509.RevocationList, issuer *x509.Certificate) Template {
	return Template{crl: tmpl, issuer: issuer}
}

// what names the kind of object, for messages.
func (t Template) what() string {
	if t.crl != nil {
		return "CRL"
	}
	return "certificate"
}

// issuerKey is the public key whose private half signs.
func (t Template) issuerKey() crypto.PublicKey {
	switch {
	case t.crl != nil:
		return t.issuer.PublicKey
	case t.parent != nil:
		return t.parent.PublicKey
	}
	return t.pub
}

// build creates the DER of the object signed by signer. With a throwaway
// signer the parent (or CRL issuer) is replaced by a copy carrying the
// throwaway key, which Go requires; the issuer name and authority key ID
// still come from the real parent's raw subject and SKI.
func (t Template) build(signer crypto.Signer, throwaway bool) ([]byte, error) {
	if t.crl != nil {
		issuer := t.issuer
		if throwaway {
			fake := *t.issuer
			fake.PublicKey = signer.Public()
			issuer = &fake
		}
		return x509.CreateRevocationList(rand.Reader, t.crl, issuer, signer)
	}
	parent := t.parent
	if parent == nil {
		parent = t.cert
	}
	if throwaway {
		fake := *parent
		fake.PublicKey = signer.Public()
		parent = &fake
	}
	return x509.CreateCertificate(rand.Reader, t.cert, parent, t.pub, signer)
}

// Linted is a certificate or CRL whose exact to-be-signed bytes passed zlint.
type Linted struct {
	t       Template
	tbs     []byte
	Results Results
	// Certificate or CRL is the object as linted (signed by the throwaway
	// key), for showing its contents before the token signs.
	Certificate *x509.Certificate
	CRL         *x509.RevocationList
}

// TBSSHA256 is the hex SHA-256 of the linted to-be-signed bytes: what the
// transcript records and Confirm compares.
func (l *Linted) TBSSHA256() string {
	sum := sha256.Sum256(l.tbs)
	return hex.EncodeToString(sum[:])
}

// Lint builds t with a throwaway key of the issuer's type and lints it. On
// lint errors it returns the *Linted (for display) and a *LintError.
func Lint(t Template, opt Options) (*Linted, error) {
	throwaway, err := throwawayKey(t.issuerKey())
	if err != nil {
		return nil, err
	}
	der, err := t.build(throwaway, true)
	if err != nil {
		return nil, fmt.Errorf("build the %s for linting: %w", t.what(), err)
	}
	l := &Linted{t: t}
	if t.crl != nil {
		l.CRL, err = x509.ParseRevocationList(der)
		if err != nil {
			return nil, err
		}
		l.tbs = l.CRL.RawTBSRevocationList
		l.Results, err = lintCRL(der, opt)
	} else {
		l.Certificate, err = x509.ParseCertificate(der)
		if err != nil {
			return nil, err
		}
		l.tbs = l.Certificate.RawTBSCertificate
		l.Results, err = lintCertificate(der, t.parent == nil, opt)
	}
	if err != nil {
		return nil, err
	}
	if len(l.Results.Errors) > 0 {
		return l, &LintError{Results: l.Results}
	}
	return l, nil
}

// MismatchError means the object rebuilt for signing is not the one linted
// and confirmed; nothing was signed.
type MismatchError struct {
	What      string // "certificate" or "CRL"
	Got       string // hex SHA-256 of the rebuilt to-be-signed bytes
	Confirmed string // hex SHA-256 that was confirmed
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("the %s rebuilt for signing (TBS SHA-256 %s) is not the one linted and confirmed (%s); nothing was signed", e.What, e.Got, e.Confirmed)
}

// Confirmed is a certificate or CRL rebuilt, linted again and found to be the
// one confirmed: the only value a token signs.
type Confirmed struct{ l *Linted }

// Confirm rebuilds t, lints it again and compares the SHA-256 of its
// to-be-signed bytes with tbsSHA256, the hash recorded and confirmed when it
// was linted (Linted.TBSSHA256).
func Confirm(t Template, opt Options, tbsSHA256 string) (*Confirmed, error) {
	if tbsSHA256 == "" {
		return nil, fmt.Errorf("no confirmed to-be-signed hash for the %s: it was not linted", t.what())
	}
	l, err := Lint(t, opt)
	if err != nil {
		return nil, err
	}
	if got := l.TBSSHA256(); !strings.EqualFold(got, tbsSHA256) {
		return nil, &MismatchError{What: t.what(), Got: got, Confirmed: tbsSHA256}
	}
	return &Confirmed{l: l}, nil
}

// Linted is the confirmed object as linted.
func (c *Confirmed) Linted() *Linted { return c.l }

// Signed is what the token signed.
type Signed struct {
	DER         []byte
	Certificate *x509.Certificate    // for a certificate
	CRL         *x509.RevocationList // for a CRL
}

// Sign has signer (the token key) sign exactly the confirmed object, then
// verifies the signature with the issuer and compares the signed bytes with
// the confirmed ones.
func (c *Confirmed) Sign(signer crypto.Signer) (*Signed, error) {
	t := c.l.t
	if !SamePublicKey(signer.Public(), t.issuerKey()) {
		return nil, errors.New("the signing key is not the issuer's key")
	}
	der, err := t.build(signer, false)
	if err != nil {
		return nil, fmt.Errorf("sign the %s in the token: %w", t.what(), err)
	}
	s := &Signed{DER: der}
	var tbs []byte
	if t.crl != nil {
		if s.CRL, err = x509.ParseRevocationList(der); err != nil {
			return nil, err
		}
		err, tbs = s.CRL.CheckSignatureFrom(t.issuer), s.CRL.RawTBSRevocationList
	} else {
		if s.Certificate, err = x509.ParseCertificate(der); err != nil {
			return nil, err
		}
		issuer := t.parent
		if issuer == nil {
			issuer = s.Certificate
		}
		err, tbs = s.Certificate.CheckSignatureFrom(issuer), s.Certificate.RawTBSCertificate
	}
	if err != nil {
		return nil, fmt.Errorf("the token's signature on the %s does not verify: %w", t.what(), err)
	}
	if string(tbs) != string(c.l.tbs) {
		return nil, fmt.Errorf("the signed %s differs from the linted one; nothing was written", t.what())
	}
	return s, nil
}

// SamePublicKey reports whether a and b are the same public key.
func SamePublicKey(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

// throwawayKey makes a software key of the issuer's kind, so the lint copy
// carries the same signature algorithm as the real one.
func throwawayKey(pub crypto.PublicKey) (crypto.Signer, error) {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.GenerateKey(p.Curve, rand.Reader)
	case *rsa.PublicKey:
		return rsa.GenerateKey(rand.Reader, p.N.BitLen())
	case ed25519.PublicKey:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("no throwaway key for issuer key %T", pub)
}
