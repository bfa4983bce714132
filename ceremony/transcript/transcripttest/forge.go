// Package transcripttest forges transcripts, for tests only: it is what
// someone with write access to the output medium can do with a 20-line
// script, and what the anchors must catch.
package transcripttest

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/keyceremony/keyceremony/ceremony/transcript"
)

// Read parses every line of the transcript at path without verifying it.
func Read(t testing.TB, path string) []transcript.Entry {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []transcript.Entry
	for _, line := range bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n")) {
		var e transcript.Entry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, e)
	}
	return out
}

// Write writes entries as the transcript at path, re-chained: sequence
// numbers, previous hashes and hashes recomputed, everything else (MACs and
// signatures included) kept as the edited entries carry it.
func Write(t testing.TB, path string, entries []transcript.Entry) {
	t.Helper()
	var buf bytes.Buffer
	prev := transcript.GenesisHash
	for i, e := range entries {
		e.Seq, e.Prev = i+1, prev
		h, err := transcript.EntryHash(e)
		if err != nil {
			t.Fatal(err)
		}
		e.Hash = h
		line, err := transcript.Canonical(e)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(line)
		buf.WriteByte('\n')
		prev = h
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Rechain applies edit to the transcript's entries and writes them back
// re-chained.
func Rechain(t testing.TB, path string, edit func([]transcript.Entry) []transcript.Entry) {
	t.Helper()
	Write(t, path, edit(Read(t, path)))
}
