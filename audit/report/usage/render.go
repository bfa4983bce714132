package usage

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/report/pdfdoc"
)

// MaxAdminRows bounds the administrative-event table of the PDF (the CSV
// and JSON list every event).
const MaxAdminRows = 1000

// MaxKeySections bounds the per-key sections of the PDF, most used first.
const MaxKeySections = 100

func (r *Report) scope() report.Scope {
	s := r.Meta.Scope
	return report.Scope{From: s.From, To: s.To, Account: s.Account, Region: s.Region, KeyARN: s.Key}
}

func n(v int64) string { return strconv.FormatInt(v, 10) }

func keyLabel(arn string, aliases []string) string {
	if len(aliases) > 0 {
		return strings.Join(aliases, ", ") + "\n" + arn
	}
	return arn
}

func counts(d *pdfdoc.Doc, title string, c []Count, top int, failedCol bool) {
	if len(c) == 0 {
		return
	}
	var rows [][]string
	for i, x := range c {
		if i == top {
			rows = append(rows, []string{fmt.Sprintf("… %d more (see the CSV/JSON export)", len(c)-top), "", ""})
			break
		}
		rows = append(rows, []string{x.Name, n(x.Calls), n(x.Failed)})
	}
	cols := []pdfdoc.Column{{Title: title, Mono: strings.Contains(title, "rincipal")}, {Title: "Events", Width: 20, Align: "R"}, {Title: "Failed", Width: 18, Align: "R"}}
	if !failedCol {
		cols = cols[:2]
		for i := range rows {
			rows[i] = rows[i][:2]
		}
	}
	d.Table(cols, rows, pdfdoc.TableOpts{})
}

func labels(days []string) []string {
	out := make([]string, len(days))
	for i, d := range days {
		out[i] = d[5:] // MM-DD
	}
	return out
}

func series(dc []DayCount) (calls, failed []int64) {
	for _, d := range dc {
		calls = append(calls, d.Calls)
		failed = append(failed, d.Failed)
	}
	return
}

// WritePDF renders the report as a PDF.
func (r *Report) WritePDF(w io.Writer) error {
	sc := r.scope()
	d, err := report.NewDoc(r.Meta, sc, [][2]string{{"Business hours", r.BusinessHours.String()}, {"Top-N tables", strconv.Itoa(r.TopN) + " rows"}})
	if err != nil {
		return err
	}
	for _, note := range r.Notes {
		d.Warn(note)
	}
	r.pdfSummary(d, sc)
	r.pdfAdminEvents(d)
	r.pdfFindings(d)
	r.pdfKeys(d)
	r.pdfEvidence(d)
	report.FilesAppendix(d, r.Meta.Provenance)
	return d.Output(w)
}

// pdfSummary: the totals, the daily chart, the top keys and principals,
// failures by error code, calls by invoking service, coverage.
func (r *Report) pdfSummary(d *pdfdoc.Doc, sc report.Scope) {
	t := r.Totals
	d.NewPage()
	d.Heading(0, "Summary")
	d.KV([][2]string{
		{"KMS events in scope", n(t.Events)},
		{"Cryptographic calls", n(t.CryptoCalls)},
		{"Failed calls", n(t.Failed)},
		{"Cryptographic calls outside business hours", n(t.OffHours) + " (" + r.BusinessHours.String() + ")"},
		{"Calls by a principal of another account", n(t.CrossAccount)},
		{"Keys in scope / used", fmt.Sprintf("%d / %d (%d without a successful cryptographic call)", t.KeysInScope, t.KeysUsed, len(r.Unused))},
		{"Principals seen / new in the period", fmt.Sprintf("%d / %d", t.Principals, t.NewPrincipals)},
		{"Administrative events", strconv.Itoa(t.AdminEvents) + " (" + strings.Join(AdminNames, ", ") + ")"},
	})
	if t.AggregatedEvents > 0 {
		d.KV([][2]string{{"Of the events, counted from aggregates", fmt.Sprintf("%d: no event id, no time of day (not in the off-hours figure); see the cover", t.AggregatedEvents)}})
	}
	calls, failed := series(r.Daily)
	d.BarChart(pdfdoc.Chart{Title: "All keys: cryptographic calls per day", Labels: labels(r.Days), Values: calls, Overlay: failed,
		OverlayLabel: "failed", ValuesLabel: "cryptographic calls per UTC day"})
	d.Heading(1, "Top keys")
	var rows [][]string
	for i, k := range r.Keys {
		if i == r.TopN {
			break
		}
		rows = append(rows, []string{keyLabel(k.ARN, k.Aliases), n(k.Events), n(k.CryptoCalls), n(k.Failed), n(k.OffHours)})
	}
	d.Table([]pdfdoc.Column{{Title: "Key", Mono: true}, {Title: "Events", Width: 18, Align: "R"}, {Title: "Crypto calls", Width: 20, Align: "R"},
		{Title: "Failed", Width: 16, Align: "R"}, {Title: "Off hours", Width: 16, Align: "R"}}, rows, pdfdoc.TableOpts{})
	d.Heading(1, "Top principals")
	rows = nil
	for i, p := range r.Principals {
		if i == r.TopN {
			break
		}
		nw := ""
		if p.New {
			nw = "new"
		}
		rows = append(rows, []string{p.Identity, p.Type, n(p.Calls), n(p.Failed), n(p.OffHours), strconv.Itoa(p.Keys), nw})
	}
	d.Table([]pdfdoc.Column{{Title: "Principal (sessions folded into their role)", Mono: true}, {Title: "Type", Width: 22}, {Title: "Events", Width: 16, Align: "R"},
		{Title: "Failed", Width: 14, Align: "R"}, {Title: "Off hours", Width: 14, Align: "R"}, {Title: "Keys", Width: 10, Align: "R"}, {Title: "", Width: 9}}, rows, pdfdoc.TableOpts{})
	var errs, svcs []Count
	errIx, svcIx := map[string]int{}, map[string]int{}
	for _, u := range append([]Usage{r.NoKey}, usages(r.Keys)...) {
		for _, e := range u.Errors {
			if i, ok := errIx[e.Name]; ok {
				errs[i].Calls += e.Calls
				errs[i].Failed += e.Failed
			} else {
				errIx[e.Name] = len(errs)
				errs = append(errs, e)
			}
		}
		for _, s := range u.Services {
			if i, ok := svcIx[s.Name]; ok {
				svcs[i].Calls += s.Calls
				svcs[i].Failed += s.Failed
			} else {
				svcIx[s.Name] = len(svcs)
				svcs = append(svcs, s)
			}
		}
	}
	d.Heading(1, "Failures by error code")
	if len(errs) == 0 {
		d.Para("No failed call.")
	}
	counts(d, "Error code", sortCounts(errs), 50, false)
	d.Heading(1, "Calls by invoking AWS service")
	if len(svcs) == 0 {
		d.Para("No call made through an AWS service.")
	}
	counts(d, "Service (userIdentity.invokedBy)", sortCounts(svcs), 50, true)
	report.CoverageSection(d, r.Coverage, len(pairs(r)))

}

// pdfAdminEvents: the administrative events, with who and when.
func (r *Report) pdfAdminEvents(d *pdfdoc.Doc) {
	d.NewPage()
	d.Heading(0, "Administrative events")
	d.Note("The calls auditors alarm on: " + strings.Join(AdminNames, ", ") + ", with who made them and when.")
	aggAdmin := 0
	for _, a := range r.Admin {
		if a.FromAggregates {
			aggAdmin++
		}
	}
	if aggAdmin > 0 {
		d.Warn(fmt.Sprintf("%d row(s) below come from aggregates: a count of events on a day, by one principal on one key, with no event id (the time is the first of them). The records themselves are not in the database.", aggAdmin))
	}
	var rows [][]string
	for i, a := range r.Admin {
		if i == MaxAdminRows {
			d.Note(fmt.Sprintf("The first %d of %d administrative events are listed; the CSV and JSON exports list all of them.", MaxAdminRows, len(r.Admin)))
			break
		}
		name := a.Name
		if a.Error != "" {
			name += " (failed: " + a.Error + ")"
		}
		id := a.EventID
		if a.FromAggregates {
			name = fmt.Sprintf("%d × %s", a.Count, name)
			id = "aggregate: no event id"
		}
		rows = append(rows, []string{report.FormatTime(a.Time), name, a.KeyARN, a.Principal, id})
	}
	if len(rows) == 0 {
		d.Para("None in the period.")
	} else {
		d.Table([]pdfdoc.Column{{Title: "Time (UTC)", Width: 18}, {Title: "Event", Width: 24}, {Title: "Key", Width: 40, Mono: true},
			{Title: "Principal", Mono: true}, {Title: "Event id", Width: pdfdoc.MonoWidth(36, 6.8), Mono: true}}, rows, pdfdoc.TableOpts{FontSize: 6.8})
	}
}

// pdfFindings: new principals, cross-account use, the inventory's last use
// against CloudTrail, keys with no use.
func (r *Report) pdfFindings(d *pdfdoc.Doc) {
	d.Heading(0, "Principals new in the period")
	d.Note("First seen in the database's logs inside the period (the logs begin " + report.FormatTime(r.Meta.Provenance.FirstEvent) + "; a principal is new only relative to that).")
	var rows [][]string
	for _, p := range r.Principals {
		if p.New {
			rows = append(rows, []string{p.Identity, p.Type, report.FormatTime(p.FirstSeen), n(p.Calls), strconv.Itoa(p.Keys), p.FirstEventID})
		}
	}
	if len(rows) == 0 {
		d.Para("None.")
	} else {
		d.Table([]pdfdoc.Column{{Title: "Principal", Mono: true}, {Title: "Type", Width: 18}, {Title: "First seen", Width: 20}, {Title: "Events", Width: 12, Align: "R"},
			{Title: "Keys", Width: 9, Align: "R"}, {Title: "First event id", Width: pdfdoc.MonoWidth(36, 7), Mono: true}}, rows, pdfdoc.TableOpts{FontSize: 7})
	}
	d.Heading(0, "Cross-account use")
	rows = nil
	for _, k := range r.Keys {
		for _, c := range k.CrossAccount {
			rows = append(rows, []string{keyLabel(k.ARN, k.Aliases), k.Account, c.Name, n(c.Calls), n(c.Failed)})
		}
	}
	if len(rows) == 0 {
		d.Para("No key was called by a principal of another account.")
	} else {
		d.Table([]pdfdoc.Column{{Title: "Key", Mono: true}, {Title: "Key account", Width: 26}, {Title: "Caller account", Width: 26},
			{Title: "Events", Width: 16, Align: "R"}, {Title: "Failed", Width: 14, Align: "R"}}, rows, pdfdoc.TableOpts{})
	}
	d.Heading(0, "Inventory last use against CloudTrail")
	rows = nil
	for _, c := range r.LastUse {
		agree := "agree"
		if !c.Agree {
			agree = "DISAGREE"
		}
		rows = append(rows, []string{c.KeyARN, report.FormatTime(c.InventoryAsOf), report.Join(" ", report.FormatTime(c.InventoryLastUse), c.InventoryOp),
			report.Join(" ", report.FormatTime(c.CloudTrailLast), c.CloudTrailOp), agree + ": " + c.Note})
	}
	if len(rows) == 0 {
		d.Para("No inventory in scope carries GetKeyLastUsage results.")
	} else {
		d.Table([]pdfdoc.Column{{Title: "Key", Width: 44, Mono: true}, {Title: "Inventory as of", Width: 24}, {Title: "Inventory last use", Width: 30},
			{Title: "CloudTrail last use (to the inventory time)", Width: 34}, {Title: "Result"}}, rows, pdfdoc.TableOpts{FontSize: 7})
	}
	d.Heading(0, "Keys with no use in the period")
	d.Note("Candidates for review: no successful cryptographic call in the period. Where KMS evidence is missing for part of the period, 'no use' is not established.")
	rows = nil
	for _, u := range r.Unused {
		rows = append(rows, []string{keyLabel(u.ARN, u.Aliases), n(u.Events), report.FormatTime(u.LastUse), u.Caveat})
	}
	if len(rows) == 0 {
		d.Para("Every key in scope was used.")
	} else {
		d.Table([]pdfdoc.Column{{Title: "Key", Mono: true}, {Title: "Other events", Width: 16, Align: "R"}, {Title: "Last use before the period", Width: 28},
			{Title: "Coverage caveat", Width: 56}}, rows, pdfdoc.TableOpts{FontSize: 7})
	}

}

// pdfKeys: one section per key with cryptographic calls, most used first
// (the others are in the table of keys with no use), and the events
// naming no key.
func (r *Report) pdfKeys(d *pdfdoc.Doc) {
	shown := 0
	for i := range r.Keys {
		if r.Keys[i].CryptoCalls == 0 {
			continue
		}
		if shown == MaxKeySections {
			d.NewPage()
			d.Para(fmt.Sprintf("More keys had cryptographic calls in the period than the %d detailed here; their figures are in the CSV and JSON exports.", MaxKeySections))
			break
		}
		r.keySection(d, &r.Keys[i])
		shown++
	}
	if r.NoKey.Events > 0 {
		d.NewPage()
		d.Heading(0, "Events naming no key")
		d.Para(fmt.Sprintf("%d events name no key (ListKeys, ListAliases, GenerateRandom, calls through an alias that could not be resolved).", r.NoKey.Events))
		counts(d, "Operation", r.NoKey.Operations, 50, true)
	}

}

// pdfEvidence: the appendix of evidence events.
func (r *Report) pdfEvidence(d *pdfdoc.Doc) {
	d.NewPage()
	d.Heading(0, "Appendix: evidence events")
	d.Note("The CloudTrail events behind the findings above (administrative events carry their ids in their own table). Find an original record with: keyceremony audit raw --db DB EVENT-ID.")
	if r.Totals.AggregatedEvents > 0 {
		d.Warn(fmt.Sprintf("%d events were counted from aggregates: they have no event id, so findings that rest on them (uses, new principals, cross-account calls) cite no event here.", r.Totals.AggregatedEvents))
	}
	var rows [][]string
	for i, e := range r.Evidence {
		if i == 3*MaxAdminRows {
			d.Note(fmt.Sprintf("The first %d of %d evidence events are listed; the JSON export lists all.", i, len(r.Evidence)))
			break
		}
		rows = append(rows, []string{e.EventID, report.FormatTime(e.Time), e.Name, e.KeyARN, e.Principal, e.Finding})
	}
	d.Table([]pdfdoc.Column{{Title: "Event id", Width: pdfdoc.MonoWidth(36, 6.3), Mono: true}, {Title: "Time (UTC)", Width: 17}, {Title: "Event", Width: 20},
		{Title: "Key", Width: 36, Mono: true}, {Title: "Principal", Mono: true}, {Title: "Finding", Width: 24}}, rows, pdfdoc.TableOpts{FontSize: 6.3})
}

func usages(keys []Key) []Usage {
	out := make([]Usage, len(keys))
	for i, k := range keys {
		out[i] = k.Usage
	}
	return out
}

func pairs(r *Report) map[string]bool {
	m := map[string]bool{}
	for _, k := range r.Keys {
		m[k.Account+"/"+k.Region] = true
	}
	for _, u := range r.Unused {
		m[u.Account+"/"+u.Region] = true
	}
	return m
}

func (r *Report) keySection(d *pdfdoc.Doc, k *Key) {
	d.NewPage()
	title := k.ARN
	if len(k.Aliases) > 0 {
		title = strings.Join(k.Aliases, ", ")
	}
	d.Heading(0, "Key "+title)
	kv := [][2]string{{"Key ARN", k.ARN}, {"Account / region", k.Account + " / " + k.Region},
		{"Events / cryptographic calls / failed / off hours", fmt.Sprintf("%d / %d / %d / %d", k.Events, k.CryptoCalls, k.Failed, k.OffHours)},
		{"First / last successful use", report.Join(" / ", report.FormatTime(k.FirstUse), report.FormatTime(k.LastUse))}}
	if len(k.CrossAccount) > 0 {
		var s []string
		for _, c := range k.CrossAccount {
			s = append(s, fmt.Sprintf("%s: %d", c.Name, c.Calls))
		}
		kv = append(kv, [2]string{"Cross-account callers", strings.Join(s, ", ")})
	}
	if len(k.NewPrincipals) > 0 {
		kv = append(kv, [2]string{"Principals new in the period", strings.Join(k.NewPrincipals, "\n")})
	}
	for _, g := range k.Gaps {
		kv = append(kv, [2]string{"Coverage gap", g.Describe()})
	}
	if k.Aggregated > 0 {
		kv = append(kv, [2]string{"Counted from aggregates", fmt.Sprintf("%d of the %d events (no event id, no time of day)", k.Aggregated, k.Events)})
	}
	d.KV(kv)
	calls, failed := series(k.Daily)
	d.BarChart(pdfdoc.Chart{Title: "Cryptographic calls per day", Labels: labels(r.Days), Values: calls, Overlay: failed, OverlayLabel: "failed", Height: 40})
	counts(d, "Operation", k.Operations, 40, true)
	counts(d, "Principal", k.Principals, r.TopN, true)
	counts(d, "Invoking service", k.Services, r.TopN, true)
	counts(d, "Caller account", k.Accounts, r.TopN, true)
	if len(k.Errors) > 0 {
		counts(d, "Error code", k.Errors, 40, false)
	}
}

// CSVHeader is the header of the CSV export: one row per figure, so one
// file holds every table of the report.
var CSVHeader = []string{"section", "key_arn", "name", "calls", "failed", "time", "principal", "event_id"}

// WriteCSV writes every figure of the report, one per row:
//
//	total           name=events|crypto_calls|failed|off_hours|cross_account|keys_used|keys_in_scope|principals|new_principals|admin_events|aggregated_events
//	day             all keys, name=YYYY-MM-DD, calls and failed cryptographic calls
//	key             per key: name=events|crypto_calls|failed|off_hours
//	key_day         per key and day
//	operation       per key ("" for events naming no key) and operation
//	principal       per key and principal
//	service         per key and invoking service
//	caller_account  per key and caller account
//	cross_account   per key and foreign caller account
//	error           per key and error code
//	principal_total per principal (time = first seen)
//	new_principal   per new principal (time = first seen, event_id = first event)
//	unused_key      per key without a successful cryptographic call (time = last use before the period)
//	admin_event     per administrative event (from aggregates: per group, calls = its count, name ends " (aggregate)", no event_id)
//	last_use_check  per key with a GetKeyLastUsage result (name=agree|disagree, time = CloudTrail last use)
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write(CSVHeader)
	row := func(section, key, name string, calls, failed int64, t, principal, eventID string) {
		cw.Write([]string{section, key, name, n(calls), n(failed), t, principal, eventID})
	}
	t := r.Totals
	for _, x := range []struct {
		name string
		v    int64
	}{{"events", t.Events}, {"crypto_calls", t.CryptoCalls}, {"failed", t.Failed}, {"off_hours", t.OffHours},
		{"cross_account", t.CrossAccount}, {"keys_used", int64(t.KeysUsed)}, {"keys_in_scope", int64(t.KeysInScope)},
		{"principals", int64(t.Principals)}, {"new_principals", int64(t.NewPrincipals)}, {"admin_events", int64(t.AdminEvents)},
		{"aggregated_events", t.AggregatedEvents}} {
		row("total", "", x.name, x.v, 0, "", "", "")
	}
	for _, dc := range r.Daily {
		row("day", "", dc.Day, dc.Calls, dc.Failed, "", "", "")
	}
	usage := func(key string, u Usage) {
		for _, c := range u.Operations {
			row("operation", key, c.Name, c.Calls, c.Failed, "", "", "")
		}
		for _, c := range u.Principals {
			row("principal", key, c.Name, c.Calls, c.Failed, "", "", "")
		}
		for _, c := range u.Services {
			row("service", key, c.Name, c.Calls, c.Failed, "", "", "")
		}
		for _, c := range u.Accounts {
			row("caller_account", key, c.Name, c.Calls, c.Failed, "", "", "")
		}
		for _, c := range u.Errors {
			row("error", key, c.Name, c.Calls, c.Failed, "", "", "")
		}
	}
	for _, k := range r.Keys {
		row("key", k.ARN, "events", k.Events, k.Failed, "", "", "")
		row("key", k.ARN, "crypto_calls", k.CryptoCalls, 0, "", "", "")
		row("key", k.ARN, "off_hours", k.OffHours, 0, "", "", "")
		for _, dc := range k.Daily {
			row("key_day", k.ARN, dc.Day, dc.Calls, dc.Failed, "", "", "")
		}
		usage(k.ARN, k.Usage)
		for _, c := range k.CrossAccount {
			row("cross_account", k.ARN, c.Name, c.Calls, c.Failed, "", "", "")
		}
	}
	usage("", r.NoKey)
	for _, p := range r.Principals {
		row("principal_total", "", p.Identity, p.Calls, p.Failed, report.FormatTime(p.FirstSeen), p.Type, "")
		if p.New {
			row("new_principal", "", p.Identity, p.Calls, p.Failed, report.FormatTime(p.FirstSeen), p.Type, p.FirstEventID)
		}
	}
	for _, u := range r.Unused {
		row("unused_key", u.ARN, strings.Join(u.Aliases, ";"), u.Events, 0, report.FormatTime(u.LastUse), "", "")
	}
	for _, a := range r.Admin {
		name := a.Name
		if a.Error != "" {
			name += " (failed: " + a.Error + ")"
		}
		calls := max(a.Count, 1)
		failed := int64(0)
		if a.Error != "" {
			failed = calls
		}
		if a.FromAggregates {
			name += " (aggregate)"
		}
		row("admin_event", a.KeyARN, name, calls, failed, report.FormatTime(a.Time), a.Principal, a.EventID)
	}
	for _, c := range r.LastUse {
		res := "agree"
		if !c.Agree {
			res = "disagree"
		}
		row("last_use_check", c.KeyARN, res, 0, 0, report.FormatTime(c.CloudTrailLast), "", c.CloudTrailEvent)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write CSV: %w", err)
	}
	return nil
}

// WriteJSON writes the whole model.
func (r *Report) WriteJSON(w io.Writer) error { return report.WriteJSON(w, r) }
