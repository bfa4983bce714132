// Package auditcli implements the "keyceremony audit" commands (ingest,
// events, raw, export, coverage, keys). It lives under audit, not app/cli,
// so it builds and is tested without the rest of the application; app/cli
// registers it as the "audit" group.
package auditcli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/keyceremony/keyceremony/audit/ingest"
	"github.com/keyceremony/keyceremony/audit/store"
)

// Env is what a command may touch.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// ErrUsage marks an error in how the command was called (exit status 2).
var ErrUsage = errors.New("usage")

func usagef(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, a...))
}

// Summary is the one-line description of the group.
const Summary = "load CloudTrail KMS logs and key inventories; query the audit database"

var subs = map[string]func(context.Context, *Env, []string) error{
	"ingest":   auditIngest,
	"events":   auditEvents,
	"raw":      auditRaw,
	"export":   auditExport,
	"coverage": auditCoverage,
	"keys":     auditKeys,
}

// Run runs "audit ARGS...".
func Run(ctx context.Context, env *Env, args []string) error {
	names := make([]string, 0, len(subs))
	for n := range subs {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		return usagef("keyceremony audit %s", strings.Join(names, "|"))
	}
	f, ok := subs[args[0]]
	if !ok {
		return usagef("unknown subcommand %q for audit (one of: %s)", args[0], strings.Join(names, ", "))
	}
	return f(ctx, env, args[1:])
}

// parseInterspersed lets flags follow paths ("ingest logs/ --json").
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func flagSet(env *Env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("keyceremony audit "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: keyceremony audit %s\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

func parseErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return usagef("%v", err)
}

// OpenStore opens the audit database at path, or the user's default one
// (<user config dir>/keyceremony/audit.db) when path is empty.
func OpenStore(ctx context.Context, path string) (*store.Store, error) {
	if path == "" {
		var err error
		if path, err = store.DefaultPath(); err != nil {
			return nil, err
		}
	}
	return store.Open(ctx, path)
}

func auditIngest(ctx context.Context, env *Env, args []string) error {
	fs := flagSet(env, "ingest", "ingest [--db PATH] [--json] [--workers N] PATH... (files, directories, .tar/.zip, - for stdin)")
	db := fs.String("db", "", "audit database (default: <user config dir>/keyceremony/audit.db)")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	workers := fs.Int("workers", 0, "parsing goroutines (default: all cores)")
	noProgress := fs.Bool("no-progress", false, "no progress bar even on a terminal")
	paths, err := parseInterspersed(fs, args)
	if err != nil {
		return parseErr(err)
	}
	if len(paths) == 0 {
		fs.Usage()
		return usagef("audit ingest needs at least one PATH")
	}
	// Keep the heap near what the pipeline needs: the parsed batches are
	// short-lived and the GC otherwise lets them pile up.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(128 << 20)
	}
	st, err := OpenStore(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	opt := ingest.Options{Workers: *workers, Stdin: env.Stdin, Args: append([]string{"audit", "ingest"}, args...)}
	var bar *progressBar
	if f, ok := env.Stderr.(*os.File); ok && !*noProgress && term.IsTerminal(int(f.Fd())) {
		bar = &progressBar{w: env.Stderr}
		opt.Progress = bar.update
	}
	sum, err := ingest.Run(ctx, st, paths, opt)
	if bar != nil {
		bar.done()
	}
	if sum != nil {
		if *asJSON {
			enc := json.NewEncoder(env.Stdout)
			enc.SetIndent("", "  ")
			if e := enc.Encode(sum); e != nil {
				return e
			}
		} else {
			printSummary(env.Stdout, sum)
		}
	}
	if err != nil {
		return err
	}
	if sum.FilesFailed > 0 {
		return fmt.Errorf("%d file(s) could not be loaded (listed above); the others are in the database", sum.FilesFailed)
	}
	return nil
}

func printSummary(w io.Writer, s *ingest.Summary) {
	rate := 0.0
	if s.Elapsed > 0 {
		rate = float64(s.KMSNew+s.KMSDuplicate) / s.Elapsed.Seconds()
	}
	fmt.Fprintf(w, "Database:   %s\n", s.Database)
	fmt.Fprintf(w, "Files:      %d loaded, %d already loaded (same SHA-256), %d failed", s.FilesOK, s.FilesDuplicate, s.FilesFailed)
	if s.FilesIgnored > 0 {
		fmt.Fprintf(w, ", %d ignored (not CloudTrail file names)", s.FilesIgnored)
	}
	fmt.Fprintln(w)
	if s.InventoryFiles > 0 {
		fmt.Fprintf(w, "Inventory:  %d file(s), %d key entries\n", s.InventoryFiles, s.InventoryKeys)
	}
	fmt.Fprintf(w, "KMS events: %d new, %d duplicate (already stored)\n", s.KMSNew, s.KMSDuplicate)
	fmt.Fprintf(w, "Non-KMS:    %d records skipped\n", s.NonKMS)
	if s.AliasesResolved > 0 {
		fmt.Fprintf(w, "Aliases:    %d events resolved to a key through alias history\n", s.AliasesResolved)
	}
	fmt.Fprintf(w, "Time:       %s (%.0f KMS events/s)\n", s.Elapsed.Round(time.Millisecond), rate)
	if s.Cancelled {
		fmt.Fprintln(w, "Cancelled:  files committed so far are kept; run the same command again to finish.")
	}
	for _, f := range s.Failed {
		fmt.Fprintf(w, "FAILED %s: %s\n", f.Path, f.Error)
	}
}

// progressBar draws one line on a terminal: files, events/s, ETA.
type progressBar struct {
	w     io.Writer
	drawn bool
}

func (b *progressBar) update(p ingest.Progress) {
	frac := 0.0
	if p.BytesTotal > 0 {
		frac = float64(p.BytesDone) / float64(p.BytesTotal)
	}
	if frac > 1 {
		frac = 1
	}
	const width = 28
	n := int(frac * width)
	rate := 0.0
	if s := p.Elapsed.Seconds(); s > 0 {
		rate = float64(p.KMSEvents) / s
	}
	eta := "--:--"
	if frac > 0.01 {
		left := time.Duration(float64(p.Elapsed) * (1 - frac) / frac).Round(time.Second)
		eta = left.String()
	}
	if p.Phase == "indexing" || p.Phase == "resolving aliases" {
		fmt.Fprintf(b.w, "\r[%s] %d/%d files, %s...%s", strings.Repeat("=", width), p.FilesDone, p.FilesTotal, p.Phase, strings.Repeat(" ", 30))
		b.drawn = true
		return
	}
	failed := ""
	if p.FilesFailed > 0 {
		failed = fmt.Sprintf(" %d failed", p.FilesFailed)
	}
	fmt.Fprintf(b.w, "\r[%s%s] %3.0f%% %d/%d files%s  %.0f ev/s  ETA %s   ",
		strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100, p.FilesDone, p.FilesTotal, failed, rate, eta)
	b.drawn = true
}

func (b *progressBar) done() {
	if b.drawn {
		fmt.Fprintln(b.w)
	}
}

func filterFlags(fs *flag.FlagSet) func() (store.Filter, error) {
	from := fs.String("from", "", "start time (RFC 3339 or YYYY-MM-DD, inclusive)")
	to := fs.String("to", "", "end time (RFC 3339 or YYYY-MM-DD, exclusive)")
	key := fs.String("key", "", "key ARN or key id")
	alias := fs.String("alias", "", "alias name or ARN")
	principal := fs.String("principal", "", "principal ARN or IAM role ARN")
	name := fs.String("name", "", "event name (Decrypt, ...)")
	errorsOnly := fs.Bool("errors", false, "failed calls only")
	account := fs.String("account", "", "account id")
	region := fs.String("region", "", "region")
	return func() (store.Filter, error) {
		f := store.Filter{KeyARN: *key, Alias: *alias, Principal: *principal, EventName: *name,
			ErrorsOnly: *errorsOnly, Account: *account, Region: *region}
		var err error
		if f.From, err = parseWhen(*from); err != nil {
			return f, err
		}
		f.To, err = parseWhen(*to)
		return f, err
	}
}

func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, l := range []string{time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usagef("invalid time %q (want RFC 3339 or YYYY-MM-DD)", s)
}

func auditEvents(ctx context.Context, env *Env, args []string) error {
	fs := flagSet(env, "events", "events [--db PATH] [filters] [--oldest] [--limit N] [--after CURSOR] [--count] [--json]")
	db := fs.String("db", "", "audit database")
	filter := filterFlags(fs)
	oldest := fs.Bool("oldest", false, "oldest first (default newest first)")
	limit := fs.Int("limit", 50, "events per page")
	after := fs.String("after", "", "continue after this cursor (printed at the end of a page)")
	count := fs.Bool("count", false, "print only the number of matching events")
	asJSON := fs.Bool("json", false, "JSON output")
	if _, err := parseInterspersed(fs, args); err != nil {
		return parseErr(err)
	}
	f, err := filter()
	if err != nil {
		return err
	}
	st, err := OpenStore(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	if *count {
		n, err := st.CountEvents(ctx, f)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, n)
		return nil
	}
	var cur *store.Cursor
	if *after != "" {
		c, err := store.ParseCursor(*after)
		if err != nil {
			return usagef("%v", err)
		}
		cur = &c
	}
	order := store.Newest
	if *oldest {
		order = store.Oldest
	}
	pg, err := st.Events(ctx, f, order, cur, *limit)
	if err != nil {
		return err
	}
	if *asJSON {
		out := struct {
			Events []store.Event `json:"events"`
			Next   string        `json:"next,omitempty"`
		}{Events: pg.Events}
		if pg.Next != nil {
			out.Next = pg.Next.String()
		}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME (UTC)\tEVENT\tKEY\tPRINCIPAL\tERROR\tEVENT ID")
	for _, e := range pg.Events {
		p := e.PrincipalARN
		if p == "" {
			p = e.InvokedBy
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Format("2006-01-02 15:04:05"), e.Name, e.KeyARN, p, e.ErrorCode, e.EventID)
	}
	tw.Flush()
	if pg.Next != nil {
		fmt.Fprintf(env.Stdout, "next page: --after %s\n", pg.Next)
	}
	return nil
}

func auditRaw(ctx context.Context, env *Env, args []string) error {
	fs := flagSet(env, "raw", "raw [--db PATH] EVENT_ID")
	db := fs.String("db", "", "audit database")
	ids, err := parseInterspersed(fs, args)
	if err != nil {
		return parseErr(err)
	}
	if len(ids) != 1 {
		return usagef("audit raw needs one EVENT_ID")
	}
	st, err := OpenStore(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	raw, err := st.RawEvent(ctx, ids[0])
	if err != nil {
		return err
	}
	_, err = env.Stdout.Write(append(raw, '\n'))
	return err
}

func auditExport(ctx context.Context, env *Env, args []string) error {
	fs := flagSet(env, "export", "export [--db PATH] [filters] [-o FILE]: original records as a CloudTrail log document")
	db := fs.String("db", "", "audit database")
	filter := filterFlags(fs)
	out := fs.String("o", "", "output file (0600; default standard output)")
	if _, err := parseInterspersed(fs, args); err != nil {
		return parseErr(err)
	}
	f, err := filter()
	if err != nil {
		return err
	}
	st, err := OpenStore(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	w := env.Stdout
	if *out != "" {
		fh, err := os.OpenFile(*out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer fh.Close()
		w = fh
	}
	n, err := st.ExportRaw(ctx, f, w)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(env.Stderr, "exported %d records\n", n)
	return nil
}

func auditCoverage(ctx context.Context, env *Env, args []string) error {
	fs := flagSet(env, "coverage", "coverage [--db PATH] [--json]")
	db := fs.String("db", "", "audit database")
	asJSON := fs.Bool("json", false, "JSON output")
	if _, err := parseInterspersed(fs, args); err != nil {
		return parseErr(err)
	}
	st, err := OpenStore(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	days, err := st.Coverage(ctx, true)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(days)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tREGION\tDAY\tFILES\tRECORDS\tKMS RECORDS\tKMS EVENTS\tNOTE")
	for _, d := range days {
		note := ""
		switch {
		case d.Files == 0 && d.Records == 0:
			note = "no logs: gap in evidence"
		case d.KMSRecords == 0:
			note = "no KMS events: trail may exclude KMS"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", d.Account, d.Region, d.Day, d.Files, d.Records, d.KMSRecords, d.KMSEvents, note)
	}
	return tw.Flush()
}

func auditKeys(ctx context.Context, env *Env, args []string) error {
	fs := flagSet(env, "keys", "keys [--db PATH] [--json]")
	db := fs.String("db", "", "audit database")
	asJSON := fs.Bool("json", false, "JSON output")
	if _, err := parseInterspersed(fs, args); err != nil {
		return parseErr(err)
	}
	st, err := OpenStore(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	keys, err := st.Keys(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(keys)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tORIGIN\tSTATE\tROTATION\tEVENTS\tLAST SEEN\tALIASES")
	for _, k := range keys {
		rot := "?"
		if k.RotationEnabled != nil {
			rot = "off"
			if *k.RotationEnabled {
				rot = fmt.Sprintf("%dd", k.RotationPeriodDays)
			}
		}
		last := ""
		if !k.LastSeen.IsZero() {
			last = k.LastSeen.Format("2006-01-02")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", k.ARN, k.Origin, k.State, rot, k.Events, last, strings.Join(k.Aliases, ","))
	}
	return tw.Flush()
}

// Main runs one "audit ..." command line (the leading "audit" is optional)
// and returns the exit status: 0, 1 for a failure, 2 for a usage error.
// Interrupt and SIGTERM cancel the context; an ingest then stops at a file
// boundary with everything committed so far kept.
func Main(args []string, env *Env) int {
	if len(args) > 0 && args[0] == "audit" {
		args = args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := Run(ctx, env, args)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrUsage):
		fmt.Fprintf(env.Stderr, "keyceremony audit: %v\n", err)
		return 2
	default:
		fmt.Fprintf(env.Stderr, "keyceremony audit: %v\n", err)
		return 1
	}
}
