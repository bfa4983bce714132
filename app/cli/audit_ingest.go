package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/keyceremony/keyceremony/audit/ceremonies"
	"github.com/keyceremony/keyceremony/audit/ingest"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
)

func auditIngest(ctx context.Context, env *Env, args []string) error {
	fs := auditFlags(env, "ingest", "ingest [--db PATH] [--json] [--workers N] [--allow-rehearsal] [--expect CEREMONY=HASH|WORDS]... PATH... (CloudTrail files, directories, .tar/.zip, - for stdin; ceremony output directories and *.transcript.jsonl)")
	db := fs.String("db", "", "audit database (default: <user config dir>/keyceremony/audit.db)")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	workers := fs.Int("workers", 0, "parsing goroutines (default: all cores)")
	noProgress := fs.Bool("no-progress", false, "no progress bar even on a terminal")
	var expects multiFlag
	fs.Var(&expects, "expect", "CEREMONY=HASH|WORDS: the final hash on the signed paper of the ceremony directory or transcript CEREMONY (64 hex digits or the 32 words, quoted); it must end with it. Repeat for each ceremony")
	rehearsal := fs.Bool("allow-rehearsal", false, "load rehearsal ceremony transcripts too (marked as rehearsals; never evidence of a key's birth)")
	paths, err := parseInterspersed(fs, args)
	if err != nil {
		return auditParseErr(err)
	}
	if len(paths) == 0 {
		fs.Usage()
		return usagef("audit ingest needs at least one PATH")
	}
	// Keep the heap near what the pipeline needs: the parsed batches are
	// short-lived and the GC otherwise lets them pile up.
	if env.getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(128 << 20)
	}
	st, err := openAuditStore(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	runArgs := append([]string{"audit", "ingest"}, args...)
	// Ceremony output directories and transcripts are verified and stored
	// as ceremonies, in a run of their own; the rest is CloudTrail.
	var cerPaths []string
	paths, cerPaths = ceremonies.Split(paths)
	expectFor, err := paperHashes(expects, cerPaths)
	if err != nil {
		return err
	}
	var csum *ceremonies.Summary
	if len(cerPaths) > 0 {
		if csum, err = ceremonies.Ingest(ctx, st, cerPaths, runArgs, ceremonies.Options{AllowRehearsal: *rehearsal, ExpectFor: expectFor}); err != nil {
			return err
		}
		if len(paths) == 0 {
			return reportCeremonies(env, csum, *asJSON)
		}
	}
	opt := ingest.Options{Workers: *workers, Stdin: env.Stdin, Args: runArgs}
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
			var v any = sum
			if csum != nil {
				v = struct {
					*ingest.Summary
					Ceremonies *ceremonies.Summary `json:"ceremony_transcripts"`
				}{sum, csum}
			}
			if e := enc.Encode(v); e != nil {
				return e
			}
		} else {
			printSummary(env.Stdout, sum)
			if csum != nil {
				csum.WriteText(env.Stdout)
			}
		}
	}
	if err != nil {
		return err
	}
	if csum != nil && csum.Refused > 0 {
		return fmt.Errorf("%d ceremony transcript(s) refused (listed above); the rest is in the database", csum.Refused)
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
	if s.Conflicts > 0 {
		fmt.Fprintf(w, "Conflicts:  %d record(s) state something else than the stored record of their eventID: kept apart, listed in the reports\n", s.Conflicts)
	}
	fmt.Fprintf(w, "Non-KMS:    %d records skipped\n", s.NonKMS)
	if s.AliasesResolved > 0 {
		fmt.Fprintf(w, "Aliases:    %d events resolved to a key through alias history\n", s.AliasesResolved)
	}
	if s.FilesSkipped > 0 {
		fmt.Fprintf(w, "Skipped:    %d entries not read (%s)\n", s.FilesSkipped, skippedByReason(s.Skipped))
	}
	fmt.Fprintf(w, "Time:       %s (%.0f KMS events/s)\n", s.Elapsed.Round(time.Millisecond), rate)
	if s.Cancelled {
		fmt.Fprintln(w, "Cancelled:  files committed so far are kept; run the same command again to finish.")
	}
	for _, x := range s.Skipped {
		detail := ""
		if x.Detail != "" {
			detail = " (" + x.Detail + ")"
		}
		fmt.Fprintf(w, "SKIPPED %s: %s%s\n", x.Path, x.Reason, detail)
	}
	for _, m := range s.Warnings {
		fmt.Fprintf(w, "WARNING %s\n", m)
	}
	for _, f := range s.Failed {
		sum := ""
		if f.SHA256 != "" {
			sum = " (SHA-256 " + f.SHA256 + ")"
		}
		fmt.Fprintf(w, "FAILED %s%s: %s\n", f.Path, sum, f.Error)
	}
}

// skippedByReason counts skipped entries by reason, in a stable order.
func skippedByReason(sk []ingest.Skipped) string {
	n := map[string]int{}
	var order []string
	for _, s := range sk {
		if n[s.Reason] == 0 {
			order = append(order, s.Reason)
		}
		n[s.Reason]++
	}
	sort.Strings(order)
	parts := make([]string, len(order))
	for i, r := range order {
		parts[i] = fmt.Sprintf("%d %s", n[r], r)
	}
	return strings.Join(parts, ", ")
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

// reportCeremonies prints the outcome of an ingest of ceremonies only.
// paperHashes reads the --expect CEREMONY=HASH|WORDS flags into the final
// hash of each ceremony path given (split at the last "=": a path may hold
// one, a hash or its words never do). A CEREMONY that is not one of the
// ceremony paths of the command is a mistake worth stopping for: the
// reviewer believes a transcript was checked against its paper.
func paperHashes(flags []string, cerPaths []string) (map[string][]byte, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	given := map[string]string{}
	for _, p := range cerPaths {
		given[filepath.Clean(p)] = p
	}
	out := map[string][]byte{}
	for _, f := range flags {
		i := strings.LastIndex(f, "=")
		if i <= 0 {
			return nil, usagef("--expect %q: want CEREMONY=HASH|WORDS (a ceremony directory or transcript, the final hash on its signed paper)", f)
		}
		p, ok := given[filepath.Clean(f[:i])]
		if !ok {
			return nil, usagef("--expect %s: not one of the ceremony directories or transcripts given to this command", f[:i])
		}
		h, err := transcript.ParseHash(f[i+1:])
		if err != nil {
			return nil, usagef("--expect %s: %v", f[:i], err)
		}
		if _, dup := out[p]; dup {
			return nil, usagef("--expect %s: given twice", f[:i])
		}
		out[p] = h
	}
	return out, nil
}

func reportCeremonies(env *Env, s *ceremonies.Summary, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s); err != nil {
			return err
		}
	} else {
		s.WriteText(env.Stdout)
	}
	if s.Refused > 0 {
		return fmt.Errorf("%d ceremony transcript(s) refused (listed above); the rest is in the database", s.Refused)
	}
	return nil
}
