package athena

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/keyceremony/keyceremony/audit/ingest"
	"github.com/keyceremony/keyceremony/audit/store"
)

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
