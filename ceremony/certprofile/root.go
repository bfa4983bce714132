package certprofile

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"time"
)

// Root builds a self-signed root CA certificate for pub: subject as issuer,
// the validity given, keyCertSign and cRLSign, basic constraints with
// maxPathLen (-1: no pathLenConstraint, as the CA/Browser Forum wants for
// roots), and the subject key ID of pub (RFC 5280 method 1). The serial is
// used as given; the caller sets the signature algorithm.
func Root(subject pkix.Name, notBefore, notAfter time.Time, maxPathLen int, pub crypto.PublicKey, serial []byte) (*x509.Certificate, error) {
	ski, err := SubjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(serial),
		Subject:               subject,
		Issuer:                subject,
		NotBefore:             notBefore.UTC(),
		NotAfter:              notAfter.UTC(),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            maxPathLen,
		MaxPathLenZero:        maxPathLen == 0,
		SubjectKeyId:          ski,
	}, nil
}

// RehearsalPolicy is the certificate policy every certificate a rehearsal
// makes carries: an OID under the example arc 2.999 of ITU-T X.660, which
// no real policy is ever assigned (a rehearsal certificate is an example),
// made distinct by the first 31 bits of a UUID drawn for Key Ceremony
// rehearsals (a7a7fb75-518e-4eac-84da-393474b6e478). (The UUID arc 2.25
// would take the whole UUID as one component, which zlint and many other
// parsers cannot read.) With "REHEARSAL" in the subject's common name and
// organization, a rehearsal certificate stays recognisable however its file
// is renamed.
var RehearsalPolicy = mustOID("2.999.1406401978.1")

func mustOID(s string) x509.OID {
	o, err := x509.ParseOID(s)
	if err != nil {
		panic(err)
	}
	return o
}

// MarkRehearsal makes tmpl unmistakably a rehearsal's: "REHEARSAL" at the
// start of the subject's common name and organization (the issuer too, for
// a self-signed certificate), and RehearsalPolicy among its policies.
func MarkRehearsal(tmpl *x509.Certificate) {
	mark := func(n *pkix.Name) {
		n.CommonName = "REHEARSAL " + n.CommonName
		if len(n.Organization) == 0 {
			n.Organization = []string{"REHEARSAL"}
		} else {
			n.Organization = append([]string{"REHEARSAL " + n.Organization[0]}, n.Organization[1:]...)
		}
	}
	selfSigned := tmpl.Issuer.String() == tmpl.Subject.String()
	mark(&tmpl.Subject)
	if selfSigned {
		tmpl.Issuer = tmpl.Subject
	}
	tmpl.Policies = append(tmpl.Policies, RehearsalPolicy)
}

// IsRehearsal reports whether a certificate carries RehearsalPolicy.
func IsRehearsal(c *x509.Certificate) bool {
	for _, p := range c.Policies {
		if p.Equal(RehearsalPolicy) {
			return true
		}
	}
	return false
}
