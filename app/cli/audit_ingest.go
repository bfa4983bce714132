package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/keyceremony/keyceremony/audit/ingest"
)

func auditIngest(ctx context.Context, env *Env, args []string) error {
	fs := auditFlags(env, "ingest", "ingest [--db PATH] [--json] [--workers N] PATH... (files, directories, .tar/.zip, - for stdin)")
	db := fs.String("db", "", "audit database (default: <user config dir>/keyceremony/audit.db)")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	workers := fs.Int("workers", 0, "parsing goroutines (default: all cores)")
	noProgress := fs.Bool("no-progress", false, "no progress bar even on a terminal")
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
