package awsfake

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
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

var (
	reFrom      = regexp.MustCompile(`(?i)\bFROM\s+"([^"]+)"\."([^"]+)"`)
	reSource    = regexp.MustCompile(`eventsource = '([^']*)'`)
	reTime      = regexp.MustCompile(`eventtime >= '([^']*)' AND eventtime < '([^']*)'`)
	reAlias     = regexp.MustCompile(`\bAS\s+([a-z_0-9]+)\s*(?:,|\n\s*FROM\b)`)
	rePartition = regexp.MustCompile(`^\s*AND \("timestamp" BETWEEN '(\d{4}/\d{2}/\d{2})' AND '(\d{4}/\d{2}/\d{2})'\)\s*$`)
)

// evaluate runs q over its table (at submission: the table does not
// change under a test's queries).
func (a *Athena) evaluate(q *athenaQuery) error {
	m := reFrom.FindStringSubmatch(q.sql)
	if m == nil {
		return fmt.Errorf("line 1:1: mismatched input. Expecting: FROM \"database\".\"table\"")
	}
	rows, ok := a.tables[m[1]+"."+m[2]]
	if !ok {
		return fmt.Errorf("line 3:6: Table 'awsdatacatalog.%s.%s' does not exist", m[1], m[2])
	}
	q.scanned = a.bytes[m[1]+"."+m[2]]
	where := q.sql[strings.Index(q.sql, "WHERE"):]
	where = strings.SplitN(where, "\nGROUP BY", 2)[0]
	src := reSource.FindStringSubmatch(where)
	tm := reTime.FindStringSubmatch(where)
	if src == nil || tm == nil {
		return fmt.Errorf("the test server evaluates only eventsource and eventtime conditions: %s", where)
	}
	rest := strings.TrimSpace(where[strings.Index(where, tm[0])+len(tm[0]):])
	var part []string
	if rest != "" {
		if part = rePartition.FindStringSubmatch(rest); part == nil {
			return fmt.Errorf("the test server cannot evaluate the condition %q", rest)
		}
	}
	sel := q.sql[:reFrom.FindStringIndex(q.sql)[0]+5]
	for _, m := range reAlias.FindAllStringSubmatch(sel, -1) {
		q.cols = append(q.cols, m[1])
	}
	if len(q.cols) == 0 {
		return fmt.Errorf("no column in the query")
	}
	for _, c := range q.cols {
		if athenaCols[c] == nil && !measures[c] {
			return fmt.Errorf("COLUMN_NOT_FOUND: the test server does not know the column %s", c)
		}
	}
	var match []map[string]any
	for _, r := range rows {
		t := text(r["eventTime"])
		if text(r["eventSource"]) != src[1] || t < tm[1] || t >= tm[2] {
			continue
		}
		if part != nil {
			if d := strings.ReplaceAll(t[:min(10, len(t))], "-", "/"); d < part[1] || d > part[2] {
				continue
			}
		}
		match = append(match, r)
	}
	if !strings.Contains(q.sql, "GROUP BY") {
		for _, r := range match {
			row := make([]*string, len(q.cols))
			for i, c := range q.cols {
				row[i] = athenaCols[c](r)
			}
			q.rows = append(q.rows, row)
		}
		return nil
	}
	type group struct {
		vals        []*string
		ids         map[string]bool // count(DISTINCT eventid)
		first, last string
	}
	groups := map[string]*group{}
	var order []string
	for _, r := range match {
		var key strings.Builder
		vals := make([]*string, len(q.cols))
		for i, c := range q.cols {
			if measures[c] {
				continue
			}
			vals[i] = athenaCols[c](r)
			if vals[i] == nil {
				key.WriteString("\x00N")
			} else {
				key.WriteString("\x00S" + *vals[i])
			}
		}
		g := groups[key.String()]
		if g == nil {
			g = &group{vals: vals, ids: map[string]bool{}}
			groups[key.String()] = g
			order = append(order, key.String())
		}
		g.ids[text(r["eventID"])] = true
		t := text(r["eventTime"])
		if g.first == "" || t < g.first {
			g.first = t
		}
		if t > g.last {
			g.last = t
		}
	}
	for _, k := range order {
		g := groups[k]
		for i, c := range q.cols {
			switch c {
			case "events":
				s := strconv.Itoa(len(g.ids))
				g.vals[i] = &s
			case "first_time":
				g.vals[i] = &g.first
			case "last_time":
				g.vals[i] = &g.last
			}
		}
		q.rows = append(q.rows, g.vals)
	}
	return nil
}

var measures = map[string]bool{"events": true, "first_time": true, "last_time": true}

// text is a record value as Athena's table column shows it: strings as
// they are, other scalars in their JSON text, absent and null as NULL ("").
func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func col(v any) *string {
	if v == nil {
		return nil
	}
	s := text(v)
	return &s
}

// body is a body column: the table's SerDe keeps the object as JSON text.
func body(v any) *string {
	if v == nil {
		return nil
	}
	b, _ := json.Marshal(v)
	s := string(b)
	return &s
}

func path(r map[string]any, keys ...string) any {
	var v any = r
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func field(keys ...string) func(map[string]any) *string {
	return func(r map[string]any) *string { return col(path(r, keys...)) }
}

func firstOf(fs ...func(map[string]any) *string) func(map[string]any) *string {
	return func(r map[string]any) *string {
		for _, f := range fs {
			if v := f(r); v != nil {
				return v
			}
		}
		return nil
	}
}

// athenaCols are the columns the test server computes, by result name:
// the semantics of the SQL expressions Key Ceremony's queries give them.
var athenaCols = map[string]func(map[string]any) *string{
	"eventid": field("eventID"), "eventtime": field("eventTime"), "eventversion": field("eventVersion"),
	"eventsource": field("eventSource"), "eventname": field("eventName"), "eventtype": field("eventType"),
	"awsregion": field("awsRegion"), "recipientaccountid": field("recipientAccountId"), "sourceipaddress": field("sourceIPAddress"),
	"useragent": field("userAgent"), "errorcode": field("errorCode"), "errormessage": field("errorMessage"),
	"readonly": field("readOnly"), "requestid": field("requestID"), "apiversion": field("apiVersion"),
	"sharedeventid": field("sharedEventID"), "vpcendpointid": field("vpcEndpointId"),
	"ui_type": field("userIdentity", "type"), "ui_principalid": field("userIdentity", "principalId"), "ui_arn": field("userIdentity", "arn"),
	"ui_accountid": field("userIdentity", "accountId"), "ui_invokedby": field("userIdentity", "invokedBy"),
	"ui_accesskeyid": field("userIdentity", "accessKeyId"), "ui_username": field("userIdentity", "userName"),
	"ui_issuer_arn":       field("userIdentity", "sessionContext", "sessionIssuer", "arn"),
	"requestparameters":   func(r map[string]any) *string { return body(r["requestParameters"]) },
	"responseelements":    func(r map[string]any) *string { return body(r["responseElements"]) },
	"additionaleventdata": func(r map[string]any) *string { return body(r["additionalEventData"]) },
	"serviceeventdetails": func(r map[string]any) *string { return body(r["serviceEventDetails"]) },
	// json_format(CAST(transform(resources, r -> MAP(...)) AS JSON))
	"resources_json": func(r map[string]any) *string {
		list, ok := r["resources"].([]any)
		if !ok {
			return nil
		}
		out := []map[string]any{}
		for _, x := range list {
			m, _ := x.(map[string]any)
			out = append(out, map[string]any{"ARN": m["ARN"], "accountId": m["accountId"], "type": m["type"]})
		}
		b, _ := json.Marshal(out)
		s := string(b)
		return &s
	},
	"day": func(r map[string]any) *string {
		t := text(r["eventTime"])
		s := t[:min(10, len(t))]
		return &s
	},
	"account": firstOf(field("recipientAccountId"), field("userIdentity", "accountId")),
	"region":  field("awsRegion"),
	// coalesce(first key ARN of resources, requestparameters.keyId,
	// responseelements.keyMetadata.arn, serviceeventdetails.keyId)
	"key_ref": firstOf(func(r map[string]any) *string {
		list, _ := r["resources"].([]any)
		for _, x := range list {
			m, _ := x.(map[string]any)
			if arn, _ := m["ARN"].(string); strings.HasPrefix(arn, "arn:") && strings.Contains(arn, ":key/") {
				return &arn
			}
		}
		return nil
	}, field("requestParameters", "keyId"), field("responseElements", "keyMetadata", "arn"), field("serviceEventDetails", "keyId")),
	"principal": firstOf(field("userIdentity", "sessionContext", "sessionIssuer", "arn"), field("userIdentity", "arn")),
	"alias_ref": func(r map[string]any) *string {
		switch text(r["eventName"]) {
		case "CreateAlias", "UpdateAlias", "DeleteAlias":
			return field("requestParameters", "aliasName")(r)
		}
		return nil
	},
	"alias_target": func(r map[string]any) *string {
		switch text(r["eventName"]) {
		case "CreateAlias", "UpdateAlias":
			return field("requestParameters", "targetKeyId")(r)
		}
		return nil
	},
	// key2_ref: a ReEncrypt's destination, the second key ARN in resources
	// or the request's destinationKeyId.
	"key2_ref": func(r map[string]any) *string {
		if text(r["eventName"]) != "ReEncrypt" {
			return nil
		}
		list, _ := r["resources"].([]any)
		n := 0
		for _, x := range list {
			m, _ := x.(map[string]any)
			if arn, _ := m["ARN"].(string); strings.HasPrefix(arn, "arn:") && strings.Contains(arn, ":key/") {
				if n++; n == 2 {
					return &arn
				}
			}
		}
		return field("requestParameters", "destinationKeyId")(r)
	},
}
