package awsfake

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Athena is a local Amazon Athena endpoint (JSON 1.1, AmazonAthena.*)
// over tables laid out as AWS documents the CloudTrail table: rows are
// CloudTrail records, struct columns (useridentity, resources) hold the
// records' objects and the body columns (requestparameters, ...) their
// JSON text. It runs the two query shapes Key Ceremony sends (records of
// a period; counts grouped by the columns it selects), evaluating the
// WHERE clause's eventsource and eventtime bounds and, as partition
// projection tables are filtered, a `"timestamp" BETWEEN 'yyyy/MM/dd' AND
// 'yyyy/MM/dd'` condition; a grouped query counts distinct eventIDs. A
// query it cannot evaluate fails as Athena fails a query it cannot plan. A query is QUEUED, then RUNNING, then
// SUCCEEDED after PollsToFinish GetQueryExecution calls; results are paged
// with AWS's 1,000-row limit, the header row first, and checked tokens.
type Athena struct {
	*Server
	// PollsToFinish is the number of GetQueryExecution calls a query
	// stays unfinished (default 2).
	PollsToFinish int
	// Workgroups known, with their own output location ("" for none).
	Workgroups map[string]string

	mu      sync.Mutex
	tables  map[string][]map[string]any // "db.table" -> records
	bytes   map[string]int64
	queries map[string]*athenaQuery
	failing []string // reasons for the next queries to fail with
	n       int
}

type athenaQuery struct {
	id, sql, db, workgroup, output string
	polls                          int
	state, reason                  string
	cols                           []string
	rows                           [][]*string
	scanned                        int64
	submitted                      time.Time
}

// NewAthena starts an Athena server with the workgroup "primary" (no
// output location of its own).
func NewAthena(t testing.TB) *Athena {
	a := &Athena{PollsToFinish: 2, Workgroups: map[string]string{"primary": ""}, tables: map[string][]map[string]any{},
		bytes: map[string]int64{}, queries: map[string]*athenaQuery{}}
	srv := newServer(t, nil)
	srv.Config.Handler = srv.jsonService("AmazonAthena", map[string]func([]byte) (any, *APIError){
		"StartQueryExecution": a.start,
		"GetQueryExecution":   a.get,
		"GetQueryResults":     a.results,
		"StopQueryExecution":  a.stop,
	})
	a.Server = srv
	return a
}

// AddRecords puts CloudTrail records (JSON objects) in database.table.
func (a *Athena) AddRecords(database, table string, recs ...[]byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := database + "." + table
	for _, raw := range recs {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("athena test table %s: %w", k, err)
		}
		a.tables[k] = append(a.tables[k], m)
		a.bytes[k] += int64(len(raw))
	}
	return nil
}

// LoadTree puts every record of a CloudTrail S3 tree (*.json.gz files of
// {"Records":[...]}) in database.table, as Athena's CloudTrail table over
// the trail's bucket would show them, and returns how many.
func (a *Athena) LoadTree(database, table, dir string) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json.gz") {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		var doc struct{ Records []json.RawMessage }
		if err := json.NewDecoder(zr).Decode(&doc); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		recs := make([][]byte, len(doc.Records))
		for i, r := range doc.Records {
			recs[i] = r
		}
		n += len(recs)
		return a.AddRecords(database, table, recs...)
	})
	return n, err
}

// FailQuery makes the next query submitted fail with reason (as Athena
// reports HIVE_BAD_DATA and the like: the call succeeds, the query
// fails).
func (a *Athena) FailQuery(reason string) {
	a.mu.Lock()
	a.failing = append(a.failing, reason)
	a.mu.Unlock()
}

// Queries returns the SQL of every query submitted, in order.
func (a *Athena) Queries() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := make([]string, 0, len(a.queries))
	for id := range a.queries {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = a.queries[id].sql
	}
	return out
}

// State is a query's state (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED).
func (a *Athena) State(id string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if q := a.queries[id]; q != nil {
		return q.state
	}
	return ""
}

func invalid(msg string) *APIError { return &APIError{400, "InvalidRequestException", msg} }

func (a *Athena) start(body []byte) (any, *APIError) {
	var in struct {
		QueryString           string
		WorkGroup             string
		QueryExecutionContext *struct{ Database, Catalog string }
		ResultConfiguration   *struct{ OutputLocation string }
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &APIError{400, "SerializationException", err.Error()}
	}
	if l := len(in.QueryString); l == 0 || l > 262144 {
		return nil, invalid("1 validation error detected: Value at 'queryString' failed to satisfy constraint: Member must have length between 1 and 262144")
	}
	wg := in.WorkGroup
	if wg == "" {
		wg = "primary"
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	wgOut, ok := a.Workgroups[wg]
	if !ok {
		return nil, invalid("WorkGroup " + wg + " is not found.")
	}
	out := wgOut
	if in.ResultConfiguration != nil && in.ResultConfiguration.OutputLocation != "" {
		out = in.ResultConfiguration.OutputLocation
	}
	if out == "" {
		return nil, invalid("Unable to verify/create output bucket. No output location provided. An output location is required either through the Workgroup result configuration setting or as an API input.")
	}
	if !strings.HasPrefix(out, "s3://") {
		return nil, invalid("outputLocation is not a valid S3 path. Provided " + out)
	}
	a.n++
	q := &athenaQuery{id: fmt.Sprintf("%08d-1111-4222-8333-444455556666", a.n), sql: in.QueryString, workgroup: wg,
		output: strings.TrimSuffix(out, "/"), state: "QUEUED", submitted: time.Now().UTC()}
	if in.QueryExecutionContext != nil {
		q.db = in.QueryExecutionContext.Database
	}
	q.output += "/" + q.id + ".csv"
	if len(a.failing) > 0 {
		q.reason, a.failing = a.failing[0], a.failing[1:]
	} else if err := a.evaluate(q); err != nil {
		q.reason = err.Error()
	}
	a.queries[q.id] = q
	return map[string]string{"QueryExecutionId": q.id}, nil
}

func (a *Athena) lookup(body []byte) (*athenaQuery, *APIError) {
	var in struct{ QueryExecutionId string }
	json.Unmarshal(body, &in)
	q := a.queries[in.QueryExecutionId]
	if q == nil {
		return nil, invalid("QueryExecution " + in.QueryExecutionId + " was not found")
	}
	return q, nil
}

func (a *Athena) get(body []byte) (any, *APIError) {
	a.mu.Lock()
	defer a.mu.Unlock()
	q, e := a.lookup(body)
	if e != nil {
		return nil, e
	}
	if q.state == "QUEUED" || q.state == "RUNNING" {
		q.polls++
		switch {
		case q.polls >= a.PollsToFinish && q.reason != "":
			q.state = "FAILED"
		case q.polls >= a.PollsToFinish:
			q.state = "SUCCEEDED"
		default:
			q.state = "RUNNING"
		}
	}
	status := map[string]any{"State": q.state, "SubmissionDateTime": float64(q.submitted.Unix())}
	if q.state == "FAILED" {
		status["StateChangeReason"] = q.reason
		status["AthenaError"] = map[string]any{"ErrorCategory": 2, "ErrorType": 1006, "Retryable": false, "ErrorMessage": q.reason}
	}
	if q.state == "SUCCEEDED" || q.state == "FAILED" || q.state == "CANCELLED" {
		status["CompletionDateTime"] = float64(q.submitted.Unix() + 3)
	}
	return map[string]any{"QueryExecution": map[string]any{
		"QueryExecutionId": q.id, "Query": q.sql, "StatementType": "DML", "WorkGroup": q.workgroup,
		"ResultConfiguration":   map[string]any{"OutputLocation": q.output},
		"QueryExecutionContext": map[string]any{"Database": q.db, "Catalog": "awsdatacatalog"},
		"Status":                status,
		"Statistics": map[string]any{"EngineExecutionTimeInMillis": 1200 * q.polls, "DataScannedInBytes": q.scanned,
			"TotalExecutionTimeInMillis": 1500 * q.polls, "QueryQueueTimeInMillis": 300},
		"EngineVersion": map[string]any{"SelectedEngineVersion": "AUTO", "EffectiveEngineVersion": "Athena engine version 3"},
	}}, nil
}

func (a *Athena) stop(body []byte) (any, *APIError) {
	a.mu.Lock()
	defer a.mu.Unlock()
	q, e := a.lookup(body)
	if e != nil {
		return nil, e
	}
	if q.state == "QUEUED" || q.state == "RUNNING" {
		q.state = "CANCELLED"
		q.reason = "Query was cancelled by user"
	}
	return map[string]any{}, nil
}

func (a *Athena) results(body []byte) (any, *APIError) {
	var in struct {
		QueryExecutionId string
		MaxResults       int
		NextToken        string
	}
	json.Unmarshal(body, &in)
	a.mu.Lock()
	defer a.mu.Unlock()
	q, e := a.lookup(body)
	if e != nil {
		return nil, e
	}
	if q.state != "SUCCEEDED" {
		return nil, invalid("Query has not yet finished. Current state: " + q.state)
	}
	if in.MaxResults == 0 {
		in.MaxResults = 1000
	}
	if in.MaxResults < 1 || in.MaxResults > 1000 {
		return nil, invalid("1 validation error detected: Value at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 1000")
	}
	// Row 0 is the header; a token is the index of the next row, bound to
	// the query.
	start := 0
	if in.NextToken != "" {
		id, n, ok := strings.Cut(in.NextToken, ":")
		v, err := strconv.Atoi(n)
		if !ok || id != q.id || err != nil || v <= 0 || v > len(q.rows)+1 {
			return nil, invalid("The NextToken is invalid.")
		}
		start = v
	}
	all := len(q.rows) + 1
	end := min(all, start+in.MaxResults)
	var rows []any
	for i := start; i < end; i++ {
		var vals []*string
		if i == 0 {
			for _, c := range q.cols {
				vals = append(vals, &c)
			}
		} else {
			vals = q.rows[i-1]
		}
		data := make([]any, len(vals))
		for j, v := range vals {
			if v == nil {
				data[j] = map[string]any{}
			} else {
				data[j] = map[string]any{"VarCharValue": *v}
			}
		}
		rows = append(rows, map[string]any{"Data": data})
	}
	info := make([]any, len(q.cols))
	for i, c := range q.cols {
		typ := "varchar"
		if c == "events" {
			typ = "bigint"
		}
		info[i] = map[string]any{"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": c, "Label": c, "Type": typ,
			"Precision": 2147483647, "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive": typ == "varchar"}
	}
	out := map[string]any{"UpdateCount": 0, "ResultSet": map[string]any{"Rows": rows, "ResultSetMetadata": map[string]any{"ColumnInfo": info}}}
	if end < all {
		out["NextToken"] = q.id + ":" + strconv.Itoa(end)
	}
	return out, nil
}
