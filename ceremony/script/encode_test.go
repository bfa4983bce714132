package script

import (
	"bytes"
	"fmt"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/assets"
)

// Every shipped template is in the encoder's canonical form: decoded and
// encoded again it gives the same bytes, and it still validates.
func TestEncodeTemplatesByteIdentical(t *testing.T) {
	entries, err := fs.ReadDir(assets.Ceremonies, "ceremonies")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw := []byte(template(t, e.Name()))
		s, err := Decode(raw)
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		out, err := Encode(s)
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		if !bytes.Equal(out, raw) {
			t.Errorf("%s is not in canonical form; first difference: %s", e.Name(), firstDiff(raw, out))
		}
		if _, err := Parse(out); err != nil {
			t.Errorf("%s encoded does not validate: %v", e.Name(), err)
		}
	}
}

func firstDiff(a, b []byte) string {
	n, x, y := LineDiff(a, b)
	return fmt.Sprintf("line %d: %q became %q", n, x, y)
}

// fill sets every field the YAML holds to a value that is not the zero
// value, so a field added to the script language is encoded (and read back)
// without anyone remembering to teach the encoder about it.
func fill(v reflect.Value, path string, vary int) {
	switch {
	case v.Type() == timeType:
		v.Set(reflect.ValueOf(time.Date(2026, 12, 1+vary, 10, 30, 0, 0, time.UTC)))
	case v.Kind() == reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), path, vary)
	case v.Kind() == reflect.Struct:
		for _, f := range fields(v.Type()) {
			fill(v.FieldByIndex(f.Index), join(path, yamlName(f)), vary)
		}
	case v.Kind() == reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(v.Index(i), fmt.Sprintf("%s[%d]", path, i), vary+i)
		}
	case v.Kind() == reflect.String:
		// Values YAML would misread if written plain.
		tricky := []string{"true", "null", "2026-12-01", "a: b", "#x", "- x", "Dan Diaz, Jr.", "[x]", "0123", "1e3", " lead", "ü ß", "x\ny", "a\n", "~"}
		v.SetString(fmt.Sprintf("%s %s", path, tricky[(len(path)+vary)%len(tricky)]))
		if vary%3 == 1 {
			v.SetString(tricky[(len(path)+vary)%len(tricky)])
		}
	case v.Kind() == reflect.Bool:
		v.SetBool(true)
	case v.CanInt():
		v.SetInt(int64(7 + vary))
	default:
		panic(fmt.Sprintf("fill: %s at %s", v.Type(), path))
	}
}

func TestEncodeEveryFieldReadsBack(t *testing.T) {
	for vary := range 4 {
		var s Script
		fill(reflect.ValueOf(&s).Elem(), "", vary)
		out, err := Encode(&s)
		if err != nil {
			t.Fatalf("vary %d: %v", vary, err)
		}
		back, err := Decode(out)
		if err != nil {
			t.Fatalf("vary %d: %v\n%s", vary, err, out)
		}
		if d := Diff(&s, back); len(d) > 0 {
			t.Fatalf("vary %d: %v differ\n%s", vary, d, out)
		}
		again, err := Encode(back)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("vary %d: encoding is not stable (%v)", vary, err)
		}
	}
}

func TestEncodeStyles(t *testing.T) {
	keep, destroy := true, false
	zero := 0
	s := &Script{Kind: BYOKWrap, ID: "x-1", Title: "Root: the \"first\"", Description: "Two lines\nof notes\n",
		Participants: []Participant{{Name: "Dan Diaz, Jr.", Role: Custodian}, {Name: "true", Role: Witness}},
		Token:        Token{URI: "pkcs11:serial=1"},
		Quorum:       Quorum{Record: &Input{}},
		Signing:      &Signing{CRL: &CRL{}, Subordinate: &Subordinate{Profile: CAProfile{MaxPathLength: &zero}}},
		BYOK:         &BYOK{KeepInToken: &keep, Key: BYOKKey{URI: "pkcs11:object=k"}},
	}
	out, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# BYOK wrapping ceremony", // the header names the kind
		"title: \"Root: the \\\"first\\\"\"\n",
		"description: |\n  Two lines\n  of notes\n",
		"  - {name: \"Dan Diaz, Jr.\", role: custodian}\n",
		"  - {name: \"true\", role: witness}\n",
		"  uri: \"pkcs11:serial=1\"\n", // URIs always quoted
		"  record: {}\n",               // a pointer set but empty is kept
		"    revoked: []\n",            // always written
		"      max_path_length: 0\n",   // 0 is not "absent" for a pointer
		"      digital_signature: false\n",
		"  # true: the token keeps its copy",
		"  keep_in_token: true\n",
		"  allow_host_steps: false\n",
		"  import_type: \"\"\n",
		"    uri: \"pkcs11:object=k\"\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	s.BYOK.KeepInToken = &destroy
	out, _ = Encode(s)
	if !strings.Contains(string(out), "# false: the token's copy is destroyed") {
		t.Errorf("the keep_in_token comment does not follow the value:\n%s", out)
	}
}

// A value YAML cannot hold is an error, never a file that reads back as
// something else.
func TestEncodeRefusesWhatCannotReadBack(t *testing.T) {
	if _, err := Encode(&Script{Kind: RootGeneration, Title: "bad \xff byte"}); err == nil {
		t.Fatal("invalid UTF-8 was encoded")
	}
}

func TestDiffNamesPaths(t *testing.T) {
	a, _ := Decode([]byte(template(t, "root-generation.yaml")))
	b, _ := Decode([]byte(template(t, "root-generation.yaml")))
	b.Participants[2].Name = "Mallory"
	b.Quorum.Delivery = nil
	b.Certificate.NotBefore = b.Certificate.NotBefore.In(time.FixedZone("CET", 3600))
	got := Diff(a, b)
	want := []string{"participants[2].name", "quorum.delivery", "certificate.not_before"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Diff = %v, want %v", got, want)
	}
	a.Quorum.Delivery = []string{}
	if d := Diff(a, b); len(d) != 2 {
		t.Fatalf("an empty list and an absent one differ: %v", d)
	}
	if n, x, y := LineDiff([]byte("a\nb\nc"), []byte("a\nB\nc")); n != 2 || x != "b" || y != "B" {
		t.Fatalf("LineDiff = %d %q %q", n, x, y)
	}
	if n, _, _ := LineDiff([]byte("a\nb"), []byte("a\nb")); n != 0 {
		t.Fatalf("LineDiff of equal texts = %d", n)
	}
}

// Any script the decoder accepts encodes, reads back the same, and encodes
// to the same bytes again.
func FuzzEncode(f *testing.F) {
	entries, _ := fs.ReadDir(assets.Ceremonies, "ceremonies")
	for _, e := range entries {
		b, _ := fs.ReadFile(assets.Ceremonies, "ceremonies/"+e.Name())
		f.Add(b)
	}
	f.Add([]byte("kind: crl\ntitle: \"a\\tb\"\ndescription: \"x\\n\\n\"\nparticipants: [{name: '#1', role: witness}]\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := Decode(raw)
		if err != nil {
			return
		}
		out, err := Encode(s)
		if err != nil {
			t.Fatalf("a decoded script does not encode: %v\n%s", err, raw)
		}
		back, err := Decode(out)
		if err != nil {
			t.Fatalf("encoded script does not decode: %v\n%s", err, out)
		}
		if d := Diff(s, back); len(d) > 0 {
			t.Fatalf("%v differ after encoding\n%s", d, out)
		}
		again, _ := Encode(back)
		if !bytes.Equal(again, out) {
			t.Fatalf("encoding is not stable:\n%s\n%s", out, again)
		}
	})
}
