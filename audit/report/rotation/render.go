package rotation

import (
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/report/pdfdoc"
	"github.com/keyceremony/keyceremony/audit/report/rules"
)

// MaxKeyDetails bounds the per-key detail pages of the PDF; past it the
// keys table and findings table carry the report and the JSON export has
// every detail.
const MaxKeyDetails = 200

// MaxEvidencePerFlag bounds the event ids a PDF table cell lists for one
// flag (the JSON export lists them all).
const MaxEvidencePerFlag = 12

var statuses = []rules.Status{rules.Compliant, rules.NonCompliant, rules.StatusUnknown, rules.NotEligible, rules.NotApplicable}

func (r *Report) scope() report.Scope {
	s := r.Meta.Scope
	return report.Scope{From: s.From, To: s.To, Account: s.Account, Region: s.Region, KeyARN: s.Key}
}

func keyLabel(k *Key) string {
	if len(k.Aliases) > 0 {
		return strings.Join(k.Aliases, ", ") + "\n" + k.ARN
	}
	return k.ARN
}

func ids(list []string, max int) string {
	if len(list) <= max {
		return strings.Join(list, " ")
	}
	return strings.Join(list[:max], " ") + fmt.Sprintf(" … and %d more (see the JSON export)", len(list)-max)
}

// WritePDF renders the report as a PDF.
func (r *Report) WritePDF(w io.Writer) error {
	sc := r.scope()
	p := r.Policy
	pol := fmt.Sprintf("rotate key material at least every %d days", p.RotationDays)
	if p.ImportMaxDays > 0 {
		pol += fmt.Sprintf("; imported material must expire within %d days of import", p.ImportMaxDays)
	}
	pol += fmt.Sprintf("; warn of imported material expiring within %d days", p.ExpiryWarnDays)
	d, err := report.NewDoc(r.Meta, sc, report.Cover{Extra: [][2]string{{"Policy", pol}, {"Keys in scope", strconv.Itoa(len(r.Keys))}},
		Gaps: r.Coverage, Conflicts: r.Conflicts})
	if err != nil {
		return err
	}
	for _, n := range r.Notes {
		d.Warn(n)
	}

	r.pdfSummary(d, sc)
	r.pdfKeys(d)
	printed, unnamed := r.pdfFindings(d)
	r.pdfKeyDetails(d)
	rulesSection(d, r.Policy)
	r.pdfEvidence(d, printed, unnamed)
	report.FilesAppendix(d, r.Meta.Provenance)
	return d.Output(w)
}

// pdfSummary: keys by status, by control, lifecycle flags, coverage.
func (r *Report) pdfSummary(d *pdfdoc.Doc, sc report.Scope) {
	d.NewPage()
	d.Heading(0, "Summary")
	d.Para(fmt.Sprintf("%d key(s) in scope, judged at the end of the period (%s).", r.Summary.Keys, report.FormatTime(sc.To)))
	var rows [][]string
	for _, st := range statuses {
		rows = append(rows, []string{string(st), strconv.Itoa(r.Summary.ByStatus[st]), statusMeaning(st)})
	}
	d.Table([]pdfdoc.Column{{Title: "Key status", Width: 30, Color: report.StatusColor}, {Title: "Keys", Width: 14, Align: "R"}, {Title: "Meaning"}}, rows, pdfdoc.TableOpts{})
	d.Heading(1, "By control")
	rows = nil
	for _, c := range r.Summary.Controls {
		row := []string{c.Title + "\n" + strings.Join(c.Refs, "\n")}
		for _, st := range statuses {
			row = append(row, strconv.Itoa(c.Counts[st]))
		}
		rows = append(rows, row)
	}
	cols := []pdfdoc.Column{{Title: "Control (and the references auditors cite)"}}
	for _, st := range statuses {
		cols = append(cols, pdfdoc.Column{Title: strings.ReplaceAll(string(st), "-", " "), Width: 20, Align: "R"})
	}
	d.Table(cols, rows, pdfdoc.TableOpts{})
	d.Heading(1, "Lifecycle flags")
	rows = nil
	var flagIDs []string
	for id := range r.Summary.Flags {
		flagIDs = append(flagIDs, id)
	}
	sort.Strings(flagIDs)
	for _, id := range flagIDs {
		rows = append(rows, []string{id, strconv.Itoa(r.Summary.Flags[id])})
	}
	if len(rows) == 0 {
		d.Para("No lifecycle flag raised.")
	} else {
		d.Table([]pdfdoc.Column{{Title: "Flag"}, {Title: "Keys", Width: 20, Align: "R"}}, rows, pdfdoc.TableOpts{})
	}
	report.CoverageSection(d, r.Coverage, len(uniqPairs(r.Keys)))

}

// pdfKeys: one row per key.
func (r *Report) pdfKeys(d *pdfdoc.Doc) {
	d.NewPage()
	d.Heading(0, "Keys")
	var rows [][]string
	for i := range r.Keys {
		k := &r.Keys[i]
		rot := k.RotationEnabled
		if k.RotationPeriodDays > 0 {
			rot += fmt.Sprintf(" (%d d)", k.RotationPeriodDays)
		}
		age := "unknown"
		if k.MaterialAgeDays != nil {
			age = strconv.Itoa(*k.MaterialAgeDays) + " d"
			if !k.MaterialAgeExact {
				age = "≤ " + age
			}
		}
		rows = append(rows, []string{keyLabel(k), orQ(k.Manager) + " " + orQ(k.Origin) + "\n" + orQ(k.Spec), k.State, rot,
			report.Join(" ", report.FormatDate(k.LastRotation), k.LastRotationType), age, string(k.Status())})
	}
	d.Table([]pdfdoc.Column{{Title: "Key (aliases, ARN)", Mono: true}, {Title: "Manager, origin, key spec", Width: 32}, {Title: "State", Width: 18},
		{Title: "Automatic rotation", Width: 18}, {Title: "Last rotation", Width: 20}, {Title: "Material age", Width: 14, Align: "R"},
		{Title: "Status", Width: 19, Color: report.StatusColor}}, rows, pdfdoc.TableOpts{FontSize: 7})

}

// pdfFindings: one row per key with findings, so a large estate stays
// readable. It returns the evidence events the table names (printed) and
// those it leaves out (unnamed), for the appendix.
func (r *Report) pdfFindings(d *pdfdoc.Doc) (printed, unnamed map[string]bool) {
	d.NewPage()
	d.Heading(0, "Findings")
	d.Note("For each key: every check that is not compliant and every lifecycle flag, with the CloudTrail events they rest on (listed in full in the evidence appendix).")
	var rows [][]string
	// The findings table names at most MaxEvidencePerFlag events per key;
	// the appendix leaves out the ones it does not name (a key refused
	// thousands of calls would otherwise fill hundreds of pages; the JSON
	// export lists every one).
	printed, unnamed = map[string]bool{}, map[string]bool{}
	for i := range r.Keys {
		k := &r.Keys[i]
		var lines []string
		for _, c := range k.Judgement.Checks {
			if c.Status == rules.Compliant || c.Status == rules.NotApplicable {
				continue
			}
			reason := c.Reason
			if c.Check == rules.CheckRotationEnabled && c.Status == rules.NotEligible {
				reason = k.Judgement.EligReason
			}
			if c.Check == rules.CheckRotationPeriod && c.Status == rules.NotEligible && k.Compensating != "" {
				reason += "; " + k.Compensating
			}
			lines = append(lines, string(c.Status)+" "+c.Check+" ("+c.Rule+"): "+reason)
		}
		evIDs := map[string]bool{}
		var evList []string
		addEv := func(id string) {
			if !evIDs[id] {
				evIDs[id] = true
				evList = append(evList, id)
			}
		}
		for _, e := range k.Evidence {
			addEv(e.EventID)
		}
		for _, f := range k.Flags {
			if f.ID == FlagRotationDisabled || f.ID == FlagRotationOverdue {
				continue // the check above says it
			}
			lines = append(lines, "flag "+f.ID+": "+f.Text)
			for _, id := range f.Evidence {
				addEv(id)
			}
		}
		if len(lines) == 0 {
			continue
		}
		for i, id := range evList {
			if i < MaxEvidencePerFlag {
				printed[id] = true
			} else {
				unnamed[id] = true
			}
		}
		rows = append(rows, []string{keyLabel(k), string(k.Status()), strings.Join(lines, "\n"), ids(evList, MaxEvidencePerFlag)})
	}
	if len(rows) == 0 {
		d.Para("No finding.")
	} else {
		d.Table([]pdfdoc.Column{{Title: "Key", Width: 40, Mono: true}, {Title: "Status", Width: 20, Color: report.StatusColor},
			{Title: "Findings"}, {Title: "Evidence event ids", Width: pdfdoc.MonoWidth(36, 6.8), Mono: true}}, rows, pdfdoc.TableOpts{FontSize: 6.8})
	}
	if len(r.Conflicts) > 0 {
		report.ConflictsSection(d, r.Conflicts)
	}
	return printed, unnamed
}

// pdfKeyDetails: one section per key, up to MaxKeyDetails keys.
func (r *Report) pdfKeyDetails(d *pdfdoc.Doc) {
	if len(r.Keys) <= MaxKeyDetails {
		d.NewPage()
		d.Heading(0, "Key details")
		for i := range r.Keys {
			r.keyDetail(d, &r.Keys[i])
		}
	} else {
		d.NewPage()
		d.Heading(0, "Key details")
		d.Para(fmt.Sprintf("%d keys are in scope, more than the %d this PDF details one by one: the keys and findings tables above carry the report, and the JSON export holds every key's full detail.", len(r.Keys), MaxKeyDetails))
	}

}

// pdfEvidence: the appendix of evidence events.
func (r *Report) pdfEvidence(d *pdfdoc.Doc, printed, unnamed map[string]bool) {
	d.NewPage()
	d.Heading(0, "Appendix: evidence events")
	d.Note("Every CloudTrail event a finding or flag above rests on. Find the original record with: keyceremony audit raw --db DB EVENT-ID.")
	for id := range printed {
		delete(unnamed, id)
	}
	if len(unnamed) > 0 {
		d.Note(fmt.Sprintf("The findings above name at most %d events per key: %d events they do not name are left out here. All %d evidence events are in the JSON export (evidence) and the CSV (evidence_event_ids).",
			MaxEvidencePerFlag, len(unnamed), len(r.Evidence)))
	}
	var rows [][]string
	for _, e := range r.Evidence {
		if unnamed[e.EventID] {
			continue
		}
		name := e.Name
		if e.Error != "" {
			name += " (failed: " + e.Error + ")"
		}
		rows = append(rows, []string{e.EventID, report.FormatTime(e.Time), name, e.KeyARN, e.Principal, e.Detail, strings.Join(e.Findings, " ")})
	}
	if len(rows) == 0 {
		d.Para("No finding rests on a CloudTrail event.")
	} else {
		d.Table([]pdfdoc.Column{{Title: "Event id", Width: pdfdoc.MonoWidth(36, 6.3), Mono: true}, {Title: "Time (UTC)", Width: 16}, {Title: "Event", Width: 20},
			{Title: "Key", Width: 32, Mono: true}, {Title: "Principal", Mono: true}, {Title: "Detail", Width: 20}, {Title: "Supports", Width: 22}}, rows, pdfdoc.TableOpts{FontSize: 6.3})
	}
}

func orQ(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

func statusMeaning(s rules.Status) string {
	switch s {
	case rules.Compliant:
		return "every applicable check passes on the evidence"
	case rules.NonCompliant:
		return "at least one check fails on the evidence"
	case rules.StatusUnknown:
		return "no check fails, but the evidence does not establish at least one (missing logs, key older than the logs, no inventory)"
	case rules.NotEligible:
		return "automatic rotation does not apply (asymmetric, HMAC, imported material, custom key store); compensating control shown, never a pass"
	case rules.NotApplicable:
		return "key deleted during the period"
	}
	return ""
}

func uniqPairs(keys []Key) map[string]bool {
	m := map[string]bool{}
	for _, k := range keys {
		m[k.Account+"/"+k.Region] = true
	}
	return m
}

func (r *Report) keyDetail(d *pdfdoc.Doc, k *Key) {
	title := k.ARN
	if len(k.Aliases) > 0 {
		title = strings.Join(k.Aliases, ", ")
	}
	d.Heading(1, title+" — "+string(k.Status()))
	src := func(field string) string {
		if s := k.Sources[field]; s != "" {
			return " [" + s + "]"
		}
		return ""
	}
	kv := [][2]string{
		{"Key ARN", k.ARN},
		{"Aliases", strings.Join(k.Aliases, ", ")},
		{"Description", k.Description + src("description")},
		{"Manager", orQ(k.Manager) + src("manager")},
		{"Key spec", orQ(k.Spec) + src("key_spec")},
		{"Origin", orQ(k.Origin) + src("origin")},
		{"State at end of period", k.State + src("state")},
		{"Created", report.Join(" ", report.FormatTime(k.Created), map[bool]string{true: "(in the logs)", false: "(not in the logs)"}[k.CreatedInLogs]) + src("created")},
		{"Eligibility", string(k.Judgement.Eligibility) + ": " + k.Judgement.EligReason + " (" + k.Judgement.EligRule + ")"},
		{"Automatic rotation", k.RotationEnabled + src("rotation_enabled") + src("rotation_setting_unknown")},
	}
	if k.RotationPeriodDays > 0 {
		kv = append(kv, [2]string{"Rotation period", strconv.Itoa(k.RotationPeriodDays) + " days"})
	}
	kv = append(kv, [2]string{"Rotations in the logs", strconv.Itoa(k.Rotations)})
	if !k.LastRotation.IsZero() {
		kv = append(kv, [2]string{"Last rotation", report.Join(" ", report.FormatTime(k.LastRotation), k.LastRotationType) + src("last_rotation")})
	}
	if k.MaterialAgeDays != nil {
		a := strconv.Itoa(*k.MaterialAgeDays) + " days"
		if !k.MaterialAgeExact {
			a = "at most " + a + " (a coverage gap since the last rotation seen)"
		}
		kv = append(kv, [2]string{"Key material age", a})
	}
	if !k.NextAutomaticRotation.IsZero() {
		kv = append(kv, [2]string{"Next automatic rotation", report.FormatDate(k.NextAutomaticRotation)})
	}
	if !k.PolicyDue.IsZero() {
		kv = append(kv, [2]string{"Due under the policy", report.FormatDate(k.PolicyDue)})
	}
	if k.DaysOverdue > 0 {
		kv = append(kv, [2]string{"Days overdue", strconv.Itoa(k.DaysOverdue)})
	}
	kv = append(kv, [2]string{"Pending deletion", k.PendingDeletion + report.Join("", map[bool]string{true: " (deletion date " + report.FormatDate(k.DeletionDate) + ")", false: ""}[!k.DeletionDate.IsZero()]) + src("pending_deletion") + src("deletion_status_unknown")})
	if k.ImportExpirationModel != "" {
		kv = append(kv, [2]string{"Imported material", report.Join(", ", k.ImportExpirationModel, map[bool]string{true: "valid to " + report.FormatTime(k.ImportValidTo), false: ""}[!k.ImportValidTo.IsZero()])})
	}
	if len(k.ImportProvenance) > 0 {
		var lines []string
		for _, t := range k.ImportProvenance {
			l := t.Time + " " + string(t.Status)
			if t.CeremonyID != "" {
				l += ": ceremony " + t.CeremonyID + ", final hash " + t.FinalHash
			}
			lines = append(lines, l+" (event "+t.EventID+")")
		}
		kv = append(kv, [2]string{"Imports traced to ceremonies", strings.Join(lines, "\n")})
	}
	if len(k.MaterialIDs) > 0 {
		kv = append(kv, [2]string{"Key material ids", strings.Join(k.MaterialIDs, "\n")})
	}
	if k.Compensating != "" {
		kv = append(kv, [2]string{"Compensating control", k.Compensating})
	}
	for _, c := range k.Judgement.Checks {
		kv = append(kv, [2]string{"Check " + c.Check, string(c.Status) + " (" + c.Rule + "): " + c.Reason})
	}
	for _, f := range k.Flags {
		kv = append(kv, [2]string{"Flag " + f.ID, f.Text})
	}
	for _, g := range k.Gaps {
		kv = append(kv, [2]string{"Coverage gap", g.Describe()})
	}
	var counts []string
	for n, c := range k.EventCounts {
		counts = append(counts, fmt.Sprintf("%s %d", n, c))
	}
	sort.Strings(counts)
	kv = append(kv, [2]string{"Lifecycle events in the logs", strings.Join(counts, ", ")})
	for _, e := range k.Evidence {
		kv = append(kv, [2]string{"Evidence: " + e.Role, e.EventID + " " + e.Name + " " + report.FormatTime(e.Time)})
	}
	d.KV(kv)
}

func rulesSection(d *pdfdoc.Doc, p rules.Policy) {
	d.NewPage()
	d.Heading(0, "Rules applied")
	d.Note("Eligibility is decided first (the first row that holds wins), then each check by its own table. A fact no evidence establishes is unknown, and a check resting on it is unknown.")
	var rows [][]string
	for _, r := range rules.EligibilityRules {
		rows = append(rows, []string{r.ID, r.When, string(r.Result), r.Reason})
	}
	d.Table([]pdfdoc.Column{{Title: "Rule", Width: 10}, {Title: "When", Width: 55}, {Title: "Eligibility", Width: 20}, {Title: "Reason"}}, rows, pdfdoc.TableOpts{FontSize: 7})
	rows = nil
	for _, r := range rules.CheckRules {
		rows = append(rows, []string{r.Check, r.ID, r.When, string(r.Status)})
	}
	d.Table([]pdfdoc.Column{{Title: "Check", Width: 40}, {Title: "Rule", Width: 10}, {Title: "When"}, {Title: "Status", Width: 24, Color: report.StatusColor}}, rows, pdfdoc.TableOpts{FontSize: 7})
}

// CSVHeader is the header row of the CSV export, one row per key.
var CSVHeader = []string{"key_arn", "key_id", "account", "region", "aliases", "manager", "key_spec", "origin", "state",
	"created", "created_in_logs", "eligibility", "rotation_enabled", "rotation_period_days", "rotations", "last_rotation",
	"last_rotation_type", "material_age_days", "material_age_exact", "next_automatic_rotation", "policy_due", "days_overdue",
	"pending_deletion", "deletion_date", "import_expiration_model", "import_valid_to", "status",
	"check_" + rules.CheckRotationEnabled, "check_" + rules.CheckRotationPeriod, "check_" + rules.CheckNotDeleting,
	"check_" + rules.CheckImportExpiry, "flags", "evidence_event_ids"}

// WriteCSV writes one row per key.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write(CSVHeader)
	for i := range r.Keys {
		k := &r.Keys[i]
		check := map[string]string{}
		for _, c := range k.Judgement.Checks {
			check[c.Check] = string(c.Status)
		}
		var flags, evIDs []string
		for _, f := range k.Flags {
			flags = append(flags, f.ID)
		}
		for _, e := range k.Evidence {
			evIDs = append(evIDs, e.EventID)
		}
		age := ""
		if k.MaterialAgeDays != nil {
			age = strconv.Itoa(*k.MaterialAgeDays)
		}
		period := ""
		if k.RotationPeriodDays > 0 {
			period = strconv.Itoa(k.RotationPeriodDays)
		}
		cw.Write([]string{k.ARN, k.KeyID, k.Account, k.Region, strings.Join(k.Aliases, ";"), k.Manager, k.Spec, k.Origin, k.State,
			report.FormatTime(k.Created), strconv.FormatBool(k.CreatedInLogs), string(k.Judgement.Eligibility), k.RotationEnabled, period,
			strconv.Itoa(k.Rotations), report.FormatTime(k.LastRotation), k.LastRotationType, age, strconv.FormatBool(k.MaterialAgeExact),
			report.FormatDate(k.NextAutomaticRotation), report.FormatDate(k.PolicyDue), strconv.Itoa(k.DaysOverdue),
			k.PendingDeletion, report.FormatDate(k.DeletionDate), k.ImportExpirationModel, report.FormatTime(k.ImportValidTo),
			string(k.Status()), check[rules.CheckRotationEnabled], check[rules.CheckRotationPeriod], check[rules.CheckNotDeleting],
			check[rules.CheckImportExpiry], strings.Join(flags, ";"), strings.Join(evIDs, ";")})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write CSV: %w", err)
	}
	return nil
}

// WriteJSON writes the whole model.
func (r *Report) WriteJSON(w io.Writer) error { return report.WriteJSON(w, r) }
