// Package certsign is the only way Key Ceremony has a token sign a
// certificate or a CRL: Lint builds the exact to-be-signed object with a
// throwaway software key and runs zlint on it; only the resulting *Linted
// value can be signed, and Sign checks the token's signature and that the
// signed bytes are the linted ones. A certificate that was not linted cannot
// reach the token.
package certsign

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"sort"
	"strings"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// Results are zlint's findings, by severity, as "lint_name: details".
type Results struct {
	Errors   []string `json:"errors,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	Notices  []string `json:"notices,omitempty"`
	// Ignored lists findings of lints the profile chose to ignore, so the
	// transcript still shows them.
	Ignored []string `json:"ignored,omitempty"`
}

// Options tune linting for a profile.
type Options struct {
	// Ignore names lints whose findings do not stop the ceremony (for example
	// CA/Browser Forum rules that do not apply to a private PKI). They are
	// still reported under Results.Ignored.
	Ignore []string
}

func summarise(rs *zlint.ResultSet, opt Options) Results {
	ignored := map[string]bool{}
	for _, n := range opt.Ignore {
		ignored[n] = true
	}
	var r Results
	for name, res := range rs.Results {
		entry := name
		if res.Details != "" {
			entry += ": " + res.Details
		}
		switch res.Status {
		case lint.Error, lint.Fatal, lint.Warn, lint.Notice:
			if ignored[name] {
				r.Ignored = append(r.Ignored, entry)
				continue
			}
		}
		switch res.Status {
		case lint.Error, lint.Fatal:
			r.Errors = append(r.Errors, entry)
		case lint.Warn:
			r.Warnings = append(r.Warnings, entry)
		case lint.Notice:
			r.Notices = append(r.Notices, entry)
		}
	}
	for _, s := range [][]string{r.Errors, r.Warnings, r.Notices, r.Ignored} {
		sort.Strings(s)
	}
	return r
}

// LintError is returned when zlint reports errors; nothing may be signed.
type LintError struct{ Results Results }

func (e *LintError) Error() string {
	return fmt.Sprintf("zlint found %d error(s); fix the profile and run again: %s", len(e.Results.Errors), strings.Join(e.Results.Errors, "; "))
}

// Linted is a certificate whose exact to-be-signed bytes passed zlint.
type Linted struct {
	template *x509.Certificate
	parent   *x509.Certificate // nil: self-signed
	pub      crypto.PublicKey
	issuer   crypto.PublicKey
	tbs      []byte
	Results  Results
	// Preview is the certificate as linted (signed by the throwaway key), for
	// showing its contents before the token signs.
	Preview *x509.Certificate
}

// TBSHash is the SHA-256 of the linted to-be-signed bytes, for the transcript.
func (l *Linted) TBS() []byte { return bytes.Clone(l.tbs) }

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

// LintCertificate builds template for pub, issued by parent (nil for a
// self-signed certificate, whose issuer key is pub), with a throwaway key of
// the issuer's type, and lints it. On lint errors it returns the *Linted
// (for display) and a *LintError.
func LintCertificate(template, parent *x509.Certificate, pub crypto.PublicKey, opt Options) (*Linted, error) {
	issuerPub := pub
	if parent != nil {
		issuerPub = parent.PublicKey
	}
	throwaway, err := throwawayKey(issuerPub)
	if err != nil {
		return nil, err
	}
	// Go refuses a signer that does not match the parent's key, so the lint
	// copy uses a parent identical but for its public key. Issuer name and
	// authority key ID come from the parent's raw subject and SKI, unchanged.
	var fakeParent *x509.Certificate
	certPub := pub
	if parent == nil {
		p := *template
		p.PublicKey = throwaway.Public()
		fakeParent = &p
	} else {
		p := *parent
		p.PublicKey = throwaway.Public()
		fakeParent = &p
	}
	der, err := x509.CreateCertificate(rand.Reader, template, fakeParent, certPub, throwaway)
	if err != nil {
		return nil, fmt.Errorf("build the certificate for linting: %w", err)
	}
	preview, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	zc, err := zx509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("zlint cannot parse the certificate: %w", err)
	}
	// zcrypto marks a certificate self-signed only if its own key verifies
	// the signature, which the throwaway key's signature cannot. The token
	// will self-sign exactly these bytes, so lint them as a root, not as a
	// subordinate CA.
	zc.SelfSigned = parent == nil
	l := &Linted{template: template, parent: parent, pub: pub, issuer: issuerPub, tbs: preview.RawTBSCertificate,
		Results: summarise(zlint.LintCertificate(zc), opt), Preview: preview}
	if len(l.Results.Errors) > 0 {
		return l, &LintError{Results: l.Results}
	}
	return l, nil
}

// Sign has signer (the token key) sign exactly the linted certificate, then
// verifies the signature against the issuer and compares the signed bytes
// with the linted ones.
func (l *Linted) Sign(signer crypto.Signer) ([]byte, *x509.Certificate, error) {
	if len(l.Results.Errors) > 0 {
		return nil, nil, &LintError{Results: l.Results}
	}
	if !publicEqual(signer.Public(), l.issuer) {
		return nil, nil, errors.New("the signing key is not the issuer's key")
	}
	parent := l.parent
	if parent == nil {
		parent = l.template
	}
	der, err := x509.CreateCertificate(rand.Reader, l.template, parent, l.pub, signer)
	if err != nil {
		return nil, nil, fmt.Errorf("sign the certificate in the token: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	issuer := l.parent
	if issuer == nil {
		issuer = cert
	}
	if err := cert.CheckSignatureFrom(issuer); err != nil {
		return nil, nil, fmt.Errorf("the token's signature on the certificate does not verify: %w", err)
	}
	if !bytes.Equal(cert.RawTBSCertificate, l.tbs) {
		return nil, nil, errors.New("the signed certificate differs from the linted one; nothing was written")
	}
	return der, cert, nil
}

func publicEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	ea, ok := a.(equaler)
	return ok && ea.Equal(b)
}

// LintedCRL is a CRL whose to-be-signed bytes passed zlint.
type LintedCRL struct {
	template *x509.RevocationList
	issuer   *x509.Certificate
	tbs      []byte
	Results  Results
	Preview  *x509.RevocationList
}

// LintCRL builds the CRL issued by issuer with a throwaway key and lints it.
func LintCRL(template *x509.RevocationList, issuer *x509.Certificate, opt Options) (*LintedCRL, error) {
	throwaway, err := throwawayKey(issuer.PublicKey)
	if err != nil {
		return nil, err
	}
	fake := *issuer
	fake.PublicKey = throwaway.Public()
	der, err := x509.CreateRevocationList(rand.Reader, template, &fake, throwaway)
	if err != nil {
		return nil, fmt.Errorf("build the CRL for linting: %w", err)
	}
	preview, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, err
	}
	zr, err := zx509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("zlint cannot parse the CRL: %w", err)
	}
	reg, err := caCRLRegistry()
	if err != nil {
		return nil, err
	}
	l := &LintedCRL{template: template, issuer: issuer, tbs: preview.RawTBSRevocationList, Results: summarise(zlint.LintRevocationListEx(zr, reg), opt), Preview: preview}
	if len(l.Results.Errors) > 0 {
		return l, &LintError{Results: l.Results}
	}
	return l, nil
}

// Sign signs the linted CRL with the issuer's token key and checks it.
func (l *LintedCRL) Sign(signer crypto.Signer) ([]byte, *x509.RevocationList, error) {
	if len(l.Results.Errors) > 0 {
		return nil, nil, &LintError{Results: l.Results}
	}
	der, err := x509.CreateRevocationList(rand.Reader, l.template, l.issuer, signer)
	if err != nil {
		return nil, nil, fmt.Errorf("sign the CRL in the token: %w", err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, nil, err
	}
	if err := crl.CheckSignatureFrom(l.issuer); err != nil {
		return nil, nil, fmt.Errorf("the token's signature on the CRL does not verify: %w", err)
	}
	if !bytes.Equal(crl.RawTBSRevocationList, l.tbs) {
		return nil, nil, errors.New("the signed CRL differs from the linted one; nothing was written")
	}
	return der, crl, nil
}

// caCRLRegistry is zlint's registry configured for CRLs that list CA
// certificates only (a root's CRL), which the CA/Browser Forum lets run 12
// months instead of 10 days. It is a copy: the global registry is untouched.
func caCRLRegistry() (lint.Registry, error) {
	g := lint.GlobalRegistry()
	reg, err := g.Filter(lint.FilterOptions{IncludeSources: g.Sources()})
	if err != nil {
		return nil, err
	}
	cfg, err := lint.NewConfigFromString("[e_crl_next_update_invalid]\nSubscriberCRL = false\n")
	if err != nil {
		return nil, err
	}
	reg.SetConfiguration(cfg)
	return reg, nil
}
