// Package awsfake runs local HTTPS servers that speak the AWS protocols Key
// Ceremony's connected side uses (KMS, ACM PCA, CloudTrail: JSON 1.1; S3:
// REST-XML), so tests exercise the real aws-sdk-go-v2 clients end to end on
// 127.0.0.1. The servers check what AWS checks that matters here (a SigV4
// Authorization header, the target header, JSON bodies) and answer with
// AWS's shapes, including error types, so a wrong wrap fails like it would
// against AWS. They are test infrastructure: nothing in the product imports
// them.
package awsfake

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Server is an HTTPS endpoint with per-operation handlers.
type Server struct {
	*httptest.Server
	mu       sync.Mutex
	calls    map[string]int
	failNext map[string][]APIError
	// Requests records every call's target and the headers AWS would check.
	Requests []Request
	// observe, when set, sees every call answered (trail.go records them
	// as CloudTrail records).
	observe func(op string, body []byte, out any, err *APIError, requestID string)
}

// Request is what the server saw of one call.
type Request struct {
	Operation string
	Header    http.Header
	Body      []byte
}

// APIError is an AWS error response.
type APIError struct {
	Status  int
	Type    string
	Message string
}

func newServer(t testing.TB, handler http.Handler) *Server {
	s := httptest.NewUnstartedServer(handler)
	s.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	s.StartTLS()
	t.Cleanup(s.Close)
	return &Server{Server: s, calls: map[string]int{}, failNext: map[string][]APIError{}}
}

// CertPool trusts the server's certificate.
func (s *Server) CertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	return pool
}

// AWSConfig is an SDK configuration for this server in region: static test
// credentials and a TLS 1.2+ client that trusts the server's certificate.
// It is built, not loaded, so no environment variable, profile or CA
// bundle of the machine reaches it.
func (s *Server) AWSConfig(region string) aws.Config {
	pool := s.CertPool()
	return aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""),
		HTTPClient: awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
		}),
	}
}

// FailNext makes the next call of op fail with e (queued, in order).
func (s *Server) FailNext(op string, e APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext[op] = append(s.failNext[op], e)
}

// Calls counts the calls of op.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// checkSigned answers 403 for a request without a SigV4 signature.
func checkSigned(r *http.Request) *APIError {
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=") || !strings.Contains(auth, "Signature=") || r.Header.Get("X-Amz-Date") == "" {
		return &APIError{403, "MissingAuthenticationTokenException", "Request is missing Authentication Token"}
	}
	return nil
}

// jsonService handles the JSON 1.1 protocol: POST /, X-Amz-Target: Prefix.Op.
func (s *Server) jsonService(prefix string, ops map[string]func(body []byte) (any, *APIError)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		target := r.Header.Get("X-Amz-Target")
		op, ok := strings.CutPrefix(target, prefix+".")
		s.mu.Lock()
		s.Requests = append(s.Requests, Request{Operation: op, Header: r.Header.Clone(), Body: body})
		s.calls[op]++
		var injected *APIError
		if q := s.failNext[op]; len(q) > 0 {
			injected, s.failNext[op] = &q[0], q[1:]
		}
		s.mu.Unlock()
		switch {
		case r.Method != http.MethodPost || !ok:
			writeJSONError(w, APIError{400, "UnknownOperationException", "bad target " + target})
			return
		case r.Header.Get("Content-Type") != "application/x-amz-json-1.1":
			writeJSONError(w, APIError{400, "SerializationException", "content type must be application/x-amz-json-1.1"})
			return
		}
		if e := checkSigned(r); e != nil {
			writeJSONError(w, *e)
			return
		}
		requestID := fmt.Sprintf("req-%s-%d", op, s.Calls(op))
		if injected != nil {
			if s.observe != nil {
				s.observe(op, body, nil, injected, requestID)
			}
			writeJSONError(w, *injected)
			return
		}
		h, ok := ops[op]
		if !ok {
			writeJSONError(w, APIError{400, "UnknownOperationException", op + " is not implemented by the test server"})
			return
		}
		out, apiErr := h(body)
		if s.observe != nil {
			s.observe(op, body, out, apiErr, requestID)
		}
		if apiErr != nil {
			writeJSONError(w, *apiErr)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-RequestId", requestID)
		json.NewEncoder(w).Encode(out)
	}
}

func writeJSONError(w http.ResponseWriter, e APIError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", e.Type)
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(map[string]string{"__type": e.Type, "message": e.Message})
}

// CertificatePEM is the server certificate, for an AWS_CA_BUNDLE file.
func (s *Server) CertificatePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}

// IsolateEnv makes the standard AWS credential chain see only static test
// credentials: no profile or credentials files, no instance metadata, no
// region, and no CA bundle (this environment sets AWS_CA_BUNDLE; callers
// that reach a fake through the chain rather than Connection.RootCAs add
// TrustFromEnv).
func IsolateEnv(t testing.TB) {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CA_BUNDLE", "")
}

// TrustFromEnv points AWS_CA_BUNDLE at this server's certificate, for code
// that builds its clients from the environment (the CLI, the GUI).
func (s *Server) TrustFromEnv(t testing.TB) {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, s.CertificatePEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CA_BUNDLE", bundle)
}
