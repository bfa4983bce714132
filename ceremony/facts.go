package ceremony

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/certprofile"
	"github.com/keyceremony/keyceremony/ceremony/certsign"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/words"
)

// What the lint steps show of the object linted, per kind of artefact.

// rootFacts shows the root certificate.
func rootFacts(_ *stepRun, l *certsign.Linted, rec lintRecord) []Fact {
	t := l.Certificate
	return []Fact{
		{Label: "Subject", Value: t.Subject.String()},
		{Label: "Validity (UTC)", Value: t.NotBefore.Format("2006-01-02 15:04:05") + " to " + t.NotAfter.Format("2006-01-02 15:04:05")},
		{Label: "Serial", Value: hex.EncodeToString(rec.(*certLint).Serial)},
		{Label: "Key usage", Value: "keyCertSign, cRLSign (critical)"},
		{Label: "Basic constraints", Value: pathLen(t)},
		{Label: "Signature algorithm", Value: t.SignatureAlgorithm.String()},
		{Label: "Subject key ID", Value: hex.EncodeToString(t.SubjectKeyId)},
	}
}

// caFacts shows a certificate the root issues.
func caFacts(_ *stepRun, l *certsign.Linted, _ lintRecord) []Fact { return certFacts(l.Certificate) }

func certFacts(t *x509.Certificate) []Fact {
	ku := []string{}
	for _, u := range []struct {
		bit  x509.KeyUsage
		name string
	}{{x509.KeyUsageDigitalSignature, "digitalSignature"}, {x509.KeyUsageCertSign, "keyCertSign"}, {x509.KeyUsageCRLSign, "cRLSign"}} {
		if t.KeyUsage&u.bit != 0 {
			ku = append(ku, u.name)
		}
	}
	kfp := spkiSHA256(t.PublicKey)
	facts := []Fact{
		{Label: "Subject", Value: t.Subject.String()},
		{Label: "Issuer", Value: t.Issuer.String()},
		{Label: "Validity (UTC)", Value: t.NotBefore.UTC().Format("2006-01-02 15:04:05") + " to " + t.NotAfter.UTC().Format("2006-01-02 15:04:05")},
		{Label: "Serial", Value: hex.EncodeToString(t.SerialNumber.Bytes())},
		{Label: "Subject key", Value: certprofile.KeyType(t.PublicKey)},
		{Label: "Subject public key SHA-256", Value: hex.EncodeToString(kfp), Words: words.String(kfp)},
		{Label: "Key usage", Value: strings.Join(ku, ", ") + " (critical)"},
		{Label: "Basic constraints", Value: pathLen(t) + " (critical)"},
		{Label: "Subject key ID", Value: hex.EncodeToString(t.SubjectKeyId)},
		{Label: "Authority key ID", Value: hex.EncodeToString(t.AuthorityKeyId)},
		{Label: "Signature algorithm", Value: t.SignatureAlgorithm.String()},
	}
	if len(t.CRLDistributionPoints) > 0 {
		facts = append(facts, Fact{Label: "CRL distribution points", Value: strings.Join(t.CRLDistributionPoints, ", ")})
	}
	if len(t.IssuingCertificateURL)+len(t.OCSPServer) > 0 {
		facts = append(facts, Fact{Label: "Authority information access", Value: strings.Join(append(append([]string{}, t.IssuingCertificateURL...), t.OCSPServer...), ", ")})
	}
	if len(t.PolicyIdentifiers) > 0 {
		var ps []string
		for _, p := range t.PolicyIdentifiers {
			ps = append(ps, p.String())
		}
		facts = append(facts, Fact{Label: "Certificate policies", Value: strings.Join(ps, ", ")})
	}
	if len(t.PermittedDNSDomains)+len(t.ExcludedDNSDomains) > 0 {
		facts = append(facts, Fact{Label: "Name constraints (critical)", Value: fmt.Sprintf("permitted %v, excluded %v", t.PermittedDNSDomains, t.ExcludedDNSDomains)})
	}
	return facts
}

// crlFacts shows the CRL, and records its revoked serials.
func crlFacts(r *stepRun, l *certsign.Linted, rec lintRecord) []Fact {
	c := rec.(*crlLint)
	facts := []Fact{
		{Label: "Issuer", Value: r.e.sign.issuer.Subject.String()},
		{Label: "CRL number", Value: c.Number.String()},
		{Label: "This update (UTC)", Value: c.ThisUpdate.Format("2006-01-02 15:04:05")},
		{Label: "Next update (UTC)", Value: c.NextUpdate.Format("2006-01-02 15:04:05")},
		{Label: "Revoked certificates", Value: fmt.Sprint(len(l.CRL.RevokedCertificateEntries))},
	}
	for _, rv := range r.e.s.Signing.CRL.Revoked {
		line := fmt.Sprintf("serial %s revoked %s, reason %s (%d)", rv.Serial, rv.RevokedAt.UTC().Format(time.RFC3339), rv.Reason, script.CRLReasons[rv.Reason])
		r.detail("revoked", line)
		facts = append(facts, Fact{Label: "Revoked", Value: line})
	}
	return facts
}

func pathLen(t *x509.Certificate) string {
	if t.MaxPathLen < 0 {
		return "CA, no path length limit"
	}
	return fmt.Sprintf("CA, path length %d", t.MaxPathLen)
}

func spkiSHA256(pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	s := sha256.Sum256(der)
	return s[:]
}
