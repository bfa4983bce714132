// Package ingest loads CloudTrail logs and KMS inventories into the audit
// store: a parallel pipeline that decompresses and parses on every core
// and feeds one SQLite writer.
//
//	sources -> workers (read, SHA-256, gunzip, split records, parse,
//	           compress raw blocks) -> queue of files -> one writer
//
// Each file is all or nothing: its rows go in under a SAVEPOINT inside a
// larger transaction, so a bad record rolls back only its own file, and a
// killed process leaves whole files or nothing. Memory stays bounded
// whatever the input size: a worker holds at most a few megabytes of one
// file's parsed records before handing the file to the writer as a stream.
package ingest

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/keyceremony/keyceremony/audit/store"
)

// Options tune a run. The zero value is ready to use.
type Options struct {
	// Workers is the number of parsing goroutines; 0 means GOMAXPROCS.
	Workers int
	// Progress, if set, is called from one goroutine at most every
	// ProgressEvery (default 200ms) and once at the end. A GUI must hop to
	// its UI goroutine (fyne.Do) inside it.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// Stdin is read for the argument "-".
	Stdin io.Reader
	// Args are recorded with the run as provenance.
	Args []string
	// CompressionLevel of the raw evidence blocks (DEFLATE); 0 means 2,
	// which measured smaller and faster than 1 on CloudTrail JSON.
	CompressionLevel int
	// Bulk controls dropping the secondary indexes for the load and
	// rebuilding them at the end: BulkAuto (default) does it when the input
	// will at least double the table.
	Bulk BulkMode
	// TxEvents is the number of events per write transaction (several files
	// go in one); 0 means the store's default.
	TxEvents int
	// MaxBulkIDs caps a bulk load's in-memory eventID set
	// (store.Writer.MaxBulkIDs); 0 keeps the store's default.
	MaxBulkIDs int
}

// BulkMode: see Options.Bulk.
type BulkMode int

const (
	BulkAuto BulkMode = iota
	BulkOn
	BulkOff
)

// Progress is the state of a run.
type Progress struct {
	FilesTotal  int // known inputs (archive members are added as they are found)
	FilesDone   int // committed, duplicate or failed
	FilesFailed int
	BytesTotal  int64 // input bytes as stored (compressed)
	BytesDone   int64
	KMSEvents   int64 // KMS records written (new and duplicate)
	KMSNew      int64
	Elapsed     time.Duration
	Current     string // the file being written
	// Phase is "loading", then "indexing" (building the indexes a bulk
	// load deferred, which can take seconds at a million events) and
	// "resolving aliases", and "done" in the last call.
	Phase string
}

// FileError is one input that could not be loaded.
type FileError struct {
	Path  string `json:"path"`
	Error string `json:"error"`
	// SHA256 (hex) of the content when it could be read to its end.
	SHA256 string `json:"sha256,omitempty"`
}

// Summary is the outcome of a run.
type Summary struct {
	Database       string `json:"database"`
	FilesOK        int    `json:"files_ok"`
	FilesDuplicate int    `json:"files_duplicate"` // same SHA-256 as a file already loaded
	FilesFailed    int    `json:"files_failed"`
	FilesIgnored   int    `json:"files_ignored"` // walked files with unknown extensions (also in Skipped)
	// FilesSkipped counts every entry left out (Skipped: hidden files,
	// digests, unknown names, links that loop, non-regular files, archive
	// members of those kinds), each named with its reason.
	FilesSkipped    int   `json:"files_skipped"`
	InventoryFiles  int   `json:"inventory_files"`
	InventoryKeys   int   `json:"inventory_keys"`
	Records         int64 `json:"records"`
	KMSNew          int64 `json:"kms_events_new"`
	KMSDuplicate    int64 `json:"kms_events_duplicate"`
	NonKMS          int64 `json:"non_kms_skipped"`
	AliasesResolved int   `json:"alias_events_resolved"`
	// Conflicts counts the records of this run found to differ from the
	// stored record of their eventID (kept apart, see store/writer_conflicts.go).
	Conflicts int           `json:"conflicts"`
	Bytes     int64         `json:"bytes"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	Cancelled bool          `json:"cancelled"`
	Failed    []FileError   `json:"failed,omitempty"`
	Ignored   []string      `json:"ignored,omitempty"`
	Skipped   []Skipped     `json:"skipped,omitempty"`
	// Warnings are facts about the input a reviewer should know that did
	// not stop it loading (an archive member whose name leaves the archive).
	Warnings []string `json:"warnings,omitempty"`
}

// Bulk-load heuristic: input size to events, assuming gzipped logs.
const (
	bulkMinBytes  = 16 << 20
	gzipRatio     = 8
	bytesPerEvent = 1500
)

// preloadMinEvents: from this many expected events on, the writer reads
// every dimension row once instead of each on its first use
// (store.Writer.PreloadDims).
const preloadMinEvents = 100000

// estimateEvents guesses how many events a source holds from its size:
// compressed files (by name) inflate about gzipRatio times. It sizes the
// bulk load's eventID set, so an uncompressed file is not counted eight
// times over.
func estimateEvents(s source) int64 {
	n := strings.ToLower(s.path)
	if strings.HasSuffix(n, ".gz") || strings.HasSuffix(n, ".tgz") || strings.HasSuffix(n, ".zip") {
		return s.size * gzipRatio / bytesPerEvent
	}
	return s.size / bytesPerEvent
}

// Run loads the given paths (files, directories, archives, "-" for
// standard input) into st. Per-file failures are reported in the Summary,
// not as an error; the error is for failures of the run itself (the
// database) and for cancellation, in which case the Summary says what was
// committed before it.
func Run(ctx context.Context, st *store.Store, paths []string, opt Options) (*Summary, error) {
	start := time.Now()
	srcs, skipped, err := expand(paths)
	if err != nil {
		return nil, err
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	if opt.ProgressEvery <= 0 {
		opt.ProgressEvery = 200 * time.Millisecond
	}
	level := opt.CompressionLevel
	if level == 0 {
		level = 2
	}
	known, err := st.KnownFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("read ingested files: %w", err)
	}
	var total, est int64
	for _, s := range srcs {
		total += s.size
		est += estimateEvents(s)
	}
	w, bulk, err := startWriter(ctx, st, total, est, opt)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := &pipeline{ctx: pctx, cancel: cancel, opt: opt, w: w, known: known, level: level,
		queue: make(chan *unit, 64), start: start}
	p.budgetCond = sync.NewCond(&p.budgetMu)
	p.budget.Store(max(budgetTotal, int64(opt.Workers)*streamThreshold+4<<20))
	go func() { // wake workers waiting for budget when the run is cancelled
		<-pctx.Done()
		p.budgetMu.Lock()
		p.budgetCond.Broadcast()
		p.budgetMu.Unlock()
	}()
	p.sum.Database = st.Path()
	for _, sk := range skipped {
		p.noteSkipped(sk)
	}
	p.prog.BytesTotal = total
	p.prog.Phase = "loading"
	p.filesTotal.Store(int64(len(srcs)))
	p.startWorkers(srcs)

	fatal := p.write()
	if fatal != nil {
		cancel()
	}
	// Drain whatever the workers still queue so they can exit.
	for u := range p.queue {
		go p.drain(u)
	}
	p.sum.Elapsed = time.Since(start)
	p.sum.Bytes = p.bytesDone.Load()
	p.settleNotes()
	if fatal != nil {
		// Best effort: the run's record says it failed rather than
		// staying "running"; the error that stopped it is what matters.
		p.w.FinishRun(p.totals("failed"))
		return &p.sum, fatal
	}
	if ctx.Err() != nil {
		p.sum.Cancelled = true
	}
	if err := p.finish(bulk); err != nil {
		return &p.sum, err
	}
	p.sum.Elapsed = time.Since(start)
	p.prog.Phase = "done"
	p.report(true)
	if p.sum.Cancelled {
		return &p.sum, ctx.Err()
	}
	return &p.sum, nil
}

// startWriter opens the database's writer and records the run. A load
// that will at least double the table runs without the indexes,
// deduplicating eventIDs in memory, and builds them at the end (bulk).
func startWriter(ctx context.Context, st *store.Store, total, est int64, opt Options) (w *store.Writer, bulk bool, err error) {
	// The writer must finish its current file and commit even when ctx is
	// cancelled; the pipeline stops at file boundaries instead.
	w, err = st.NewWriter(context.WithoutCancel(ctx))
	if err != nil {
		return nil, false, err
	}
	defer func() {
		if err != nil {
			w.Close()
		}
	}()
	if opt.TxEvents > 0 {
		w.MaxTxEvents = opt.TxEvents
	}
	if opt.MaxBulkIDs > 0 {
		w.MaxBulkIDs = opt.MaxBulkIDs
	}
	if _, err := w.StartRun(opt.Args); err != nil {
		return nil, false, err
	}
	existing, err := w.EventCount()
	if err != nil {
		return nil, false, err
	}
	if est >= preloadMinEvents {
		if err := w.PreloadDims(); err != nil {
			return nil, false, err
		}
	}
	if opt.Bulk == BulkOn || (opt.Bulk == BulkAuto && total >= bulkMinBytes && est > existing) {
		w.BulkEvents = est
		if err := w.DropIndexes(); err != nil {
			return nil, false, err
		}
		bulk = true
	}
	return w, bulk, nil
}

// startWorkers starts the workers and feeds them the sources; the queue is
// closed when they are done (or the run is cancelled).
func (p *pipeline) startWorkers(srcs []source) {
	srcCh := make(chan source)
	var wg sync.WaitGroup
	for i := 0; i < p.opt.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wk := newWorker(p)
			for s := range srcCh {
				wk.source(s)
			}
		}()
	}
	go func() {
		defer close(p.queue)
		defer wg.Wait()
		defer close(srcCh)
		for _, s := range srcs {
			select {
			case srcCh <- s:
			case <-p.ctx.Done():
				return
			}
		}
	}()
}

// finish ends a run whose files are written: aliases resolved, indexes
// built, conflicting records settled, the run record closed. A bulk load
// resolves aliases before building the indexes: one pass over the table,
// and updates that maintain no index (see store.Writer.ResolveAliases).
// Otherwise after: it walks each alias's events through its index.
// Conflicts are settled once the eventID index is back (each staged record
// is compared with its event); an alias event they replace is resolved
// again.
func (p *pipeline) finish(bulk bool) error {
	resolve := func() error {
		if p.sum.Cancelled {
			return nil
		}
		p.prog.Phase = "resolving aliases"
		p.report(true)
		n, err := p.w.ResolveAliases()
		if err != nil {
			return fmt.Errorf("resolve aliases: %w", err)
		}
		p.sum.AliasesResolved += n
		return nil
	}
	if bulk {
		if err := resolve(); err != nil {
			return err
		}
	}
	p.prog.Phase = "indexing"
	p.report(true)
	// Even after a cancellation, and also when an earlier bulk load was
	// killed before it got here: what is committed must be indexed. A no-op
	// when every index exists.
	if err := p.w.BuildIndexes(); err != nil {
		return fmt.Errorf("build indexes: %w", err)
	}
	n, err := p.w.ResolveConflicts()
	if err != nil {
		return fmt.Errorf("settle conflicting records: %w", err)
	}
	p.sum.Conflicts = n
	if !bulk || (n > 0 && p.w.AliasesDirty()) {
		if err := resolve(); err != nil {
			return err
		}
	}
	status := "done"
	if p.sum.Cancelled {
		status = "cancelled"
	}
	return p.w.FinishRun(p.totals(status))
}

// totals are the run's counters and notes as its provenance.
func (p *pipeline) totals(status string) store.RunTotals {
	return store.RunTotals{FilesOK: p.sum.FilesOK, FilesDup: p.sum.FilesDuplicate,
		FilesFailed: p.sum.FilesFailed, KMSNew: int(p.sum.KMSNew), KMSDup: int(p.sum.KMSDuplicate),
		NonKMS: int(p.sum.NonKMS), Status: status, Notes: p.runNotes()}
}
