package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyceremony/keyceremony/audit/provenance"
	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/report/keyprov"
	"github.com/keyceremony/keyceremony/audit/report/rotation"
	"github.com/keyceremony/keyceremony/audit/report/rules"
	"github.com/keyceremony/keyceremony/audit/report/usage"
	"github.com/keyceremony/keyceremony/audit/store"
)

const auditReportUsage = `keyceremony audit report rotation|usage|provenance --db PATH --from DATE --to DATE [filters] -o report.pdf [--csv out.csv] [--json out.json] [--force]

DATE is YYYY-MM-DD (UTC; --to includes that whole day) or an RFC 3339 time
(--to excluded). Filters: --account ID, --region NAME, --key ARN-or-ID.
rotation: --policy-days N (default 365), --import-max-days N, --expiry-warn-days N.
usage: --business-hours 08-18, --business-days Mon-Fri, --tz Europe/Berlin, --top N.
provenance: --skew-minutes N (clock difference allowed between the ceremony laptop and AWS, default 15), --expiry-warn-days N.
Output files are written 0600 and never replaced unless --force.`

// reportRequest is a checked "audit report" command line.
type reportRequest struct {
	kind           string // rotation, usage or provenance
	db             string
	scope          report.Scope
	pdf, csv, json string
	force, quiet   bool
	policy         rules.Policy
	businessHours  usage.BusinessHours
	top            int
	skew           time.Duration
}

// auditReport runs "keyceremony audit report rotation|usage ...".
func auditReport(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		return usagef("%s", auditReportUsage)
	}
	req, err := parseReportArgs(env, args[0], args[1:])
	if err != nil || req == nil {
		return err // nil, nil: -h printed the usage
	}
	// Refuse before computing anything: a report on a million events is
	// not thrown away because of a name clash at the end.
	seen := map[string]bool{}
	for _, p := range []string{req.pdf, req.csv, req.json} {
		if p == "" {
			continue
		}
		if seen[p] {
			return usagef("%s is named twice as an output", p)
		}
		seen[p] = true
		if err := report.CheckOutput(p, req.force); err != nil {
			return err
		}
	}
	// A soft memory limit keeps the report's resident memory near what it
	// holds live (the GC works harder rather than letting garbage grow),
	// unless the operator set GOMEMLIMIT. report.MemoryLimit: measured on a
	// million events, 150 MiB let the rotation report's PDF (800 pages,
	// held whole by gofpdf until it is written) take the process to 200
	// MB; 112 MiB keeps it at 170 MB for a tenth of a second more. A
	// larger model raises it (report.LimitMemory): a limit under the live
	// heap only makes the collector thrash.
	if env.getenv("GOMEMLIMIT") == "" {
		defer report.LimitMemory(report.MemoryLimit)()
	}
	st, err := openExistingAuditStore(ctx, req.db)
	if err != nil {
		return err
	}
	defer st.Close()
	start := time.Now()
	r, summary, err := buildReport(ctx, env, st, req)
	if err != nil {
		return err
	}
	if err := writeReportOutputs(env, req, r); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s report, %s: %s (%.1f s)\n", req.kind, req.scope.String(), summary, time.Since(start).Seconds())
	return nil
}

// parseReportArgs reads and checks the flags of "audit report KIND". It
// returns nil and no error when -h printed the usage.
func parseReportArgs(env *Env, kind string, args []string) (*reportRequest, error) {
	if kind != "rotation" && kind != "usage" && kind != "provenance" {
		return nil, usagef("unknown report %q (rotation, usage or provenance)\n%s", kind, auditReportUsage)
	}
	fs := flag.NewFlagSet("audit report "+kind, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() { fmt.Fprintln(env.Stderr, auditReportUsage) }
	dbPath := fs.String("db", "", "audit database (required)")
	fromS := fs.String("from", "", "start of the period (required)")
	toS := fs.String("to", "", "end of the period (required)")
	account := fs.String("account", "", "only this AWS account")
	region := fs.String("region", "", "only this region")
	key := fs.String("key", "", "only this key (ARN or key id)")
	pdfOut := fs.String("o", "", "PDF output file")
	csvOut := fs.String("csv", "", "CSV output file")
	jsonOut := fs.String("json", "", "JSON output file")
	force := fs.Bool("force", false, "replace existing output files")
	quiet := fs.Bool("quiet", false, "no progress on standard error and no \"wrote\" lines: only the summary line")
	policyDays := fs.Int("policy-days", 365, "rotation: key material must be rotated at least every N days")
	importMax := fs.Int("import-max-days", 0, "rotation: imported material must expire within N days of import (0: not checked)")
	warnDays := fs.Int("expiry-warn-days", 30, "rotation: flag imported material expiring within N days")
	hours := fs.String("business-hours", "08-18", "usage: business hours, HH-HH")
	days := fs.String("business-days", "Mon-Fri", "usage: business days")
	tz := fs.String("tz", "UTC", "usage: time zone of the business hours (IANA name)")
	top := fs.Int("top", 10, "usage: rows of the top-N tables")
	skew := fs.Int("skew-minutes", 15, "provenance: clock difference allowed between the ceremony laptop and AWS, in minutes")
	fs.StringVar(pdfOut, "out", "", "PDF output file (same as -o)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil
		}
		return nil, usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected argument %q\n%s", fs.Arg(0), auditReportUsage)
	}
	if *dbPath == "" || *fromS == "" || *toS == "" {
		return nil, usagef("--db, --from and --to are required\n%s", auditReportUsage)
	}
	if *pdfOut == "" && *csvOut == "" && *jsonOut == "" {
		return nil, usagef("name at least one output: -o report.pdf, --csv FILE or --json FILE")
	}
	from, err := reportTime(*fromS, false)
	if err != nil {
		return nil, usagef("--from: %v", err)
	}
	to, err := reportTime(*toS, true)
	if err != nil {
		return nil, usagef("--to: %v", err)
	}
	req := &reportRequest{kind: kind, db: *dbPath, pdf: *pdfOut, csv: *csvOut, json: *jsonOut, force: *force, quiet: *quiet, top: *top, skew: time.Duration(*skew) * time.Minute,
		scope:  report.Scope{From: from, To: to, Account: *account, Region: *region, KeyARN: *key},
		policy: rules.Policy{RotationDays: *policyDays, ImportMaxDays: *importMax, ExpiryWarnDays: *warnDays}}
	if err := req.scope.Validate(); err != nil {
		return nil, usagef("%v", err)
	}
	if *policyDays <= 0 || *importMax < 0 || *warnDays < 0 || *top <= 0 || *skew < 0 {
		return nil, usagef("--policy-days and --top must be positive, --import-max-days and --expiry-warn-days not negative")
	}
	if kind == "usage" {
		a, b, ok := strings.Cut(*hours, "-")
		start, err1 := strconv.Atoi(a)
		end, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil {
			return nil, usagef("--business-hours %q: use HH-HH, e.g. 08-18", *hours)
		}
		req.businessHours = usage.BusinessHours{Zone: *tz, StartHour: start, EndHour: end, Weekdays: *days}
	}
	return req, nil
}

// reportRenderer is one built report's three outputs.
type reportRenderer struct {
	pdf, csv, json func(io.Writer) error
}

// buildReport computes the report and the one-line summary printed after it.
func buildReport(ctx context.Context, env *Env, st *store.Store, req *reportRequest) (reportRenderer, string, error) {
	progress := func(p report.Progress) {
		if !req.quiet {
			fmt.Fprintf(env.Stderr, "[%d/%d] %s\n", p.Step, p.Steps, p.Stage)
		}
	}
	var summary string
	var coverage []report.Gap
	var r reportRenderer
	switch req.kind {
	case "rotation":
		rep, err := rotation.Build(ctx, st, rotation.Options{Scope: req.scope, Progress: progress, Generator: Version, Policy: req.policy})
		if err != nil {
			return r, "", fmt.Errorf("rotation report: %w", err)
		}
		r, coverage = reportRenderer{rep.WritePDF, rep.WriteCSV, rep.WriteJSON}, rep.Coverage
		s := rep.Summary.ByStatus
		summary = fmt.Sprintf("%d keys: %d compliant, %d non-compliant, %d unknown, %d not eligible for automatic rotation, %d deleted",
			rep.Summary.Keys, s[rules.Compliant], s[rules.NonCompliant], s[rules.StatusUnknown], s[rules.NotEligible], s[rules.NotApplicable])
	case "provenance":
		rep, err := keyprov.Build(ctx, st, keyprov.Options{Scope: req.scope, Progress: progress, Generator: Version, Skew: req.skew, ExpiryWarnDays: req.policy.ExpiryWarnDays})
		if err != nil {
			return r, "", fmt.Errorf("key provenance report: %w", err)
		}
		r, coverage = reportRenderer{rep.WritePDF, rep.WriteCSV, rep.WriteJSON}, rep.Coverage
		s := rep.Summary
		summary = fmt.Sprintf("%d keys with imported material, %d Private CAs, %d ceremonies; imports: %d matched, %d without ceremony, %d differing, %d ambiguous, %d rehearsal only; CA certificates: %d matched, %d without ceremony; %d high findings",
			s.Keys, s.CAs, s.Ceremonies, s.Imports[provenance.Matched], s.Imports[provenance.Unmatched], s.Imports[provenance.Mismatch], s.Imports[provenance.Ambiguous],
			s.Imports[provenance.Rehearsal], s.CAImports[provenance.Matched], s.CAImports[provenance.Unmatched], s.BySeverity[provenance.High])
	case "usage":
		rep, err := usage.Build(ctx, st, usage.Options{Scope: req.scope, Progress: progress, Generator: Version, BusinessHours: req.businessHours, TopN: req.top})
		if err != nil {
			return r, "", fmt.Errorf("usage report: %w", err)
		}
		r, coverage = reportRenderer{rep.WritePDF, rep.WriteCSV, rep.WriteJSON}, rep.Coverage
		t := rep.Totals
		summary = fmt.Sprintf("%d events, %d cryptographic calls (%d failed), %d of %d keys used, %d principals (%d new), %d administrative events",
			t.Events, t.CryptoCalls, t.Failed, t.KeysUsed, t.KeysInScope, t.Principals, t.NewPrincipals, t.AdminEvents)
	}
	if len(coverage) > 0 {
		summary += fmt.Sprintf("; KMS evidence missing for %d span(s) of days", len(coverage))
	}
	return r, summary, nil
}

// writeReportOutputs renders the outputs from the same read-only model at
// once: the PDF and the JSON each take a few tenths of a second on a
// million events, and a second core halves that.
func writeReportOutputs(env *Env, req *reportRequest, r reportRenderer) error {
	outputs := []struct {
		path  string
		write func(io.Writer) error
	}{{req.pdf, r.pdf}, {req.csv, r.csv}, {req.json, r.json}}
	errs := make([]error, len(outputs))
	var wg sync.WaitGroup
	for i, o := range outputs {
		if o.path == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = report.WriteFile(o.path, req.force, o.write)
		}()
	}
	wg.Wait()
	for i, o := range outputs {
		if o.path == "" {
			continue
		}
		if errs[i] != nil {
			return errs[i]
		}
		if !req.quiet {
			fmt.Fprintf(env.Stdout, "wrote %s\n", o.path)
		}
	}
	return nil
}

// reportTime reads a report date: YYYY-MM-DD is a UTC day (as an end, the
// whole day is included), anything else an RFC 3339 time.
func reportTime(s string, end bool) (time.Time, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		if end {
			t = t.AddDate(0, 0, 1)
		}
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither YYYY-MM-DD nor an RFC 3339 time", s)
	}
	return t.UTC(), nil
}
