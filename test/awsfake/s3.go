package awsfake

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// S3 is a local S3 (REST-XML, path-style addressing) with buckets that do
// or do not have Object Lock, GetObjectLockConfiguration and PutObject. A
// PUT's x-amz-checksum-sha256 is checked against the body (BadDigest
// otherwise), and lock headers are refused on a bucket without Object Lock,
// as S3 does.
type S3 struct {
	*Server
	mu      sync.Mutex
	buckets map[string]*fakeBucket
}

type fakeBucket struct {
	lock    bool
	objects map[string]*Object
}

// Object is a stored object and the headers it was stored with.
type Object struct {
	Body                  []byte
	LockMode, RetainUntil string
	ChecksumSHA256        string
	VersionID             string
}

// NewS3 starts an S3 server for the test.
func NewS3(t testing.TB) *S3 {
	s := &S3{buckets: map[string]*fakeBucket{}}
	srv := newServer(t, nil)
	srv.Config.Handler = http.HandlerFunc(s.serve)
	s.Server = srv
	return s
}

// AddBucket creates a bucket, with Object Lock or not.
func (s *S3) AddBucket(name string, objectLock bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buckets[name] = &fakeBucket{lock: objectLock, objects: map[string]*Object{}}
}

// Get returns a stored object.
func (s *S3) Get(bucket, key string) *Object {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.buckets[bucket]; b != nil {
		return b.objects[key]
	}
	return nil
}

func writeXMLError(w http.ResponseWriter, e APIError) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(e.Status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>FAKEREQ</RequestId><HostId>fake</HostId></Error>`, e.Type, xmlEscape(e.Message))
}

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

func (s *S3) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	op := r.Method + " object"
	if key == "" {
		op = r.Method + " bucket"
	}
	if _, ok := r.URL.Query()["object-lock"]; ok {
		op = "GetObjectLockConfiguration"
	} else if r.Method == http.MethodPut && key != "" {
		op = "PutObject"
	}
	s.Server.mu.Lock()
	s.Server.Requests = append(s.Server.Requests, Request{Operation: op, Header: r.Header.Clone(), Body: body})
	s.Server.calls[op]++
	var injected *APIError
	if q := s.Server.failNext[op]; len(q) > 0 {
		injected, s.Server.failNext[op] = &q[0], q[1:]
	}
	s.Server.mu.Unlock()
	if e := checkSigned(r); e != nil {
		writeXMLError(w, APIError{403, "AccessDenied", "Missing or invalid signature"})
		return
	}
	if injected != nil {
		writeXMLError(w, *injected)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[bucket]
	if b == nil {
		writeXMLError(w, APIError{404, "NoSuchBucket", "The specified bucket does not exist"})
		return
	}
	switch op {
	case "GetObjectLockConfiguration":
		if r.Method != http.MethodGet {
			break
		}
		if !b.lock {
			writeXMLError(w, APIError{404, "ObjectLockConfigurationNotFoundError", "Object Lock configuration does not exist for this bucket"})
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><ObjectLockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>`)
		return
	case "PutObject":
		if strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") {
			writeXMLError(w, APIError{501, "NotImplemented", "the test server does not decode aws-chunked bodies"})
			return
		}
		if sha := r.Header.Get("X-Amz-Content-Sha256"); sha == "" {
			writeXMLError(w, APIError{400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256"})
			return
		}
		mode, until := r.Header.Get("X-Amz-Object-Lock-Mode"), r.Header.Get("X-Amz-Object-Lock-Retain-Until-Date")
		if (mode != "" || until != "") && !b.lock {
			writeXMLError(w, APIError{400, "InvalidRequest", "Bucket is missing Object Lock Configuration"})
			return
		}
		if (mode == "") != (until == "") || (mode != "" && mode != "COMPLIANCE" && mode != "GOVERNANCE") {
			writeXMLError(w, APIError{400, "InvalidArgument", "x-amz-object-lock-mode and x-amz-object-lock-retain-until-date must both be supplied, mode COMPLIANCE or GOVERNANCE"})
			return
		}
		if until != "" {
			t, err := time.Parse(time.RFC3339, until)
			if err != nil || !t.After(time.Now()) {
				writeXMLError(w, APIError{400, "InvalidArgument", "The retain until date must be in the future"})
				return
			}
		}
		sum := sha256.Sum256(body)
		want := base64.StdEncoding.EncodeToString(sum[:])
		got := r.Header.Get("X-Amz-Checksum-Sha256")
		if got == "" && b.lock && mode != "" {
			writeXMLError(w, APIError{400, "InvalidRequest", "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters"})
			return
		}
		if got != "" && got != want {
			writeXMLError(w, APIError{400, "BadDigest", "The SHA256 you specified did not match the calculated checksum."})
			return
		}
		version := fmt.Sprintf("v%d-%x", len(b.objects)+1, sum[:6])
		b.objects[key] = &Object{Body: body, LockMode: mode, RetainUntil: until, ChecksumSHA256: got, VersionID: version}
		w.Header().Set("ETag", fmt.Sprintf(`"%x"`, sum[:16]))
		w.Header().Set("X-Amz-Version-Id", version)
		if got != "" {
			w.Header().Set("X-Amz-Checksum-Sha256", got)
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	writeXMLError(w, APIError{501, "NotImplemented", op + " is not implemented by the test server"})
}
