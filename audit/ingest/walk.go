package ingest

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// source is one input named on the command line or found in a directory:
// a file (possibly an archive) or standard input. err is set for an entry
// that cannot be read at all (an unreadable directory, a broken symbolic
// link): it is recorded as a failed input and the rest loads.
type source struct {
	path    string // as shown to the user
	size    int64
	modTime time.Time
	stdin   bool
	err     error
}

// Why an entry found while walking a directory, or in an archive, was not
// read. Every such entry is counted and named (Summary.Skipped, the run's
// provenance): nothing is left out without saying so.
const (
	SkipHidden     = "hidden"              // a name starting with '.'
	SkipDigest     = "CloudTrail digest"   // CloudTrail-Digest files and directories hold no events
	SkipName       = "not a log file name" // walked files whose names no CloudTrail export has
	SkipNotRegular = "not a regular file"  // devices, sockets, pipes
	SkipLoop       = "symbolic link loop"  // a link back to a directory being walked
	SkipWalked     = "directory already walked"
)

// Skipped is one entry left out, with why.
type Skipped struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// walkExts are the files picked up when walking a directory; a file named
// explicitly is always read, whatever its name, and its format detected
// from its content.
var walkExts = []string{".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz",
	".gz", ".tar", ".tar.gz", ".tgz", ".zip"}

func wanted(name string) bool {
	l := strings.ToLower(name)
	for _, e := range walkExts {
		if strings.HasSuffix(l, e) {
			return true
		}
	}
	return false
}

// walker expands the arguments. Symbolic links are followed, to files and
// to directories alike; each directory is walked once, by its real path,
// so a link back to a directory being walked (a loop) or to one walked
// already is skipped and named instead of followed forever.
type walker struct {
	seen    map[string]bool   // file paths added
	walked  map[string]string // real path of every directory walked -> the path it was walked as
	found   []source
	skipped []Skipped
}

// expand turns the arguments into sources, in a stable order (the
// arguments in order, each directory's files by path). An argument that
// does not exist is an error; anything found while walking that cannot be
// read becomes a failed source, and everything left out is listed with
// its reason.
func expand(args []string) (srcs []source, skipped []Skipped, err error) {
	w := &walker{seen: map[string]bool{}, walked: map[string]string{}}
	for _, a := range args {
		if a == "-" {
			srcs = append(srcs, source{path: "-", stdin: true})
			continue
		}
		fi, err := os.Stat(a)
		if err != nil {
			return nil, nil, fmt.Errorf("ingest %s: %w", a, err)
		}
		if !fi.IsDir() {
			if !w.seen[a] {
				w.seen[a] = true
				srcs = append(srcs, source{path: a, size: fi.Size(), modTime: fi.ModTime()})
			}
			continue
		}
		w.found = nil
		if real, err := filepath.EvalSymlinks(a); err != nil {
			w.fail(a, err)
		} else if prev, ok := w.walked[real]; ok {
			w.skip(a, SkipWalked, "the same directory as "+prev)
		} else {
			w.walked[real] = a
			w.dir(a, map[string]string{real: a})
		}
		sort.Slice(w.found, func(i, j int) bool { return w.found[i].path < w.found[j].path })
		srcs = append(srcs, w.found...)
	}
	return srcs, w.skipped, nil
}

func (w *walker) skip(p, reason, detail string) {
	w.skipped = append(w.skipped, Skipped{Path: p, Reason: reason, Detail: detail})
}

func (w *walker) fail(p string, err error) {
	w.found = append(w.found, source{path: p, err: err})
}

// dir walks one directory; ancestors maps the real path of every
// directory on the way down to the path it was reached by.
func (w *walker) dir(dir string, ancestors map[string]string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		w.fail(dir, fmt.Errorf("read directory: %w", err))
		return
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			w.skip(p, SkipHidden, "")
			continue
		}
		var fi fs.FileInfo
		if e.Type()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			if fi, err = os.Stat(p); err != nil {
				w.fail(p, fmt.Errorf("symbolic link to %s cannot be followed: %w", target, err))
				continue
			}
		} else if fi, err = e.Info(); err != nil {
			w.fail(p, err)
			continue
		}
		switch {
		case fi.IsDir():
			if name == "CloudTrail-Digest" {
				w.skip(p, SkipDigest, "directory")
				continue
			}
			real, err := filepath.EvalSymlinks(p)
			if err != nil {
				w.fail(p, err)
				continue
			}
			if anc, ok := ancestors[real]; ok {
				w.skip(p, SkipLoop, "links back to "+anc+", which contains it")
				continue
			}
			if prev, ok := w.walked[real]; ok {
				w.skip(p, SkipWalked, "the same directory as "+prev)
				continue
			}
			w.walked[real] = p
			ancestors[real] = p
			w.dir(p, ancestors)
			delete(ancestors, real)
		case !fi.Mode().IsRegular():
			w.skip(p, SkipNotRegular, fi.Mode().Type().String())
		case strings.Contains(name, "CloudTrail-Digest"):
			w.skip(p, SkipDigest, "")
		case !wanted(name):
			w.skip(p, SkipName, "")
		case !w.seen[p]:
			w.seen[p] = true
			w.found = append(w.found, source{path: p, size: fi.Size(), modTime: fi.ModTime()})
		}
	}
}
