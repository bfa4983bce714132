package script

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Signing describes a ca-signing (or crl) ceremony: what the root, whose key
// is on the token and whose certificate is an input, signs. A ca-signing
// script names at least one of subordinate, cross_certificate and crl; a crl
// script names crl only.
type Signing struct {
	Issuer           Issuer            `yaml:"issuer"`
	Subordinate      *Subordinate      `yaml:"subordinate"`
	CrossCertificate *CrossCertificate `yaml:"cross_certificate"`
	CRL              *CRL              `yaml:"crl"`
}

// Issuer is the root CA that signs.
type Issuer struct {
	// Certificate is the root certificate written by the root ceremony.
	Certificate Input `yaml:"certificate"`
	// KeyLabel narrows the search for the root key on the token; by default
	// the engine takes the one private key whose public key is the certificate's.
	KeyLabel string `yaml:"key_label"`
	// SignatureAlgorithm overrides the root certificate's own algorithm.
	SignatureAlgorithm string `yaml:"signature_algorithm"`
}

// Subordinate is a subordinate CA certificate issued from a CSR.
type Subordinate struct {
	// CSR is the subordinate CA's certificate request (PEM or DER), e.g. from
	// aws acm-pca get-certificate-authority-csr.
	CSR Input `yaml:"csr"`
	// ACMPCAARN, when the subordinate is an AWS Private CA, goes into the
	// import JSON (CertificateAuthorityArn).
	ACMPCAARN string    `yaml:"acm_pca_arn"`
	Profile   CAProfile `yaml:"profile"`
	// AllowSHA1CSR accepts a CSR signed with SHA-1 (refused otherwise).
	AllowSHA1CSR bool `yaml:"allow_sha1_csr"`
}

// CrossCertificate is a certificate for another CA's subject and key, issued
// by the root.
type CrossCertificate struct {
	// Certificate is the other CA's own (usually self-signed) certificate.
	Certificate Input     `yaml:"certificate"`
	Profile     CAProfile `yaml:"profile"`
}

// CAProfile is what an issued CA certificate contains. The CSR contributes
// only its public key (and its subject when accept_csr_subject is true).
type CAProfile struct {
	Subject          *Name `yaml:"subject"`
	AcceptCSRSubject bool  `yaml:"accept_csr_subject"`
	// NotBefore defaults to the time of the ceremony.
	NotBefore time.Time `yaml:"not_before"`
	// NotAfter is an explicit end, refused if the root expires earlier;
	// ValidityDays counts from not_before and is clipped to the root's end.
	NotAfter     time.Time `yaml:"not_after"`
	ValidityDays int       `yaml:"validity_days"`
	// MaxPathLength is the basicConstraints pathLenConstraint; -1 means none.
	MaxPathLength    *int     `yaml:"max_path_length"`
	DigitalSignature bool     `yaml:"digital_signature"`
	CRLDistribution  []string `yaml:"crl_distribution_points"`
	OCSPServers      []string `yaml:"ocsp_servers"`
	IssuingCertURLs  []string `yaml:"issuing_certificate_urls"`
	// Policies are certificate policy OIDs (2.5.29.32.0 is anyPolicy).
	Policies     []string `yaml:"policies"`
	PermittedDNS []string `yaml:"permitted_dns_domains"`
	ExcludedDNS  []string `yaml:"excluded_dns_domains"`
	// AllowedKeys lists the subject key types accepted.
	AllowedKeys []string `yaml:"allowed_keys"`
	// IgnoreLints names zlint lints that do not apply to this private PKI;
	// their findings are still recorded.
	IgnoreLints []string `yaml:"ignore_lints"`
}

// CRL is the root's certificate revocation list.
type CRL struct {
	// CounterDirectory holds the file "crlnumber" with the last CRL number
	// issued; every CRL ceremony of this root names the same directory on
	// the output medium.
	CounterDirectory string `yaml:"counter_directory"`
	// Previous, when given, is the last CRL issued: the new number must be
	// above its number, which catches a counter file restored from an old copy.
	Previous *Input `yaml:"previous"`
	// NextUpdateDays is the time from this update to next update.
	NextUpdateDays int `yaml:"next_update_days"`
	// Revoked lists the certificates the root revokes.
	Revoked     []Revocation `yaml:"revoked"`
	IgnoreLints []string     `yaml:"ignore_lints"`
}

// Revocation is one revoked certificate.
type Revocation struct {
	// Serial is the certificate's serial number in hexadecimal (colons and
	// spaces allowed, as openssl prints it).
	Serial    string    `yaml:"serial"`
	RevokedAt time.Time `yaml:"revoked_at"`
	// Reason is an RFC 5280 reason name (see CRLReasons).
	Reason string `yaml:"reason"`
}

// CRLReasons maps the reason names a script may use to RFC 5280 codes.
var CRLReasons = map[string]int{
	"unspecified":            0,
	"key-compromise":         1,
	"ca-compromise":          2,
	"affiliation-changed":    3,
	"superseded":             4,
	"cessation-of-operation": 5,
	"certificate-hold":       6,
	"privilege-withdrawn":    9,
	"aa-compromise":          10,
}

// SubjectKeyTypes are the key types a CA profile may allow.
var SubjectKeyTypes = []string{"ec-p256", "ec-p384", "ec-p521", "rsa-2048", "rsa-3072", "rsa-4096", "ed25519"}

// ParseSerial reads a hexadecimal serial as written in a script.
func ParseSerial(s string) ([]byte, error) {
	clean := strings.NewReplacer(":", "", " ", "").Replace(strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "0x"))
	if clean == "" {
		return nil, fmt.Errorf("empty serial")
	}
	if len(clean)%2 == 1 {
		clean = "0" + clean
	}
	b, err := hex.DecodeString(clean)
	if err != nil {
		return nil, fmt.Errorf("serial %q is not hexadecimal", s)
	}
	if len(b) > 20 {
		return nil, fmt.Errorf("serial %q is longer than 20 bytes", s)
	}
	return b, nil
}

func (s *Script) validateSigning(g *Signing, bad func(string, string, ...any)) {
	validateInput(g.Issuer.Certificate, "signing.issuer.certificate", true, bad)
	// What the root signs is decided by these files: each is pinned by the
	// SHA-256 the reviewers saw, so a file swapped on the way to the
	// ceremony stops it.
	pinned := func(in *Input, path string) {
		if in != nil && in.SHA256 == "" {
			bad(path+".sha256", "required in a %s script: the SHA-256 of the reviewed file (sha256sum FILE), so a swapped file stops the ceremony", s.Kind)
		}
	}
	pinned(s.Quorum.Record, "quorum.record")
	pinned(&g.Issuer.Certificate, "signing.issuer.certificate")
	if g.Subordinate != nil {
		pinned(&g.Subordinate.CSR, "signing.subordinate.csr")
	}
	if a := g.Issuer.SignatureAlgorithm; a != "" {
		if _, ok := SignatureAlgorithms[a]; !ok {
			bad("signing.issuer.signature_algorithm", "unknown algorithm %q", a)
		}
	}
	switch s.Kind {
	case CRLIssuance:
		if g.Subordinate != nil {
			bad("signing.subordinate", "not used in a crl ceremony (use kind: ca-signing)")
		}
		if g.CrossCertificate != nil {
			bad("signing.cross_certificate", "not used in a crl ceremony (use kind: ca-signing)")
		}
		if g.CRL == nil {
			bad("signing.crl", "required in a crl ceremony")
		}
	case CASigning:
		if g.Subordinate == nil && g.CrossCertificate == nil && g.CRL == nil {
			bad("signing", "name what the root signs: subordinate, cross_certificate and/or crl")
		}
	}
	if sub := g.Subordinate; sub != nil {
		validateInput(sub.CSR, "signing.subordinate.csr", true, bad)
		if sub.ACMPCAARN != "" && !strings.HasPrefix(sub.ACMPCAARN, "arn:aws") {
			bad("signing.subordinate.acm_pca_arn", "must be an ARN such as arn:aws:acm-pca:eu-west-1:111122223333:certificate-authority/..., got %q", sub.ACMPCAARN)
		}
		validateProfile(sub.Profile, "signing.subordinate.profile", false, bad)
	}
	if c := g.CrossCertificate; c != nil {
		validateInput(c.Certificate, "signing.cross_certificate.certificate", true, bad)
		validateProfile(c.Profile, "signing.cross_certificate.profile", true, bad)
	}
	if c := g.CRL; c != nil {
		if strings.TrimSpace(c.CounterDirectory) == "" {
			bad("signing.crl.counter_directory", "required: the directory on the output medium that keeps the CRL number (file crlnumber), the same for every CRL of this root")
		}
		if c.Previous != nil {
			validateInput(*c.Previous, "signing.crl.previous", true, bad)
		}
		if c.NextUpdateDays < 1 || c.NextUpdateDays > 366 {
			bad("signing.crl.next_update_days", "required: 1 to 366 days from this update to next update (a root CRL is usually reissued yearly), got %d", c.NextUpdateDays)
		}
		seen := map[string]int{}
		for i, r := range c.Revoked {
			path := fmt.Sprintf("signing.crl.revoked[%d]", i)
			if b, err := ParseSerial(r.Serial); err != nil {
				bad(path+".serial", "%v", err)
			} else if j, dup := seen[hex.EncodeToString(b)]; dup {
				bad(path+".serial", "serial listed twice (also revoked[%d])", j)
			} else {
				seen[hex.EncodeToString(b)] = i
			}
			if r.RevokedAt.IsZero() {
				bad(path+".revoked_at", "required: when the certificate was revoked")
			}
			if _, ok := CRLReasons[r.Reason]; !ok {
				bad(path+".reason", "unknown reason %q (one of %s)", r.Reason, reasonList())
			}
		}
	}
}

func reasonList() string {
	names := make([]string, 0, len(CRLReasons))
	for n := range CRLReasons {
		names = append(names, n)
	}
	// In code order, as RFC 5280 lists them.
	for i := range names {
		for j := i + 1; j < len(names); j++ {
			if CRLReasons[names[j]] < CRLReasons[names[i]] {
				names[i], names[j] = names[j], names[i]
			}
		}
	}
	return strings.Join(names, ", ")
}

func validateProfile(p CAProfile, path string, cross bool, bad func(string, string, ...any)) {
	if cross {
		if p.Subject != nil || p.AcceptCSRSubject {
			bad(path+".subject", "a cross-certificate carries the original certificate's subject: remove subject and accept_csr_subject")
		}
		if p.ValidityDays != 0 {
			bad(path+".validity_days", "a cross-certificate follows the original's validity: give not_after only to end it earlier")
		}
	} else {
		switch {
		case p.Subject == nil && !p.AcceptCSRSubject:
			bad(path+".subject", "required: the subordinate's subject (or accept_csr_subject: true to take the CSR's as it is)")
		case p.Subject != nil && p.AcceptCSRSubject:
			bad(path+".accept_csr_subject", "give either a subject or accept_csr_subject: true, not both")
		case p.Subject != nil && strings.TrimSpace(p.Subject.CommonName) == "":
			bad(path+".subject.common_name", "required")
		}
		if p.Subject != nil && p.Subject.Country != "" && !countryRE.MatchString(p.Subject.Country) {
			bad(path+".subject.country", "must be a two-letter ISO 3166 code in capitals, got %q", p.Subject.Country)
		}
		switch {
		case p.NotAfter.IsZero() && p.ValidityDays == 0:
			bad(path, "give validity_days (clipped to the root's end) or not_after")
		case !p.NotAfter.IsZero() && p.ValidityDays != 0:
			bad(path+".validity_days", "give either validity_days or not_after, not both")
		case p.ValidityDays < 0:
			bad(path+".validity_days", "must be positive")
		}
	}
	if !p.NotAfter.IsZero() && !p.NotBefore.IsZero() && !p.NotAfter.After(p.NotBefore) {
		bad(path+".not_after", "must be after not_before")
	}
	if p.MaxPathLength == nil {
		bad(path+".max_path_length", "required: the basicConstraints path length (0: the CA issues end-entity certificates only; -1: no limit)")
	} else if *p.MaxPathLength < -1 {
		bad(path+".max_path_length", "must be -1 (no limit) or 0 and above")
	}
	if len(p.AllowedKeys) == 0 {
		bad(path+".allowed_keys", "required: the subject key types accepted (%s)", strings.Join(SubjectKeyTypes, ", "))
	}
	for i, k := range p.AllowedKeys {
		if !contains(SubjectKeyTypes, k) {
			bad(fmt.Sprintf("%s.allowed_keys[%d]", path, i), "unknown key type %q (one of %s)", k, strings.Join(SubjectKeyTypes, ", "))
		}
	}
	urls := func(key string, list []string) {
		for i, u := range list {
			if pu, err := url.Parse(u); err != nil || pu.Scheme == "" || pu.Host == "" {
				bad(fmt.Sprintf("%s.%s[%d]", path, key, i), "%q is not an absolute URL", u)
			}
		}
	}
	urls("crl_distribution_points", p.CRLDistribution)
	urls("ocsp_servers", p.OCSPServers)
	urls("issuing_certificate_urls", p.IssuingCertURLs)
	for i, o := range p.Policies {
		if !validOID(o) {
			bad(fmt.Sprintf("%s.policies[%d]", path, i), "%q is not a dotted OID such as 2.5.29.32.0", o)
		}
	}
	for i, d := range append(append([]string{}, p.PermittedDNS...), p.ExcludedDNS...) {
		if strings.TrimSpace(d) == "" || strings.ContainsAny(d, " /:") {
			bad(path, "name constraint %d (%q) is not a DNS domain", i, d)
		}
	}
}

func validOID(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return false
	}
	for _, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || strconv.Itoa(n) != p {
			return false
		}
	}
	return true
}
