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
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyceremony/keyceremony/audit/cloudtrail"
	"github.com/keyceremony/keyceremony/audit/inventory"
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
}

// Summary is the outcome of a run.
type Summary struct {
	Database        string        `json:"database"`
	FilesOK         int           `json:"files_ok"`
	FilesDuplicate  int           `json:"files_duplicate"` // same SHA-256 as a file already loaded
	FilesFailed     int           `json:"files_failed"`
	FilesIgnored    int           `json:"files_ignored"` // walked files with unknown extensions
	InventoryFiles  int           `json:"inventory_files"`
	InventoryKeys   int           `json:"inventory_keys"`
	Records         int64         `json:"records"`
	KMSNew          int64         `json:"kms_events_new"`
	KMSDuplicate    int64         `json:"kms_events_duplicate"`
	NonKMS          int64         `json:"non_kms_skipped"`
	AliasesResolved int           `json:"alias_events_resolved"`
	Bytes           int64         `json:"bytes"`
	Elapsed         time.Duration `json:"elapsed_ns"`
	Cancelled       bool          `json:"cancelled"`
	Failed          []FileError   `json:"failed,omitempty"`
	Ignored         []string      `json:"ignored,omitempty"`
}

const (
	blockSize       = 256 << 10 // raw bytes per evidence block
	smallFile       = 8 << 20   // files up to this size are read into memory once
	streamThreshold = 8 << 20   // a file's parsed batches held before streaming to the writer
	budgetTotal     = 32 << 20  // parsed batches waiting for the writer, all workers together
	streamDepth     = 4         // batches in flight for a streamed file
	// maxFileBlock bounds the decompressed size of a gzip file kept whole
	// as its own evidence block: reading one record back decompresses the
	// file up to it, which must stay cheap (CloudTrail delivers files of a
	// few MB at most; a larger one gets 256 KiB blocks of its own).
	maxFileBlock = 16 << 20

	// Bulk-load heuristic: input size to events, assuming gzipped logs.
	bulkMinBytes  = 16 << 20
	gzipRatio     = 8
	bytesPerEvent = 1500
)

type item struct {
	b      *store.Batch
	budget int64
	raw    []byte // the buffer the records alias, recycled after writing
}

// Batch buffers are recycled: a million events pass through some 5,000
// of them, and allocating each anew costs more in GC than parsing.
var (
	rawPool  = sync.Pool{New: func() any { b := make([]byte, 0, blockSize+64<<10); return &b }}
	recPool  = sync.Pool{New: func() any { r := make([]cloudtrail.Record, 0, 512); return &r }}
	compPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}
	offsPool = sync.Pool{New: func() any { o := make([]int64, 0, 512); return &o }}
)

// recycle returns a written (or dropped) batch's buffers to the pools.
func recycle(it item) {
	if it.raw != nil && cap(it.raw) == blockSize+64<<10 {
		r := it.raw[:0]
		rawPool.Put(&r)
	}
	if it.b != nil {
		recs := it.b.Records[:0]
		clear(recs[:cap(recs)])
		recPool.Put(&recs)
		if cap(it.b.Block) > 0 {
			c := it.b.Block[:0]
			compPool.Put(&c)
		}
		if cap(it.b.FileOffs) > 0 {
			o := it.b.FileOffs[:0]
			offsPool.Put(&o)
		}
	}
}

type unitEnd struct {
	fe       store.FileEnd
	budget   int64 // held for fe.Block (the file kept as evidence) until written
	err      error
	dupOf    int64
	inv      []*inventory.Doc
	invBlock []byte
	invSize  int
}

// unit is one logical file on its way to the writer.
type unit struct {
	meta store.FileMeta
	ch   chan item
	end  chan unitEnd
	// complete: the worker parsed the whole file before queueing it, so its
	// end (errors, SHA-256) is known before the writer starts on it.
	complete bool
}

type pipeline struct {
	ctx    context.Context
	cancel context.CancelFunc
	opt    Options
	w      *store.Writer
	queue  chan *unit
	level  int

	budget     atomic.Int64
	budgetMu   sync.Mutex
	budgetCond *sync.Cond
	bytesDone  atomic.Int64
	filesTotal atomic.Int64

	mu    sync.Mutex
	known map[[32]byte]int64

	sum          Summary
	prog         Progress
	lastProgress time.Time
	start        time.Time
}

// Run loads the given paths (files, directories, archives, "-" for
// standard input) into st. Per-file failures are reported in the Summary,
// not as an error; the error is for failures of the run itself (the
// database) and for cancellation, in which case the Summary says what was
// committed before it.
func Run(ctx context.Context, st *store.Store, paths []string, opt Options) (*Summary, error) {
	start := time.Now()
	srcs, ignored, err := expand(paths)
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
	// The writer must finish its current file and commit even when ctx is
	// cancelled; the pipeline stops at file boundaries instead.
	w, err := st.NewWriter(context.WithoutCancel(ctx))
	if err != nil {
		return nil, err
	}
	defer w.Close()
	if opt.TxEvents > 0 {
		w.MaxTxEvents = opt.TxEvents
	}
	if _, err := w.StartRun(opt.Args); err != nil {
		return nil, err
	}
	// A load that will at least double the table runs without the
	// indexes, deduplicating eventIDs in memory, and builds them at the end.
	var total int64
	bulk := false
	for _, s := range srcs {
		total += s.size
	}
	if existing, err := w.EventCount(); err != nil {
		return nil, err
	} else if est := total * gzipRatio / bytesPerEvent; opt.Bulk == BulkOn || (opt.Bulk == BulkAuto && total >= bulkMinBytes && est > existing) {
		w.BulkEvents = est
		if err := w.DropIndexes(); err != nil {
			return nil, err
		}
		bulk = true
	}
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
	p.sum.FilesIgnored, p.sum.Ignored = len(ignored), ignored
	p.prog.BytesTotal = total
	p.prog.Phase = "loading"
	p.filesTotal.Store(int64(len(srcs)))

	srcCh := make(chan source)
	var wg sync.WaitGroup
	for i := 0; i < opt.Workers; i++ {
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
			case <-pctx.Done():
				return
			}
		}
	}()

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
	if fatal != nil {
		return &p.sum, fatal
	}
	if ctx.Err() != nil {
		p.sum.Cancelled = true
	}
	// A bulk load resolves aliases before building the indexes: one pass
	// over the table, and updates that maintain no index (see
	// store.Writer.ResolveAliases). Otherwise after: it walks each alias's
	// events through its index.
	resolve := func() error {
		if p.sum.Cancelled {
			return nil
		}
		p.prog.Phase = "resolving aliases"
		p.report(true)
		n, err := w.ResolveAliases()
		if err != nil {
			return fmt.Errorf("resolve aliases: %w", err)
		}
		p.sum.AliasesResolved = n
		return nil
	}
	if bulk {
		if err := resolve(); err != nil {
			return &p.sum, err
		}
	}
	p.prog.Phase = "indexing"
	p.report(true)
	// Even after a cancellation, and also when an earlier bulk load was
	// killed before it got here: what is committed must be indexed. A no-op
	// when every index exists.
	if err := w.BuildIndexes(); err != nil {
		return &p.sum, fmt.Errorf("build indexes: %w", err)
	}
	if !bulk {
		if err := resolve(); err != nil {
			return &p.sum, err
		}
	}
	status := "done"
	if p.sum.Cancelled {
		status = "cancelled"
	}
	if err := w.FinishRun(store.RunTotals{FilesOK: p.sum.FilesOK, FilesDup: p.sum.FilesDuplicate,
		FilesFailed: p.sum.FilesFailed, KMSNew: int(p.sum.KMSNew), KMSDup: int(p.sum.KMSDuplicate),
		NonKMS: int(p.sum.NonKMS), Status: status}); err != nil {
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

func (p *pipeline) drain(u *unit) {
	for it := range u.ch {
		p.release(it.budget)
	}
	e := <-u.end
	p.release(e.budget)
}

func (p *pipeline) addBytes(n int64) { p.bytesDone.Add(n) }

func (p *pipeline) isKnown(sum [32]byte) (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id, ok := p.known[sum]
	return id, ok
}

func (p *pipeline) markKnown(sum [32]byte, id int64) {
	p.mu.Lock()
	p.known[sum] = id
	p.mu.Unlock()
}

// acquire takes n bytes of the shared budget for parsed batches, waiting
// while the writer drains the queue. It cannot deadlock: every worker holds
// less than streamThreshold locally, and the budget is larger than all
// workers' local holdings plus one batch, so when the queue is empty some
// worker can always proceed.
func (p *pipeline) acquire(n int64) error {
	p.budgetMu.Lock()
	defer p.budgetMu.Unlock()
	for p.budget.Load() < n {
		if err := p.ctx.Err(); err != nil {
			return err
		}
		p.budgetCond.Wait()
	}
	p.budget.Add(-n)
	return nil
}

func (p *pipeline) release(n int64) {
	if n == 0 {
		return
	}
	p.budgetMu.Lock()
	p.budget.Add(n)
	p.budgetMu.Unlock()
	p.budgetCond.Broadcast()
}

func (p *pipeline) enqueue(u *unit) error {
	select {
	case p.queue <- u:
		return nil
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
}

// write is the writer loop: one unit at a time, in queue order.
func (p *pipeline) write() error {
	for u := range p.queue {
		if p.ctx.Err() != nil {
			go p.drain(u)
			continue
		}
		if err := p.writeUnit(u); err != nil {
			go p.drain(u)
			return err
		}
		p.report(false)
	}
	return p.w.Commit()
}

func (p *pipeline) writeUnit(u *unit) error {
	w := p.w
	p.prog.Current = u.meta.Path
	if u.complete {
		return p.writeComplete(u)
	}
	began := false
	for it := range u.ch {
		if !began {
			if err := w.BeginFile(u.meta, true); err != nil {
				return err
			}
			began = true
		}
		if err := p.add(u, it); err != nil {
			return err
		}
	}
	e := <-u.end
	defer p.release(e.budget)
	p.prog.FilesDone++
	switch {
	case e.dupOf != 0:
		p.sum.FilesDuplicate++
		return w.RecordName(e.dupOf, u.meta.Path)
	case e.err != nil:
		if isCancel(e.err) {
			if began {
				return w.AbortFileQuietly()
			}
			return nil
		}
		if began {
			return w.AbortFile(p.failed(u, e), shaOrNil(e.fe.SHA256))
		}
		return w.RecordFailure(u.meta, p.failed(u, e), shaOrNil(e.fe.SHA256))
	}
	if !began {
		if err := w.BeginFile(u.meta, true); err != nil {
			return err
		}
	}
	return p.commit(u, e)
}

func isCancel(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func (p *pipeline) failed(u *unit, e unitEnd) error {
	p.sum.FilesFailed++
	p.prog.FilesFailed++
	p.sum.Failed = append(p.sum.Failed, FileError{Path: u.meta.Path, Error: e.err.Error()})
	return fmt.Errorf("ingest %s: %v", u.meta.Path, e.err)
}

func (p *pipeline) add(u *unit, it item) error {
	_, _, err := p.w.AddBatch(it.b)
	p.release(it.budget)
	p.prog.KMSEvents += int64(len(it.b.Records))
	recycle(it)
	if err != nil {
		// A database error, not bad input: the run cannot go on.
		return fmt.Errorf("ingest %s: %w", u.meta.Path, err)
	}
	p.report(false)
	return nil
}

// writeComplete writes a file the worker has fully parsed: errors and
// duplicates are settled before any row is written, so no savepoint is needed.
func (p *pipeline) writeComplete(u *unit) error {
	w := p.w
	e := <-u.end
	defer p.release(e.budget)
	p.prog.FilesDone++
	release := func() {
		for it := range u.ch {
			p.release(it.budget)
			recycle(it)
		}
	}
	switch {
	case e.dupOf != 0:
		release()
		p.sum.FilesDuplicate++
		return w.RecordName(e.dupOf, u.meta.Path)
	case e.err != nil:
		release()
		if isCancel(e.err) {
			return nil
		}
		return w.RecordFailure(u.meta, p.failed(u, e), shaOrNil(e.fe.SHA256))
	}
	if id, dup, err := w.KnownSHA(e.fe.SHA256); err != nil {
		release()
		return err
	} else if dup {
		release()
		p.sum.FilesDuplicate++
		return w.RecordName(id, u.meta.Path)
	}
	if err := w.BeginFile(u.meta, false); err != nil {
		release()
		return err
	}
	for it := range u.ch {
		if err := p.add(u, it); err != nil {
			release()
			return err
		}
	}
	return p.commit(u, e)
}

// commit ends a file whose rows are written (or an inventory file).
func (p *pipeline) commit(u *unit, e unitEnd) error {
	w := p.w
	if e.inv != nil {
		n, err := w.ImportInventory(e.inv, e.invBlock, e.invSize)
		if err != nil {
			return fmt.Errorf("ingest %s: %w", u.meta.Path, err)
		}
		e.fe.Records = n
		res, err := w.CommitFile(e.fe)
		if err != nil {
			return fmt.Errorf("ingest %s: %w", u.meta.Path, err)
		}
		if res.Duplicate {
			p.sum.FilesDuplicate++
		} else {
			p.sum.InventoryFiles++
			p.sum.InventoryKeys += n
			p.markKnown(e.fe.SHA256, res.FileID)
		}
		return nil
	}
	res, err := w.CommitFile(e.fe)
	if err != nil {
		return fmt.Errorf("ingest %s: %w", u.meta.Path, err)
	}
	if res.Duplicate {
		p.sum.FilesDuplicate++
		return nil
	}
	p.markKnown(e.fe.SHA256, res.FileID)
	p.sum.FilesOK++
	p.sum.Records += int64(e.fe.Records)
	p.sum.KMSNew += int64(res.KMSNew)
	p.sum.KMSDuplicate += int64(res.KMSDup)
	p.sum.NonKMS += int64(e.fe.NonKMS)
	p.prog.KMSNew += int64(res.KMSNew)
	return nil
}

func shaOrNil(s [32]byte) []byte {
	if s == ([32]byte{}) {
		return nil
	}
	return s[:]
}

func (p *pipeline) report(final bool) {
	if p.opt.Progress == nil {
		return
	}
	now := time.Now()
	if !final && now.Sub(p.lastProgress) < p.opt.ProgressEvery {
		return
	}
	p.lastProgress = now
	pr := p.prog
	pr.FilesTotal = int(p.filesTotal.Load())
	pr.BytesDone = p.bytesDone.Load()
	pr.Elapsed = now.Sub(p.start)
	p.opt.Progress(pr)
}

// worker reads, parses and compresses files.
type worker struct {
	p         *pipeline
	inArchive bool // reading members of an archive
	rd        *cloudtrail.Reader
	zr        *gzip.Reader
	fw        *flate.Writer
	cbuf      bytes.Buffer
}

func newWorker(p *pipeline) *worker {
	fw, _ := flate.NewWriter(io.Discard, p.level)
	return &worker{p: p, rd: cloudtrail.NewReader(nil), fw: fw}
}

func (wk *worker) source(s source) {
	p := wk.p
	if s.stdin {
		in := p.opt.Stdin
		if in == nil {
			in = os.Stdin
		}
		wk.stream(metaFor("-", 0), &countingReader{r: in, p: p}, nil, nil, time.Now())
		return
	}
	f, err := os.Open(s.path)
	if err != nil {
		wk.failEarly(metaFor(s.path, s.size), err)
		return
	}
	defer f.Close()
	meta := metaFor(s.path, s.size)
	if s.size <= smallFile {
		data, err := io.ReadAll(f)
		p.addBytes(int64(len(data)))
		if err != nil {
			wk.failEarly(meta, err)
			return
		}
		meta.Size = int64(len(data))
		if isZip(data) {
			wk.zip(bytes.NewReader(data), int64(len(data)), s.path)
			return
		}
		sum := sha256.Sum256(data)
		if id, ok := p.isKnown(sum); ok {
			wk.dup(meta, id)
			return
		}
		wk.stream(meta, bytes.NewReader(data), data, &sum, s.modTime)
		return
	}
	// A large file: hash it first (cheap next to parsing) so a file already
	// loaded is skipped without parsing it again.
	h := sha256.New()
	head := make([]byte, 4)
	n, _ := io.ReadFull(f, head)
	if isZip(head[:n]) {
		wk.zip(f, s.size, s.path)
		p.addBytes(s.size)
		return
	}
	h.Write(head[:n])
	if _, err := io.Copy(h, f); err != nil {
		wk.failEarly(meta, err)
		return
	}
	var sum [32]byte
	h.Sum(sum[:0])
	if id, ok := p.isKnown(sum); ok {
		p.addBytes(s.size)
		wk.dup(meta, id)
		return
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		wk.failEarly(meta, err)
		return
	}
	wk.stream(meta, &countingReader{r: f, p: p}, nil, &sum, s.modTime)
}

func isZip(b []byte) bool { return len(b) >= 4 && string(b[:4]) == "PK\x03\x04" }

func (wk *worker) dup(meta store.FileMeta, id int64) {
	u := &unit{meta: meta, ch: make(chan item), end: make(chan unitEnd, 1)}
	close(u.ch)
	u.end <- unitEnd{dupOf: id}
	wk.p.enqueue(u)
}

func (wk *worker) failEarly(meta store.FileMeta, err error) {
	u := &unit{meta: meta, ch: make(chan item), end: make(chan unitEnd, 1)}
	close(u.ch)
	u.end <- unitEnd{err: err}
	wk.p.enqueue(u)
}

// fileState carries one file through parsing: batches are held locally
// (within the shared budget) until the file is complete, or streamed to the
// writer once the file proves large.
type fileState struct {
	wk      *worker
	meta    store.FileMeta
	u       *unit
	pending []item
	local   int64
	// block is the whole file as stored (gzip), kept as the evidence its
	// records point into; blockBudget is its share of the budget, held
	// until the writer is done with the file.
	block       []byte
	blockBudget int64
}

func (fs *fileState) emit(b *store.Batch, raw []byte) error {
	p := fs.wk.p
	size := int64(cap(b.Block)) + int64(len(b.Records))*int64(recordOverhead) + int64(cap(raw)) + 8*int64(cap(b.FileOffs))
	if fs.u == nil {
		if fs.local+size <= streamThreshold {
			if err := p.acquire(size); err != nil {
				return err
			}
			fs.pending = append(fs.pending, item{b, size, raw})
			fs.local += size
			return nil
		}
		fs.u = &unit{meta: fs.meta, ch: make(chan item, streamDepth), end: make(chan unitEnd, 1)}
		if err := p.enqueue(fs.u); err != nil {
			return err
		}
		for _, it := range fs.pending {
			if err := fs.send(it); err != nil {
				return err
			}
		}
		fs.pending = nil
	}
	return fs.send(item{b, 0, raw})
}

const recordOverhead = 400 // bytes of a cloudtrail.Record beyond its Raw

func (fs *fileState) send(it item) error {
	select {
	case fs.u.ch <- it:
		return nil
	case <-fs.wk.p.ctx.Done():
		return fs.wk.p.ctx.Err()
	}
}

// finish hands the end of the file to the writer.
func (fs *fileState) finish(e unitEnd) {
	p := fs.wk.p
	if e.err != nil {
		p.release(fs.blockBudget) // the block is not needed
	} else {
		e.budget = fs.blockBudget
	}
	fs.blockBudget = 0
	if fs.u == nil {
		if e.err != nil {
			for _, it := range fs.pending {
				p.release(it.budget)
				recycle(it)
			}
			fs.pending = nil
		}
		fs.u = &unit{meta: fs.meta, ch: make(chan item, len(fs.pending)), end: make(chan unitEnd, 1), complete: true}
		for _, it := range fs.pending {
			fs.u.ch <- it
		}
		close(fs.u.ch)
		fs.u.end <- e
		if err := p.enqueue(fs.u); err != nil {
			for _, it := range fs.pending {
				p.release(it.budget)
			}
			p.release(e.budget)
		}
		return
	}
	close(fs.u.ch)
	fs.u.end <- e
}

// stream parses one file from r (raw bytes as stored). whole is the same
// bytes when the file was read into memory (else nil); sum is the file's
// SHA-256 when already computed; otherwise it is computed while reading.
func (wk *worker) stream(meta store.FileMeta, r io.Reader, whole []byte, sum *[32]byte, modTime time.Time) {
	p := wk.p
	var h hash.Hash
	if sum == nil {
		h = sha256.New()
		r = io.TeeReader(r, h)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	meta.Compression = "none"
	var content io.Reader = br
	var gz *gzip.Reader
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		meta.Compression = "gzip"
		var zr *gzip.Reader
		var err error
		switch {
		case wk.inArchive:
			// The archive's own stream may be using wk.zr (a .tar.gz).
			zr, err = gzip.NewReader(br)
		case wk.zr == nil:
			wk.zr, err = gzip.NewReader(br)
			zr = wk.zr
		default:
			err = wk.zr.Reset(br)
			zr = wk.zr
		}
		if err != nil {
			wk.failEarly(meta, fmt.Errorf("gzip: %w", err))
			return
		}
		content = zr
		gz = zr
	}
	size := &sizeCounter{r: content}
	cbr := bufio.NewReaderSize(size, 64<<10)
	if hd, _ := cbr.Peek(262); len(hd) == 262 && string(hd[257:262]) == "ustar" {
		wk.tar(cbr, meta.Path)
		if h != nil {
			io.Copy(io.Discard, r)
		}
		return
	}
	fs := &fileState{wk: wk, meta: meta}
	if gz != nil && whole != nil && gzipISize(whole) <= maxFileBlock {
		// A small gzip file: its records are stored as offsets into the
		// file itself, kept as delivered (see store.CodecGzip).
		if err := p.acquire(int64(len(whole))); err != nil {
			wk.failEarly(meta, err)
			return
		}
		fs.block, fs.blockBudget, fs.local = whole, int64(len(whole)), int64(len(whole))
	}
	end, err := wk.parse(fs, cbr, modTime)
	if err == nil && fs.block != nil && end.inv == nil {
		// Whatever follows the JSON is part of the decompressed size the
		// block is checked against when read back.
		if _, err = io.Copy(io.Discard, cbr); err == nil {
			end.fe.Block, end.fe.BlockCodec, end.fe.BlockSize = fs.block, store.CodecGzip, size.n
		}
	}
	if err != nil && gz != nil && !isCancel(err) {
		// Corrupt compressed data usually shows first as broken JSON; the
		// gzip checksum tells the real cause.
		if _, gerr := io.Copy(io.Discard, gz); gerr != nil {
			err = fmt.Errorf("gzip: %w: the compressed file is damaged (first seen as: %v)", gerr, err)
		}
	}
	if err == nil && h != nil {
		// Hash the whole input, including anything after the JSON.
		_, err = io.Copy(io.Discard, r)
	}
	if err == nil {
		if h != nil {
			h.Sum(end.fe.SHA256[:0])
		} else {
			end.fe.SHA256 = *sum
		}
	}
	end.err = err
	if err == nil && end.inv == nil {
		end.fe.Format = wk.rd.Format().String()
	}
	fs.finish(end)
}

// parse reads records, fills batches and returns the file's end state.
func (wk *worker) parse(fs *fileState, r io.Reader, modTime time.Time) (unitEnd, error) {
	p := wk.p
	rd := wk.rd
	rd.Reset(r)
	var e unitEnd
	fe := &e.fe
	fe.Days = map[store.DayKey]*store.DayCount{}
	var rec cloudtrail.Record
	newBuf := func() []byte { return (*rawPool.Get().(*[]byte))[:0] }
	newRecs := func() []cloudtrail.Record { return (*recPool.Get().(*[]cloudtrail.Record))[:0] }
	newOffs := func() []int64 { return (*offsPool.Get().(*[]int64))[:0] }
	buf := newBuf()
	recs := newRecs()
	var offs []int64
	if fs.block != nil {
		offs = newOffs()
	}
	defer func() { // whatever was not handed over goes back
		recycle(item{raw: buf, b: &store.Batch{Records: recs, FileOffs: offs}})
	}()
	// shared: the records in buf are verbatim slices of the file kept as
	// evidence (fs.block) and go as offsets into it; otherwise they are
	// compressed into a block of their own (a lookup-events record is
	// decoded from a JSON string, so it is not in the file as such).
	shared := false
	flush := func() error {
		if len(recs) == 0 {
			return nil
		}
		raw := buf
		var b *store.Batch
		if shared {
			b = &store.Batch{Records: recs, FileOffs: offs, RawSize: len(buf)}
			offs = newOffs()
		} else {
			comp := (*compPool.Get().(*[]byte))[:0]
			cb := bytes.NewBuffer(comp)
			wk.fw.Reset(cb)
			wk.fw.Write(buf)
			if err := wk.fw.Close(); err != nil {
				return err
			}
			b = &store.Batch{Records: recs, Block: cb.Bytes(), RawSize: len(buf)}
		}
		b.Prepare()
		buf, recs = newBuf(), newRecs()
		return fs.emit(b, raw)
	}
	idx := 0
	for {
		raw, err := rd.Next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, cloudtrail.ErrInventory) {
			if idx > 0 {
				return e, errors.New("an inventory document after CloudTrail records")
			}
			return wk.inventory(rd.Unread(), modTime)
		}
		if err != nil {
			var re *cloudtrail.RecordError
			if errors.As(err, &re) {
				return e, err
			}
			if idx > 0 {
				return e, fmt.Errorf("after record %d: %w", idx, err)
			}
			return e, err
		}
		idx++
		if idx%1024 == 0 && p.ctx.Err() != nil {
			return e, p.ctx.Err()
		}
		off := rd.RecordOffset()
		if recShared := fs.block != nil && off >= 0; recShared != shared {
			if err := flush(); err != nil {
				return e, err
			}
			shared = recShared
		}
		if len(buf)+len(raw) > cap(buf) {
			if err := flush(); err != nil {
				return e, err
			}
			if len(raw) > cap(buf) {
				buf = make([]byte, 0, len(raw)) // one huge record: not pooled
			}
		}
		start := len(buf)
		buf = append(buf, raw...)
		own := buf[start:len(buf):len(buf)]
		if err := cloudtrail.Parse(own, &rec); err != nil {
			return e, &cloudtrail.RecordError{Index: idx, Err: err}
		}
		fe.Records++
		if fe.FirstTime == 0 || rec.Time < fe.FirstTime {
			fe.FirstTime = rec.Time
		}
		if rec.Time > fe.LastTime {
			fe.LastTime = rec.Time
		}
		dk := store.DayKey{Account: rec.Account, Region: rec.Region, Day: store.UnixDay(rec.Time)}
		dc := fe.Days[dk]
		if dc == nil {
			dc = &store.DayCount{}
			dk.Account, dk.Region = cloneStr(dk.Account), cloneStr(dk.Region)
			fe.Days[dk] = dc
		}
		dc.Records++
		if !rec.IsKMS() {
			fe.NonKMS++
			buf = buf[:start]
			continue
		}
		dc.KMSRecords++
		recs = append(recs, rec)
		if shared {
			offs = append(offs, off)
		}
		if len(buf) >= blockSize {
			if err := flush(); err != nil {
				return e, err
			}
		}
	}
	if err := flush(); err != nil {
		return e, err
	}
	return e, nil
}

func cloneStr(s string) string { return string([]byte(s)) }

// gzipISize is the decompressed size a gzip file's trailer states (of its
// last member, modulo 4 GiB: a hint, enough to choose how to keep it).
func gzipISize(b []byte) int64 {
	if len(b) < 18 {
		return 0
	}
	t := b[len(b)-4:]
	return int64(uint32(t[0]) | uint32(t[1])<<8 | uint32(t[2])<<16 | uint32(t[3])<<24)
}

// sizeCounter counts the decompressed bytes of a file.
type sizeCounter struct {
	r io.Reader
	n int64
}

func (c *sizeCounter) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

func (wk *worker) inventory(r io.Reader, modTime time.Time) (unitEnd, error) {
	var e unitEnd
	data, err := io.ReadAll(io.LimitReader(r, inventory.MaxSize+1))
	if err != nil {
		return e, err
	}
	docs, err := inventory.Parse(bytes.NewReader(data), modTime.Unix())
	if err != nil {
		return e, err
	}
	wk.cbuf.Reset()
	wk.fw.Reset(&wk.cbuf)
	wk.fw.Write(data)
	if err := wk.fw.Close(); err != nil {
		return e, err
	}
	e.inv, e.invBlock, e.invSize = docs, bytes.Clone(wk.cbuf.Bytes()), len(data)
	e.fe.Format = cloudtrail.FormatInventory.String()
	return e, nil
}
