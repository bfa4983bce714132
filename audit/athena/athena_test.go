package athena_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	awsathena "github.com/aws/aws-sdk-go-v2/service/athena"

	"github.com/keyceremony/keyceremony/audit/athena"
	"github.com/keyceremony/keyceremony/audit/ingest"
	"github.com/keyceremony/keyceremony/audit/store"
	"github.com/keyceremony/keyceremony/test/awsfake"
	"github.com/keyceremony/keyceremony/test/cloudtrailgen"
)

var (
	bg    = context.Background()
	day0  = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	nodly = func(context.Context, time.Duration) error { return nil }
)

// fixture: a generated trail (duplicate deliveries, non-KMS noise, errors,
// service events) loaded both in the Athena test server's CloudTrail table
// and, directly from its files, in a reference database.
type fixture struct {
	srv    *awsfake.Athena
	client *awsathena.Client
	ref    *store.Store
	events int
}

func setup(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	gen, err := cloudtrailgen.Generate(filepath.Join(dir, "trail"), cloudtrailgen.Config{Seed: 3, KMSEvents: 2500, Start: day0, Days: 3,
		FileInterval: 4 * time.Hour, DupRatio: 0.3, ErrorRatio: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	srv := awsfake.NewAthena(t)
	if n, err := srv.LoadTree("trails", "cloudtrail_logs", filepath.Join(dir, "trail")); err != nil || n < gen.KMSEvents {
		t.Fatalf("loaded %d records: %v", n, err)
	}
	ref := openStore(t, filepath.Join(dir, "ref.db"))
	if _, err := ingest.Run(bg, ref, []string{filepath.Join(dir, "trail")}, ingest.Options{}); err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: srv, client: newClient(srv), ref: ref, events: gen.KMSEvents}
}

func openStore(t *testing.T, path string) *store.Store {
	t.Helper()
	st, err := store.Open(bg, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newClient is the real SDK client against the test server: its
// certificate is trusted explicitly (AWS_CA_BUNDLE, set on this machine,
// is not read: the configuration is built here, not loaded).
func newClient(srv *awsfake.Athena) *awsathena.Client {
	return athena.NewClient(srv.AWSConfig("eu-west-1"), srv.URL)
}

func opts() athena.Options {
	return athena.Options{Database: "trails", Table: "cloudtrail_logs", OutputLocation: "s3://athena-results/keyceremony/",
		From: day0, To: day0.AddDate(0, 0, 3), Sleep: nodly, PageSize: 400}
}

// eventRows lists every event as "eventID name key principal error".
func eventRows(t *testing.T, st *store.Store) map[string]string {
	t.Helper()
	rows, err := st.DB().Query(`SELECT event_id, event_name, coalesce(key_arn,''), coalesce(principal_arn,''), coalesce(role_arn,''),
		coalesce(error_code,''), category, time_utc FROM events_v`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id string
		v := make([]string, 7)
		if err := rows.Scan(&id, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]); err != nil {
			t.Fatal(err)
		}
		out[id] = strings.Join(v, " ")
	}
	return out
}

// Records mode loads, through the ingest, the same events with the same
// normalised columns as the trail's own files give, from rows paged 400 at
// a time; a second run adds nothing.
func TestRecordsEqualTheTrailsFiles(t *testing.T) {
	f := setup(t)
	st := openStore(t, filepath.Join(t.TempDir(), "athena.db"))
	var states []string
	o := opts()
	o.ChunkRecords = 1000
	o.Progress = func(p athena.Progress) {
		if len(states) == 0 || states[len(states)-1] != p.State {
			states = append(states, p.State)
		}
	}
	sum, err := athena.Run(bg, f.client, st, o)
	if err != nil {
		t.Fatal(err)
	}
	if sum.KMSNew != int64(f.events) || sum.Pages < 7 || sum.Rows <= int64(f.events) || len(sum.ResultSHA) != 64 {
		t.Fatalf("summary %+v; want %d new events over several pages (the table holds repeated deliveries)", sum, f.events)
	}
	if got := strings.Join(states, ","); got != "RUNNING,SUCCEEDED,reading,loading" {
		t.Errorf("progress states %s", got)
	}
	want, got := eventRows(t, f.ref), eventRows(t, st)
	if len(got) != len(want) {
		t.Fatalf("%d events from Athena, %d from the files", len(got), len(want))
	}
	for id, w := range want {
		if got[id] != w {
			t.Fatalf("event %s\n from Athena: %s\n from files:  %s", id, got[id], w)
		}
	}
	// The query asked for the period's KMS events, and the chunks are
	// recorded as ingested files named after the query.
	q := f.srv.Queries()[0]
	for _, s := range []string{`FROM "trails"."cloudtrail_logs"`, "eventsource = 'kms.amazonaws.com'",
		"eventtime >= '2025-03-01T00:00:00Z' AND eventtime < '2025-03-04T00:00:00Z'"} {
		if !strings.Contains(q, s) {
			t.Errorf("query lacks %q:\n%s", s, q)
		}
	}
	files, err := st.Files(bg)
	if err != nil || len(files) < 3 || !strings.Contains(files[0].Path, "athena_trails_cloudtrail_logs_"+sum.QueryID+"_part-0001.jsonl") {
		t.Fatalf("files %v %v", files, err)
	}
	again, err := athena.Run(bg, f.client, st, o)
	if err != nil || again.KMSNew != 0 {
		t.Fatalf("second run: %+v %v", again, err)
	}
}

// Aggregates mode stores one row per day, account, region, event, key,
// principal, service and error, counting each event once (the table holds
// repeated deliveries): the same counts as the events of the trail's files
// grouped the same way. A second query over an overlapping period
// replaces the days it covers.
func TestAggregatesEqualTheTrailsFiles(t *testing.T) {
	f := setup(t)
	st := openStore(t, filepath.Join(t.TempDir(), "athena.db"))
	o := opts()
	o.Aggregate = true
	sum, err := athena.Run(bg, f.client, st, o)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Events != int64(f.events) || sum.Groups == 0 || sum.Groups >= int64(f.events) {
		t.Fatalf("summary %+v; want %d events in fewer groups", sum, f.events)
	}
	if !strings.Contains(f.srv.Queries()[0], "count(DISTINCT eventid) AS events") || !strings.Contains(f.srv.Queries()[0], "GROUP BY 1, 2,") {
		t.Errorf("query:\n%s", f.srv.Queries()[0])
	}
	group := func(db *sql.DB, q string) map[string]int64 {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]int64{}
		for rows.Next() {
			var k string
			var n int64
			if err := rows.Scan(&k, &n); err != nil {
				t.Fatal(err)
			}
			out[k] = n
		}
		return out
	}
	want := group(f.ref.DB(), `SELECT date(time,'unixepoch')||' '||name.s||' '||coalesce(k.arn,'-')||' '||coalesce(p.role_arn,'')||' '||coalesce(ec.s,'-'), count(*)
		FROM events e JOIN strs name ON name.id = e.name LEFT JOIN keys k ON k.id = e.key LEFT JOIN principals p ON p.id = e.principal
		LEFT JOIN strs ec ON ec.id = e.error_code WHERE e.key_source IN (0,1,2,3) GROUP BY 1`)
	got := group(st.DB(), `SELECT a.day||' '||name.s||' '||coalesce(k.arn,'-')||' '||coalesce(p.role_arn,'')||' '||coalesce(ec.s,'-'), sum(a.events)
		FROM aggregates a JOIN strs name ON name.id = a.name LEFT JOIN keys k ON k.id = a.key LEFT JOIN principals p ON p.id = a.principal
		LEFT JOIN strs ec ON ec.id = a.error_code GROUP BY 1`)
	for k, n := range want {
		if got[k] != n {
			t.Fatalf("%s: %d from Athena, %d from the files", k, got[k], n)
		}
	}
	srcs, err := st.AggregateSources(bg)
	if err != nil || len(srcs) != 1 || srcs[0].QueryID != sum.QueryID || srcs[0].Events != int64(f.events) ||
		!strings.Contains(srcs[0].Query, "GROUP BY") || srcs[0].DataScanned == 0 || srcs[0].OutputLocation != o.OutputLocation {
		t.Fatalf("provenance %+v %v", srcs, err)
	}
	// The last two days again: replaced, not added.
	o.From = day0.AddDate(0, 0, 1)
	again, err := athena.Run(bg, f.client, st, o)
	if err != nil || again.Replaced == 0 {
		t.Fatalf("second run %+v %v", again, err)
	}
	var total int64
	st.DB().QueryRow(`SELECT sum(events) FROM aggregates`).Scan(&total)
	if total != int64(f.events) {
		t.Fatalf("%d events aggregated after the overlapping run, want %d", total, f.events)
	}
	if srcs, _ := st.AggregateSources(bg); len(srcs) != 2 {
		t.Fatalf("%d sources", len(srcs))
	}
	// Aggregates count whole days.
	o.To = o.To.Add(time.Hour)
	if _, err := athena.Run(bg, f.client, st, o); err == nil || !strings.Contains(err.Error(), "whole UTC days") {
		t.Fatalf("partial day: %v", err)
	}
}

// What Athena refuses or fails is said plainly; throttled calls are
// retried; a run cancelled while the query runs stops the query.
func TestFailuresThrottlingAndCancel(t *testing.T) {
	f := setup(t)
	st := openStore(t, filepath.Join(t.TempDir(), "athena.db"))

	f.srv.FailQuery("HIVE_BAD_DATA: Error parsing field value for field 3")
	if _, err := athena.Run(bg, f.client, st, opts()); !errors.Is(err, athena.ErrQueryFailed) || !strings.Contains(err.Error(), "HIVE_BAD_DATA") {
		t.Fatalf("failed query: %v", err)
	}
	o := opts()
	o.OutputLocation = ""
	if _, err := athena.Run(bg, f.client, st, o); err == nil || !strings.Contains(err.Error(), "No output location provided") {
		t.Fatalf("no output location: %v", err)
	}
	o = opts()
	o.Table = `logs"; DROP TABLE x; --`
	before := f.srv.Calls("StartQueryExecution")
	if _, err := athena.Run(bg, f.client, st, o); err == nil || f.srv.Calls("StartQueryExecution") != before {
		t.Fatalf("a bad table name reached Athena: %v", err)
	}
	o = opts()
	o.Table = "elsewhere"
	if _, err := athena.Run(bg, f.client, st, o); !errors.Is(err, athena.ErrQueryFailed) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("unknown table: %v", err)
	}

	f.srv.FailNext("GetQueryResults", awsfake.APIError{Status: 400, Type: "TooManyRequestsException", Message: "Rate exceeded"})
	calls := f.srv.Calls("GetQueryResults")
	sum, err := athena.Run(bg, f.client, st, opts())
	if err != nil || sum.KMSNew != int64(f.events) {
		t.Fatalf("throttled run: %+v %v", sum, err)
	}
	// The throttled call is retried by the SDK: the next GetQueryResults is
	// the same invocation's second attempt. (Other calls may be retried
	// too, on a connection the test machine drops under load: they are
	// the SDK's business, and the run's events above are exact.)
	var got []awsfake.Request
	for _, r := range f.srv.Requests {
		if r.Operation == "GetQueryResults" {
			got = append(got, r)
		}
	}
	got = got[calls:]
	if len(got) < sum.Pages+1 || got[1].Header.Get("Amz-Sdk-Invocation-Id") != got[0].Header.Get("Amz-Sdk-Invocation-Id") ||
		!strings.HasPrefix(got[1].Header.Get("Amz-Sdk-Request"), "attempt=2;") {
		t.Fatalf("%d GetQueryResults calls for %d pages: the throttled one was not retried (second call %q)", len(got), sum.Pages,
			got[min(1, len(got)-1)].Header.Get("Amz-Sdk-Request"))
	}

	f.srv.PollsToFinish = 100
	ctx, cancel := context.WithCancel(bg)
	o = opts()
	polls := 0
	o.Sleep = func(ctx context.Context, d time.Duration) error {
		if polls++; polls == 3 {
			cancel()
		}
		return ctx.Err()
	}
	sum, err = athena.Run(ctx, f.client, st, o)
	if !errors.Is(err, context.Canceled) || sum == nil || f.srv.State(sum.QueryID) != "CANCELLED" {
		t.Fatalf("cancelled run: %v, query state %q", err, f.srv.State(sum.QueryID))
	}
}
