package ingest

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	"github.com/keyceremony/keyceremony/audit/cloudtrail"
	"github.com/keyceremony/keyceremony/audit/inventory"
	"github.com/keyceremony/keyceremony/audit/store"
)

// A worker reads one source at a time: SHA-256, decompression, splitting
// and parsing records, compressing raw evidence blocks; small files whole,
// large ones as a stream.

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
	if s.err != nil {
		wk.failEarly(metaFor(s.path, 0), s.err)
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

// finishHash is the SHA-256 of a file being hashed as it is read (h over
// r, the rest of it is read now), or sum when it was hashed beforehand;
// nil when the rest cannot be read.
func finishHash(h hash.Hash, r io.Reader, sum *[32]byte) *[32]byte {
	if h == nil {
		return sum
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return nil
	}
	var s [32]byte
	h.Sum(s[:0])
	return &s
}

func isZip(b []byte) bool { return len(b) >= 4 && string(b[:4]) == "PK\x03\x04" }

func (wk *worker) dup(meta store.FileMeta, id int64) {
	u := &unit{meta: meta, ch: make(chan item), end: make(chan unitEnd, 1)}
	close(u.ch)
	u.end <- unitEnd{dupOf: id}
	wk.p.enqueue(u)
}

// failEarly hands the writer a file that failed before any record was
// parsed; sum is its SHA-256 when the whole content was read (else nil).
func (wk *worker) failEarly(meta store.FileMeta, err error, sum ...*[32]byte) {
	u := &unit{meta: meta, ch: make(chan item), end: make(chan unitEnd, 1)}
	close(u.ch)
	e := unitEnd{err: err}
	if len(sum) > 0 && sum[0] != nil {
		e.fe.SHA256 = *sum[0]
	}
	u.end <- e
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
			wk.failEarly(meta, fmt.Errorf("gzip: %w", err), finishHash(h, r, sum))
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
	} else if !isCancel(err) {
		// A failed file is named with its SHA-256 too, so a reviewer can
		// tell which content failed: hash what is left of it.
		if s := finishHash(h, r, sum); s != nil {
			end.fe.SHA256 = *s
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
			if pe, ok := store.PCAEventOf(&rec); ok {
				fe.PCA = append(fe.PCA, pe)
			}
			fe.NonKMS++
			buf = buf[:start]
			continue
		}
		dc.KMSRecords++
		rec.Offset, rec.FP = off, rec.Fingerprint()
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
