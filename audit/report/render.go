package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/keyceremony/keyceremony/audit/report/pdfdoc"
)

// WriteJSON writes v as JSON (the machine-readable export), laid out for
// people too: the top-level members and the elements of their arrays and
// objects each on a line of their own, anything deeper compact. A report
// holds tens of thousands of rows (one per administrative event, key or
// evidence event): one line per row keeps the file readable and
// diffable, and is a fraction of the size and of the time of indenting
// every field (encoding/json's indentation took 0.6 s of a 3 s report).
//
// A struct (the reports' models) is written member by member and the
// elements of its slice members one by one, each encoded on its own: the
// whole export (tens of MB at a million events) is never held as one
// buffer, whose growth and the garbage collection it forced were a fifth
// of a usage report's time. Anything else is encoded whole. The bytes are
// the same either way (TestWriteJSONStreamsTheSameBytes).
func WriteJSON(w io.Writer, v any) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var err error
	if rv := reflect.Indirect(reflect.ValueOf(v)); rv.Kind() == reflect.Struct && streamable(rv.Type()) {
		err = streamJSON(bw, rv)
	} else {
		err = layoutWhole(bw, v)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// jsonMaxDepth: members and the elements of top-level arrays and objects
// are on lines of their own, anything deeper compact.
const jsonMaxDepth = 2

func layoutWhole(bw *bufio.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	layoutJSON(bw, buf.Bytes(), 0, jsonMaxDepth)
	return nil
}

// streamable: every field is exported, named plainly and without options,
// so member names and order are simply the fields' (as encoding/json
// would write them) and nothing is omitted.
func streamable(t reflect.Type) bool {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if !f.IsExported() || f.Anonymous || strings.Contains(tag, ",") || tag == "-" {
			return false
		}
	}
	return true
}

// addr is v as encoding/json sees a field or element it reaches: by
// address when it has one, so that methods on the pointer (MarshalJSON,
// MarshalText) are used as they would be.
func addr(v reflect.Value) any {
	if v.CanAddr() {
		return v.Addr().Interface()
	}
	return v.Interface()
}

func streamJSON(bw *bufio.Writer, rv reflect.Value) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// encode leaves v's compact JSON in buf, without the newline.
	encode := func(v any) error {
		buf.Reset()
		if err := enc.Encode(v); err != nil {
			return err
		}
		buf.Truncate(buf.Len() - 1)
		return nil
	}
	t := rv.Type()
	if t.NumField() == 0 {
		bw.WriteString("{}\n")
		return nil
	}
	bw.WriteString("{")
	for i := 0; i < t.NumField(); i++ {
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString("\n  ")
		name := t.Field(i).Tag.Get("json")
		if name == "" {
			name = t.Field(i).Name
		}
		if err := encode(name); err != nil {
			return err
		}
		bw.Write(buf.Bytes())
		bw.WriteString(": ")
		fv := rv.Field(i)
		if fv.Kind() == reflect.Slice && !fv.IsNil() && fv.Len() > 0 && fv.Type().Elem().Kind() != reflect.Uint8 {
			// One element per line at depth 2: deeper than the layout
			// breaks, so each is written as encoding/json writes it.
			bw.WriteString("[")
			for j := 0; j < fv.Len(); j++ {
				if j > 0 {
					bw.WriteByte(',')
				}
				bw.WriteString("\n    ")
				if err := encode(addr(fv.Index(j))); err != nil {
					return err
				}
				bw.Write(buf.Bytes())
			}
			bw.WriteString("\n  ]")
			continue
		}
		if err := encode(addr(fv)); err != nil {
			return err
		}
		layoutJSON(bw, buf.Bytes(), 1, jsonMaxDepth)
	}
	bw.WriteString("\n}\n")
	return nil
}

// layoutJSON writes compact JSON (as encoding/json writes it) to out,
// broken into lines down to nesting depth maxDepth and indented by two
// spaces per level; in starts at nesting depth depth. Errors stay in out
// (a bufio.Writer) for its Flush.
func layoutJSON(out *bufio.Writer, in []byte, depth, maxDepth int) {
	nl := func(d int) {
		out.WriteByte('\n')
		for i := 0; i < d; i++ {
			out.WriteString("  ")
		}
	}
	for i := 0; i < len(in); i++ {
		c := in[i]
		switch c {
		case '"':
			// Copy the string whole: structure characters inside do not count.
			j := i + 1
			for j < len(in) && in[j] != '"' {
				if in[j] == '\\' {
					j++
				}
				j++
			}
			out.Write(in[i:min(j+1, len(in))])
			i = j
		case '{', '[':
			out.WriteByte(c)
			depth++
			if i+1 < len(in) && (in[i+1] == '}' || in[i+1] == ']') {
				continue // empty: stays {} or []
			}
			if depth <= maxDepth {
				nl(depth)
			}
		case '}', ']':
			if depth <= maxDepth && in[i-1] != '{' && in[i-1] != '[' {
				nl(depth - 1)
			}
			depth--
			out.WriteByte(c)
		case ',':
			out.WriteByte(c)
			if depth <= maxDepth {
				nl(depth)
			}
		case ':':
			out.WriteByte(c)
			if depth <= maxDepth {
				out.WriteByte(' ')
			}
		default:
			out.WriteByte(c)
		}
	}
}

// MaxFilesListed bounds the ingested-file appendix of a PDF; the JSON
// export always lists every file.
const MaxFilesListed = 2000

// NewDoc starts a report PDF with its cover: scope, filters, generation,
// the database's provenance and the input digest.
func NewDoc(m Meta, scope Scope, extra [][2]string) (*pdfdoc.Doc, error) {
	d, err := pdfdoc.New(pdfdoc.Info{
		Title:     m.Title,
		Scope:     scope.String(),
		Footer:    "input SHA-256 " + m.InputSHA256[:min(16, len(m.InputSHA256))] + "… · generated " + FormatTime(m.GeneratedAt),
		Generated: m.GeneratedAt,
		Author:    "keyceremony " + m.Generator,
	})
	if err != nil {
		return nil, err
	}
	d.Cover(m.Title, scope.String())
	filters := func(v string) string {
		if v == "" {
			return "all"
		}
		return v
	}
	p := m.Provenance
	kv := [][2]string{
		{"Period", FormatPeriod(scope.From, scope.To)},
		{"Account filter", filters(scope.Account)},
		{"Region filter", filters(scope.Region)},
		{"Key filter", filters(scope.KeyARN)},
	}
	kv = append(kv, extra...)
	kv = append(kv,
		[2]string{"Generated", FormatTime(m.GeneratedAt) + " by keyceremony " + m.Generator},
		[2]string{"Database", p.Database + " (schema v" + strconv.Itoa(p.SchemaVersion) + ")"},
		[2]string{"Events in the database", strconv.FormatInt(p.Events, 10) + " KMS events, first " + FormatTime(p.FirstEvent) + ", last " + FormatTime(p.LastEvent)},
		[2]string{"Ingested files", fmt.Sprintf("%d (%d inventory), %d failed to load; listed with their SHA-256 in the appendix", p.Files, p.InventoryFiles, p.FailedFiles)},
		[2]string{"SHA-256 of the file set", p.FilesSHA256},
	)
	if len(p.AggregateSources) > 0 {
		kv = append(kv, [2]string{"Aggregates (no per-event evidence)", fmt.Sprintf("%d KMS events counted per day, key, operation and principal by %d Athena query(ies) over %d account/region day(s); listed in the appendix",
			p.AggregatedEvents, len(p.AggregateSources), p.AggregateDays)})
	}
	kv = append(kv,
		[2]string{"SHA-256 of the report's input", m.InputSHA256 + " (" + strconv.FormatInt(m.InputRows, 10) + " query result rows)"},
	)
	d.KV(kv)
	switch {
	case p.AggregateOnly():
		d.Warn("This report rests on aggregate-only data: the database holds counts of KMS events (per day, key, operation and principal, from Athena), not the events. There is no per-event evidence: no event ids, no records, no request details. The sections that would cite events say so.")
	case len(p.AggregateSources) > 0:
		d.Warn(fmt.Sprintf("Part of this report rests on aggregates: for %d account/region day(s) the database holds counts of KMS events (from Athena), not the events, and there is no per-event evidence for them. The sections that would cite events say so.", p.AggregateDays))
	}
	d.Note("The input SHA-256 covers, in a canonical encoding, every row the report's queries returned; re-running the report on the same database gives the same value. The same figures are exported as CSV and JSON from the same model, so the PDF and the exports cannot disagree.")
	return d, nil
}

// FilesAppendix lists the ingested files with their SHA-256, and the
// queries that left aggregates.
func FilesAppendix(d *pdfdoc.Doc, p Provenance) {
	if len(p.AggregateSources) > 0 {
		d.NewPage()
		d.Heading(0, "Appendix: aggregate sources")
		d.Note("Queries that counted KMS events elsewhere (Athena over the trail). Their result SHA-256 covers every value of every result row, in order, each length-prefixed; the query text is in the JSON export.")
		var rows [][]string
		for _, a := range p.AggregateSources {
			rows = append(rows, []string{a.QueryID, a.Table, a.From.Format("2006-01-02") + " to " + a.To.AddDate(0, 0, -1).Format("2006-01-02"),
				strconv.FormatInt(a.Events, 10), strconv.FormatInt(a.Rows, 10), a.ResultSHA256})
		}
		d.Table([]pdfdoc.Column{{Title: "Athena query", Width: 36, Mono: true}, {Title: "Table", Mono: true}, {Title: "Days", Width: 24},
			{Title: "Events", Width: 14, Align: "R"}, {Title: "Groups", Width: 12, Align: "R"}, {Title: "Result SHA-256", Width: 44, Mono: true}}, rows, pdfdoc.TableOpts{FontSize: 6.5})
	}
	d.NewPage()
	d.Heading(0, "Appendix: ingested files")
	d.Note(fmt.Sprintf("%d file(s); SHA-256 of the sorted list of their SHA-256s: %s.", p.Files, p.FilesSHA256))
	var rows [][]string
	for i, f := range p.FileList {
		if i == MaxFilesListed {
			d.Note(fmt.Sprintf("Only the first %d files are listed here; the JSON export lists all %d.", MaxFilesListed, len(p.FileList)))
			break
		}
		rows = append(rows, []string{f.Path, f.SHA256, f.Format, strconv.Itoa(f.Records), strconv.Itoa(f.KMSNew)})
	}
	d.Table([]pdfdoc.Column{{Title: "File", Mono: true}, {Title: "SHA-256", Width: 52, Mono: true}, {Title: "Format", Width: 20},
		{Title: "Records", Width: 14, Align: "R"}, {Title: "New KMS events", Width: 16, Align: "R"}}, rows, pdfdoc.TableOpts{FontSize: 6.5})
}

// CoverageSection states the coverage gaps.
func CoverageSection(d *pdfdoc.Doc, gaps []Gap, pairs int) {
	d.Heading(0, "Coverage of the evidence")
	if len(gaps) == 0 {
		d.Para(fmt.Sprintf("Every day of the period has KMS events for all %d account/region pair(s) in scope.", pairs))
		return
	}
	n := 0
	for _, g := range gaps {
		n += g.Days
	}
	d.Warn(fmt.Sprintf("KMS evidence is missing for %d account/region day(s) of the period. What happened then is unknown: the report does not read silence as 'no use' or 'no change'.", n))
	var rows [][]string
	for _, g := range gaps {
		rows = append(rows, []string{g.Account, g.Region, g.From, g.To, strconv.Itoa(g.Days), g.What()})
	}
	d.Table([]pdfdoc.Column{{Title: "Account", Width: 26, Mono: true}, {Title: "Region", Width: 24}, {Title: "From", Width: 20},
		{Title: "To (incl.)", Width: 20}, {Title: "Days", Width: 12, Align: "R"}, {Title: "Evidence missing because"}}, rows, pdfdoc.TableOpts{})
}

// StatusColor colours status words in tables.
func StatusColor(v string) (r, g, b int, ok bool) {
	switch {
	case strings.HasPrefix(v, "non-compliant"):
		return 170, 20, 20, true
	case strings.HasPrefix(v, "compliant"):
		return 20, 120, 40, true
	case strings.HasPrefix(v, "unknown"):
		return 150, 100, 0, true
	case strings.HasPrefix(v, "not-eligible"):
		return 40, 70, 150, true
	}
	return 0, 0, 0, false
}

// Join joins non-empty strings.
func Join(sep string, v ...string) string {
	var out []string
	for _, s := range v {
		if s != "" {
			out = append(out, s)
		}
	}
	return strings.Join(out, sep)
}
