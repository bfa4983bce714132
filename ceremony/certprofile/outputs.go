package certprofile

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"

	"github.com/keyceremony/keyceremony/ceremony/outfile"
)

// PEM encodes certificates.
func PEM(certs ...*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

// ACMPCAImport is the --cli-input-json document for
// `aws acm-pca import-certificate-authority-certificate`: blob parameters are
// base64 in CLI input JSON (AWS CLI v2's default binary format).
type ACMPCAImport struct {
	CertificateAuthorityArn string `json:"CertificateAuthorityArn,omitempty"`
	Certificate             string `json:"Certificate"`
	CertificateChain        string `json:"CertificateChain"`
}

// ACMPCAJSON builds the import document for a subordinate certificate and its
// chain up to the root (the chain excludes the subordinate itself).
func ACMPCAJSON(caARN string, sub *x509.Certificate, chain ...*x509.Certificate) ([]byte, error) {
	doc := ACMPCAImport{
		CertificateAuthorityArn: caARN,
		Certificate:             base64.StdEncoding.EncodeToString(PEM(sub)),
		CertificateChain:        base64.StdEncoding.EncodeToString(PEM(chain...)),
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	return append(b, '\n'), err
}

// Fingerprint is the SHA-256 of a certificate's DER, as hex.
func Fingerprint(c *x509.Certificate) string {
	s := sha256.Sum256(c.Raw)
	return hex.EncodeToString(s[:])
}

// CRLCounterFile holds the last CRL number issued, on the output medium.
const CRLCounterFile = "crlnumber"

// NextCRLNumber reads the counter in dir and returns the next number (1 when
// there is none). The transcript records the number too, so a counter file
// that went backwards is caught when transcripts are compared.
func NextCRLNumber(dir string) (*big.Int, error) {
	b, err := os.ReadFile(filepath.Join(dir, CRLCounterFile))
	if errors.Is(err, os.ErrNotExist) {
		return big.NewInt(1), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read CRL number: %w", err)
	}
	n, ok := new(big.Int).SetString(strings.TrimSpace(string(b)), 10)
	if !ok || n.Sign() < 0 {
		return nil, fmt.Errorf("CRL number file %s is damaged (%q): restore it from the last ceremony's transcript", filepath.Join(dir, CRLCounterFile), strings.TrimSpace(string(b)))
	}
	return n.Add(n, big.NewInt(1)), nil
}

// StoreCRLNumber records n as the last issued number, atomically (write a
// temporary file, sync, rename, sync the directory), so a crash leaves the
// old or the new value.
func StoreCRLNumber(dir string, n *big.Int) error {
	tmp, err := os.CreateTemp(dir, ".crlnumber-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(n.String() + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, CRLCounterFile)); err != nil {
		return err
	}
	return outfile.SyncDir(dir)
}
