package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyceremony/keyceremony/audit/cloudtrail"
	"github.com/keyceremony/keyceremony/audit/inventory"
	"github.com/keyceremony/keyceremony/audit/store"
)

// The pipeline: workers hand each file to the single writer as a unit, a
// stream of batches; a budget bounds the parsed batches waiting for the
// writer, whatever the input size.

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
