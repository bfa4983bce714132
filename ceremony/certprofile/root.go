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
