package awsfake

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

// PCA is a local AWS Private CA holding subordinate CAs created in
// PENDING_CERTIFICATE with a real key and CSR. ImportCertificateAuthorityCertificate
// really checks what AWS checks: the certificate parses, is a CA
// certificate for the CA's own key, and chains to the given chain
// (crypto/x509 Verify, the chain's self-signed certificate as the root).
type PCA struct {
	*Server
	Account, Region string
	Now             func() time.Time
	// Trail, when set, records every call answered as a CloudTrail record
	// (trail.go).
	Trail *Trail

	mu      sync.Mutex
	cas     map[string]*fakeCA
	counter int
}

type fakeCA struct {
	arn, status string
	key         crypto.Signer
	csr         []byte // PEM
	subject     pkix.Name
	created     time.Time
	cert, chain []byte
	parsed      *x509.Certificate
}

// NewPCA starts an ACM PCA server for the test.
func NewPCA(t testing.TB) *PCA {
	p := &PCA{Account: "111122223333", Region: "eu-west-1", Now: time.Now, cas: map[string]*fakeCA{}}
	srv := newServer(t, nil)
	srv.Config.Handler = srv.jsonService("ACMPrivateCA", map[string]func([]byte) (any, *APIError){
		"GetCertificateAuthorityCsr":            p.getCSR,
		"ImportCertificateAuthorityCertificate": p.importCert,
		"DescribeCertificateAuthority":          p.describe,
	})
	srv.observe = func(op string, body []byte, _ any, err *APIError, requestID string) {
		p.pcaRecord(op, body, err, requestID, p.Now())
	}
	p.Server = srv
	return p
}

// AddSubordinate creates a subordinate CA (EC_secp384r1) awaiting its
// certificate and returns its ARN.
func (p *PCA) AddSubordinate(t testing.TB, commonName string) string {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	subject := pkix.Name{CommonName: commonName, Organization: []string{"Example Corp"}, Country: []string{"DE"}}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject, SignatureAlgorithm: x509.ECDSAWithSHA384}, key)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counter++
	arn := fmt.Sprintf("arn:aws:acm-pca:%s:%s:certificate-authority/%08x-aaaa-bbbb-cccc-%012x", p.Region, p.Account, p.counter, p.counter)
	p.cas[arn] = &fakeCA{arn: arn, status: "PENDING_CERTIFICATE", key: key, subject: subject, created: p.Now(),
		csr: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})}
	return arn
}

// Status is a CA's status.
func (p *PCA) Status(arn string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ca := p.cas[arn]; ca != nil {
		return ca.status
	}
	return ""
}

// Installed is the certificate and chain a CA holds (PEM).
func (p *PCA) Installed(arn string) (cert, chain []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ca := p.cas[arn]; ca != nil {
		return ca.cert, ca.chain
	}
	return nil, nil
}

func (p *PCA) find(arn string) (*fakeCA, *APIError) {
	if len(arn) < 5 || arn[:4] != "arn:" {
		return nil, &APIError{400, "InvalidArnException", "The ARN " + arn + " is not valid"}
	}
	ca := p.cas[arn]
	if ca == nil {
		return nil, &APIError{400, "ResourceNotFoundException", "Could not find certificate authority " + arn}
	}
	return ca, nil
}

func (p *PCA) getCSR(body []byte) (any, *APIError) {
	var in struct{ CertificateAuthorityArn string }
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &APIError{400, "SerializationException", err.Error()}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ca, e := p.find(in.CertificateAuthorityArn)
	if e != nil {
		return nil, e
	}
	return map[string]any{"Csr": string(ca.csr)}, nil
}

func parsePEMCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("unexpected PEM block %q", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no PEM certificate")
	}
	return out, nil
}

func (p *PCA) importCert(body []byte) (any, *APIError) {
	var in struct {
		CertificateAuthorityArn       string
		Certificate, CertificateChain []byte
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &APIError{400, "SerializationException", err.Error()}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ca, e := p.find(in.CertificateAuthorityArn)
	if e != nil {
		return nil, e
	}
	if ca.status != "PENDING_CERTIFICATE" && ca.status != "ACTIVE" && ca.status != "EXPIRED" {
		return nil, &APIError{400, "InvalidStateException", "The certificate authority is in the " + ca.status + " state"}
	}
	certs, err := parsePEMCerts(in.Certificate)
	if err != nil || len(certs) != 1 {
		return nil, &APIError{400, "MalformedCertificateException", fmt.Sprintf("The certificate is not a single PEM certificate: %v", err)}
	}
	cert := certs[0]
	if !reflect.DeepEqual(cert.PublicKey, ca.key.Public()) {
		return nil, &APIError{400, "CertificateMismatchException", "The certificate does not match the certificate authority's public key"}
	}
	if !cert.BasicConstraintsValid || !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, &APIError{400, "InvalidRequestException", "The certificate is not a CA certificate (basic constraints CA:TRUE and keyCertSign required)"}
	}
	chain, err := parsePEMCerts(in.CertificateChain)
	if err != nil {
		return nil, &APIError{400, "MalformedCertificateException", "The certificate chain is malformed: " + err.Error()}
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range chain {
		if c.CheckSignatureFrom(c) == nil && c.Subject.String() == c.Issuer.String() {
			roots.AddCert(c)
		} else {
			inter.AddCert(c)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: p.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, &APIError{400, "InvalidRequestException", "The certificate chain is not valid: " + err.Error()}
	}
	ca.cert, ca.chain, ca.parsed, ca.status = in.Certificate, in.CertificateChain, cert, "ACTIVE"
	return map[string]any{}, nil
}

func (p *PCA) describe(body []byte) (any, *APIError) {
	var in struct{ CertificateAuthorityArn string }
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &APIError{400, "SerializationException", err.Error()}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ca, e := p.find(in.CertificateAuthorityArn)
	if e != nil {
		return nil, e
	}
	out := map[string]any{
		"Arn": ca.arn, "OwnerAccount": p.Account, "CreatedAt": epoch(ca.created), "LastStateChangeAt": epoch(p.Now()),
		"Type": "SUBORDINATE", "Status": ca.status, "KeyStorageSecurityStandard": "FIPS_140_2_LEVEL_3_OR_HIGHER", "UsageMode": "GENERAL_PURPOSE",
		"CertificateAuthorityConfiguration": map[string]any{"KeyAlgorithm": "EC_secp384r1", "SigningAlgorithm": "SHA384WITHECDSA",
			"Subject": map[string]any{"CommonName": ca.subject.CommonName, "Organization": ca.subject.Organization[0], "Country": ca.subject.Country[0]}},
	}
	if ca.parsed != nil {
		out["Serial"] = fmt.Sprintf("%x", ca.parsed.SerialNumber)
		out["NotBefore"], out["NotAfter"] = epoch(ca.parsed.NotBefore), epoch(ca.parsed.NotAfter)
	}
	return map[string]any{"CertificateAuthority": out}, nil
}
