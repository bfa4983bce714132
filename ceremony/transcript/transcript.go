// Package transcript is the evidence a ceremony leaves: a hash-chained JSON
// Lines file. Each entry records one step — when, who confirmed it, what was
// done, the SHA-256 of every file read and written, and the result — together
// with the hash of the entry before it and its own hash, so changing, removing
// or reordering any entry breaks the chain from that entry on. Every append is
// fsynced before the ceremony moves on, so after a crash the file ends at the
// last completed step and the ceremony can resume from it.
//
// A transcript holds no secret: callers record names, fingerprints and hashes,
// never PINs, shares or passphrases.
package transcript

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/outfile"
)

// Result values of an entry.
const (
	ResultOK    = "ok"
	ResultError = "error"
)

// GenesisHash is the "previous hash" of the first entry.
var GenesisHash = strings.Repeat("0", 64)

// domain separates transcript entry hashes from any other SHA-256 use.
const domain = "keyceremony transcript v1\n"

// File is a file a step read or wrote, with its SHA-256. Outputs are named
// relative to the transcript's directory and checked by Verify; inputs keep
// the path they were read from.
type File struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Actor is a person who confirmed a step.
type Actor struct {
	Name string    `json:"name"`
	Role string    `json:"role"`
	Time time.Time `json:"time"`
}

// Detail is one labelled fact a step records ("key fingerprint", "token serial").
// A list rather than a map keeps the order the step chose for display.
type Detail struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Entry is one line of the transcript.
type Entry struct {
	Seq       int       `json:"seq"`
	Time      time.Time `json:"time"`
	Step      string    `json:"step"`
	Action    string    `json:"action"`
	Actors    []Actor   `json:"actors,omitempty"`
	Inputs    []File    `json:"inputs,omitempty"`
	Outputs   []File    `json:"outputs,omitempty"`
	Details   []Detail  `json:"details,omitempty"`
	Result    string    `json:"result"`
	Error     string    `json:"error,omitempty"`
	Rehearsal bool      `json:"rehearsal,omitempty"`
	// Signature, on an anchor entry, is the ceremony key's signature over
	// the previous entry's hash (see anchor.go). It is inside the hashed
	// bytes, so the chain covers it.
	Signature *Signature `json:"signature,omitempty"`
	Prev      string     `json:"prev"`
	Hash      string     `json:"hash"`
	// MAC is the quorum's MAC over Hash (see anchor.go), carried by every
	// entry from the first unlock on. It is outside the hashed bytes: it
	// authenticates the hash, which covers the entry and, through Prev,
	// every entry before it.
	MAC string `json:"mac,omitempty"`
}

// Detail returns the value recorded under key, or "".
func (e Entry) Detail(key string) string {
	for _, d := range e.Details {
		if d.Key == key {
			return d.Value
		}
	}
	return ""
}

// OK reports whether the entry records a success.
func (e Entry) OK() bool { return e.Result == ResultOK }

// HashBytes is the entry hash decoded.
func (e Entry) HashBytes() []byte {
	b, _ := hex.DecodeString(e.Hash)
	return b
}

// marshal is the canonical encoding: encoding/json of the struct (fixed field
// order), without HTML escaping, without the trailing newline.
func marshal(e Entry) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// computeHash is SHA-256(domain || canonical JSON of the entry with empty
// hash and MAC fields). The previous hash is inside the hashed bytes, which is what
// chains the entries.
func computeHash(e Entry) (string, error) {
	e.Hash, e.MAC = "", ""
	b, err := marshal(e)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// HashFile returns the File record of path, named name.
func HashFile(path, name string) (File, error) {
	f, err := os.Open(path)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, fmt.Errorf("hash %s: %w", path, err)
	}
	return File{Path: name, SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

// Writer appends entries to a transcript file.
type Writer struct {
	f       *os.File
	path    string
	entries []Entry
	now     func() time.Time
	// macKey, once set, MACs every entry appended (see SetMACKey).
	macKey []byte
}

// Create starts a new transcript; the file must not exist.
func Create(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create transcript: %w", err)
	}
	if err := outfile.SyncDir(filepath.Dir(path)); err != nil {
		f.Close()
		return nil, err
	}
	return &Writer{f: f, path: path, now: time.Now}, nil
}

// Resumed describes what Open found at the end of an interrupted transcript.
type Resumed struct {
	// TornBytes is the length of an incomplete last line (a write cut short
	// by a crash or power loss) that Open removed; 0 when the file ended cleanly.
	TornBytes int
	// TornSHA256 is the hash of those bytes, for the resume entry.
	TornSHA256 string
}

// Open reopens an existing transcript to continue it. The whole file is
// verified first (chain and output files); an incomplete last line, which only
// a crash in the middle of an append leaves, is cut off and reported so the
// caller can record it.
func Open(path string) (*Writer, Resumed, error) {
	var res Resumed
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, res, fmt.Errorf("open transcript: %w", err)
	}
	if i := bytes.LastIndexByte(raw, '\n'); i != len(raw)-1 {
		torn := raw[i+1:]
		sum := sha256.Sum256(torn)
		res = Resumed{TornBytes: len(torn), TornSHA256: hex.EncodeToString(sum[:])}
		if err := os.Truncate(path, int64(i+1)); err != nil {
			return nil, res, fmt.Errorf("cut the incomplete last entry of %s: %w", path, err)
		}
	}
	rep, err := Verify(path)
	if err != nil {
		return nil, res, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, res, fmt.Errorf("open transcript: %w", err)
	}
	return &Writer{f: f, path: path, entries: rep.Entries, now: time.Now}, res, nil
}

// Path is the transcript file.
func (w *Writer) Path() string { return w.path }

// Dir is the directory output files are named relative to.
func (w *Writer) Dir() string { return filepath.Dir(w.path) }

// Entries returns the entries written so far (including those read by Open).
func (w *Writer) Entries() []Entry { return append([]Entry(nil), w.entries...) }

// Last returns the last entry, or a zero Entry for an empty transcript.
func (w *Writer) Last() Entry {
	if len(w.entries) == 0 {
		return Entry{}
	}
	return w.entries[len(w.entries)-1]
}

// SetClock replaces time.Now (the time is set by the writer so a caller cannot
// back-date an entry).
func (w *Writer) SetClock(now func() time.Time) { w.now = now }

// Append completes e (sequence, time, previous hash, hash), writes it as one
// line and fsyncs the file before returning: when Append returns nil the entry
// survives a crash.
func (w *Writer) Append(e Entry) (Entry, error) {
	if w.f == nil {
		return Entry{}, errors.New("transcript is closed")
	}
	e.Seq = len(w.entries) + 1
	e.Time = w.now().UTC()
	e.Prev = GenesisHash
	if n := len(w.entries); n > 0 {
		e.Prev = w.entries[n-1].Hash
	}
	if e.Result == "" {
		e.Result = ResultOK
	}
	for _, o := range e.Outputs {
		if err := checkName(o.Path); err != nil {
			return Entry{}, fmt.Errorf("transcript entry %d: output %w", e.Seq, err)
		}
	}
	if e.Signature != nil {
		if err := e.Signature.check(e.Prev); err != nil {
			return Entry{}, fmt.Errorf("transcript entry %d: %w", e.Seq, err)
		}
	}
	h, err := computeHash(e)
	if err != nil {
		return Entry{}, fmt.Errorf("transcript entry %d: %w", e.Seq, err)
	}
	e.Hash = h
	if w.macKey != nil {
		e.MAC = entryMAC(w.macKey, h)
	} else if n := len(w.entries); n > 0 && w.entries[n-1].MAC != "" {
		// Verify refuses an entry without a MAC after one with a MAC.
		return Entry{}, fmt.Errorf("transcript entry %d: the entries before it carry the quorum's MAC; the quorum must be unlocked to continue", e.Seq)
	}
	line, err := marshal(e)
	if err != nil {
		return Entry{}, fmt.Errorf("transcript entry %d: %w", e.Seq, err)
	}
	// One write call per line: a crash leaves at most one incomplete last line.
	if _, err := w.f.Write(append(line, '\n')); err != nil {
		return Entry{}, fmt.Errorf("write transcript entry %d to %s: %w", e.Seq, w.path, err)
	}
	if err := w.f.Sync(); err != nil {
		return Entry{}, fmt.Errorf("flush transcript entry %d to %s: %w", e.Seq, w.path, err)
	}
	w.entries = append(w.entries, e)
	return e, nil
}

// SetMACKey makes every entry appended from now on carry a MAC under key
// (a copy is kept and wiped by Close). The key is derived from the quorum
// secret, so only an unlocked quorum can extend a MAC'd transcript.
func (w *Writer) SetMACKey(key []byte) {
	clear(w.macKey)
	w.macKey = append([]byte(nil), key...)
}

// MACing reports whether appended entries carry a MAC.
func (w *Writer) MACing() bool { return w.macKey != nil }

// Close closes the file and wipes the MAC key.
func (w *Writer) Close() error {
	clear(w.macKey)
	w.macKey = nil
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// checkName refuses output names that leave the transcript's directory.
func checkName(name string) error {
	if name == "" || filepath.IsAbs(name) || name != filepath.Clean(name) || strings.HasPrefix(name, "..") || strings.ContainsRune(name, filepath.Separator) {
		return fmt.Errorf("%q must be a plain file name in the transcript's directory", name)
	}
	return nil
}

// Canonical is an entry's canonical line (without the newline), as the
// writer writes it and Verify expects it.
func Canonical(e Entry) ([]byte, error) { return marshal(e) }

// EntryHash is the hash an entry must carry: SHA-256 of the domain and its
// canonical form without hash and MAC. The construction is public (the
// README documents it), which is why the chain alone proves nothing against
// someone who can rewrite the file, and why the anchors exist.
func EntryHash(e Entry) (string, error) { return computeHash(e) }
