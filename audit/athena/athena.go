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
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/athena"
	"github.com/aws/aws-sdk-go-v2/service/athena/types"

	"github.com/keyceremony/keyceremony/audit/cloudtrail"
	"github.com/keyceremony/keyceremony/audit/ingest"
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

func (o *Options) from() string {
	return `"` + o.Database + `"."` + o.Table + `"`
}

func (o *Options) where() string {
	w := "eventsource = 'kms.amazonaws.com' AND eventtime >= '" + o.From.Format(time.RFC3339) +
		"' AND eventtime < '" + o.To.Format(time.RFC3339) + "'"
	if o.Where != "" {
		w += " AND (" + o.Where + ")"
	}
	return w
}

// recordCols are the columns of a records query, by result name, and the
// SQL that reads them from the CloudTrail table. Struct columns are read
// field by field (their text form in results is not JSON), and resources
// as a JSON array of maps (a map casts to a JSON object on every Athena
// engine version).
var recordCols = [][2]string{
	{"eventid", "eventid"}, {"eventtime", "eventtime"}, {"eventversion", "eventversion"}, {"eventsource", "eventsource"},
	{"eventname", "eventname"}, {"eventtype", "eventtype"}, {"awsregion", "awsregion"}, {"recipientaccountid", "recipientaccountid"},
	{"sourceipaddress", "sourceipaddress"}, {"useragent", "useragent"}, {"errorcode", "errorcode"}, {"errormessage", "errormessage"},
	{"readonly", "readonly"}, {"requestid", "requestid"}, {"apiversion", "apiversion"}, {"sharedeventid", "sharedeventid"},
	{"vpcendpointid", "vpcendpointid"},
	{"ui_type", "useridentity.type"}, {"ui_principalid", "useridentity.principalid"}, {"ui_arn", "useridentity.arn"},
	{"ui_accountid", "useridentity.accountid"}, {"ui_invokedby", "useridentity.invokedby"}, {"ui_accesskeyid", "useridentity.accesskeyid"},
	{"ui_username", "useridentity.username"}, {"ui_issuer_arn", "useridentity.sessioncontext.sessionissuer.arn"},
	{"requestparameters", "requestparameters"}, {"responseelements", "responseelements"},
	{"additionaleventdata", "additionaleventdata"}, {"serviceeventdetails", "serviceeventdetails"},
	{"resources_json", "json_format(CAST(transform(resources, r -> MAP(ARRAY['ARN', 'accountId', 'type'], ARRAY[r.arn, r.accountid, r.type])) AS JSON))"},
}

// recordIx is the position of each records column.
var recordIx = func() map[string]int {
	m := map[string]int{}
	for i, c := range recordCols {
		m[c[0]] = i
	}
	return m
}()

// aggCols are the group columns of an aggregates query. The key is the
// first key ARN CloudTrail lists in resources, else what the request,
// response or service details name; the principal is the role of an
// assumed-role session (sessions fold into their role, as the usage
// report counts them), else the caller's ARN.
var aggCols = [][2]string{
	{"day", "substr(eventtime, 1, 10)"},
	{"account", "coalesce(recipientaccountid, useridentity.accountid)"},
	{"region", "awsregion"}, {"eventname", "eventname"}, {"eventtype", "eventtype"},
	{"key_ref", "coalesce(element_at(filter(transform(resources, r -> r.arn), a -> a LIKE 'arn:%:key/%'), 1), " +
		"json_extract_scalar(requestparameters, '$.keyId'), json_extract_scalar(responseelements, '$.keyMetadata.arn'), " +
		"json_extract_scalar(serviceeventdetails, '$.keyId'))"},
	{"principal", "coalesce(useridentity.sessioncontext.sessionissuer.arn, useridentity.arn)"},
	{"ui_type", "useridentity.type"}, {"ui_accountid", "useridentity.accountid"},
	{"ui_issuer_arn", "useridentity.sessioncontext.sessionissuer.arn"},
	{"ui_invokedby", "useridentity.invokedby"}, {"errorcode", "errorcode"},
	// A ReEncrypt names two keys, source then destination: the usage
	// report counts it for both, as it does from the records.
	{"key2_ref", "CASE WHEN eventname = 'ReEncrypt' THEN coalesce(" +
		"element_at(filter(transform(resources, r -> r.arn), a -> a LIKE 'arn:%:key/%'), 2), " +
		"json_extract_scalar(requestparameters, '$.destinationKeyId')) END"},
	// An alias change names the alias and its new target: the history
	// that resolves the calls which named only an alias (key_ref is then
	// the alias).
	{"alias_ref", "CASE WHEN eventname IN ('CreateAlias', 'UpdateAlias', 'DeleteAlias') THEN json_extract_scalar(requestparameters, '$.aliasName') END"},
	{"alias_target", "CASE WHEN eventname IN ('CreateAlias', 'UpdateAlias') THEN json_extract_scalar(requestparameters, '$.targetKeyId') END"},
}

// aggMeasures follow the group columns.
// Events count distinct eventIDs: the table shows an event CloudTrail
// delivered twice twice (the ingest keeps one).
var aggMeasures = [][2]string{{"events", "count(DISTINCT eventid)"}, {"first_time", "min(eventtime)"}, {"last_time", "max(eventtime)"}}

func selectList(cols [][2]string) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = c[1] + " AS " + c[0]
	}
	return strings.Join(parts, ",\n  ")
}

// RecordsQuery is the SQL of a records run.
func RecordsQuery(o Options) (string, error) {
	if err := o.check(); err != nil {
		return "", err
	}
	return "SELECT " + selectList(recordCols) + "\nFROM " + o.from() + "\nWHERE " + o.where(), nil
}

// AggregatesQuery is the SQL of an aggregates run.
func AggregatesQuery(o Options) (string, error) {
	if err := o.check(); err != nil {
		return "", err
	}
	groups := make([]string, len(aggCols))
	for i := range aggCols {
		groups[i] = strconv.Itoa(i + 1)
	}
	return "SELECT " + selectList(append(append([][2]string{}, aggCols...), aggMeasures...)) + "\nFROM " + o.from() +
		"\nWHERE " + o.where() + "\nGROUP BY " + strings.Join(groups, ", "), nil
}

// Check refuses bad names, dates, locations and conditions: callers run it
// before they connect, so a mistake costs no network call.
func Check(o Options) error {
	var err error
	if o.Aggregate {
		_, err = AggregatesQuery(o)
	} else {
		_, err = RecordsQuery(o)
	}
	return err
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

type runner struct {
	c     Client
	o     Options
	sum   *Summary
	start time.Time
	prog  Progress
}

func (r *runner) report() {
	if r.o.Progress != nil {
		r.prog.QueryID = r.sum.QueryID
		r.prog.Elapsed = time.Since(r.start)
		r.o.Progress(r.prog)
	}
}

// wait polls the query until it ends. A cancelled context stops the
// query in Athena too (it would otherwise run, and bill, to its end).
func (r *runner) wait(ctx context.Context) error {
	d := r.o.PollInterval
	for {
		out, err := r.c.GetQueryExecution(ctx, &athena.GetQueryExecutionInput{QueryExecutionId: aws.String(r.sum.QueryID)})
		if err != nil {
			if ctx.Err() != nil {
				r.stop()
			}
			return fmt.Errorf("poll Athena query %s: %w", r.sum.QueryID, err)
		}
		qe := out.QueryExecution
		if qe == nil || qe.Status == nil {
			return fmt.Errorf("poll Athena query %s: no status in the answer", r.sum.QueryID)
		}
		if s := qe.Statistics; s != nil {
			r.prog.Scanned = aws.ToInt64(s.DataScannedInBytes)
			r.sum.Scanned = r.prog.Scanned
			r.sum.QueryTime = time.Duration(aws.ToInt64(s.TotalExecutionTimeInMillis)) * time.Millisecond
		}
		r.prog.State = string(qe.Status.State)
		r.report()
		switch qe.Status.State {
		case types.QueryExecutionStateSucceeded:
			return nil
		case types.QueryExecutionStateFailed, types.QueryExecutionStateCancelled:
			reason := aws.ToString(qe.Status.StateChangeReason)
			if e := qe.Status.AthenaError; e != nil && aws.ToString(e.ErrorMessage) != "" && reason == "" {
				reason = aws.ToString(e.ErrorMessage)
			}
			return fmt.Errorf("%w: query %s %s: %s", ErrQueryFailed, r.sum.QueryID, strings.ToLower(string(qe.Status.State)), reason)
		}
		if err := r.o.Sleep(ctx, d); err != nil {
			r.stop()
			return fmt.Errorf("wait for Athena query %s: %w (the query was asked to stop)", r.sum.QueryID, err)
		}
		d = min(2*d, r.o.MaxPollInterval)
	}
}

func (r *runner) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.c.StopQueryExecution(ctx, &athena.StopQueryExecutionInput{QueryExecutionId: aws.String(r.sum.QueryID)})
}

// rows reads the result page by page, calling f with each row's values
// (nil for NULL) by column name index.
func (r *runner) rows(ctx context.Context, want []string, f func(v []*string) error) error {
	r.prog.State = "reading"
	var token *string
	var idx []int
	hasher := sha256.New()
	var hb []byte
	for {
		out, err := r.c.GetQueryResults(ctx, &athena.GetQueryResultsInput{QueryExecutionId: aws.String(r.sum.QueryID),
			MaxResults: aws.Int32(r.o.PageSize), NextToken: token})
		if err != nil {
			return fmt.Errorf("read the result of Athena query %s (page %d): %w", r.sum.QueryID, r.sum.Pages+1, err)
		}
		rs := out.ResultSet
		if rs == nil {
			return fmt.Errorf("read the result of Athena query %s: no result set", r.sum.QueryID)
		}
		rows := rs.Rows
		if idx == nil {
			if rs.ResultSetMetadata == nil {
				return fmt.Errorf("read the result of Athena query %s: no column names", r.sum.QueryID)
			}
			names := map[string]int{}
			for i, ci := range rs.ResultSetMetadata.ColumnInfo {
				names[strings.ToLower(aws.ToString(ci.Name))] = i
			}
			for _, w := range want {
				i, ok := names[w]
				if !ok {
					return fmt.Errorf("the result of Athena query %s has no column %q", r.sum.QueryID, w)
				}
				idx = append(idx, i)
			}
			// The first row of a SELECT's first page is the header.
			if len(rows) > 0 && header(rows[0], rs.ResultSetMetadata.ColumnInfo) {
				rows = rows[1:]
			}
		}
		r.sum.Pages++
		v := make([]*string, len(want))
		for _, row := range rows {
			hb = append(hb[:0], 'R')
			hb = binary.AppendUvarint(hb, uint64(len(row.Data)))
			for _, d := range row.Data {
				if d.VarCharValue == nil {
					hb = append(hb, 'n')
				} else {
					hb = append(hb, 's')
					hb = binary.AppendUvarint(hb, uint64(len(*d.VarCharValue)))
					hb = append(hb, *d.VarCharValue...)
				}
			}
			hasher.Write(hb)
			for i, j := range idx {
				v[i] = nil
				if j < len(row.Data) {
					v[i] = row.Data[j].VarCharValue
				}
			}
			r.sum.Rows++
			if err := f(v); err != nil {
				return err
			}
		}
		r.prog.Pages, r.prog.Rows = r.sum.Pages, r.sum.Rows
		r.report()
		if out.NextToken == nil || *out.NextToken == "" {
			break
		}
		token = out.NextToken
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	r.sum.ResultSHA = hex.EncodeToString(hasher.Sum(nil))
	return nil
}

func header(row types.Row, cols []types.ColumnInfo) bool {
	if len(row.Data) != len(cols) {
		return false
	}
	for i, d := range row.Data {
		if d.VarCharValue == nil || !strings.EqualFold(*d.VarCharValue, aws.ToString(cols[i].Name)) {
			return false
		}
	}
	return true
}

func names(cols [][2]string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c[0]
	}
	return out
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// records rebuilds CloudTrail records from the result and loads them,
// ChunkRecords at a time, through the ordinary ingest as JSON lines
// (one file per chunk, named after the query, for the provenance).
func (r *runner) records(ctx context.Context, st *store.Store) error {
	dir, err := os.MkdirTemp("", "keyceremony-athena-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var f *os.File
	var bw *bufio.Writer
	var path string
	n, chunk := 0, 0
	flush := func() error {
		if f == nil {
			return nil
		}
		err := bw.Flush()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		f = nil
		if err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		r.prog.State = "loading"
		r.report()
		s, err := ingest.Run(context.WithoutCancel(ctx), st, []string{path}, ingest.Options{Workers: 1,
			Args: append(append([]string{}, r.o.Args...), "athena:"+r.sum.QueryID)})
		if err != nil {
			return fmt.Errorf("load the records of Athena query %s: %w", r.sum.QueryID, err)
		}
		if s.FilesFailed > 0 && len(s.Failed) > 0 {
			return fmt.Errorf("load the records of Athena query %s: %s", r.sum.QueryID, s.Failed[0].Error)
		}
		r.sum.KMSNew += s.KMSNew
		r.sum.KMSDup += s.KMSDuplicate
		os.Remove(path)
		return nil
	}
	var line []byte
	err = r.rows(ctx, names(recordCols), func(v []*string) error {
		if f == nil {
			chunk++
			path = filepath.Join(dir, fmt.Sprintf("athena_%s_%s_%s_part-%04d.jsonl", r.o.Database, r.o.Table, r.sum.QueryID, chunk))
			var err error
			if f, err = os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err != nil {
				return err
			}
			bw = bufio.NewWriterSize(f, 256<<10)
		}
		line = appendRecord(line[:0], v)
		bw.Write(line)
		bw.WriteByte('\n')
		if n++; n%r.o.ChunkRecords == 0 {
			return flush()
		}
		return nil
	})
	if err != nil {
		if f != nil {
			f.Close()
		}
		return err
	}
	return flush()
}

// appendRecord writes one CloudTrail record (field names as CloudTrail
// writes them) from a records row. Bodies the table keeps as JSON text
// are embedded as JSON when they are; anything else stays a string.
func appendRecord(b []byte, v []*string) []byte {
	col := func(name string) *string { return v[recordIx[name]] }
	first := true
	field := func(name string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = strconv.AppendQuote(b, name)
		b = append(b, ':')
	}
	strField := func(name, col string, p *string) {
		if p != nil {
			field(name)
			b = appendJSONString(b, *p)
		}
	}
	b = append(b, '{')
	for _, f := range [][2]string{{"eventVersion", "eventversion"}} {
		strField(f[0], f[1], col(f[1]))
	}
	// userIdentity
	field("userIdentity")
	b = append(b, '{')
	uiFirst := true
	for _, f := range [][2]string{{"type", "ui_type"}, {"principalId", "ui_principalid"}, {"arn", "ui_arn"}, {"accountId", "ui_accountid"},
		{"invokedBy", "ui_invokedby"}, {"accessKeyId", "ui_accesskeyid"}, {"userName", "ui_username"}} {
		if p := col(f[1]); p != nil {
			if !uiFirst {
				b = append(b, ',')
			}
			uiFirst = false
			b = strconv.AppendQuote(b, f[0])
			b = append(b, ':')
			b = appendJSONString(b, *p)
		}
	}
	if p := col("ui_issuer_arn"); p != nil {
		if !uiFirst {
			b = append(b, ',')
		}
		b = append(b, `"sessionContext":{"sessionIssuer":{"arn":`...)
		b = appendJSONString(b, *p)
		b = append(b, "}}"...)
	}
	b = append(b, '}')
	for _, f := range [][2]string{{"eventTime", "eventtime"}, {"eventSource", "eventsource"}, {"eventName", "eventname"},
		{"awsRegion", "awsregion"}, {"sourceIPAddress", "sourceipaddress"}, {"userAgent", "useragent"}, {"errorCode", "errorcode"},
		{"errorMessage", "errormessage"}} {
		strField(f[0], f[1], col(f[1]))
	}
	for _, f := range [][2]string{{"requestParameters", "requestparameters"}, {"responseElements", "responseelements"},
		{"additionalEventData", "additionaleventdata"}} {
		if p := col(f[1]); p != nil {
			field(f[0])
			b = appendJSONBody(b, *p)
		}
	}
	for _, f := range [][2]string{{"requestID", "requestid"}, {"eventID", "eventid"}} {
		strField(f[0], f[1], col(f[1]))
	}
	if p := col("readonly"); p != nil {
		field("readOnly")
		switch strings.ToLower(*p) {
		case "true", "false":
			b = append(b, strings.ToLower(*p)...)
		default:
			b = appendJSONString(b, *p)
		}
	}
	if p := col("resources_json"); p != nil && json.Valid([]byte(*p)) {
		field("resources")
		b = append(b, *p...)
	}
	for _, f := range [][2]string{{"eventType", "eventtype"}, {"apiVersion", "apiversion"}, {"recipientAccountId", "recipientaccountid"}} {
		strField(f[0], f[1], col(f[1]))
	}
	if p := col("serviceeventdetails"); p != nil {
		field("serviceEventDetails")
		b = appendJSONBody(b, *p)
	}
	for _, f := range [][2]string{{"sharedEventID", "sharedeventid"}, {"vpcEndpointId", "vpcendpointid"}} {
		strField(f[0], f[1], col(f[1]))
	}
	return append(b, '}')
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

// appendJSONBody embeds a body the table holds as JSON text: as JSON when
// it parses, else as the string it is.
func appendJSONBody(b []byte, s string) []byte {
	t := strings.TrimSpace(s)
	if t == "null" || t == "" {
		return append(b, "null"...)
	}
	if json.Valid([]byte(t)) {
		return append(b, t...)
	}
	return appendJSONString(b, s)
}

// aggregates stores the result's groups.
func (r *runner) aggregates(ctx context.Context, st *store.Store, q string, started, finished time.Time) error {
	cols := append(append([][2]string{}, aggCols...), aggMeasures...)
	var rows []store.Aggregate
	err := r.rows(ctx, names(cols), func(v []*string) error {
		day, account, region, name := str(v[0]), str(v[1]), str(v[2]), str(v[3])
		if len(day) != 10 || name == "" {
			return fmt.Errorf("Athena query %s: a group without a day or event name (day %q, event %q)", r.sum.QueryID, day, name)
		}
		a := store.Aggregate{Day: day, Account: account, Region: region, Name: name,
			Category: cloudtrail.CategoryOf(name, str(v[4])), PrincipalType: str(v[7]), PrincipalAccount: str(v[8]),
			RoleARN: str(v[9]), InvokedBy: str(v[10]), ErrorCode: str(v[11])}
		a.PrincipalARN = str(v[6])
		key, alias := cloudtrail.KeyRef(str(v[5]), region, account)
		a.KeyARN = key
		if key == "" {
			a.AliasARN = alias // resolved through the alias history by the reports
		}
		if ref := str(v[13]); ref != "" {
			_, a.AliasARN = cloudtrail.KeyRef(ref, region, account)
			if name != "DeleteAlias" {
				if a.AliasTarget, _ = cloudtrail.KeyRef(str(v[14]), region, account); a.AliasTarget == "" {
					a.AliasTarget = a.KeyARN
				}
			}
		}
		if key, _ := cloudtrail.KeyRef(str(v[12]), region, account); key != "" {
			a.Key2ARN = key
		}
		m := len(aggCols) // the measures follow the groups
		var err error
		if a.Events, err = strconv.ParseInt(str(v[m]), 10, 64); err != nil || a.Events <= 0 {
			return fmt.Errorf("Athena query %s: group count %q", r.sum.QueryID, str(v[m]))
		}
		for i, dst := range []*int64{&a.First, &a.Last} {
			t, ok := cloudtrail.ParseEventTime(str(v[m+1+i]))
			if !ok {
				return fmt.Errorf("Athena query %s: group time %q", r.sum.QueryID, str(v[m+1+i]))
			}
			*dst = t
		}
		r.sum.Groups++
		r.sum.Events += a.Events
		rows = append(rows, a)
		return nil
	})
	if err != nil {
		return err
	}
	r.prog.State = "loading"
	r.report()
	w, err := st.NewWriter(context.WithoutCancel(ctx))
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := w.StartRun(append(append([]string{}, r.o.Args...), "athena:"+r.sum.QueryID)); err != nil {
		return err
	}
	src := store.AggregateSource{Kind: "athena", QueryID: r.sum.QueryID, Catalog: r.o.Catalog, Database: r.o.Database,
		Table: r.o.Table, Workgroup: r.o.Workgroup, OutputLocation: r.o.OutputLocation, Query: q, From: r.o.From, To: r.o.To,
		Rows: r.sum.Rows, Events: r.sum.Events, DataScanned: r.sum.Scanned, StartedAt: started, FinishedAt: finished}
	hex.Decode(src.ResultSHA256[:], []byte(r.sum.ResultSHA))
	if r.sum.Replaced, err = w.ImportAggregates(src, rows); err != nil {
		return fmt.Errorf("store the aggregates of Athena query %s: %w", r.sum.QueryID, err)
	}
	r.sum.AggregateOf = []string{r.o.From.Format("2006-01-02"), r.o.To.AddDate(0, 0, -1).Format("2006-01-02")}
	return w.FinishRun(store.RunTotals{Status: "done"})
}
