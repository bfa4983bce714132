package keyprov

import (
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/audit/provenance"
	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/report/pdfdoc"
)

func (r *Report) scope() report.Scope {
	s := r.Meta.Scope
	return report.Scope{From: s.From, To: s.To, Account: s.Account, Region: s.Region, KeyARN: s.Key}
}

// RuleText states the matching rule as the report applies it (the same
// rule as docs/audit-reports.md, with this report's tolerances).
func (r *Report) RuleText() []string {
	return []string{
		"A successful ImportKeyMaterial on a key is traced to a byok-wrap ceremony for the same key when: the ceremony ended before the import " +
			fmt.Sprintf("(allowing %d minutes of difference between the ceremony laptop's clock and AWS's); the import came no later than the ceremony's ParametersValidTo ", r.Rule.ClockSkewMinutes) +
			"(AWS refuses an expired import token); and the import's expiration model, validTo and import type are what the ceremony wrapped for.",
		fmt.Sprintf("The GetParametersForImport call that issued the ceremony's parameters is the one on the same key %d hours before its ParametersValidTo (within %d seconds): ", r.Rule.ParametersLifetimeHours, r.Rule.ParametersToleranceSecs) +
			"CloudTrail records the request (wrapping algorithm and key spec, which must be the ceremony's) but not the response, so the expiry is not in the logs. The call must precede the ceremony.",
		"Two ceremonies that both fit (the same parameters wrapped twice) are told apart by the KeyMaterialId `aws byok import` recorded beside the ceremony's files, when CloudTrail states it too; otherwise the import is ambiguous. " +
			"A ceremony that fits in time but differs in what it wrapped makes the import a mismatch; a rehearsal transcript is never provenance.",
		"A Private CA certificate installation (ImportCertificateAuthorityCertificate) is traced to the latest ca-signing ceremony for the same CA that ended before it. " +
			"CloudTrail records the CA and the time, and of the certificate only the length of the PEM sent (its bytes, serial and fingerprint are not in the logs): that length must be the ceremony's certificate file's.",
	}
}

// WritePDF renders the report as a PDF.
func (r *Report) WritePDF(w io.Writer) error {
	sc := r.scope()
	d, err := report.NewDoc(r.Meta, sc, report.Cover{Extra: [][2]string{
		{"Join tolerances", fmt.Sprintf("clock difference %d min; parameters call within %d s of ParametersValidTo − %d h; material expiring within %d days flagged",
			r.Rule.ClockSkewMinutes, r.Rule.ParametersToleranceSecs, r.Rule.ParametersLifetimeHours, r.Rule.ExpiryWarnDays)},
		{"In scope", fmt.Sprintf("%d KMS key(s) with imported material, %d Private CA(s), %d ceremony record(s)", len(r.Keys), len(r.CAs), len(r.Ceremonies))},
	}, Gaps: r.Coverage, Conflicts: r.Conflicts})
	if err != nil {
		return err
	}
	for _, n := range r.Notes {
		d.Warn(n)
	}
	r.pdfSummary(d)
	r.pdfFindings(d, r.Findings, "Findings")
	for i := range r.Keys {
		r.pdfSection(d, &r.Keys[i], "KMS key")
	}
	for i := range r.CAs {
		r.pdfSection(d, &r.CAs[i], "Private CA")
	}
	r.pdfCeremonies(d)
	d.Heading(1, "How imports are matched to ceremonies")
	for _, p := range r.RuleText() {
		d.Para(p)
	}
	report.FilesAppendix(d, r.Meta.Provenance)
	return d.Output(w)
}

func (r *Report) pdfSummary(d *pdfdoc.Doc) {
	d.Heading(1, "Summary")
	s := r.Summary
	row := func(label string, m map[provenance.Status]int) []string {
		return []string{label, strconv.Itoa(m[provenance.Matched]), strconv.Itoa(m[provenance.Unmatched]), strconv.Itoa(m[provenance.Mismatch]),
			strconv.Itoa(m[provenance.Ambiguous]), strconv.Itoa(m[provenance.Rehearsal])}
	}
	d.Table([]pdfdoc.Column{{Title: "Imports", Width: 48}, {Title: "Matched", Align: "R"}, {Title: "No ceremony", Align: "R"},
		{Title: "Differs", Align: "R"}, {Title: "Ambiguous", Align: "R"}, {Title: "Rehearsal only", Align: "R"}},
		[][]string{row("KMS key material", s.Imports), row("Private CA certificates", s.CAImports)}, pdfdoc.TableOpts{})
	var rows [][]string
	for _, k := range r.Keys {
		rows = append(rows, []string{k.ARN, k.Verdict})
	}
	for _, k := range r.CAs {
		rows = append(rows, []string{k.ARN, k.Verdict})
	}
	if len(rows) > 0 {
		d.Table([]pdfdoc.Column{{Title: "Key or CA", Width: 95, Mono: true}, {Title: "Provenance"}}, rows, pdfdoc.TableOpts{})
	}
	d.Para(fmt.Sprintf("Findings: %d high, %d medium, %d for information.", s.BySeverity[provenance.High], s.BySeverity[provenance.Medium], s.BySeverity[provenance.Info]))
}

func sevColor(v string) (int, int, int, bool) {
	switch provenance.Severity(v) {
	case provenance.High:
		return 180, 20, 20, true
	case provenance.Medium:
		return 170, 110, 0, true
	}
	return 0, 0, 0, false
}

func statusColor(v string) (int, int, int, bool) {
	switch provenance.Status(v) {
	case provenance.Matched:
		return 0, 120, 40, true
	case "":
		return 0, 0, 0, false
	}
	return 180, 20, 20, true
}

func (r *Report) pdfFindings(d *pdfdoc.Doc, fs []provenance.Finding, title string) {
	d.Heading(2, title)
	if len(fs) == 0 {
		d.Para("None.")
		return
	}
	var rows [][]string
	for _, f := range fs {
		var hashes []string
		for _, h := range f.FinalHashes {
			hashes = append(hashes, h[:min(16, len(h))]+"…")
		}
		rows = append(rows, []string{string(f.Severity), f.ID + "\n" + report.FormatTime(f.Time), f.Text,
			strings.Join(f.EventIDs, " "), strings.Join(hashes, " ")})
	}
	d.Table([]pdfdoc.Column{{Title: "Severity", Width: 15, Color: sevColor}, {Title: "Finding", Width: 36}, {Title: "What the evidence shows"},
		{Title: "CloudTrail events", Width: 30, Mono: true}, {Title: "Transcripts (final hash)", Width: 24, Mono: true}}, rows, pdfdoc.TableOpts{})
}

func (r *Report) pdfSection(d *pdfdoc.Doc, s *Section, what string) {
	d.Heading(1, what+" "+s.ARN)
	kv := [][2]string{{"Account / region", s.Account + " / " + s.Region}}
	if s.Spec != "" || s.Origin != "" {
		kv = append(kv, [2]string{"Key spec / origin", strings.Trim(s.Spec+" / "+s.Origin, " /")})
	}
	if s.Description != "" {
		kv = append(kv, [2]string{"Description", s.Description})
	}
	kv = append(kv, [2]string{"Provenance", s.Verdict})
	if what == "KMS key" {
		kv = append(kv, [2]string{"Usage in the period", fmt.Sprintf("%d cryptographic calls (%d failed)", s.UsageCalls, s.UsageFailed)})
	}
	if len(s.Gaps) > 0 {
		var g []string
		for _, x := range s.Gaps {
			g = append(g, x.Describe())
		}
		kv = append(kv, [2]string{"Coverage gaps", strings.Join(g, "; ")})
	}
	d.KV(kv)
	d.Heading(2, "Timeline")
	var rows [][]string
	for _, t := range s.Timeline {
		ref := t.EventID
		if t.Kind == "ceremony" {
			ref = "final hash " + t.FinalHash
		}
		detail := t.Detail
		if t.Principal != "" {
			detail = strings.TrimPrefix(detail+"; by "+t.Principal, "; ")
		}
		if t.Error != "" {
			detail = strings.TrimPrefix(detail+"; FAILED "+t.Error, "; ")
		}
		rows = append(rows, []string{report.FormatTime(t.Time), t.What, detail, t.Status, ref})
	}
	d.Table([]pdfdoc.Column{{Title: "Time (UTC)", Width: 26}, {Title: "Event or ceremony", Width: 34}, {Title: "Detail"},
		{Title: "Status", Width: 18, Color: statusColor}, {Title: "Evidence", Width: 38, Mono: true}}, rows, pdfdoc.TableOpts{})
	r.pdfFindings(d, s.Findings, "Findings for this "+strings.ToLower(what[:1])+what[1:])
}

func (r *Report) pdfCeremonies(d *pdfdoc.Doc) {
	d.Heading(1, "Ceremony records")
	if len(r.Ceremonies) == 0 {
		d.Para("No ceremony record in scope.")
		return
	}
	d.Note("Each transcript was verified when it was loaded (hash chain, anchors, every output file's SHA-256). Compare each final hash with the one written on the ceremony's signed paper.")
	for _, c := range r.Ceremonies {
		title := c.Kind + " " + c.CeremonyID
		if c.Rehearsal {
			title = "REHEARSAL " + title
		}
		d.Heading(2, title)
		kv := [][2]string{
			{"Held", report.FormatTime(c.Started) + " to " + report.FormatTime(c.Ended) + " (laptop clock)"},
			{"Participants", strings.Join(c.Participants, ", ")},
			{"Final hash", c.FinalHash},
			{"Final hash words", c.FinalWords},
			{"Anchors", c.Anchors},
			{"Script SHA-256", c.ScriptSHA256},
			{"Binary", strings.TrimSpace(c.BinaryVersion + " SHA-256 " + c.BinarySHA256)},
			{"Transcript", c.Transcript + " (SHA-256 " + c.TranscriptHash + ")"},
		}
		kv = append(kv, c.Produced...)
		if c.State != "" {
			kv = append(kv, [2]string{"In the logs", c.State})
		}
		d.KV(kv)
	}
}

// CSVHeader is the CSV's first row: one row per timeline item of every
// key and CA, then one per finding.
var CSVHeader = []string{"resource", "resource_type", "time", "kind", "what", "status", "event_id", "final_hash", "principal", "error", "detail", "verdict"}

// WriteCSV writes the timelines and the findings.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write(CSVHeader)
	for _, group := range []struct {
		kind string
		ss   []Section
	}{{"kms-key", r.Keys}, {"private-ca", r.CAs}} {
		for _, s := range group.ss {
			for _, t := range s.Timeline {
				cw.Write([]string{s.ARN, group.kind, t.Time.UTC().Format(time.RFC3339), t.Kind, t.What, t.Status, t.EventID, t.FinalHash, t.Principal, t.Error, t.Detail, s.Verdict})
			}
		}
	}
	fs := append([]provenance.Finding(nil), r.Findings...)
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].Time.Before(fs[j].Time) })
	for _, f := range fs {
		cw.Write([]string{f.Resource, "finding", f.Time.UTC().Format(time.RFC3339), "finding", f.ID, string(f.Severity),
			strings.Join(f.EventIDs, ";"), strings.Join(f.FinalHashes, ";"), "", "", f.Text, ""})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write CSV: %w", err)
	}
	return nil
}

// WriteJSON writes the whole model.
func (r *Report) WriteJSON(w io.Writer) error { return report.WriteJSON(w, r) }
