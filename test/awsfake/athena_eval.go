package awsfake

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// The fake's query evaluation: it recognises the two queries audit/athena
// sends (records, aggregates), applies their period and WHERE to the loaded
// records, and renders each column as Athena's CloudTrail table does.

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
