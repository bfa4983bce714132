package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func d(s string) time.Time { t, _ := time.Parse("2006-01-02", s); return t }

func TestCoverageGaps(t *testing.T) {
	c := &Coverage{days: map[Pair]map[string]dayCov{
		{"1", "r"}: {"2025-03-01": {5, 5}, "2025-03-02": {5, 0}, "2025-03-03": {5, 0}, "2025-03-05": {5, 5}, "2025-03-06": {5, 5}},
	}, first: map[Pair]string{{"1", "r"}: "2025-03-01"}}
	gaps := c.Between("1", "r", d("2025-03-01"), d("2025-03-08"))
	want := []Gap{{Account: "1", Region: "r", From: "2025-03-02", To: "2025-03-03", Days: 2, Kind: GapNoKMS},
		{Account: "1", Region: "r", From: "2025-03-04", To: "2025-03-04", Days: 1, Kind: GapNoLogs},
		{Account: "1", Region: "r", From: "2025-03-07", To: "2025-03-07", Days: 1, Kind: GapNoLogs}}
	if len(gaps) != len(want) {
		t.Fatalf("gaps %+v", gaps)
	}
	for i := range want {
		if gaps[i] != want[i] {
			t.Errorf("gap %d = %+v, want %+v", i, gaps[i], want[i])
		}
	}
	if !strings.Contains(gaps[0].Describe(), "trail may exclude KMS events") {
		t.Errorf("describe: %s", gaps[0].Describe())
	}
	if got := c.CompleteSince("1", "r", d("2025-03-07")); !got.Equal(d("2025-03-05")) {
		t.Errorf("complete since %s", got)
	}
	if got := c.CompleteSince("1", "r", d("2025-03-08")); !got.Equal(d("2025-03-08")) {
		t.Errorf("complete since with the last day missing: %s", got)
	}
	if !c.Complete("1", "r", d("2025-03-05"), d("2025-03-07")) || c.Complete("1", "r", d("2025-03-01"), d("2025-03-03")) {
		t.Error("Complete")
	}
	if got := c.Between("2", "r", d("2025-03-01"), d("2025-03-03")); len(got) != 1 || got[0].Days != 2 || got[0].Kind != GapNoLogs {
		t.Errorf("a pair with no logs at all: %+v", got)
	}
}

func TestDigestIsCanonical(t *testing.T) {
	sum := func(f func(*Digest)) string {
		d := NewDigest()
		f(d)
		s, _ := d.Sum()
		return s
	}
	a := sum(func(d *Digest) { d.Section("x"); d.Row("ab", "c"); d.Ints(1, 2) })
	for name, other := range map[string]func(*Digest){
		"boundary moved": func(d *Digest) { d.Section("x"); d.Row("a", "bc"); d.Ints(1, 2) },
		"int vs string":  func(d *Digest) { d.Section("x"); d.Row("ab", "c"); d.Row("1", "2") },
		"section name":   func(d *Digest) { d.Section("y"); d.Row("ab", "c"); d.Ints(1, 2) },
		"null vs empty":  func(d *Digest) { d.Section("x"); d.Row("ab", nil); d.Ints(1, 2) },
	} {
		if sum(other) == a {
			t.Errorf("%s: same digest", name)
		}
	}
	if sum(func(d *Digest) { d.Section("x"); d.Row("ab", "c"); d.Ints(1, 2) }) != a {
		t.Error("the same rows gave another digest")
	}
}

func TestWriteFileRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "r.pdf")
	write := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	if err := WriteFile(p, false, write("one")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	if err := WriteFile(p, false, write("two")); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "--force") {
		t.Errorf("overwrite without force: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "one" {
		t.Errorf("content %q", b)
	}
	if err := WriteFile(p, true, write("two")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Errorf("content after force %q", b)
	}
	// A failed render leaves nothing behind.
	q := filepath.Join(dir, "q.pdf")
	if err := WriteFile(q, false, func(io.Writer) error { return errors.New("boom") }); err == nil {
		t.Error("render error lost")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
	if err := CheckOutput(filepath.Join(dir, "no/such/dir/x.pdf"), false); err == nil {
		t.Error("missing directory accepted")
	}
}

func TestScope(t *testing.T) {
	if err := (Scope{}).Validate(); err == nil {
		t.Error("empty scope accepted")
	}
	if err := (Scope{From: d("2025-03-02"), To: d("2025-03-01")}).Validate(); err == nil {
		t.Error("reversed period accepted")
	}
	s := Scope{From: d("2025-03-01"), To: d("2025-04-01"), Account: "1"}
	if got := s.String(); got != "2025-03-01 to 2025-03-31 (UTC, inclusive), account 1" {
		t.Errorf("String() = %q", got)
	}
}

// The JSON export is valid JSON equal to encoding/json's, with one line per
// top-level member and per element of a top-level array or object, deeper
// values compact; strings holding brackets, commas, colons, quotes and
// backslashes are left alone.
func TestWriteJSONLayout(t *testing.T) {
	v := map[string]any{
		"meta":  map[string]any{"title": `a "quoted" {title}, with: [brackets]\`, "n": 1},
		"rows":  []any{map[string]any{"id": "e1", "nested": []int{1, 2}}, map[string]any{"id": "e2,]"}},
		"empty": []int{},
		"obj":   map[string]any{},
	}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, v); err != nil {
		t.Fatal(err)
	}
	want := `{
  "empty": [],
  "meta": {
    "n": 1,
    "title": "a \"quoted\" {title}, with: [brackets]\\"
  },
  "obj": {},
  "rows": [
    {"id":"e1","nested":[1,2]},
    {"id":"e2,]"}
  ]
}
`
	if buf.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", buf.String(), want)
	}
	var back, orig any
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(v)
	json.Unmarshal(raw, &orig)
	if !reflect.DeepEqual(back, orig) {
		t.Fatal("the laid out JSON does not decode to the same value")
	}
}

// ptrText has its text form on the pointer only: encoding/json uses it for
// fields and slice elements it reaches by address, and so must WriteJSON.
type ptrText struct{ v int }

func (p *ptrText) MarshalText() ([]byte, error) { return []byte(fmt.Sprintf("pt-%d", p.v)), nil }

type streamRow struct {
	ID   string    `json:"id"`
	When time.Time `json:"when"`
	T    ptrText   `json:"t"`
	Sub  []int     `json:"sub,omitempty"`
}

type streamModel struct {
	Meta   map[string]any `json:"meta"`
	Count  int            `json:"count"`
	Rows   []streamRow    `json:"rows"`
	Nil    []streamRow    `json:"nil_rows"`
	Empty  []string       `json:"empty"`
	Blob   []byte         `json:"blob"`
	Nested struct {
		A []int `json:"a"`
		B string
	} `json:"nested"`
	Texts []ptrText `json:"texts"`
	Any   any       `json:"any"`
	Title string
}

// A model written member by member is byte for byte what encoding the
// whole value and laying it out gives, for a pointer and for a value.
func TestWriteJSONStreamsTheSameBytes(t *testing.T) {
	m := streamModel{Meta: map[string]any{"title": `a "quoted" {title}, with: [brackets]\ <html> & more`, "n": 1.5},
		Count: 3, Empty: []string{}, Blob: []byte("raw\x00bytes"), Any: []any{1, "x", nil}, Title: "a ] title, with: }"}
	for i := 0; i < 3; i++ {
		m.Rows = append(m.Rows, streamRow{ID: fmt.Sprintf("e%d,]", i), When: time.Date(2025, 3, i+1, 0, 0, 0, 0, time.UTC), T: ptrText{i}})
	}
	m.Rows[1].Sub = []int{1, 2}
	m.Nested.A = []int{7}
	m.Nested.B = "b"
	m.Texts = []ptrText{{1}, {2}}
	if !streamable(reflect.TypeOf(m)) {
		t.Fatal("the model is not streamed")
	}
	for _, v := range []any{&m, m} {
		var want bytes.Buffer
		bw := bufio.NewWriter(&want)
		if err := layoutWhole(bw, v); err != nil {
			t.Fatal(err)
		}
		bw.Flush()
		var got bytes.Buffer
		if err := WriteJSON(&got, v); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Fatalf("%T streamed:\n%s\nwhole:\n%s", v, got.String(), want.String())
		}
		if !strings.Contains(got.String(), `"t":"pt-1"`) && v == any(&m) {
			t.Fatalf("pointer MarshalText not used:\n%s", got.String())
		}
	}
	// A struct with options (omitempty) is encoded whole, not streamed.
	if streamable(reflect.TypeOf(streamRow{})) {
		t.Fatal("a struct with omitempty would be streamed")
	}
}
