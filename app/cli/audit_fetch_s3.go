package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/keyceremony/keyceremony/audit/s3trail"
	"github.com/keyceremony/keyceremony/ceremony/online"
)

// The S3 side of audit fetch: a trail's log files for a range of days,
// downloaded into the layout audit ingest reads, optionally ingested.
// LookupEvents keeps 90 days of management events; the trail's bucket
// keeps whatever its lifecycle keeps, data events included.

type trailFlagSet struct {
	bucket, prefix, org, regions, out *string
	ingest                            *bool
	workers                           *int
}

func trailFlags(fs interface {
	String(string, string, string) *string
	Bool(string, bool, string) *bool
	Int(string, int, string) *int
}) trailFlagSet {
	return trailFlagSet{
		bucket:  fs.String("s3-bucket", "", "download the trail's log files from this S3 bucket instead of calling LookupEvents"),
		prefix:  fs.String("s3-prefix", "", "the trail's S3 key prefix (the part before AWSLogs/)"),
		org:     fs.String("org-id", "", "organisation trail: the organisation id (o-...) in the key path"),
		regions: fs.String("regions", "", "regions whose logs to download, comma-separated (default: every region in the bucket)"),
		out:     fs.String("out", "", "directory for the downloaded files (with --s3-bucket; required)"),
		ingest:  fs.Bool("ingest", false, "ingest the range's files into --db after the download"),
		workers: fs.Int("workers", 4, "parallel downloads"),
	}
}

func (f trailFlagSet) used() bool {
	return *f.prefix != "" || *f.org != "" || *f.regions != "" || *f.out != "" || *f.ingest
}

func auditFetchS3(ctx context.Context, env *Env, conn online.Connection, f trailFlagSet, from, to, accounts, db string, asJSON, quiet bool) error {
	if from == "" || to == "" || *f.out == "" {
		return usagef("--s3-bucket needs --from, --to and --out\n%s", auditFetchUsage)
	}
	first, err := reportTime(from, false)
	if err != nil {
		return usagef("--from: %v", err)
	}
	// --to names the last day, included: its own start, not the next day's.
	last, err := reportTime(to, false)
	if err != nil {
		return usagef("--to: %v", err)
	}
	req := s3trail.Request{Bucket: *f.bucket, Prefix: *f.prefix, OrgID: *f.org, Accounts: s3trail.ParseList(accounts), Regions: s3trail.ParseList(*f.regions),
		From: first, To: last, Dir: *f.out, Workers: *f.workers}
	if !quiet {
		var shown time.Time
		req.Progress = func(p s3trail.Progress) {
			if time.Since(shown) < time.Second {
				return
			}
			shown = time.Now()
			fmt.Fprintf(env.Stderr, "%s: %d files listed, %d downloaded (%.1f MB), %d already here, %d failed, %s\n",
				p.Day, p.Listed, p.Downloaded, float64(p.Bytes)/1e6, p.Skipped, p.Failed, p.Elapsed.Round(time.Second))
		}
	}
	cfg, err := conn.Load(ctx)
	if err != nil {
		return err
	}
	sum, err := s3trail.New(cfg, conn.Endpoint).Download(ctx, req)
	if sum != nil {
		if asJSON {
			data, _ := json.MarshalIndent(sum, "", "  ")
			fmt.Fprintf(env.Stdout, "%s\n", data)
		} else {
			fmt.Fprint(env.Stdout, sum)
		}
	}
	if err != nil {
		return err
	}
	if !*f.ingest || len(sum.DayDirs) == 0 {
		if !*f.ingest && len(sum.DayDirs) > 0 {
			fmt.Fprintf(env.Stdout, "Load them with: keyceremony audit ingest %s\n", *f.out)
		}
		return nil
	}
	// The ingest is audit ingest itself: same summary, same exit status.
	args := []string{"--no-progress"}
	if db != "" {
		args = append(args, "--db", db)
	}
	if asJSON {
		args = append(args, "--json")
	}
	err = auditIngest(ctx, env, append(args, sum.DayDirs...))
	if err != nil {
		return fmt.Errorf("ingest the downloaded files: %w", err)
	}
	return nil
}
