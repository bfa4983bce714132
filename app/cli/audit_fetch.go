package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/keyceremony/keyceremony/audit/awsfetch"
)

const auditFetchUsage = `keyceremony audit fetch [--db PATH] [--profile P] [--region R] [--endpoint-url URL] [--from DATE] [--to DATE] [--json] [--no-progress]
keyceremony audit fetch --s3-bucket B [--s3-prefix P] [--org-id o-...] [--account ID,...] [--regions R,...] --from DAY --to DAY --out DIR [--ingest [--db PATH]] [--profile P] [--region R] [--json] [--no-progress]`

// auditFetch pulls KMS events from CloudTrail LookupEvents into the audit
// database or, with --s3-bucket, a trail's log files from S3 into a
// directory. It opens a network connection to AWS, and only because a
// person typed it.
func auditFetch(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "audit fetch")
	conn := connectionFlags(fs)
	dbPath := fs.String("db", "", "audit database (default: the user's, as for audit ingest)")
	from := fs.String("from", "", "oldest time, YYYY-MM-DD (UTC) or RFC 3339 (default and limit: 90 days ago); with --s3-bucket the first day (required)")
	to := fs.String("to", "", "newest time (default: now); with --s3-bucket the last day, included (required)")
	account := fs.String("account", "", "account id the state is kept under (default: from sts:GetCallerIdentity); with --s3-bucket the accounts whose logs to download, comma-separated (default: every account in the bucket)")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	quiet := fs.Bool("no-progress", false, "no progress lines on standard error")
	s3f := trailFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected argument %q\n%s", fs.Arg(0), auditFetchUsage)
	}
	if *s3f.bucket != "" {
		return auditFetchS3(ctx, env, conn(), s3f, *from, *to, *account, *dbPath, *asJSON, *quiet)
	}
	if s3f.used() {
		return usagef("--s3-prefix, --org-id, --regions, --out and --ingest go with --s3-bucket\n%s", auditFetchUsage)
	}
	var opt awsfetch.Options
	var err error
	if *from != "" {
		if opt.From, err = reportTime(*from, false); err != nil {
			return usagef("--from: %v", err)
		}
	}
	if *to != "" {
		if opt.To, err = reportTime(*to, true); err != nil {
			return usagef("--to: %v", err)
		}
	}
	c := conn()
	cfg, err := c.Load(ctx)
	if err != nil {
		return err
	}
	st, err := openAuditStore(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer st.Close()
	opt.Endpoint, opt.Account = c.Endpoint, *account
	last := time.Time{}
	if !*quiet {
		opt.Progress = func(p awsfetch.Progress) {
			if time.Since(last) < time.Second && p.Covered < p.Total {
				return
			}
			last = time.Now()
			pct := 100.0
			if p.Total > 0 {
				pct = 100 * float64(p.Covered) / float64(p.Total)
			}
			eta := "-"
			if p.ETA > 0 {
				eta = p.ETA.Round(time.Second).String()
			}
			fmt.Fprintf(env.Stderr, "%s/%s: %5.1f%% of the window, %d pages, %d events fetched, %d new, %d retried, ETA %s\n",
				p.Account, p.Region, pct, p.Pages, p.Events, p.New, p.Retries, eta)
		}
	}
	sum, err := awsfetch.Fetch(ctx, cfg, st, opt)
	if sum != nil {
		if *asJSON {
			data, _ := json.MarshalIndent(sum, "", "  ")
			fmt.Fprintf(env.Stdout, "%s\n", data)
		} else {
			clamp := ""
			if sum.Clamped {
				clamp = " (--from moved to 90 days ago: LookupEvents keeps no more)"
			}
			fmt.Fprintf(env.Stdout, "Account %s, region %s, %s .. %s%s\n", sum.Account, sum.Region,
				sum.From.Format(time.RFC3339), sum.To.Format(time.RFC3339), clamp)
			if len(sum.Windows) == 0 {
				fmt.Fprintln(env.Stdout, "Everything in this range was already fetched.")
			}
			for _, w := range sum.Windows {
				fmt.Fprintf(env.Stdout, "Fetched %s .. %s\n", w.From.Format(time.RFC3339), w.To.Format(time.RFC3339))
			}
			fmt.Fprintf(env.Stdout, "%d pages, %d KMS events: %d new, %d already loaded; %d calls retried.\nDatabase: %s\n",
				sum.Pages, sum.Events, sum.New, sum.Duplicate, sum.Retries, st.Path())
		}
	}
	if err != nil {
		return fmt.Errorf("%w (what was fetched before is kept; the same command resumes)", err)
	}
	return nil
}
