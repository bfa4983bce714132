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

// Cover is what a report puts on its cover beside its Meta: its own
// key/value lines (policy, business hours), the coverage gaps of its
// period and the conflicting records in its scope.
type Cover struct {
	Extra     [][2]string
	Gaps      []Gap
	Conflicts []Conflict
}

// MaxCoverGaps bounds the gaps listed on the cover; the coverage section
// lists them all.
const MaxCoverGaps = 12

// NewDoc starts a report PDF with its cover: scope, filters, generation,
// the database's provenance and the input digest, and what limits the
// evidence: an ingest running or interrupted, the coverage verdict with
// its gaps, files that failed to load, entries not read, conflicting
// records.
func NewDoc(m Meta, scope Scope, c Cover) (*pdfdoc.Doc, error) {
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
	kv = append(kv, c.Extra...)
	failed := fmt.Sprintf("%d failed to load", p.FailedFiles)
	if p.FailedFiles > 0 {
		failed += " (named with their SHA-256 and error in the appendix)"
	}
	kv = append(kv,
		[2]string{"Generated", FormatTime(m.GeneratedAt) + " by keyceremony " + m.Generator},
		[2]string{"Database", p.Database + " (schema v" + strconv.Itoa(p.SchemaVersion) + ")"},
		[2]string{"Events in the database", strconv.FormatInt(p.Events, 10) + " KMS events, first " + FormatTime(p.FirstEvent) + ", last " + FormatTime(p.LastEvent)},
		[2]string{"Ingested files", fmt.Sprintf("%d (%d inventory), %s; listed with their SHA-256 in the appendix", p.Files, p.InventoryFiles, failed)},
		[2]string{"Entries not read", p.SkippedSummary()},
		[2]string{"Ingest runs", p.Ingest.Statement},
		[2]string{"Coverage", m.Coverage.Statement},
		[2]string{"Conflicting records", conflictsLine(c.Conflicts)},
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
	if p.Ingest.State != IngestComplete {
		d.Warn(upperFirst(p.Ingest.Statement) + ".")
	}
	switch {
	case p.AggregateOnly():
		d.Warn("This report rests on aggregate-only data: the database holds counts of KMS events (per day, key, operation and principal, from Athena), not the events. There is no per-event evidence: no event ids, no records, no request details. The sections that would cite events say so.")
	case len(p.AggregateSources) > 0:
		d.Warn(fmt.Sprintf("Part of this report rests on aggregates: for %d account/region day(s) the database holds counts of KMS events (from Athena), not the events, and there is no per-event evidence for them. The sections that would cite events say so.", p.AggregateDays))
	}
	coverGaps(d, m.Coverage, c.Gaps)
	if len(c.Conflicts) > 0 {
		d.Warn(fmt.Sprintf("%d eventID(s) in scope have records that state different facts (listed as a finding): the report counts the record with the smaller fingerprint; the other is kept apart with its file and offset.", len(c.Conflicts)))
	}
	d.Note("The input SHA-256 covers, in a canonical encoding, every row the report's queries returned; re-running the report on the same database gives the same value. The same figures are exported as CSV and JSON from the same model, so the PDF and the exports cannot disagree.")
	return d, nil
}

func conflictsLine(cs []Conflict) string {
	if len(cs) == 0 {
		return "none in scope"
	}
	return fmt.Sprintf("%d eventID(s) with records that state different facts; listed as a finding", len(cs))
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// coverGaps states the coverage verdict on the cover with the first gaps.
func coverGaps(d *pdfdoc.Doc, v CoverageVerdict, gaps []Gap) {
	if len(gaps) == 0 {
		return
	}
	d.Warn("Coverage " + v.Statement + ". The report does not read that silence as 'no use' or 'no change'. Partial days: " + PartialRule + ".")
	d.Table(gapColumns, gapRows(gaps[:min(len(gaps), MaxCoverGaps)]), pdfdoc.TableOpts{FontSize: 7})
	if len(gaps) > MaxCoverGaps {
		d.Note(fmt.Sprintf("… and %d more span(s), listed in the section \"Coverage of the evidence\" and the JSON export.", len(gaps)-MaxCoverGaps))
	}
}

var gapColumns = []pdfdoc.Column{{Title: "Account", Width: 26, Mono: true}, {Title: "Region", Width: 24}, {Title: "From", Width: 20},
	{Title: "To (incl.)", Width: 20}, {Title: "Days", Width: 12, Align: "R"}, {Title: "Evidence missing because"}}

func gapRows(gaps []Gap) [][]string {
	var rows [][]string
	for _, g := range gaps {
		rows = append(rows, []string{g.Account, g.Region, g.From, g.To, strconv.Itoa(g.Days), g.What()})
	}
	return rows
}

// FilesAppendix lists the ingest runs, the ingested files with their
// SHA-256, the files that failed to load, the entries not read, and the
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
	d.Table([]pdfdoc.Column{{Title: "File", Mono: true}, {Title: "SHA-256", Width: pdfdoc.MonoWidth(64, 6.5), Mono: true}, {Title: "Format", Width: 20},
		{Title: "Records", Width: 14, Align: "R"}, {Title: "New KMS events", Width: 16, Align: "R"}}, rows, pdfdoc.TableOpts{FontSize: 6.5})
	failuresAppendix(d, p)
	skippedAppendix(d, p)
	runsAppendix(d, p)
}

func failuresAppendix(d *pdfdoc.Doc, p Provenance) {
	d.Heading(1, "Files that failed to load")
	if len(p.Failures) == 0 {
		d.Para("None.")
		return
	}
	d.Note("Each file or directory an ingest could not load, newest first, with the SHA-256 of its content when it could be read to its end. \"Loaded since\": a file with the same content or name was loaded later.")
	var rows [][]string
	for i, f := range p.Failures {
		if i == MaxFilesListed {
			d.Note(fmt.Sprintf("Only the first %d are listed here; the JSON export lists all %d.", MaxFilesListed, len(p.Failures)))
			break
		}
		sum := f.SHA256
		if sum == "" {
			sum = "(not read to its end)"
		}
		rows = append(rows, []string{f.Path, sum, f.Error, map[bool]string{true: "yes", false: "no"}[f.LoadedSince]})
	}
	d.Table([]pdfdoc.Column{{Title: "File", Mono: true}, {Title: "SHA-256", Width: pdfdoc.MonoWidth(64, 6.5), Mono: true}, {Title: "Error"},
		{Title: "Loaded since", Width: 14}}, rows, pdfdoc.TableOpts{FontSize: 6.5})
}

func skippedAppendix(d *pdfdoc.Doc, p Provenance) {
	d.Heading(1, "Entries not read, and warnings")
	if len(p.Skipped) == 0 {
		d.Para("None: every entry the ingest runs found was read.")
		return
	}
	d.Note("Every entry an ingest run found and did not read, with why, and every warning it gave: " + p.SkippedSummary() + ".")
	var rows [][]string
	for i, s := range p.Skipped {
		if i == MaxFilesListed {
			d.Note(fmt.Sprintf("Only the first %d are listed here; the JSON export lists all %d.", MaxFilesListed, len(p.Skipped)))
			break
		}
		what := s.Reason
		if s.Detail != "" {
			what += " (" + s.Detail + ")"
		}
		path := s.Path
		if s.Kind == "warning" {
			path, what = "warning", s.Reason
		}
		rows = append(rows, []string{strconv.FormatInt(s.Run, 10), path, what})
	}
	d.Table([]pdfdoc.Column{{Title: "Run", Width: 10, Align: "R"}, {Title: "Entry", Mono: true}, {Title: "Why"}}, rows, pdfdoc.TableOpts{FontSize: 6.5})
}

func runsAppendix(d *pdfdoc.Doc, p Provenance) {
	d.Heading(1, "Ingest runs")
	d.Note(upperFirst(p.Ingest.Statement) + ".")
	var rows [][]string
	for _, r := range p.Runs {
		end := FormatTime(r.FinishedAt)
		if end == "" {
			end = "last commit " + FormatTime(r.LastCommit)
		}
		rows = append(rows, []string{strconv.FormatInt(r.ID, 10), FormatTime(r.StartedAt), end, r.State,
			fmt.Sprintf("%d loaded, %d failed, %d skipped", r.FilesOK, r.FilesFailed, r.Skipped), r.Args})
	}
	d.Table([]pdfdoc.Column{{Title: "Run", Width: 10, Align: "R"}, {Title: "Started", Width: 26}, {Title: "Finished", Width: 26},
		{Title: "State", Width: 18}, {Title: "Files", Width: 30}, {Title: "Arguments", Mono: true}}, rows, pdfdoc.TableOpts{FontSize: 6.5})
}

// CoverageSection states the coverage gaps.
func CoverageSection(d *pdfdoc.Doc, gaps []Gap, pairs int) {
	d.Heading(0, "Coverage of the evidence")
	if len(gaps) == 0 {
		d.Para(fmt.Sprintf("Every day of the period has KMS events for all %d account/region pair(s) in scope, and none is partial (%s).", pairs, PartialRule))
		return
	}
	n := 0
	for _, g := range gaps {
		n += g.Days
	}
	d.Warn(fmt.Sprintf("KMS evidence is missing or partial for %d account/region day(s) of the period. What happened then is unknown: the report does not read silence as 'no use' or 'no change'. Partial days: %s.", n, PartialRule))
	d.Table(gapColumns, gapRows(gaps), pdfdoc.TableOpts{})
}

// ConflictsSection lists the conflicting records in scope, a finding of
// every report.
func ConflictsSection(d *pdfdoc.Doc, cs []Conflict) {
	d.Heading(1, "Conflicting records")
	if len(cs) == 0 {
		d.Para("No eventID in scope has records that state different facts.")
		return
	}
	d.Warn(fmt.Sprintf("%d eventID(s) have two records that state different facts. An event happens once: one of the deliveries is wrong. "+
		"The report counts the record with the smaller fingerprint (SHA-256 of what it states), whatever the order the files were loaded in; "+
		"the other is kept apart, with the file and byte offset it came from, for the reviewer to examine.", len(cs)))
	where := func(r ConflictRecord) string {
		at := "offset not recorded"
		if r.Offset >= 0 {
			at = "offset " + strconv.FormatInt(r.Offset, 10)
		}
		return r.File + " (" + at + ")"
	}
	side := func(r ConflictRecord) string {
		return Join(" ", r.Name, orDash(r.Error), FormatTime(r.Time)) + "\n" + where(r)
	}
	var rows [][]string
	for _, c := range cs {
		id := c.EventID
		if !c.Settled {
			id += " (not compared yet: the ingest was interrupted)"
		}
		rows = append(rows, []string{id, side(c.Kept), side(c.Other), c.Differs()})
	}
	d.Table([]pdfdoc.Column{{Title: "Event id", Width: pdfdoc.MonoWidth(36, 6.5), Mono: true}, {Title: "Counted (event, error, time; file)", Mono: true},
		{Title: "Kept apart (event, error, time; file)", Mono: true}, {Title: "How they differ", Width: 34}}, rows, pdfdoc.TableOpts{FontSize: 6.5})
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
