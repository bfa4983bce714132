package transcript

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// build writes a transcript with three entries, two of which record output
// files, and returns its path and the output file names with the entry that
// recorded each.
func build(t *testing.T) (string, map[string]int) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "t.jsonl")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	out := func(name, content string) File {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := HashFile(p, name)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	entries := []Entry{
		{Step: "begin", Action: "ceremony started", Details: []Detail{{"script sha256", "ab12"}, {"note", "<&> \"quoted\" ünïcode"}}},
		{Step: "clock", Action: "clock confirmed", Actors: []Actor{{Name: "Alice", Role: "administrator", Time: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}},
			Outputs: []File{out("root.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")}},
		{Step: "publish", Action: "outputs written", Outputs: []File{out("root.der", "\x30\x82\x01\x00der"), out("fingerprints.txt", "sha256 ...\n")}},
	}
	for _, e := range entries {
		if _, err := w.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	return path, map[string]int{"root.pem": 2, "root.der": 3, "fingerprints.txt": 3}
}

func TestVerifyAcceptsWhatWasWritten(t *testing.T) {
	path, _ := build(t)
	rep, err := Verify(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Entries) != 3 || rep.Files != 3 {
		t.Fatalf("entries=%d files=%d", len(rep.Entries), rep.Files)
	}
	if rep.Entries[0].Prev != GenesisHash || rep.Entries[1].Prev != rep.Entries[0].Hash {
		t.Error("entries are not chained")
	}
	if rep.Last().Detail("x") != "" || rep.Entries[0].Detail("script sha256") != "ab12" {
		t.Error("Detail lookup")
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("transcript mode = %v, %v", fi.Mode(), err)
	}
}

// TestEveryByteFlipIsNamed flips each byte of the transcript in turn; Verify
// must fail and name the entry the byte belongs to.
func TestEveryByteFlipIsNamed(t *testing.T) {
	path, _ := build(t)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	entryOf := make([]int, len(orig))
	seq := 1
	for i, b := range orig {
		entryOf[i] = seq
		if b == '\n' {
			seq++
		}
	}
	for _, mask := range []byte{0x01, 0x20} {
		for i := range orig {
			mod := bytes.Clone(orig)
			mod[i] ^= mask
			if err := os.WriteFile(path, mod, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Verify(path)
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("flip 0x%02x at byte %d (%q): err = %v, want a VerifyError", mask, i, orig[i], err)
			}
			if ve.Seq != entryOf[i] {
				t.Fatalf("flip at byte %d (entry %d): Verify named entry %d: %v", i, entryOf[i], ve.Seq, err)
			}
		}
	}
}

func TestChangedOrMissingOutputNamesItsEntry(t *testing.T) {
	path, outputs := build(t)
	dir := filepath.Dir(path)
	for name, seq := range outputs {
		p := filepath.Join(dir, name)
		orig, _ := os.ReadFile(p)
		for i := range orig {
			mod := bytes.Clone(orig)
			mod[i] ^= 0x01
			os.WriteFile(p, mod, 0o600)
			_, err := Verify(path)
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.Seq != seq || !strings.Contains(err.Error(), name+" has changed") {
				t.Fatalf("byte %d of %s flipped: err = %v, want entry %d named", i, name, err, seq)
			}
		}
		os.Remove(p)
		_, err := Verify(path)
		var ve *VerifyError
		if !errors.As(err, &ve) || ve.Seq != seq || !strings.Contains(err.Error(), "missing") {
			t.Fatalf("%s removed: err = %v", name, err)
		}
		os.WriteFile(p, orig, 0o600)
	}
	if _, err := Verify(path); err != nil {
		t.Fatalf("restored files: %v", err)
	}
}

func TestStructuralTampering(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(lines []string) []string
		wantSeq int
		want    string
	}{
		{"entry removed", func(l []string) []string { return append(l[:1:1], l[2:]...) }, 2, "sequence number 3 where 2"},
		{"entries swapped", func(l []string) []string { l[1], l[2] = l[2], l[1]; return l }, 2, "sequence number 3 where 2"},
		{"last entry truncated", func(l []string) []string { l[2] = l[2][:len(l[2])-1]; return l }, 3, "incomplete"},
		{"unknown field added", func(l []string) []string { l[0] = `{"extra":1,` + l[0][1:]; return l }, 1, "not a readable"},
		{"whitespace added", func(l []string) []string { l[1] = strings.Replace(l[1], `"seq":2`, `"seq": 2`, 1); return l }, 2, "not in the form"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path, _ := build(t)
			raw, _ := os.ReadFile(path)
			lines := strings.SplitAfter(string(raw), "\n")
			lines = lines[:len(lines)-1]
			os.WriteFile(path, []byte(strings.Join(tc.edit(lines), "")), 0o600)
			_, err := Verify(path)
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.Seq != tc.wantSeq || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want entry %d: %q", err, tc.wantSeq, tc.want)
			}
		})
	}
}

func TestCreateRefusesExistingFile(t *testing.T) {
	path, _ := build(t)
	if _, err := Create(path); !errors.Is(err, os.ErrExist) {
		t.Fatalf("Create over an existing transcript: %v", err)
	}
}

func TestOutputNamesStayInDirectory(t *testing.T) {
	w, err := Create(filepath.Join(t.TempDir(), "t.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, name := range []string{"../x", "/etc/passwd", "a/b", "", "./x"} {
		if _, err := w.Append(Entry{Step: "s", Outputs: []File{{Path: name}}}); err == nil {
			t.Errorf("output %q accepted", name)
		}
	}
}

// TestResumeContinuesTheChain reopens a transcript, as a resumed ceremony
// does, and checks the chain stays one chain.
func TestResumeContinuesTheChain(t *testing.T) {
	path, _ := build(t)
	w, res, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if res.TornBytes != 0 || len(w.Entries()) != 3 {
		t.Fatalf("resumed = %+v, %d entries", res, len(w.Entries()))
	}
	e, err := w.Append(Entry{Step: "resume", Action: "resumed"})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if e.Seq != 4 {
		t.Errorf("seq after resume = %d", e.Seq)
	}
	rep, err := Verify(path)
	if err != nil || len(rep.Entries) != 4 || rep.Entries[3].Prev != rep.Entries[2].Hash {
		t.Fatalf("after resume: %v", err)
	}
}

// TestResumeCutsATornLine simulates a crash during an append: the file ends
// with half a line. Verify names it; Open removes it, reports it, and the
// chain continues from the last complete entry.
func TestResumeCutsATornLine(t *testing.T) {
	path, _ := build(t)
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	f.WriteString(`{"seq":4,"time":"2026-`)
	f.Close()
	if _, err := Verify(path); err == nil || !strings.Contains(err.Error(), "entry 4") {
		t.Fatalf("Verify of a torn transcript: %v", err)
	}
	w, res, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if res.TornBytes != len(`{"seq":4,"time":"2026-`) || len(res.TornSHA256) != 64 {
		t.Fatalf("resumed = %+v", res)
	}
	if e, err := w.Append(Entry{Step: "resume"}); err != nil || e.Seq != 4 {
		t.Fatalf("append after torn line: %v %+v", err, e)
	}
	if _, err := Verify(path); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesATamperedTranscript(t *testing.T) {
	path, _ := build(t)
	raw, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(raw, []byte("clock confirmed"), []byte("clock confirmeD"), 1), 0o600)
	if _, _, err := Open(path); err == nil || !strings.Contains(err.Error(), "entry 2") {
		t.Fatalf("Open of a tampered transcript: %v", err)
	}
}
