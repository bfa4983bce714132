package online

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/keyceremony/keyceremony/ceremony/certprofile"
	"github.com/keyceremony/keyceremony/internal/awsapi"
)

// PCA is the AWS Private CA side of a ca-signing ceremony: the subordinate
// CA's CSR goes to the ceremony, the signed certificate and chain come back.
type PCA struct {
	client *acmpca.Client
}

// NewPCA connects to AWS Private CA.
func NewPCA(ctx context.Context, c Connection) (*PCA, error) {
	cfg, err := c.Load(ctx)
	if err != nil {
		return nil, err
	}
	return &PCA{client: acmpca.NewFromConfig(cfg, func(o *acmpca.Options) { o.BaseEndpoint = awsapi.Endpoint(c.Endpoint) })}, nil
}

// Files of a ca-signing ceremony's output directory (ceremony/casigning.go).
const (
	PCAImportFile       = "acm-pca-import.json"
	SubordinateFile     = "subordinate.pem"
	ChainFile           = "chain.pem"
	PCAImportResultFile = "pca-import-result.json"
)

// GetCSR fetches the CA's CSR, checks it parses and is self-signed, and
// writes it (PEM) to path, which must not exist.
func (p *PCA) GetCSR(ctx context.Context, caARN, path string) (*x509.CertificateRequest, error) {
	desc, err := p.client.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: aws.String(caARN)})
	if err != nil {
		return nil, explainPCA("describe "+caARN, err)
	}
	if ca := desc.CertificateAuthority; ca.Type != types.CertificateAuthorityTypeSubordinate {
		return nil, fmt.Errorf("%s is a %s CA: a ceremony signs only SUBORDINATE CAs", caARN, ca.Type)
	}
	out, err := p.client.GetCertificateAuthorityCsr(ctx, &acmpca.GetCertificateAuthorityCsrInput{CertificateAuthorityArn: aws.String(caARN)})
	if err != nil {
		return nil, explainPCA("get the CSR of "+caARN, err)
	}
	data := []byte(aws.ToString(out.Csr))
	csr, err := certprofile.ParseCSR(data)
	if err != nil {
		return nil, fmt.Errorf("AWS returned a CSR that does not parse: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("the CSR's signature does not verify: %w", err)
	}
	if err := writeNew(path, data); err != nil {
		return nil, err
	}
	return csr, nil
}

// PCAImportResult is the evidence of an installed CA certificate.
type PCAImportResult struct {
	CertificateAuthorityArn string    `json:"certificateAuthorityArn"`
	Status                  string    `json:"status"`
	Serial                  string    `json:"serial,omitempty"`
	NotBefore               time.Time `json:"notBefore"`
	NotAfter                time.Time `json:"notAfter"`
	CertificateSHA256       string    `json:"certificateSha256"`
	ChainSHA256             []string  `json:"chainSha256"`
	ImportedAt              time.Time `json:"importedAt"`
	RequestID               string    `json:"requestId,omitempty"`
}

// readCeremonyCerts reads the certificate and chain a ca-signing ceremony
// wrote to dir: acm-pca-import.json, and, when present, subordinate.pem and
// chain.pem, which must say the same.
func readCeremonyCerts(dir, caARN string) (cert, chain []byte, err error) {
	// A ceremony names its outputs after its prefix (<id>.acm-pca-import.json);
	// the plain names are what an operator may have copied.
	name := func(base string) string {
		if found, _ := filepath.Glob(filepath.Join(dir, "*."+base)); len(found) == 1 {
			if _, err := os.Stat(filepath.Join(dir, base)); errors.Is(err, os.ErrNotExist) {
				return found[0]
			}
		}
		return filepath.Join(dir, base)
	}
	data, err := os.ReadFile(name(PCAImportFile))
	if err == nil {
		var doc certprofile.ACMPCAImport
		if err := json.Unmarshal(data, &doc); err != nil {
			return nil, nil, fmt.Errorf("%s is damaged: %w", PCAImportFile, err)
		}
		if doc.CertificateAuthorityArn != "" && doc.CertificateAuthorityArn != caARN {
			return nil, nil, fmt.Errorf("%s was made for %s, not %s: use the ceremony's output for this CA", PCAImportFile, doc.CertificateAuthorityArn, caARN)
		}
		if cert, err = base64.StdEncoding.DecodeString(doc.Certificate); err != nil {
			return nil, nil, fmt.Errorf("%s: Certificate is not base64: %w", PCAImportFile, err)
		}
		if chain, err = base64.StdEncoding.DecodeString(doc.CertificateChain); err != nil {
			return nil, nil, fmt.Errorf("%s: CertificateChain is not base64: %w", PCAImportFile, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	for _, f := range []struct {
		name string
		v    *[]byte
	}{{SubordinateFile, &cert}, {ChainFile, &chain}} {
		b, err := os.ReadFile(name(f.name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, nil, err
		}
		if *f.v != nil && !bytes.Equal(bytes.TrimSpace(b), bytes.TrimSpace(*f.v)) {
			return nil, nil, fmt.Errorf("%s and %s disagree: the files changed since the ceremony; do not import them", f.name, PCAImportFile)
		}
		*f.v = b
	}
	if cert == nil || chain == nil {
		return nil, nil, fmt.Errorf("%s holds neither %s nor %s and %s: give the ca-signing ceremony's output directory", dir, PCAImportFile, SubordinateFile, ChainFile)
	}
	return cert, chain, nil
}

func pemCerts(what string, data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil || b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: not a certificate: %v", what, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", what)
	}
	return out, nil
}

// ImportCertificate installs a ca-signing ceremony's subordinate certificate
// and chain into the CA, after checking locally that the certificate is for
// the key of the CA's current CSR and chains to the chain; then confirms
// the CA is ACTIVE and writes pca-import-result.json into dir.
func (p *PCA) ImportCertificate(ctx context.Context, caARN, dir string, now time.Time) (*PCAImportResult, error) {
	certPEM, chainPEM, err := readCeremonyCerts(dir, caARN)
	if err != nil {
		return nil, err
	}
	certs, err := pemCerts("the subordinate certificate", certPEM)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("the subordinate certificate file holds %d certificates, not 1", len(certs))
	}
	cert := certs[0]
	chain, err := pemCerts("the chain", chainPEM)
	if err != nil {
		return nil, err
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range chain {
		if bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(c) == nil {
			roots.AddCert(c)
		} else {
			inter.AddCert(c)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("the certificate does not chain to the chain file's root: %w", err)
	}
	csrOut, err := p.client.GetCertificateAuthorityCsr(ctx, &acmpca.GetCertificateAuthorityCsrInput{CertificateAuthorityArn: aws.String(caARN)})
	if err != nil {
		return nil, explainPCA("get the CSR of "+caARN, err)
	}
	csr, err := certprofile.ParseCSR([]byte(aws.ToString(csrOut.Csr)))
	if err != nil {
		return nil, fmt.Errorf("AWS returned a CSR that does not parse: %w", err)
	}
	if !reflect.DeepEqual(csr.PublicKey, cert.PublicKey) {
		return nil, fmt.Errorf("the certificate is not for %s's key (its CSR has another public key): was it signed from another CA's CSR?", caARN)
	}
	out, err := p.client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: aws.String(caARN), Certificate: certPEM, CertificateChain: chainPEM,
	})
	if err != nil {
		return nil, explainPCA("import the certificate into "+caARN, err)
	}
	desc, err := p.client.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: aws.String(caARN)})
	if err != nil {
		return nil, explainPCA("describe "+caARN, err)
	}
	ca := desc.CertificateAuthority
	sum := sha256.Sum256(cert.Raw)
	res := &PCAImportResult{CertificateAuthorityArn: caARN, Status: string(ca.Status), Serial: aws.ToString(ca.Serial),
		NotBefore: aws.ToTime(ca.NotBefore).UTC(), NotAfter: aws.ToTime(ca.NotAfter).UTC(), CertificateSHA256: hex.EncodeToString(sum[:]), ImportedAt: now.UTC()}
	for _, c := range chain {
		s := sha256.Sum256(c.Raw)
		res.ChainSHA256 = append(res.ChainSHA256, hex.EncodeToString(s[:]))
	}
	if rid, ok := requestID(out.ResultMetadata); ok {
		res.RequestID = rid
	}
	if ca.Status != types.CertificateAuthorityStatusActive {
		return res, fmt.Errorf("the import call succeeded but %s is %s, not ACTIVE", caARN, ca.Status)
	}
	data, _ := json.MarshalIndent(res, "", "  ")
	if err := writeNew(filepath.Join(dir, PCAImportResultFile), append(data, '\n')); err != nil {
		return res, err
	}
	return res, nil
}

func explainPCA(what string, err error) error {
	return awsapi.Explain(what, err, map[string]string{
		"ResourceNotFoundException":     "no such CA in this account and region: check --ca-arn and --region",
		"InvalidArnException":           "that is not a Private CA ARN",
		"InvalidStateException":         "the CA is not in a state that accepts this (it must be PENDING_CERTIFICATE, or ACTIVE/EXPIRED for a renewal)",
		"CertificateMismatchException":  "AWS says the certificate is not for this CA's key: sign this CA's CSR",
		"MalformedCertificateException": "AWS could not parse the certificate or chain",
		"InvalidRequestException":       "AWS refused the certificate or chain",
		"AccessDeniedException":         "the credentials lack permission (acm-pca:GetCertificateAuthorityCsr, ImportCertificateAuthorityCertificate, DescribeCertificateAuthority)",
		"RequestInProgressException":    "AWS is still creating the CSR; try again in a minute",
	})
}
