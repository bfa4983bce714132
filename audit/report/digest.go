package report

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"time"
)

// Digest is the SHA-256 of a canonical serialisation of the rows a report
// was built from. Each query's rows are fed in their (deterministic) ORDER
// BY order, every value with a type tag and a length, so two databases
// give the same digest exactly when the report's inputs are the same; a
// reviewer re-running the report can compare it on the cover.
//
// Encoding: a section is 'T' len(name) name; a row is 'R' count, then per
// value 'n' (NULL), 'i' int64 big-endian, or 's' uvarint length bytes.
// Times are Unix seconds, booleans 0/1. A row of integers only (the large
// scans) is 'I' count, then each value as a zig-zag varint.
type Digest struct {
	h    hash.Hash
	buf  []byte
	rows int64
}

// NewDigest starts an empty digest.
func NewDigest() *Digest { return &Digest{h: sha256.New(), buf: make([]byte, 0, 64<<10)} }

// Section starts the rows of one query.
func (d *Digest) Section(name string) {
	d.buf = append(d.buf, 'T')
	d.buf = binary.AppendUvarint(d.buf, uint64(len(name)))
	d.buf = append(d.buf, name...)
	d.flush()
}

// Row adds one row.
func (d *Digest) Row(vals ...any) {
	d.rows++
	d.buf = append(d.buf, 'R')
	d.buf = binary.AppendUvarint(d.buf, uint64(len(vals)))
	for _, v := range vals {
		switch x := v.(type) {
		case nil:
			d.buf = append(d.buf, 'n')
		case int64:
			d.int(x)
		case int:
			d.int(int64(x))
		case bool:
			if x {
				d.int(1)
			} else {
				d.int(0)
			}
		case time.Time:
			if x.IsZero() {
				d.buf = append(d.buf, 'n')
			} else {
				d.int(x.Unix())
			}
		case string:
			d.str(x)
		case []byte:
			d.str(string(x))
		default:
			d.str(fmt.Sprint(x))
		}
	}
	d.flush()
}

// Ints adds one row of integers (database ids, times, counts), compactly:
// a million-row scan hashes in a few tens of milliseconds.
func (d *Digest) Ints(vals ...int64) {
	d.rows++
	d.buf = append(d.buf, 'I')
	d.buf = binary.AppendUvarint(d.buf, uint64(len(vals)))
	for _, v := range vals {
		d.buf = binary.AppendVarint(d.buf, v)
	}
	if len(d.buf) >= 60<<10 {
		d.flush()
	}
}

func (d *Digest) int(x int64) {
	d.buf = append(d.buf, 'i')
	d.buf = binary.BigEndian.AppendUint64(d.buf, uint64(x))
}

func (d *Digest) str(s string) {
	d.buf = append(d.buf, 's')
	d.buf = binary.AppendUvarint(d.buf, uint64(len(s)))
	d.buf = append(d.buf, s...)
}

func (d *Digest) flush() {
	if len(d.buf) >= 60<<10 {
		d.h.Write(d.buf)
		d.buf = d.buf[:0]
	}
}

// Sum returns the hex SHA-256 and the number of rows fed.
func (d *Digest) Sum() (string, int64) {
	d.h.Write(d.buf)
	d.buf = d.buf[:0]
	return hex.EncodeToString(d.h.Sum(nil)), d.rows
}
