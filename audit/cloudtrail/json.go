package cloudtrail

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// dec is a minimal validating JSON decoder over one in-memory value.
//
// Why not encoding/json: a million-event ingest spends most of its CPU here,
// and we only need ~25 fields out of records that are ~1 KB each. Walking the
// bytes once, validating everything and materialising only the fields we keep,
// is several times faster than unmarshalling into structs, and lets returned
// strings alias the record bytes instead of allocating.
type dec struct {
	b     []byte
	i     int
	depth int
}

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 128

// SyntaxError is invalid JSON at a byte offset inside one record.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

func (d *dec) errf(format string, a ...any) error {
	return &SyntaxError{Offset: d.i, Msg: fmt.Sprintf(format, a...)}
}

func (d *dec) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *dec) peek() byte {
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

func (d *dec) expect(c byte) error {
	d.ws()
	if d.i >= len(d.b) {
		return d.errf("unexpected end of input, want %q", c)
	}
	if d.b[d.i] != c {
		return d.errf("want %q, got %q", c, d.b[d.i])
	}
	d.i++
	return nil
}

// bstr reads a JSON string and returns its contents. When the string has no
// escapes the result aliases d.b; otherwise it is a fresh allocation.
func (d *dec) bstr() ([]byte, error) {
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		if d.i >= len(d.b) {
			return nil, d.errf("unexpected end of input, want string")
		}
		return nil, d.errf("want string, got %q", d.b[d.i])
	}
	d.i++
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			s := d.b[start:d.i]
			d.i++
			return s, nil
		}
		if c == '\\' {
			return d.unescape(start)
		}
		if c < 0x20 {
			return nil, d.errf("control character 0x%02x in string", c)
		}
		d.i++
	}
	return nil, d.errf("unterminated string")
}

// str is bstr as a string that aliases the input where possible (see Record).
func (d *dec) str() (string, error) {
	b, err := d.bstr()
	if err != nil || len(b) == 0 {
		return "", err
	}
	return unsafe.String(unsafe.SliceData(b), len(b)), nil
}

func (d *dec) unescape(start int) ([]byte, error) {
	out := make([]byte, 0, d.i-start+16)
	out = append(out, d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return out, nil
		case c < 0x20:
			return nil, d.errf("control character 0x%02x in string", c)
		case c != '\\':
			out = append(out, c)
			d.i++
			continue
		}
		d.i++
		if d.i >= len(d.b) {
			break
		}
		e := d.b[d.i]
		d.i++
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return nil, d.errf("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				// A valid pair becomes one rune; a lone surrogate becomes
				// U+FFFD, as encoding/json does.
				if d.i+6 <= len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
					save := d.i
					d.i += 2
					r2, ok := d.hex4()
					if ok {
						if dr := utf16.DecodeRune(r, r2); dr != utf8.RuneError {
							out = utf8.AppendRune(out, dr)
							continue
						}
					}
					d.i = save
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, d.errf("bad escape \\%c", e)
		}
	}
	return nil, d.errf("unterminated string")
}

func (d *dec) hex4() (rune, bool) {
	if d.i+4 > len(d.b) {
		return 0, false
	}
	var r rune
	for _, c := range d.b[d.i : d.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	d.i += 4
	return r, true
}

// number validates a JSON number and returns its text.
func (d *dec) number() ([]byte, error) {
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	if d.i >= len(d.b) {
		return nil, d.errf("truncated number")
	}
	if d.b[d.i] == '0' {
		d.i++
	} else if d.b[d.i] >= '1' && d.b[d.i] <= '9' {
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
		}
	} else {
		return nil, d.errf("invalid character %q in number", d.b[d.i])
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		n := d.i
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
		}
		if d.i == n {
			return nil, d.errf("no digits after decimal point")
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		n := d.i
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
		}
		if d.i == n {
			return nil, d.errf("no digits in exponent")
		}
	}
	return d.b[start:d.i], nil
}

func (d *dec) literal(lit string) error {
	if len(d.b)-d.i < len(lit) || string(d.b[d.i:d.i+len(lit)]) != lit {
		return d.errf("invalid literal")
	}
	d.i += len(lit)
	return nil
}

// isNull consumes a null literal if one is next.
func (d *dec) isNull() bool {
	d.ws()
	if len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

// skip validates and skips one value.
func (d *dec) skip() error {
	d.ws()
	if d.i >= len(d.b) {
		return d.errf("unexpected end of input, want value")
	}
	switch c := d.b[d.i]; c {
	case '{':
		return d.skipObject()
	case '[':
		return d.skipArray()
	case '"':
		_, err := d.bstrSkip()
		return err
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			_, err := d.number()
			return err
		}
		return d.errf("invalid character %q looking for a value", c)
	}
}

// bstrSkip validates a string without materialising escapes.
func (d *dec) bstrSkip() (int, error) {
	d.i++ // opening quote
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return d.i, nil
		case c == '\\':
			if d.i+1 >= len(d.b) {
				return 0, d.errf("unterminated string")
			}
			switch d.b[d.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.i += 2
			case 'u':
				d.i += 2
				if _, ok := d.hex4(); !ok {
					return 0, d.errf("bad \\u escape")
				}
			default:
				return 0, d.errf("bad escape \\%c", d.b[d.i+1])
			}
		case c < 0x20:
			return 0, d.errf("control character 0x%02x in string", c)
		default:
			d.i++
		}
	}
	return 0, d.errf("unterminated string")
}

func (d *dec) enter() error {
	d.depth++
	if d.depth > maxDepth {
		return d.errf("nesting deeper than %d", maxDepth)
	}
	return nil
}

func (d *dec) skipObject() error {
	if err := d.enter(); err != nil {
		return err
	}
	more, err := d.objBegin()
	for more && err == nil {
		if _, err = d.objKey(); err != nil {
			break
		}
		if err = d.skip(); err != nil {
			break
		}
		more, err = d.objNext()
	}
	d.depth--
	return err
}

func (d *dec) skipArray() error {
	if err := d.enter(); err != nil {
		return err
	}
	more, err := d.arrBegin()
	for more && err == nil {
		if err = d.skip(); err != nil {
			break
		}
		more, err = d.arrNext()
	}
	d.depth--
	return err
}

// objBegin consumes '{' and reports whether a member follows.
func (d *dec) objBegin() (bool, error) {
	if err := d.expect('{'); err != nil {
		return false, err
	}
	d.ws()
	if d.peek() == '}' {
		d.i++
		return false, nil
	}
	return true, nil
}

// objKey reads a member name and its colon.
func (d *dec) objKey() ([]byte, error) {
	k, err := d.bstr()
	if err != nil {
		return nil, err
	}
	return k, d.expect(':')
}

// objNext consumes ',' (true) or '}' (false).
func (d *dec) objNext() (bool, error) {
	d.ws()
	if d.i >= len(d.b) {
		return false, d.errf("unexpected end of input in object")
	}
	switch d.b[d.i] {
	case ',':
		d.i++
		return true, nil
	case '}':
		d.i++
		return false, nil
	}
	return false, d.errf("want ',' or '}' in object, got %q", d.b[d.i])
}

func (d *dec) arrBegin() (bool, error) {
	if err := d.expect('['); err != nil {
		return false, err
	}
	d.ws()
	if d.peek() == ']' {
		d.i++
		return false, nil
	}
	return true, nil
}

func (d *dec) arrNext() (bool, error) {
	d.ws()
	if d.i >= len(d.b) {
		return false, d.errf("unexpected end of input in array")
	}
	switch d.b[d.i] {
	case ',':
		d.i++
		return true, nil
	case ']':
		d.i++
		return false, nil
	}
	return false, d.errf("want ',' or ']' in array, got %q", d.b[d.i])
}

// optStr reads a string or null; any other type is skipped and yields "".
// CloudTrail fields change type across versions rarely, but a reviewer's
// export tool may have rewritten them; losing one optional field is better
// than rejecting the whole file.
func (d *dec) optStr() (string, error) {
	d.ws()
	switch d.peek() {
	case '"':
		return d.str()
	case 'n':
		return "", d.literal("null")
	}
	return "", d.skip()
}

// optBool reads true/false, "true"/"false" (lookup-events and Athena write
// strings), or null. known is false when absent or unrecognised.
func (d *dec) optBool() (v, known bool, err error) {
	d.ws()
	switch d.peek() {
	case 't':
		return true, true, d.literal("true")
	case 'f':
		return false, true, d.literal("false")
	case '"':
		s, err := d.bstr()
		if err != nil {
			return false, false, err
		}
		b, perr := strconv.ParseBool(string(s))
		return b, perr == nil, nil
	}
	return false, false, d.skip()
}

// optInt reads an integer number (or a numeric string); 0 when absent.
func (d *dec) optInt() (int64, error) {
	d.ws()
	c := d.peek()
	if c == '-' || (c >= '0' && c <= '9') {
		n, err := d.number()
		if err != nil {
			return 0, err
		}
		v, _ := strconv.ParseFloat(string(n), 64)
		return int64(v), nil
	}
	if c == '"' {
		s, err := d.bstr()
		if err != nil {
			return 0, err
		}
		v, _ := strconv.ParseInt(string(s), 10, 64)
		return v, nil
	}
	return 0, d.skip()
}

// optScalar returns the text of a number or string (unquoted), "" for
// null or anything else (skipped).
func (d *dec) optScalar() (string, error) {
	d.ws()
	c := d.peek()
	if c == '-' || (c >= '0' && c <= '9') {
		n, err := d.number()
		return string(n), err
	}
	return d.optStr()
}

var errNotObject = errors.New("not a JSON object")

// foldKey lower-cases an ASCII key into buf for case-insensitive matching
// (Athena and some exporters lower-case CloudTrail field names).
func foldKey(buf *[40]byte, k []byte) []byte {
	if len(k) > len(buf) {
		return nil
	}
	for i, c := range k {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(k)]
}
