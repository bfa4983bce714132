package script

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Encode writes s as a ceremony script in its canonical form: the keys in
// the order of the script language (the Script type), a comment at the top
// saying what the ceremony does and how the file is reviewed, a comment above
// the keys a reviewer needs explained (some say what the value chosen means),
// inputs, participants and lists in flow style, and nothing else. The same
// Script always gives the same bytes, and the bytes decode (Decode, Parse)
// to the same Script: Encode checks that before it returns.
//
// Empty values are left out, so a key absent from the YAML and a key set to
// its zero value are the same script; a few keys whose zero value is a
// decision a reviewer must see (key.backup: false, byok.allow_host_steps:
// false, byok.import_type: "", a profile's digital_signature: false, a CRL's
// revoked: []) are always written when their section is. A pointer the
// script sets (an input, a section) is written even when its value is empty.
//
// Encode does not validate: a draft with problems encodes as it is, and Parse
// reports the problems.
func Encode(s *Script) ([]byte, error) {
	e := &encoder{s: s}
	e.comment(headerFor(s.Kind), 0)
	if e.mapping(reflect.ValueOf(s).Elem(), "", 0) == 0 {
		e.buf.WriteString("{}\n") // an empty draft is still a YAML mapping
	}
	out := e.buf.Bytes()
	back, err := Decode(out)
	if err != nil {
		return nil, fmt.Errorf("encode the ceremony script: the YAML written does not read back: %w", err)
	}
	if d := Diff(s, back); len(d) > 0 {
		return nil, fmt.Errorf("encode the ceremony script: %s does not read back as written", d[0])
	}
	return out, nil
}

// Decode reads a script as written, strictly (unknown or duplicate keys,
// anchors, values of the wrong type are Problems, as in Parse), but applies no
// defaults and does not validate, so a draft that Parse refuses can still be
// read, edited and written back with Encode. Raw and SHA256 are set; Path
// and Dir are not.
func Decode(raw []byte) (*Script, error) {
	var s Script
	if _, errs := decodeStrict(raw, &s); len(errs) > 0 {
		return nil, errs
	}
	s.Raw = bytes.Clone(raw)
	s.SHA256 = sha256.Sum256(raw)
	return &s, nil
}

// commentWidth is where comments wrap, counting their indentation.
const commentWidth = 78

type encoder struct {
	s   *Script
	buf bytes.Buffer
}

// flowTypes are written on one line: {path: x, sha256: y}.
var flowTypes = map[reflect.Type]bool{
	reflect.TypeFor[Input]():       true,
	reflect.TypeFor[Participant](): true,
	reflect.TypeFor[Revocation]():  true,
}

// always lists the keys written even when their value is the zero value
// (paths without list indexes).
var always = map[string]bool{
	"key.backup":            true,
	"byok.allow_host_steps": true,
	"byok.import_type":      true,
	"signing.subordinate.profile.digital_signature":       true,
	"signing.cross_certificate.profile.digital_signature": true,
	"signing.crl.revoked":                                 true,
}

// quoted lists the strings always written in double quotes: PKCS#11 URIs
// and certificate serials, which a reader should see as one opaque value.
var quoted = map[string]bool{
	"token.uri":                  true,
	"byok.key.uri":               true,
	"signing.crl.revoked.serial": true,
}

// blankBefore lists the keys preceded by an empty line: the sections.
var blankBefore = map[string]bool{
	"token": true, "participants": true, "quorum": true, "preflight": true, "key": true, "certificate": true,
	"backup": true, "restore": true, "signing": true, "byok": true, "output": true,
	"signing.subordinate": true, "signing.cross_certificate": true, "signing.crl": true,
}

// fields lists a struct type's YAML keys in declaration order.
func fields(t reflect.Type) []reflect.StructField {
	var out []reflect.StructField
	for i := range t.NumField() {
		f := t.Field(i)
		if name := yamlName(f); name != "" {
			out = append(out, f)
		}
	}
	return out
}

// yamlName is the field's YAML key, or "" for fields the YAML does not hold.
func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name
}

// omit reports whether a value is left out of the YAML.
func omit(v reflect.Value, path string) bool {
	switch v.Kind() {
	case reflect.Pointer:
		return v.IsNil()
	case reflect.Slice:
		return v.Len() == 0 && !always[path]
	}
	return v.IsZero() && !always[path]
}

// mapping writes a struct's keys at indent and says how many it wrote.
func (e *encoder) mapping(v reflect.Value, path string, indent int) int {
	n := 0
	for _, f := range fields(v.Type()) {
		fv := v.FieldByIndex(f.Index)
		p := join(path, yamlName(f))
		if omit(fv, p) {
			continue
		}
		if blankBefore[p] && n > 0 {
			e.buf.WriteByte('\n')
		}
		n++
		e.comment(noteFor(p, e.s), indent)
		e.buf.WriteString(strings.Repeat(" ", indent) + yamlName(f) + ":")
		e.value(fv, p, indent)
	}
	return n
}

// value writes what follows "key:", ending the line.
func (e *encoder) value(v reflect.Value, path string, indent int) {
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	t := v.Type()
	switch {
	case t == timeType || t.Kind() != reflect.Struct && t.Kind() != reflect.Slice:
		e.scalarValue(v, path, indent)
	case flowTypes[t]:
		e.buf.WriteString(" " + flowMapping(v, path) + "\n")
	case t.Kind() == reflect.Struct:
		// A section set but empty is written "{}", unless it has keys
		// that are always written.
		mark := e.buf.Len()
		e.buf.WriteByte('\n')
		if e.mapping(v, path, indent+2) == 0 {
			e.buf.Truncate(mark)
			e.buf.WriteString(" {}\n")
		}
	case v.Len() == 0:
		e.buf.WriteString(" []\n")
	case flowTypes[t.Elem()]:
		e.buf.WriteByte('\n')
		for i := range v.Len() {
			e.buf.WriteString(strings.Repeat(" ", indent+2) + "- " + flowMapping(v.Index(i), path) + "\n")
		}
	default:
		items := make([]string, v.Len())
		for i := range v.Len() {
			items[i] = scalar(v.Index(i), path, true)
		}
		e.buf.WriteString(" [" + strings.Join(items, ", ") + "]\n")
	}
}

func (e *encoder) scalarValue(v reflect.Value, path string, indent int) {
	if v.Kind() == reflect.String && strings.Contains(v.String(), "\n") && !quoted[path] {
		if block, ok := literalBlock(v.String(), indent+2); ok {
			e.buf.WriteString(" " + block)
			return
		}
	}
	e.buf.WriteString(" " + scalar(v, path, false) + "\n")
}

// flowMapping writes a struct on one line, its empty fields left out.
func flowMapping(v reflect.Value, path string) string {
	var parts []string
	for _, f := range fields(v.Type()) {
		fv := v.FieldByIndex(f.Index)
		p := join(path, yamlName(f))
		if omit(fv, p) {
			continue
		}
		parts = append(parts, yamlName(f)+": "+scalar(fv, p, true))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// scalar writes one value; inFlow is true inside [...] or {...}.
func scalar(v reflect.Value, path string, inFlow bool) string {
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Type() == timeType {
		return v.Interface().(time.Time).Format(time.RFC3339Nano)
	}
	switch v.Kind() {
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.String:
		s := v.String()
		if !quoted[path] && plain(s, inFlow) {
			return s
		}
		return doubleQuoted(s)
	}
	panic(fmt.Sprintf("script: cannot encode %s at %s", v.Type(), path))
}

// plain reports whether s can be written without quotes and read back as
// the same text: a conservative pre-check, then YAML itself decides.
func plain(s string, inFlow bool) bool {
	if s == "" || !utf8.ValidString(s) || strings.TrimSpace(s) != s ||
		strings.ContainsAny(s, "\n\r\t\"'`") || strings.ContainsAny(s[:1], "-?:,[]{}#&*!|>%@") ||
		strings.Contains(s, ": ") || strings.Contains(s, " #") || strings.HasSuffix(s, ":") ||
		inFlow && strings.ContainsAny(s, ",[]{}") {
		return false
	}
	doc := "k: " + s
	if inFlow {
		doc = "k: [" + s + "]"
	}
	var n yaml.Node
	if yaml.Unmarshal([]byte(doc), &n) != nil || len(n.Content) != 1 || len(n.Content[0].Content) != 2 {
		return false
	}
	val := n.Content[0].Content[1]
	if inFlow {
		if val.Kind != yaml.SequenceNode || len(val.Content) != 1 {
			return false
		}
		val = val.Content[0]
	}
	return val.Kind == yaml.ScalarNode && val.ShortTag() == "!!str" && val.Value == s
}

// doubleQuoted writes s as a YAML double-quoted scalar. Go's escapes (\n,
// \t, \", \\, \xNN for ASCII, \uNNNN) are all YAML escapes with the same
// meaning; invalid UTF-8 never reaches here (YAML cannot hold it, and
// Encode's read-back check would refuse it).
func doubleQuoted(s string) string {
	return strconv.Quote(s)
}

// literalBlock writes a multi-line string as a YAML literal block ("|" keeps
// one final newline, "|-" none), or says it cannot be written that way.
func literalBlock(s string, indent int) (string, bool) {
	body, keep := s, "|"
	if strings.HasSuffix(body, "\n") {
		body = strings.TrimSuffix(body, "\n")
	} else {
		keep = "|-"
	}
	if body == "" || strings.HasSuffix(body, "\n") || strings.ContainsAny(body, "\r\t") || !utf8.ValidString(body) ||
		strings.HasPrefix(body, " ") {
		return "", false
	}
	var b strings.Builder
	b.WriteString(keep + "\n")
	pad := strings.Repeat(" ", indent)
	for _, line := range strings.Split(body, "\n") {
		if line != "" {
			b.WriteString(pad + line)
		}
		b.WriteByte('\n')
	}
	return b.String(), true
}

// comment writes text as "# " lines at indent, wrapped at commentWidth; an
// empty line in text becomes a lone "#", and a line that starts with a space
// (a command, an example) is written as it is.
func (e *encoder) comment(text string, indent int) {
	if text == "" {
		return
	}
	pad := strings.Repeat(" ", indent)
	for _, para := range strings.Split(text, "\n") {
		if strings.TrimSpace(para) == "" {
			e.buf.WriteString(pad + "#\n")
			continue
		}
		if strings.HasPrefix(para, " ") {
			e.buf.WriteString(pad + "#" + para + "\n")
			continue
		}
		line := ""
		for _, w := range strings.Fields(para) {
			if line != "" && len(pad)+2+len(line)+1+len(w) > commentWidth {
				e.buf.WriteString(pad + "# " + line + "\n")
				line = ""
			}
			if line != "" {
				line += " "
			}
			line += w
		}
		e.buf.WriteString(pad + "# " + line + "\n")
	}
}
