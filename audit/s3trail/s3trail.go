// Package s3trail downloads a CloudTrail trail's log files from its S3
// bucket for a range of days, into the layout `audit ingest` reads:
// DIR/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<file>.json.gz
// (organisation trails: DIR/AWSLogs/<org>/<account>/...). It is the S3
// side of `keyceremony audit fetch --s3-bucket`: LookupEvents
// (audit/awsfetch) keeps 90 days of management events, the trail's bucket
// whatever its lifecycle keeps, data events included. It opens a
// connection to S3, and only because a person started a download.
package s3trail

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/keyceremony/keyceremony/internal/awsapi"
)

// Downloader lists and downloads one bucket's log files.
type Downloader struct {
	client *s3.Client
}

// New is a downloader for cfg, at endpoint if set (then path-style, as
// VPC endpoints and the tests' local servers have no per-bucket host
// names).
func New(cfg aws.Config, endpoint string) *Downloader {
	return &Downloader{client: s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = awsapi.Endpoint(endpoint)
		o.UsePathStyle = endpoint != ""
		// CloudTrail writes its objects without additional checksums; the
		// SDK would log a warning for each GetObject. Size and ETag are
		// checked here instead.
		o.DisableLogOutputChecksumValidationSkipped = true
	})}
}

// Request says which log files to download and where.
type Request struct {
	Bucket string
	// Prefix is the trail's S3 key prefix (the part before AWSLogs/), if any.
	Prefix string
	// OrgID selects an organisation trail's files (o-...); without it,
	// organisation folders found in the bucket are searched too.
	OrgID string
	// Accounts and Regions restrict the download; empty means every one
	// found in the bucket.
	Accounts, Regions []string
	// From and To are the first and last day (UTC), both included. A day
	// is the day of CloudTrail's delivery path, which the ingest's coverage
	// also uses.
	From, To time.Time
	Dir      string
	// Workers download in parallel (default 4).
	Workers  int
	Progress func(Progress) // called from one goroutine at a time
}

// ParseList splits a comma-separated list of accounts or regions as a
// person types it in a flag or a form field ("111122223333, 444455556666"),
// dropping blanks.
func ParseList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Progress is reported after every file and at each new day.
type Progress struct {
	Day                         string // the day being listed
	Listed, Downloaded, Skipped int
	Failed                      int
	Bytes                       int64 // downloaded
	Elapsed                     time.Duration
}

// Summary is the outcome of a download.
type Summary struct {
	Bucket, Prefix    string
	From, To          string // YYYY-MM-DD
	Dir               string
	Accounts, Regions []string // searched (given or found)
	Listed            int      // log files in the range
	Downloaded        int
	Skipped           int // already present with the same size
	Replaced          int // present with another size: downloaded again
	MD5Verified       int // downloaded files whose ETag is their MD5 and matched
	Retried           int // downloads repeated after a failed check
	Bytes             int64
	Ignored           []string // keys in a day folder that are not plain file names
	Failed            []string // keys that could not be downloaded (with why)
	// DayDirs are the local day folders that hold the range's files: what
	// to ingest.
	DayDirs []string
	Elapsed time.Duration
}

func (s *Summary) String() string {
	var b strings.Builder
	src := "s3://" + s.Bucket + "/" + s.Prefix
	fmt.Fprintf(&b, "%s, days %s to %s, accounts %s, regions %s\n", src, s.From, s.To, listOrNone(s.Accounts), listOrNone(s.Regions))
	fmt.Fprintf(&b, "%d log files in the range: %d downloaded (%.1f MB, %d replaced a file of another size), %d already here with the same size.\n",
		s.Listed, s.Downloaded, float64(s.Bytes)/1e6, s.Replaced, s.Skipped)
	if s.Downloaded > 0 {
		fmt.Fprintf(&b, "Every download's size was checked; %d also matched their MD5 ETag (SSE-KMS objects have no MD5 ETag).", s.MD5Verified)
		if s.Retried > 0 {
			fmt.Fprintf(&b, " %d downloads were repeated after a failed check.", s.Retried)
		}
		b.WriteString("\n")
	}
	if s.Listed == 0 {
		b.WriteString("No log files: check the bucket, --s3-prefix, the accounts, regions and days.\n")
	}
	for _, k := range s.Ignored {
		fmt.Fprintf(&b, "Ignored (not a log file name): %s\n", k)
	}
	for _, f := range s.Failed {
		fmt.Fprintf(&b, "FAILED %s\n", f)
	}
	fmt.Fprintf(&b, "Files are in %s\n", s.Dir)
	return b.String()
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "(none found)"
	}
	return strings.Join(l, ",")
}

var (
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
	orgRE     = regexp.MustCompile(`^o-[a-z0-9]{10,32}$`)
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
)

// maxTrailDays bounds a request: ten years of days.
const maxTrailDays = 3660

// Download lists the log files of every day, account and region in the
// range and downloads those not already in Dir with the same size. Each
// file goes to a hidden temporary name in its folder, is checked (size,
// and the MD5 ETag where S3 gives one), synced and renamed, so an
// interrupted download leaves no partial log file and the same request
// resumes. Files that fail are listed in the summary and the error; the
// others are kept.
func (t *Downloader) Download(ctx context.Context, r Request) (*Summary, error) {
	start := time.Now()
	from, to, prefix, err := r.check()
	if err != nil {
		return nil, err
	}
	sum := &Summary{Bucket: r.Bucket, Prefix: prefix, From: from.Format(time.DateOnly), To: to.Format(time.DateOnly), Dir: r.Dir}
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the download directory: %w", err)
	}
	places, err := t.places(ctx, r, prefix, sum)
	if err != nil {
		return nil, err
	}
	dayDirs, listErr := t.downloadDays(ctx, r, from, to, prefix, places, sum, start)
	for d := range dayDirs {
		sum.DayDirs = append(sum.DayDirs, d)
	}
	sort.Strings(sum.DayDirs)
	sort.Strings(sum.Failed)
	sum.Elapsed = time.Since(start)
	switch {
	case listErr != nil:
		return sum, fmt.Errorf("%w (the files downloaded so far are kept; the same command resumes)", listErr)
	case ctx.Err() != nil:
		return sum, fmt.Errorf("download interrupted (the files downloaded so far are kept; the same command resumes): %w", ctx.Err())
	case len(sum.Failed) > 0:
		return sum, fmt.Errorf("%d of %d files could not be downloaded; run the same command again to fetch them", len(sum.Failed), sum.Listed)
	}
	return sum, nil
}

// check refuses a request before any call, and returns its first and last
// day and the key prefix in its canonical form ("" or "p/").
func (r *Request) check() (from, to time.Time, prefix string, err error) {
	if r.Bucket == "" || r.Dir == "" {
		return from, to, "", errors.New("a bucket and a download directory are required")
	}
	from, to = r.From.UTC().Truncate(24*time.Hour), r.To.UTC().Truncate(24*time.Hour)
	if from.IsZero() || to.IsZero() || to.Before(from) {
		return from, to, "", fmt.Errorf("give the first and last day, the first not after the last (got %s and %s)", from.Format(time.DateOnly), to.Format(time.DateOnly))
	}
	if days := int(to.Sub(from).Hours()/24) + 1; days > maxTrailDays {
		return from, to, "", fmt.Errorf("%d days asked: at most %d in one download", days, maxTrailDays)
	}
	for _, a := range r.Accounts {
		if !accountRE.MatchString(a) {
			return from, to, "", fmt.Errorf("account %q is not a 12-digit AWS account id", a)
		}
	}
	for _, reg := range r.Regions {
		if !regionRE.MatchString(reg) {
			return from, to, "", fmt.Errorf("%q is not an AWS region name", reg)
		}
	}
	if r.OrgID != "" && !orgRE.MatchString(r.OrgID) {
		return from, to, "", fmt.Errorf("%q is not an organisation id (o-...)", r.OrgID)
	}
	prefix = strings.Trim(r.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return from, to, prefix, nil
}

// place is one account and region of the trail.
type place struct{ root, account, region string }

// places lists the accounts and regions to search (given, or found in the
// bucket) and names them in the summary.
func (t *Downloader) places(ctx context.Context, r Request, prefix string, sum *Summary) ([]place, error) {
	roots, err := t.accountRoots(ctx, r, prefix)
	if err != nil {
		return nil, err
	}
	var places []place
	regionSet := map[string]bool{}
	for _, root := range roots {
		acct := path.Base(root)
		sum.Accounts = append(sum.Accounts, acct)
		regions := r.Regions
		if len(regions) == 0 {
			found, err := t.commonPrefixes(ctx, r.Bucket, root+"/CloudTrail/")
			if err != nil {
				return nil, err
			}
			for _, f := range found {
				if regionRE.MatchString(f) {
					regions = append(regions, f)
				}
			}
		}
		for _, reg := range regions {
			places = append(places, place{root, acct, reg})
			regionSet[reg] = true
		}
	}
	for reg := range regionSet {
		sum.Regions = append(sum.Regions, reg)
	}
	sort.Strings(sum.Regions)

	return places, nil
}

// downloadDays lists each day of every place in order and downloads its
// files with a few workers. It returns the local day folders that hold the
// range's files, and the error that stopped the listing, if any.
func (t *Downloader) downloadDays(ctx context.Context, r Request, from, to time.Time, prefix string, places []place, sum *Summary, start time.Time) (map[string]bool, error) {
	// One lister (this goroutine) feeds a few downloaders.
	type job struct {
		obj   s3types.Object
		local string
	}
	var (
		mu   sync.Mutex
		prog Progress
		wg   sync.WaitGroup
	)
	report := func() {
		if r.Progress != nil {
			prog.Elapsed = time.Since(start)
			r.Progress(prog)
		}
	}
	jobs := make(chan job)
	workers := r.Workers
	if workers <= 0 {
		workers = 4
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				res, err := t.fetch(ctx, r.Bucket, j.obj, j.local)
				mu.Lock()
				switch {
				case err != nil:
					sum.Failed = append(sum.Failed, aws.ToString(j.obj.Key)+": "+err.Error())
					prog.Failed++
				case res.skipped:
					sum.Skipped++
					prog.Skipped++
				default:
					sum.Downloaded++
					sum.Bytes += res.bytes
					prog.Downloaded++
					prog.Bytes += res.bytes
					if res.replaced {
						sum.Replaced++
					}
					if res.md5 {
						sum.MD5Verified++
					}
				}
				sum.Retried += res.retries
				report()
				mu.Unlock()
			}
		}()
	}
	dayDirs := map[string]bool{}
	var listErr error
list:
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		mu.Lock()
		prog.Day = d.Format(time.DateOnly)
		report()
		mu.Unlock()
		for _, p := range places {
			dayPrefix := p.root + "/CloudTrail/" + p.region + "/" + d.Format("2006/01/02") + "/"
			pages := s3.NewListObjectsV2Paginator(t.client, &s3.ListObjectsV2Input{Bucket: aws.String(r.Bucket), Prefix: aws.String(dayPrefix)})
			for pages.HasMorePages() {
				out, err := pages.NextPage(ctx)
				if err != nil {
					listErr = awsapi.Explain("list s3://"+r.Bucket+"/"+dayPrefix, err, trailHints)
					break list
				}
				for _, obj := range out.Contents {
					key := aws.ToString(obj.Key)
					name := strings.TrimPrefix(key, dayPrefix)
					if name == "" || strings.Contains(name, "/") || strings.HasPrefix(name, ".") || !filepath.IsLocal(name) {
						mu.Lock()
						sum.Ignored = append(sum.Ignored, key)
						mu.Unlock()
						continue
					}
					// Account and region were checked against their
					// patterns, the day is ours, and the name is one plain
					// component: the local path stays inside Dir.
					local := filepath.Join(r.Dir, filepath.FromSlash(strings.TrimPrefix(key, prefix)))
					dayDirs[filepath.Dir(local)] = true
					mu.Lock()
					sum.Listed++
					prog.Listed++
					mu.Unlock()
					select {
					case jobs <- job{obj, local}:
					case <-ctx.Done():
						listErr = ctx.Err()
						break list
					}
				}
			}
		}
	}
	close(jobs)
	wg.Wait()
	return dayDirs, listErr
}

// accountRoots are the key prefixes (without the trailing slash) of the
// accounts to search: <prefix>AWSLogs/<account> or, for organisation
// trails, <prefix>AWSLogs/<org>/<account>.
func (t *Downloader) accountRoots(ctx context.Context, r Request, prefix string) ([]string, error) {
	base := prefix + "AWSLogs/"
	if r.OrgID != "" {
		base += r.OrgID + "/"
	}
	var roots []string
	if len(r.Accounts) > 0 {
		for _, a := range r.Accounts {
			roots = append(roots, base+a)
		}
		return roots, nil
	}
	found, err := t.commonPrefixes(ctx, r.Bucket, base)
	if err != nil {
		return nil, err
	}
	for _, f := range found {
		switch {
		case accountRE.MatchString(f):
			roots = append(roots, base+f)
		case r.OrgID == "" && orgRE.MatchString(f):
			accts, err := t.commonPrefixes(ctx, r.Bucket, base+f+"/")
			if err != nil {
				return nil, err
			}
			for _, a := range accts {
				if accountRE.MatchString(a) {
					roots = append(roots, base+f+"/"+a)
				}
			}
		}
	}
	if len(roots) == 0 {
		return nil, fmt.Errorf("no CloudTrail account folders under s3://%s/%s: check the bucket and --s3-prefix", r.Bucket, base)
	}
	return roots, nil
}

// commonPrefixes lists the "folder" names right under prefix.
func (t *Downloader) commonPrefixes(ctx context.Context, bucket, prefix string) ([]string, error) {
	var names []string
	pages := s3.NewListObjectsV2Paginator(t.client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix), Delimiter: aws.String("/")})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return nil, awsapi.Explain("list s3://"+bucket+"/"+prefix, err, trailHints)
		}
		for _, cp := range out.CommonPrefixes {
			names = append(names, strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), prefix), "/"))
		}
	}
	return names, nil
}

var trailHints = map[string]string{
	"AccessDenied":       "the credentials lack permission (s3:ListBucket on the bucket, s3:GetObject on its objects; kms:Decrypt on the trail's key for SSE-KMS logs)",
	"NoSuchBucket":       "no such bucket",
	"PreconditionFailed": "the object changed between listing and download; run the command again",
	"NoSuchKey":          "the object was deleted between listing and download",
}

type fetched struct {
	skipped, replaced, md5 bool
	bytes                  int64
	retries                int
}

// maxAttempts bounds the downloads of one file whose content fails its check.
const maxAttempts = 3

// fetch downloads one object unless a file of its size is already there.
func (t *Downloader) fetch(ctx context.Context, bucket string, obj s3types.Object, local string) (fetched, error) {
	var res fetched
	size := aws.ToInt64(obj.Size)
	if st, err := os.Lstat(local); err == nil {
		if st.Mode().IsRegular() && st.Size() == size {
			res.skipped = true
			return res, nil
		}
		res.replaced = true
	}
	if err := os.MkdirAll(filepath.Dir(local), 0o700); err != nil {
		return res, err
	}
	for attempt := 1; ; attempt++ {
		n, verified, err := t.download(ctx, bucket, obj, local)
		var bad *damagedError
		if errors.As(err, &bad) && attempt < maxAttempts && ctx.Err() == nil {
			res.retries++
			continue
		}
		res.bytes, res.md5 = n, verified
		return res, err
	}
}

type damagedError struct{ what string }

func (e *damagedError) Error() string { return e.what }

// download writes the object to a temporary file next to local, checks
// it and renames it into place.
func (t *Downloader) download(ctx context.Context, bucket string, obj s3types.Object, local string) (n int64, md5ok bool, err error) {
	key := aws.ToString(obj.Key)
	// If-Match: the object is the one listed, or S3 answers 412.
	out, err := t.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: obj.Key, IfMatch: obj.ETag})
	if err != nil {
		return 0, false, awsapi.Explain("download s3://"+bucket+"/"+key, err, trailHints)
	}
	defer out.Body.Close()
	tmp, err := os.CreateTemp(filepath.Dir(local), "."+filepath.Base(local)+".*.part") // 0600, hidden: the ingest skips it
	if err != nil {
		return 0, false, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := md5.New()
	n, err = io.Copy(io.MultiWriter(tmp, h), out.Body)
	if err != nil {
		return n, false, fmt.Errorf("download s3://%s/%s: %w", bucket, key, err)
	}
	size := aws.ToInt64(obj.Size)
	if n != size || out.ContentLength != nil && *out.ContentLength != n {
		return n, false, &damagedError{fmt.Sprintf("s3://%s/%s: %d bytes received, %d listed", bucket, key, n, size)}
	}
	// A single-part upload's ETag is the MD5 of the content, except under
	// SSE-KMS or SSE-C; a multipart ETag ends in -N. Check it when it is one.
	etag := strings.Trim(aws.ToString(out.ETag), `"`)
	sse := out.ServerSideEncryption
	if len(etag) == 32 && isHex(etag) && sse != s3types.ServerSideEncryptionAwsKms && sse != s3types.ServerSideEncryptionAwsKmsDsse && out.SSECustomerAlgorithm == nil {
		if got := hex.EncodeToString(h.Sum(nil)); got != etag {
			return n, false, &damagedError{fmt.Sprintf("s3://%s/%s: MD5 %s, ETag %s: damaged in transit", bucket, key, got, etag)}
		}
		md5ok = true
	}
	if err = tmp.Sync(); err != nil {
		return n, false, err
	}
	if err = tmp.Close(); err != nil {
		return n, false, err
	}
	if err = os.Rename(tmp.Name(), local); err != nil {
		return n, false, err
	}
	return n, md5ok, nil
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}
