package cloudtrail

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Format is the shape of a document, detected from its first member name.
type Format uint8

const (
	FormatUnknown      Format = iota
	FormatLogFile             // CloudTrail S3 delivery: {"Records":[...]}
	FormatLookupEvents        // aws cloudtrail lookup-events: {"Events":[{"CloudTrailEvent":"..."}]}
	FormatLines               // one record per line (CloudTrail Lake, Athena), or one bare record
	FormatInventory           // a KMS key inventory document (see package inventory)
)

func (f Format) String() string {
	switch f {
	case FormatLogFile:
		return "cloudtrail-log"
	case FormatLookupEvents:
		return "lookup-events"
	case FormatLines:
		return "json-lines"
	case FormatInventory:
		return "kms-inventory"
	}
	return "unknown"
}

// ErrInventory is returned by Reader.Next when the input turns out to be a
// KMS key inventory document; Reader.Unread gives the whole input back.
var ErrInventory = errors.New("document is a KMS key inventory, not CloudTrail events")

// ErrTooLarge is returned for a single JSON value larger than MaxValueSize.
var ErrTooLarge = errors.New("JSON value too large")

// inventoryKeys are first member names of the inventory documents: our
// combined format and the raw outputs of list-keys, describe-key,
// get-key-rotation-status and list-aliases.
var inventoryKeys = map[string]bool{
	"Inventory": true, "Keys": true, "KeyMetadata": true, "Aliases": true,
	"KeyRotationEnabled": true, "KeyId": true, "RotationPeriodInDays": true,
	"NextRotationDate": true, "Truncated": true, "NextMarker": true,
}

// Reader streams raw records out of one input without holding more than one
// record (plus a read buffer) in memory, whatever the input's size.
type Reader struct {
	src  io.Reader
	buf  []byte
	r, w int
	base int64 // stream offset of buf[0]
	eof  bool
	rerr error

	// MaxValueSize bounds one record (or one lookup-events entry). CloudTrail
	// caps an event at 256 KB; the default leaves room for escaping.
	MaxValueSize int

	state   int
	inArray int // 1 Records, 2 Events
	first   bool
	format  Format
	docs    int
	count   int
	noBytes bool
	lastOff int64 // stream offset of the last record returned, -1 if not verbatim
}

const (
	stTop = iota
	stMembers
	stArray
	stDone
)

// NewReader returns a Reader over src (already decompressed).
func NewReader(src io.Reader) *Reader {
	return &Reader{src: src, buf: make([]byte, 0, 256<<10), MaxValueSize: 8 << 20, noBytes: true, lastOff: -1}
}

// Reset reuses the Reader (and its buffer) for another input; a worker
// reads thousands of small files, and a fresh buffer for each costs more
// than parsing them.
func (rd *Reader) Reset(src io.Reader) {
	max := rd.MaxValueSize
	buf := rd.buf[:0]
	if cap(buf) > 4<<20 {
		buf = make([]byte, 0, 256<<10) // do not keep a huge buffer after one huge record
	}
	*rd = Reader{src: src, buf: buf, MaxValueSize: max, noBytes: true, lastOff: -1}
}

// Format is the detected format, known after the first call to Next.
func (rd *Reader) Format() Format { return rd.format }

// Offset is the number of input bytes consumed so far.
func (rd *Reader) Offset() int64 { return rd.base + int64(rd.r) }

// RecordOffset is the offset in the input stream of the record the last
// Next returned, or -1 when that record is not a verbatim slice of the
// input (a lookup-events CloudTrailEvent, decoded from a JSON string). The
// ingest uses it to point at records inside the file it keeps as evidence
// instead of copying and compressing them again.
func (rd *Reader) RecordOffset() int64 { return rd.lastOff }

// Count is the number of records returned so far.
func (rd *Reader) Count() int { return rd.count }

// Unread returns the input from the start of the current document: after
// ErrInventory it is the whole inventory document and the rest of the input.
func (rd *Reader) Unread() io.Reader {
	rest := append([]byte(nil), rd.buf[rd.r:rd.w]...)
	if rd.eof {
		return bytes.NewReader(rest)
	}
	return io.MultiReader(bytes.NewReader(rest), rd.src)
}

func (rd *Reader) errf(format string, a ...any) error {
	return fmt.Errorf("at byte %d: %s", rd.Offset(), fmt.Sprintf(format, a...))
}

// fill reads more input, compacting or growing the buffer. It returns false
// at end of input or on a read error (kept in rd.rerr).
func (rd *Reader) fill() bool {
	if rd.eof {
		return false
	}
	if rd.r > 0 && rd.w == cap(rd.buf) {
		n := copy(rd.buf[:cap(rd.buf)], rd.buf[rd.r:rd.w])
		rd.base += int64(rd.r)
		rd.r, rd.w = 0, n
	}
	if rd.w == cap(rd.buf) {
		if cap(rd.buf) >= rd.MaxValueSize+(64<<10) {
			rd.rerr = ErrTooLarge
			return false
		}
		nb := make([]byte, 0, 2*cap(rd.buf))
		rd.buf = nb[:copy(nb[:cap(nb)], rd.buf[:rd.w])]
	}
	rd.buf = rd.buf[:cap(rd.buf)]
	n, err := rd.src.Read(rd.buf[rd.w:])
	rd.w += n
	rd.buf = rd.buf[:rd.w]
	if n > 0 {
		rd.noBytes = false
	}
	if err != nil {
		rd.eof = true
		if err != io.EOF {
			rd.rerr = err
		}
		return n > 0
	}
	return true
}

// ws skips whitespace, filling as needed; false at end of input.
func (rd *Reader) ws() bool {
	for {
		for rd.r < rd.w {
			switch rd.buf[rd.r] {
			case ' ', '\t', '\n', '\r':
				rd.r++
			default:
				return true
			}
		}
		if !rd.fill() {
			return false
		}
	}
}

// readErr turns a failed fill into the error a person should see.
func (rd *Reader) readErr(what string) error {
	if rd.rerr == ErrTooLarge {
		return rd.errf("%s is larger than %d MiB", what, rd.MaxValueSize>>20)
	}
	if rd.rerr != nil {
		return rd.rerr
	}
	return rd.errf("unexpected end of input in %s (file truncated?)", what)
}

// Next returns the next raw record. The slice is valid until the next call.
// It returns io.EOF after the last record.
func (rd *Reader) Next() ([]byte, error) {
	for {
		switch rd.state {
		case stDone:
			return nil, io.EOF
		case stTop:
			if !rd.ws() {
				if rd.rerr != nil {
					return nil, rd.readErr("input")
				}
				if rd.docs == 0 {
					if rd.noBytes {
						return nil, errors.New("file is empty")
					}
					return nil, errors.New("file holds only whitespace")
				}
				rd.state = stDone
				return nil, io.EOF
			}
			if rd.buf[rd.r] != '{' {
				return nil, rd.errf("expected a JSON object, found %q (not a CloudTrail file?)", rd.buf[rd.r])
			}
			key, err := rd.firstKey()
			if err != nil {
				return nil, err
			}
			switch {
			case key == "Records" || key == "Events" || key == "NextToken":
				if key == "Events" || key == "NextToken" {
					rd.setFormat(FormatLookupEvents)
				} else {
					rd.setFormat(FormatLogFile)
				}
				rd.r++ // '{'
				rd.docs++
				rd.state = stMembers
				rd.first = true
			case inventoryKeys[key]:
				if rd.count > 0 {
					return nil, rd.errf("a KMS inventory document follows CloudTrail records in the same file")
				}
				rd.format = FormatInventory
				return nil, ErrInventory
			default:
				// A bare record: JSON Lines or a single-record file.
				rd.setFormat(FormatLines)
				n, err := rd.value("record")
				if err != nil {
					return nil, err
				}
				raw := rd.buf[rd.r : rd.r+n]
				rd.lastOff = rd.base + int64(rd.r)
				rd.r += n
				rd.docs++
				rd.count++
				return raw, nil
			}
		case stMembers:
			if !rd.ws() {
				return nil, rd.readErr("top-level object")
			}
			c := rd.buf[rd.r]
			if c == '}' {
				rd.r++
				rd.state = stTop
				continue
			}
			if !rd.first {
				if c != ',' {
					return nil, rd.errf("want ',' or '}' after a top-level member, got %q", c)
				}
				rd.r++
				if !rd.ws() {
					return nil, rd.readErr("top-level object")
				}
			}
			rd.first = false
			name, err := rd.memberName()
			if err != nil {
				return nil, err
			}
			if !rd.ws() {
				return nil, rd.readErr("top-level object")
			}
			if (name == "Records" || name == "Events") && rd.buf[rd.r] == '[' {
				rd.r++
				rd.inArray = 1
				if name == "Events" {
					rd.inArray = 2
				}
				rd.state = stArray
				rd.first = true
				continue
			}
			// Any other member (NextToken, or a null Records): skip its value.
			n, err := rd.value("member " + name)
			if err != nil {
				return nil, err
			}
			rd.r += n
		case stArray:
			if !rd.ws() {
				return nil, rd.readErr("the Records array")
			}
			c := rd.buf[rd.r]
			if c == ']' {
				rd.r++
				rd.state = stMembers
				continue
			}
			if !rd.first {
				if c != ',' {
					return nil, rd.errf("want ',' or ']' between records, got %q", c)
				}
				rd.r++
				if !rd.ws() {
					return nil, rd.readErr("the Records array")
				}
			}
			rd.first = false
			n, err := rd.value("record")
			if err != nil {
				return nil, err
			}
			raw := rd.buf[rd.r : rd.r+n]
			rd.lastOff = rd.base + int64(rd.r)
			rd.r += n
			rd.count++
			if rd.inArray == 2 {
				rd.lastOff = -1
				return lookupEvent(raw, rd.count)
			}
			return raw, nil
		}
	}
}

func (rd *Reader) setFormat(f Format) {
	if rd.format == FormatUnknown {
		rd.format = f
	}
}

// firstKey peeks the first member name of the object at rd.r without
// consuming anything.
func (rd *Reader) firstKey() (string, error) {
	for {
		i := rd.r + 1
		for i < rd.w && isSpace(rd.buf[i]) {
			i++
		}
		if i < rd.w {
			switch rd.buf[i] {
			case '}':
				return "", nil
			case '"':
				if j := bytes.IndexByte(rd.buf[i+1:rd.w], '"'); j >= 0 {
					return string(rd.buf[i+1 : i+1+j]), nil
				}
			default:
				return "", rd.errf("invalid JSON object start")
			}
		}
		if rd.w-rd.r > 64<<10 {
			return "", rd.errf("no member name in the first 64 KiB of an object")
		}
		if !rd.fill() {
			return "", rd.readErr("the first object")
		}
	}
}

// memberName reads `"name"` and the following colon.
func (rd *Reader) memberName() (string, error) {
	if rd.buf[rd.r] != '"' {
		return "", rd.errf("want a member name, got %q", rd.buf[rd.r])
	}
	n, err := rd.value("member name")
	if err != nil {
		return "", err
	}
	d := dec{b: rd.buf[rd.r : rd.r+n]}
	name, err := d.bstr()
	if err != nil {
		return "", rd.errf("%v", err)
	}
	s := string(name)
	rd.r += n
	if !rd.ws() {
		return "", rd.readErr("top-level object")
	}
	if rd.buf[rd.r] != ':' {
		return "", rd.errf("want ':' after member name, got %q", rd.buf[rd.r])
	}
	rd.r++
	return s, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// value finds the extent of the JSON value at rd.r (which is not
// whitespace), reading more input as needed, and returns its length. It only
// matches brackets and strings; Parse validates the record fully. Truncation
// is detected here.
func (rd *Reader) value(what string) (int, error) {
	i := 0 // relative to rd.r, which fill may move
	c := rd.buf[rd.r]
	switch {
	case c == '{' || c == '[':
		depth := 0
		for {
			b := rd.buf[rd.r:rd.w]
			for i < len(b) {
				switch b[i] {
				case '{', '[':
					depth++
					i++
				case '}', ']':
					depth--
					i++
					if depth == 0 {
						return i, nil
					}
				case '"':
					j, ok := stringEnd(b, i)
					if !ok {
						goto more
					}
					i = j
				default:
					i++
				}
			}
		more:
			if !rd.fill() {
				return 0, rd.readErr(what)
			}
		}
	case c == '"':
		for {
			if j, ok := stringEnd(rd.buf[rd.r:rd.w], 0); ok {
				return j, nil
			}
			if !rd.fill() {
				return 0, rd.readErr(what)
			}
		}
	default:
		// A scalar: up to the next delimiter.
		for {
			b := rd.buf[rd.r:rd.w]
			for i < len(b) {
				switch b[i] {
				case ',', ']', '}', ' ', '\t', '\n', '\r', ':':
					if i == 0 {
						return 0, rd.errf("expected a %s, found %q", what, b[0])
					}
					return i, nil
				}
				i++
			}
			if !rd.fill() {
				if rd.rerr != nil {
					return 0, rd.readErr(what)
				}
				return i, nil
			}
		}
	}
}

// stringEnd returns the index just past the closing quote of the string
// starting at b[i] == '"', or false if b ends first.
func stringEnd(b []byte, i int) (int, bool) {
	j := i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, false
		}
		q := j + k
		// An odd run of backslashes before the quote escapes it.
		bs := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			bs++
		}
		if bs%2 == 0 {
			return q + 1, true
		}
		j = q + 1
	}
}

// lookupEvent extracts the CloudTrailEvent JSON text of one lookup-events
// entry: that decoded string is the record, byte for byte.
func lookupEvent(entry []byte, n int) ([]byte, error) {
	d := dec{b: entry}
	more, err := d.objBegin()
	for more && err == nil {
		var k []byte
		if k, err = d.objKey(); err != nil {
			break
		}
		if string(k) == "CloudTrailEvent" {
			d.ws()
			if d.peek() != '"' {
				return nil, &RecordError{Index: n, Err: errors.New("CloudTrailEvent is not a JSON string")}
			}
			s, err := d.bstr()
			if err != nil {
				return nil, &RecordError{Index: n, Err: err}
			}
			if len(s) == 0 {
				return nil, &RecordError{Index: n, Err: errors.New("CloudTrailEvent is an empty string")}
			}
			return s, nil
		}
		if err = d.skip(); err != nil {
			break
		}
		more, err = d.objNext()
	}
	if err != nil {
		return nil, &RecordError{Index: n, Err: err}
	}
	return nil, &RecordError{Index: n, Err: errors.New("lookup-events entry has no CloudTrailEvent")}
}
