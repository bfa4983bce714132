// Package athena runs the KMS part of an audit on the customer's own Amazon
// Athena table over their CloudTrail trail, for an organisation whose trail
// is too large to copy to one laptop, and loads the result into the audit
// database. Two modes:
//
//   - records: the KMS records of the period, rebuilt from the table's
//     columns as CloudTrail records and loaded by the ordinary ingest
//     (audit/ingest), so every report works as with log files, with
//     per-event evidence;
//   - aggregates: KMS events counted per day, account, region, event name,
//     key, principal, calling service and error code, stored in the
//     aggregates table with the query's provenance. Far smaller (one row
//     per group, not per event), but without per-event evidence: the
//     reports say so on their cover and in the sections it affects.
//
// The query runs with StartQueryExecution, is polled with
// GetQueryExecution (backing off from PollInterval to MaxPollInterval;
// cancelling the context stops it with StopQueryExecution) and its result
// is read with GetQueryResults, page by page. Throttled calls are retried
// by the SDK's standard retryer. Nothing here runs unless a person starts
// it (keyceremony audit athena).
package athena

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/athena"
	"github.com/aws/aws-sdk-go-v2/service/athena/types"

	"github.com/keyceremony/keyceremony/audit/store"
	"github.com/keyceremony/keyceremony/internal/awsapi"
)

// Client is the part of the Athena API a run uses (*athena.Client).
type Client interface {
	StartQueryExecution(ctx context.Context, in *athena.StartQueryExecutionInput, optFns ...func(*athena.Options)) (*athena.StartQueryExecutionOutput, error)
	GetQueryExecution(ctx context.Context, in *athena.GetQueryExecutionInput, optFns ...func(*athena.Options)) (*athena.GetQueryExecutionOutput, error)
	GetQueryResults(ctx context.Context, in *athena.GetQueryResultsInput, optFns ...func(*athena.Options)) (*athena.GetQueryResultsOutput, error)
	StopQueryExecution(ctx context.Context, in *athena.StopQueryExecutionInput, optFns ...func(*athena.Options)) (*athena.StopQueryExecutionOutput, error)
}

// NewClient is the SDK client for cfg, at endpoint if set (tests, VPC
// endpoints).
func NewClient(cfg aws.Config, endpoint string) *athena.Client {
	return athena.NewFromConfig(cfg, func(o *athena.Options) { o.BaseEndpoint = awsapi.Endpoint(endpoint) })
}

// Options of a run.
type Options struct {
	// Catalog (default AwsDataCatalog), Database and Table name the
	// CloudTrail table (the layout AWS documents for CloudTrail in Athena).
	Catalog, Database, Table string
	// Workgroup runs the query (default "primary"); OutputLocation is
	// where Athena writes the result (s3://bucket/prefix/), required unless
	// the workgroup sets one.
	Workgroup, OutputLocation string
	// From and To bound eventTime, [From, To). Aggregates count whole UTC
	// days, so both must then be midnights.
	From, To time.Time
	// Aggregate selects the aggregates mode.
	Aggregate bool
	// Where is an extra SQL condition ANDed to the query, for the table's
	// partition columns: without one, Athena reads (and bills) the whole
	// trail. For a table with partition projection on "timestamp":
	//   "timestamp" BETWEEN '2025/03/01' AND '2025/03/31'
	Where string
	// PollInterval is the first wait between GetQueryExecution calls
	// (default 500ms), doubled up to MaxPollInterval (default 5s).
	PollInterval, MaxPollInterval time.Duration
	// Sleep waits between polls (default: a timer honouring ctx).
	Sleep func(ctx context.Context, d time.Duration) error
	// PageSize is GetQueryResults' MaxResults (default and maximum 1000).
	PageSize int32
	// ChunkRecords: in records mode, records are loaded in chunks of this
	// many (default 50,000), each committed, so an interrupted run keeps
	// what it loaded.
	ChunkRecords int
	// Progress, if set, is called after every poll and every page.
	Progress func(Progress)
	// Args are recorded with the ingest run as provenance.
	Args []string
}

// Progress of a run.
type Progress struct {
	QueryID string
	State   string // QUEUED, RUNNING, SUCCEEDED, then "reading" and "loading"
	Elapsed time.Duration
	Pages   int
	Rows    int64
	Scanned int64 // bytes Athena scanned so far
}

func (p Progress) String() string {
	return fmt.Sprintf("athena query %s: %s, %s elapsed, %.1f MiB scanned, %d result pages, %d rows",
		p.QueryID, p.State, p.Elapsed.Round(time.Second), float64(p.Scanned)/(1<<20), p.Pages, p.Rows)
}

// Summary of a run.
type Summary struct {
	QueryID     string        `json:"query_execution_id"`
	Mode        string        `json:"mode"` // records or aggregates
	Query       string        `json:"query"`
	Rows        int64         `json:"rows"`
	Pages       int           `json:"pages"`
	Scanned     int64         `json:"data_scanned_bytes"`
	QueryTime   time.Duration `json:"query_time_ns"`
	ResultSHA   string        `json:"result_sha256"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	KMSNew      int64         `json:"kms_events_new,omitempty"`
	KMSDup      int64         `json:"kms_events_duplicate,omitempty"`
	Groups      int64         `json:"aggregate_groups,omitempty"`
	Events      int64         `json:"aggregated_events,omitempty"`
	Replaced    int64         `json:"aggregates_replaced,omitempty"`
	AggregateOf []string      `json:"days,omitempty"` // first and last day aggregated
}

// ErrQueryFailed is the error of a query Athena ran and failed (or
// cancelled); the message carries Athena's reason.
var ErrQueryFailed = errors.New("athena query failed")

var ident = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]*$`)

func (o *Options) check() error {
	if o.Catalog == "" {
		o.Catalog = "AwsDataCatalog"
	}
	if o.Workgroup == "" {
		o.Workgroup = "primary"
	}
	for _, f := range []struct{ flag, v string }{{"--catalog", o.Catalog}, {"--database", o.Database}, {"--table", o.Table}} {
		if f.v == "" {
			return fmt.Errorf("%s is required", f.flag)
		}
		if !ident.MatchString(f.v) {
			return fmt.Errorf("%s %q: only letters, digits, _ and - (Athena names)", f.flag, f.v)
		}
	}
	if o.OutputLocation != "" && !strings.HasPrefix(o.OutputLocation, "s3://") {
		return fmt.Errorf("--output-location %q is not an s3:// location", o.OutputLocation)
	}
	if o.From.IsZero() || o.To.IsZero() || !o.From.Before(o.To) {
		return errors.New("the period needs a start (--from) before its end (--to)")
	}
	o.From, o.To = o.From.UTC(), o.To.UTC()
	if o.Aggregate && (!o.From.Equal(o.From.Truncate(24*time.Hour)) || !o.To.Equal(o.To.Truncate(24*time.Hour))) {
		return errors.New("aggregates count whole UTC days: give --from and --to as dates (YYYY-MM-DD)")
	}
	if strings.Contains(o.Where, ";") {
		return errors.New("--where is one condition, without ';'")
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 500 * time.Millisecond
	}
	if o.MaxPollInterval < o.PollInterval {
		o.MaxPollInterval = max(5*time.Second, o.PollInterval)
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.PageSize <= 0 || o.PageSize > 1000 {
		o.PageSize = 1000
	}
	if o.ChunkRecords <= 0 {
		o.ChunkRecords = 50000
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Text is the summary as the CLI and the GUI show it; db is the database
// the result went into.
func (s *Summary) Text(db string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Athena query %s: %d result rows in %d pages, %.1f MiB scanned\n", s.QueryID, s.Rows, s.Pages, float64(s.Scanned)/(1<<20))
	if s.Mode == "aggregates" {
		first, last := "", ""
		if len(s.AggregateOf) == 2 {
			first, last = s.AggregateOf[0], s.AggregateOf[1]
		}
		fmt.Fprintf(&b, "Aggregates: %d KMS events in %d groups, %s to %s (%d earlier aggregate rows of these days replaced)\n",
			s.Events, s.Groups, first, last, s.Replaced)
		b.WriteString("Reports on these days rest on counts without per-event evidence, and say so.\n")
	} else {
		fmt.Fprintf(&b, "KMS events: %d new, %d already loaded\n", s.KMSNew, s.KMSDup)
	}
	fmt.Fprintf(&b, "Result SHA-256: %s\nDatabase: %s\n", s.ResultSHA, db)
	return b.String()
}

// Run runs the query and loads its result into st.
func Run(ctx context.Context, c Client, st *store.Store, o Options) (*Summary, error) {
	start := time.Now()
	var q string
	var err error
	if o.Aggregate {
		q, err = AggregatesQuery(o)
	} else {
		q, err = RecordsQuery(o)
	}
	if err != nil {
		return nil, err
	}
	o.check() // RecordsQuery checked a copy; this fills o's defaults
	sum := &Summary{Query: q, Mode: "records"}
	if o.Aggregate {
		sum.Mode = "aggregates"
	}
	in := &athena.StartQueryExecutionInput{
		QueryString:           aws.String(q),
		WorkGroup:             aws.String(o.Workgroup),
		QueryExecutionContext: &types.QueryExecutionContext{Catalog: aws.String(o.Catalog), Database: aws.String(o.Database)},
	}
	if o.OutputLocation != "" {
		in.ResultConfiguration = &types.ResultConfiguration{OutputLocation: aws.String(o.OutputLocation)}
	}
	started := time.Now()
	out, err := c.StartQueryExecution(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("start the Athena query: %w", err)
	}
	sum.QueryID = aws.ToString(out.QueryExecutionId)
	r := &runner{c: c, o: o, sum: sum, start: start}
	if err := r.wait(ctx); err != nil {
		return sum, err
	}
	finished := time.Now()
	if o.Aggregate {
		err = r.aggregates(ctx, st, q, started, finished)
	} else {
		err = r.records(ctx, st)
	}
	sum.Elapsed = time.Since(start)
	return sum, err
}
