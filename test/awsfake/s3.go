package awsfake

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// S3 is a local S3 (REST-XML, path-style addressing) with buckets that do
// or do not have Object Lock: GetObjectLockConfiguration, PutObject,
// ListObjectsV2 and GetObject. A PUT's x-amz-checksum-sha256 is checked
// against the body (BadDigest otherwise), and lock headers are refused on a
// bucket without Object Lock, as S3 does.
type S3 struct {
	*Server
	// ListPageSize caps the keys of one ListObjectsV2 page below the
	// request's max-keys (default 1000), so tests page through a few files.
	ListPageSize int

	mu      sync.Mutex
	buckets map[string]*fakeBucket
	corrupt map[string]int // bucket/key -> GetObject answers to damage
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
	// ETag is the quoted MD5 of the body for a plain or SSE-S3 object put
	// in one part; for SSE-KMS it is not the MD5 (S3 says only that it is
	// not), which clients must not try to verify.
	ETag         string
	SSE          string // x-amz-server-side-encryption: AES256 or aws:kms
	LastModified time.Time
}

// NewS3 starts an S3 server for the test.
func NewS3(t testing.TB) *S3 {
	s := &S3{buckets: map[string]*fakeBucket{}, corrupt: map[string]int{}}
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

// AddObject stores an object as if written by another party (CloudTrail
// delivering a log file), with SSE-S3 or, when kmsEncrypted, SSE-KMS.
func (s *S3) AddObject(bucket, key string, body []byte, kmsEncrypted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[bucket]
	if b == nil {
		panic("awsfake: no bucket " + bucket)
	}
	o := &Object{Body: body, SSE: "AES256", ETag: md5ETag(body), LastModified: time.Now().UTC().Truncate(time.Second), VersionID: fmt.Sprintf("v%d", len(b.objects)+1)}
	if kmsEncrypted {
		sum := sha256.Sum256(append([]byte("sse-kms"), body...))
		o.SSE, o.ETag = "aws:kms", fmt.Sprintf(`"%x"`, sum[:16])
	}
	b.objects[key] = o
}

// CorruptNext makes the next n GetObject answers for the key carry a
// damaged body of the right length, as a faulty path would deliver it.
func (s *S3) CorruptNext(bucket, key string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.corrupt[bucket+"/"+key] += n
}

func md5ETag(body []byte) string {
	sum := md5.Sum(body)
	return fmt.Sprintf(`"%x"`, sum)
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
	switch _, lock := r.URL.Query()["object-lock"]; {
	case lock:
		op = "GetObjectLockConfiguration"
	case r.Method == http.MethodPut && key != "":
		op = "PutObject"
	case r.Method == http.MethodGet && key != "":
		op = "GetObject"
	case r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "2":
		op = "ListObjectsV2"
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
		b.objects[key] = &Object{Body: body, LockMode: mode, RetainUntil: until, ChecksumSHA256: got, VersionID: version,
			ETag: md5ETag(body), LastModified: time.Now().UTC().Truncate(time.Second)}
		w.Header().Set("ETag", md5ETag(body))
		w.Header().Set("X-Amz-Version-Id", version)
		if got != "" {
			w.Header().Set("X-Amz-Checksum-Sha256", got)
		}
		w.WriteHeader(http.StatusOK)
		return
	case "GetObject":
		s.getObject(w, r, bucket, key, b)
		return
	case "ListObjectsV2":
		s.listObjectsV2(w, r, bucket, b)
		return
	}
	writeXMLError(w, APIError{501, "NotImplemented", op + " is not implemented by the test server"})
}

func (s *S3) getObject(w http.ResponseWriter, r *http.Request, bucket, key string, b *fakeBucket) {
	o := b.objects[key]
	if o == nil {
		writeXMLError(w, APIError{404, "NoSuchKey", "The specified key does not exist."})
		return
	}
	if m := r.Header.Get("If-Match"); m != "" && m != o.ETag && m != "*" {
		writeXMLError(w, APIError{412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold"})
		return
	}
	body := o.Body
	if s.corrupt[bucket+"/"+key] > 0 {
		s.corrupt[bucket+"/"+key]--
		body = append([]byte(nil), body...)
		body[len(body)/2] ^= 0x55
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", fmt.Sprint(len(body)))
	h.Set("ETag", o.ETag)
	h.Set("Last-Modified", o.LastModified.Format(http.TimeFormat))
	h.Set("X-Amz-Version-Id", o.VersionID)
	if o.SSE != "" {
		h.Set("X-Amz-Server-Side-Encryption", o.SSE)
	}
	if o.ChecksumSHA256 != "" && r.Header.Get("X-Amz-Checksum-Mode") == "ENABLED" {
		h.Set("X-Amz-Checksum-Sha256", o.ChecksumSHA256)
	}
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

type listResult struct {
	XMLName               xml.Name       `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
	Name                  string         `xml:"Name"`
	Prefix                string         `xml:"Prefix"`
	Delimiter             string         `xml:"Delimiter,omitempty"`
	MaxKeys               int            `xml:"MaxKeys"`
	KeyCount              int            `xml:"KeyCount"`
	IsTruncated           bool           `xml:"IsTruncated"`
	ContinuationToken     string         `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string         `xml:"NextContinuationToken,omitempty"`
	StartAfter            string         `xml:"StartAfter,omitempty"`
	Contents              []listEntry    `xml:"Contents"`
	CommonPrefixes        []commonPrefix `xml:"CommonPrefixes"`
}

type listEntry struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int    `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
}

type commonPrefix struct {
	Prefix string `xml:"Prefix"`
}

// listObjectsV2 lists keys in UTF-8 order after start-after or the
// continuation token, rolling keys up to their common prefix at the
// delimiter (a common prefix counts as one key toward max-keys, as in S3).
func (s *S3) listObjectsV2(w http.ResponseWriter, r *http.Request, bucket string, b *fakeBucket) {
	q := r.URL.Query()
	res := listResult{Name: bucket, Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"), MaxKeys: 1000, StartAfter: q.Get("start-after"), ContinuationToken: q.Get("continuation-token")}
	if v := q.Get("max-keys"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeXMLError(w, APIError{400, "InvalidArgument", "Provided max-keys not an integer or within integer range"})
			return
		}
		res.MaxKeys = min(n, 1000)
	}
	limit := res.MaxKeys
	if s.ListPageSize > 0 && s.ListPageSize < limit {
		limit = s.ListPageSize
	}
	after := res.StartAfter
	if res.ContinuationToken != "" {
		raw, err := base64.StdEncoding.DecodeString(res.ContinuationToken)
		tok, ok := strings.CutPrefix(string(raw), bucket+"|"+res.Prefix+"|")
		if err != nil || !ok {
			writeXMLError(w, APIError{400, "InvalidArgument", "The continuation token provided is incorrect"})
			return
		}
		after = tok
	}
	keys := make([]string, 0, len(b.objects))
	for k := range b.objects {
		if strings.HasPrefix(k, res.Prefix) && k > after {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	// last is where the next page starts: after a key, or after every key
	// under a common prefix (UTF-8 keys never hold the byte 0xff).
	last := ""
	for _, k := range keys {
		if res.Delimiter != "" {
			if i := strings.Index(k[len(res.Prefix):], res.Delimiter); i >= 0 {
				cp := k[:len(res.Prefix)+i+len(res.Delimiter)]
				if n := len(res.CommonPrefixes); n > 0 && res.CommonPrefixes[n-1].Prefix == cp {
					continue
				}
				if res.KeyCount == limit {
					res.IsTruncated = true
					break
				}
				res.CommonPrefixes = append(res.CommonPrefixes, commonPrefix{cp})
				res.KeyCount++
				last = cp + "\xff"
				continue
			}
		}
		if res.KeyCount == limit {
			res.IsTruncated = true
			break
		}
		o := b.objects[k]
		res.Contents = append(res.Contents, listEntry{Key: k, LastModified: o.LastModified.Format("2006-01-02T15:04:05.000Z"), ETag: o.ETag, Size: len(o.Body), StorageClass: "STANDARD"})
		res.KeyCount++
		last = k
	}
	if res.IsTruncated {
		res.NextContinuationToken = base64.StdEncoding.EncodeToString([]byte(bucket + "|" + res.Prefix + "|" + last))
	}
	w.Header().Set("Content-Type", "application/xml")
	io.WriteString(w, xml.Header)
	xml.NewEncoder(w).Encode(res)
}
