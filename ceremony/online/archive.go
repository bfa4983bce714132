package online

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/keyceremony/keyceremony/internal/awsapi"
)

// Archive puts ceremony evidence (transcripts, their PDFs, audit reports)
// into an S3 bucket under Object Lock, each object's SHA-256 verified by S3.
type Archive struct {
	client *s3.Client
}

// NewArchive connects to S3. With an endpoint override the bucket goes in
// the path (VPC endpoints and tests have no per-bucket host names).
func NewArchive(ctx context.Context, c Connection) (*Archive, error) {
	cfg, err := c.Load(ctx)
	if err != nil {
		return nil, err
	}
	return &Archive{client: s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = awsapi.Endpoint(c.Endpoint)
		o.UsePathStyle = c.Endpoint != ""
	})}, nil
}

// ArchiveRequest says where and how long.
type ArchiveRequest struct {
	Bucket      string
	Prefix      string // key prefix, e.g. "ceremonies/2026-root/"
	Mode        string // COMPLIANCE or GOVERNANCE
	RetainUntil time.Time
	Files       []string
}

// Archived is one stored object.
type Archived struct {
	File, Key, VersionID, SHA256 string
}

// Put checks the bucket has Object Lock enabled, then uploads every file
// with the lock mode, retain-until date and its SHA-256 for S3 to verify.
func (a *Archive) Put(ctx context.Context, r ArchiveRequest, now time.Time) ([]Archived, error) {
	if r.Mode != string(s3types.ObjectLockModeCompliance) && r.Mode != string(s3types.ObjectLockModeGovernance) {
		return nil, fmt.Errorf("lock mode %q: choose COMPLIANCE (nobody can delete or shorten, not even root) or GOVERNANCE (users with s3:BypassGovernanceRetention can)", r.Mode)
	}
	if !r.RetainUntil.After(now) {
		return nil, fmt.Errorf("retain-until %s is not in the future", r.RetainUntil.Format(time.RFC3339))
	}
	if len(r.Files) == 0 {
		return nil, errors.New("no files to archive")
	}
	// Read and hash everything first: a missing file stops before any upload.
	type file struct {
		name, key string
		data      []byte
		sum       [32]byte
	}
	var files []file
	for _, f := range r.Files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		files = append(files, file{name: f, key: path.Join(r.Prefix, filepath.Base(f)), data: data, sum: sha256.Sum256(data)})
	}
	lock, err := a.client.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(r.Bucket)})
	var ae smithy.APIError
	if err != nil && errors.As(err, &ae) && ae.ErrorCode() == "ObjectLockConfigurationNotFoundError" || err == nil && (lock.ObjectLockConfiguration == nil || lock.ObjectLockConfiguration.ObjectLockEnabled != s3types.ObjectLockEnabledEnabled) {
		return nil, fmt.Errorf("bucket %s does not have Object Lock enabled: evidence must not be deletable, so it is not uploaded there. Use a bucket created with Object Lock (aws s3api create-bucket --object-lock-enabled-for-bucket) or enable it on this bucket (put-object-lock-configuration, versioning required)", r.Bucket)
	}
	if err != nil {
		return nil, awsapi.Explain("read the Object Lock configuration of bucket "+r.Bucket, err, s3Hints)
	}
	var out []Archived
	for _, f := range files {
		res, err := a.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(r.Bucket), Key: aws.String(f.key), Body: bytes.NewReader(f.data), ContentLength: aws.Int64(int64(len(f.data))),
			ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256, ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(f.sum[:])),
			ObjectLockMode: s3types.ObjectLockMode(r.Mode), ObjectLockRetainUntilDate: aws.Time(r.RetainUntil.UTC()),
		})
		if err != nil {
			return out, awsapi.Explain("upload "+f.name+" to s3://"+r.Bucket+"/"+f.key, err, s3Hints)
		}
		if got := aws.ToString(res.ChecksumSHA256); got != "" && got != base64.StdEncoding.EncodeToString(f.sum[:]) {
			return out, fmt.Errorf("S3 reports SHA-256 %s for %s, not the file's", got, f.key)
		}
		out = append(out, Archived{File: f.name, Key: f.key, VersionID: aws.ToString(res.VersionId), SHA256: hex.EncodeToString(f.sum[:])})
	}
	return out, nil
}

var s3Hints = map[string]string{
	"AccessDenied":   "the credentials lack permission (s3:GetBucketObjectLockConfiguration, s3:PutObject, s3:PutObjectRetention)",
	"NoSuchBucket":   "no such bucket",
	"BadDigest":      "S3 computed another SHA-256 than the file's: the upload was damaged; run the command again",
	"InvalidRequest": "S3 refused the request",
}
