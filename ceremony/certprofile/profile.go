// Package certprofile builds, from a ceremony's profile, the certificates and
// CRLs a root CA issues: its own self-signed certificate, a subordinate CA
// certificate from a CSR (for example one exported from AWS Private CA), a
// cross-certificate for another CA, and the root's CRL; and the files around
// them (PEM chain, ACM PCA import JSON, the CRL number counter). A CSR
// contributes only its public key (and its subject when the profile allows),
// never the extensions it requests. Signing goes through package certsign.
package certprofile

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Profile is what the script says the issued certificate contains.
type Profile struct {
	// Subject used for the certificate. When AcceptCSRSubject is set and
	// Subject is nil, the CSR's subject is used as it is.
	Subject          *pkix.Name
	AcceptCSRSubject bool
	// Validity: NotAfter is an explicit end (refused if the issuer expires
	// earlier); otherwise Validity from now, clipped to the issuer's NotAfter.
	NotBefore time.Time
	NotAfter  time.Time
	Validity  time.Duration
	// MaxPathLen: -1 for none, 0 for a CA that may issue only end entities.
	MaxPathLen       int
	DigitalSignature bool
	CRLDistribution  []string
	OCSPServers      []string
	IssuingCertURLs  []string
	Policies         []string // dotted OIDs, e.g. 2.5.29.32.0 for anyPolicy
	PermittedDNS     []string
	ExcludedDNS      []string
	// AllowedKeys lists the subject key types accepted: ec-p256, ec-p384,
	// ec-p521, rsa-2048, rsa-3072, rsa-4096, ed25519.
	AllowedKeys []string
}

// KeyType names a public key the way profiles do.
func KeyType(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ec-p256"
		case elliptic.P384():
			return "ec-p384"
		case elliptic.P521():
			return "ec-p521"
		}
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa-%d", k.N.BitLen())
	case ed25519.PublicKey:
		return "ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

// CSRPolicy says what ParseCSRWith accepts beyond the defaults.
type CSRPolicy struct {
	// AllowSHA1 accepts a CSR signed with SHA-1 (a script must say so).
	AllowSHA1 bool
}

// ParseCSR reads a certificate request, PEM or DER, checks its signature
// with its own key and refuses one signed with SHA-1. Its errors say what a
// person can act on: an empty file, a file cut short (and where), a file
// that is not a CSR at all.
func ParseCSR(data []byte) (*x509.CertificateRequest, error) { return ParseCSRWith(data, CSRPolicy{}) }

// ParseCSRWith is ParseCSR under a policy.
func ParseCSRWith(data []byte, pol CSRPolicy) (*x509.CertificateRequest, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("the file is empty (%d bytes): ask the subordinate CA's operator for the CSR again", len(data))
	}
	der := data
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
			return nil, fmt.Errorf("the file holds a PEM %q, not a CERTIFICATE REQUEST", block.Type)
		}
		der = block.Bytes
	} else if bytes.Contains(data, []byte("-----BEGIN")) {
		return nil, errors.New("the PEM block is cut short or damaged (its -----END line is missing or its base64 is broken): the file was truncated; ask for the CSR again")
	}
	if err := derComplete(der); err != nil {
		return nil, err
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("not a certificate request (PEM or DER): %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("the CSR's signature does not verify, so it may have been altered after its key signed it: ask for a fresh CSR: %w", err)
	}
	switch csr.SignatureAlgorithm {
	case x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.DSAWithSHA1, x509.MD5WithRSA, x509.MD2WithRSA:
		if !pol.AllowSHA1 || csr.SignatureAlgorithm == x509.MD5WithRSA || csr.SignatureAlgorithm == x509.MD2WithRSA {
			return nil, fmt.Errorf("the CSR is signed with %s, a broken hash: ask for a CSR signed with SHA-256 or stronger "+
				"(only a script saying signing.subordinate.allow_sha1_csr: true accepts SHA-1)", csr.SignatureAlgorithm)
		}
	}
	return csr, nil
}

// derComplete says, in words, what is wrong with DER that is not one whole
// element: the file ends before the length its header announces, or it does
// not start like DER at all.
func derComplete(der []byte) error {
	if len(der) < 2 || der[0] != 0x30 {
		return errors.New("not a certificate request: neither PEM (-----BEGIN CERTIFICATE REQUEST-----) nor DER")
	}
	n, hdr := int(der[1]), 2
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 4 || len(der) < 2+k {
			return fmt.Errorf("the CSR is truncated at byte %d, inside its DER header", len(der))
		}
		n = 0
		for _, b := range der[2 : 2+k] {
			n = n<<8 | int(b)
		}
		hdr = 2 + k
	}
	switch want := hdr + n; {
	case len(der) < want:
		return fmt.Errorf("the CSR is truncated at byte %d: its DER header announces %d bytes; ask for the CSR again", len(der), want)
	case len(der) > want:
		return fmt.Errorf("the CSR has %d bytes after its end (byte %d): the file holds something else too", len(der)-want, want)
	}
	return nil
}

// Validate lists every problem of the profile at once.
func (p Profile) Validate() []error {
	var errs []error
	if p.Subject == nil && !p.AcceptCSRSubject {
		errs = append(errs, errors.New("profile: give a subject, or accept the CSR's subject explicitly"))
	}
	if p.NotAfter.IsZero() && p.Validity <= 0 {
		errs = append(errs, errors.New("profile: give not_after or a validity"))
	}
	if len(p.AllowedKeys) == 0 {
		errs = append(errs, errors.New("profile: list the allowed subject key types"))
	}
	for _, u := range slices.Concat(p.CRLDistribution, p.OCSPServers, p.IssuingCertURLs) {
		if pu, err := url.Parse(u); err != nil || pu.Scheme == "" || pu.Host == "" {
			errs = append(errs, fmt.Errorf("profile: %q is not an absolute URL", u))
		}
	}
	for _, o := range p.Policies {
		if _, err := parseOID(o); err != nil {
			errs = append(errs, fmt.Errorf("profile: policy %q: %v", o, err))
		}
	}
	return errs
}

func parseOID(s string) (asn1.ObjectIdentifier, error) {
	var oid asn1.ObjectIdentifier
	for _, part := range strings.Split(s, ".") {
		var n int
		if _, err := fmt.Sscanf(part, "%d", &n); err != nil || n < 0 || fmt.Sprint(n) != part {
			return nil, fmt.Errorf("not a dotted OID")
		}
		oid = append(oid, n)
	}
	if len(oid) < 2 {
		return nil, fmt.Errorf("not a dotted OID")
	}
	return oid, nil
}

// SubjectKeyID is RFC 5280 section 4.2.1.2 method 1: SHA-1 of the
// subjectPublicKey bits.
func SubjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		return nil, err
	}
	sum := sha1.Sum(info.PublicKey.Bytes)
	return sum[:], nil
}

// validity computes the certificate's dates and notes any clipping.
func (p Profile) validity(issuer *x509.Certificate, now time.Time) (time.Time, time.Time, []string, error) {
	notBefore := p.NotBefore
	if notBefore.IsZero() {
		notBefore = now.UTC().Truncate(time.Second)
	}
	if notBefore.Before(issuer.NotBefore) {
		notBefore = issuer.NotBefore
	}
	var notes []string
	notAfter := p.NotAfter
	if !notAfter.IsZero() {
		if notAfter.After(issuer.NotAfter) {
			return time.Time{}, time.Time{}, nil, fmt.Errorf("the profile asks for a certificate valid until %s, after the issuer expires (%s): a CA cannot issue beyond its own validity; shorten not_after", notAfter.UTC().Format(time.RFC3339), issuer.NotAfter.UTC().Format(time.RFC3339))
		}
	} else {
		notAfter = notBefore.Add(p.Validity)
		if notAfter.After(issuer.NotAfter) {
			notes = append(notes, fmt.Sprintf("validity clipped to the issuer's: %s instead of %s", issuer.NotAfter.UTC().Format(time.RFC3339), notAfter.UTC().Format(time.RFC3339)))
			notAfter = issuer.NotAfter
		}
	}
	if !notAfter.After(notBefore) {
		return time.Time{}, time.Time{}, nil, fmt.Errorf("the certificate would expire (%s) before it starts (%s)", notAfter.Format(time.RFC3339), notBefore.Format(time.RFC3339))
	}
	return notBefore.UTC(), notAfter.UTC(), notes, nil
}

// fitsPathLen refuses a CA certificate the issuer's path length constraint
// forbids: under a root with pathLen 0 no CA certificate at all, and under a
// root with pathLen n only CAs whose own constraint is below n (none is not
// below n).
func (p Profile) fitsPathLen(issuer *x509.Certificate) error {
	if !issuer.BasicConstraintsValid || (issuer.MaxPathLen < 0 || (issuer.MaxPathLen == 0 && !issuer.MaxPathLenZero)) {
		return nil
	}
	if issuer.MaxPathLen == 0 {
		return fmt.Errorf("the root certificate's path length constraint is 0: it may sign end-entity certificates only, never a CA certificate, so this subordinate cannot be issued by this root")
	}
	if p.MaxPathLen < 0 || p.MaxPathLen >= issuer.MaxPathLen {
		own := "none"
		if p.MaxPathLen >= 0 {
			own = fmt.Sprint(p.MaxPathLen)
		}
		return fmt.Errorf("the root certificate's path length constraint is %d, so a CA it signs must have max_path_length below %d (the profile says %s)", issuer.MaxPathLen, issuer.MaxPathLen, own)
	}
	return nil
}

// caTemplate is the part of a CA certificate that comes from the profile.
func (p Profile) caTemplate(pub crypto.PublicKey, issuer *x509.Certificate, serial []byte, now time.Time) (*x509.Certificate, []string, error) {
	if len(serial) < 8 {
		return nil, nil, fmt.Errorf("serial must have at least 64 bits from the token's RNG, got %d bytes", len(serial))
	}
	if errs := p.Validate(); len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	kt := KeyType(pub)
	if !slices.Contains(p.AllowedKeys, kt) {
		return nil, nil, fmt.Errorf("the subject key is %s, which the profile does not allow (allowed: %s)", kt, strings.Join(p.AllowedKeys, ", "))
	}
	if err := p.fitsPathLen(issuer); err != nil {
		return nil, nil, err
	}
	nb, na, notes, err := p.validity(issuer, now)
	if err != nil {
		return nil, nil, err
	}
	ski, err := SubjectKeyID(pub)
	if err != nil {
		return nil, nil, err
	}
	// A positive serial: clear the top bit rather than lose entropy to a sign byte.
	s := append([]byte{}, serial...)
	s[0] &= 0x7f
	t := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(s),
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            p.MaxPathLen,
		MaxPathLenZero:        p.MaxPathLen == 0,
		SubjectKeyId:          ski,
		AuthorityKeyId:        issuer.SubjectKeyId,
		CRLDistributionPoints: p.CRLDistribution,
		OCSPServer:            p.OCSPServers,
		IssuingCertificateURL: p.IssuingCertURLs,
		PermittedDNSDomains:   p.PermittedDNS,
		ExcludedDNSDomains:    p.ExcludedDNS,
	}
	if p.MaxPathLen < 0 {
		t.MaxPathLen, t.MaxPathLenZero = -1, false
	}
	if p.DigitalSignature {
		t.KeyUsage |= x509.KeyUsageDigitalSignature
	}
	if len(p.PermittedDNS)+len(p.ExcludedDNS) > 0 {
		t.PermittedDNSDomainsCritical = true
	}
	for _, o := range p.Policies {
		oid, err := x509.ParseOID(o)
		if err != nil {
			return nil, nil, fmt.Errorf("policy %q: %w", o, err)
		}
		t.Policies = append(t.Policies, oid)
	}
	return t, notes, nil
}

// Subordinate builds a subordinate CA certificate for csr, issued by issuer.
// The returned notes (e.g. validity clipping) are shown to the operator.
func Subordinate(csr *x509.CertificateRequest, issuer *x509.Certificate, p Profile, serial []byte, now time.Time) (*x509.Certificate, []string, error) {
	if err := csr.CheckSignature(); err != nil {
		return nil, nil, fmt.Errorf("the CSR's signature does not verify: %w", err)
	}
	t, notes, err := p.caTemplate(csr.PublicKey, issuer, serial, now)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case p.Subject != nil:
		t.Subject = *p.Subject
		if p.AcceptCSRSubject {
			notes = append(notes, "the profile's subject replaces the CSR's")
		}
	case len(csr.RawSubject) == 0 || len(csr.Subject.Names) == 0:
		return nil, nil, errors.New("the CSR has an empty subject and the profile gives none")
	default:
		t.RawSubject = csr.RawSubject
	}
	if len(csr.Extensions) > 0 {
		var ids []string
		for _, e := range csr.Extensions {
			ids = append(ids, e.Id.String())
		}
		notes = append(notes, "extensions requested by the CSR are ignored; the profile decides: "+strings.Join(ids, ", "))
	}
	return t, notes, nil
}

// CrossSign builds a cross-certificate: the subject and key of another CA's
// certificate, issued by issuer, within the original's validity.
func CrossSign(original, issuer *x509.Certificate, p Profile, serial []byte, now time.Time) (*x509.Certificate, []string, error) {
	if !original.IsCA || !original.BasicConstraintsValid {
		return nil, nil, errors.New("the certificate to cross-sign is not a CA certificate")
	}
	if p.NotAfter.IsZero() || p.NotAfter.After(original.NotAfter) {
		p.NotAfter = original.NotAfter
		if p.NotAfter.After(issuer.NotAfter) {
			return nil, nil, fmt.Errorf("the original CA certificate is valid until %s, after the issuer expires (%s): set not_after no later than the issuer", original.NotAfter.UTC().Format(time.RFC3339), issuer.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	if p.NotBefore.IsZero() || p.NotBefore.Before(original.NotBefore) {
		p.NotBefore = original.NotBefore
	}
	p.AcceptCSRSubject, p.Subject = true, nil
	t, notes, err := p.caTemplate(original.PublicKey, issuer, serial, now)
	if err != nil {
		return nil, nil, err
	}
	t.RawSubject = original.RawSubject
	t.SubjectKeyId = original.SubjectKeyId // relying parties chain on the original's SKI
	return t, notes, nil
}

// CheckCrossCertificate confirms the issued cross-certificate carries the
// original's subject and key, and lies within its validity.
func CheckCrossCertificate(cross, original *x509.Certificate) error {
	if string(cross.RawSubject) != string(original.RawSubject) {
		return errors.New("cross-certificate subject differs from the original's")
	}
	if !cross.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(original.PublicKey) {
		return errors.New("cross-certificate key differs from the original's")
	}
	if cross.NotBefore.Before(original.NotBefore) || cross.NotAfter.After(original.NotAfter) {
		return errors.New("cross-certificate validity exceeds the original's")
	}
	return nil
}

var (
	oidIssuingDistributionPoint = asn1.ObjectIdentifier{2, 5, 29, 28}
	// IssuingDistributionPoint ::= SEQUENCE { onlyContainsCACerts [2] IMPLICIT BOOLEAN TRUE }
	idpOnlyCACerts = []byte{0x30, 0x03, 0x82, 0x01, 0xff}
)

// Revoked is one revoked certificate in a CRL.
type Revoked struct {
	Serial *big.Int
	Time   time.Time
	Reason int // RFC 5280 CRLReason code
}

// CRL builds the root's CRL template.
func CRL(number *big.Int, thisUpdate, nextUpdate time.Time, revoked []Revoked) (*x509.RevocationList, error) {
	if !nextUpdate.After(thisUpdate) {
		return nil, errors.New("next update must be after this update")
	}
	if number.Sign() <= 0 || number.BitLen() > 159 {
		return nil, errors.New("CRL number must be positive and at most 20 octets")
	}
	rl := &x509.RevocationList{Number: number, ThisUpdate: thisUpdate.UTC(), NextUpdate: nextUpdate.UTC(),
		// A root's CRL lists CA certificates only: say so in a critical issuing
		// distribution point (RFC 5280 5.2.5), which is also what lets linters
		// apply the 12-month rather than the 10-day nextUpdate limit.
		ExtraExtensions: []pkix.Extension{{Id: oidIssuingDistributionPoint, Critical: true, Value: idpOnlyCACerts}}}
	for _, r := range revoked {
		if r.Reason < 0 || r.Reason > 10 || r.Reason == 7 {
			return nil, fmt.Errorf("serial %x: reason code %d is not an RFC 5280 CRLReason", r.Serial, r.Reason)
		}
		rl.RevokedCertificateEntries = append(rl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: r.Serial, RevocationTime: r.Time.UTC(), ReasonCode: r.Reason})
	}
	return rl, nil
}
