package ingest

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/audit/store"
)

// source is one input named on the command line or found in a directory:
// a file (possibly an archive) or standard input.
type source struct {
	path    string // as shown to the user
	size    int64
	modTime time.Time
	stdin   bool
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

// expand turns the arguments into sources, in a stable order. Directories
// are walked; digest files (CloudTrail-Digest) and hidden files are skipped
// because they hold no events; other files with unknown extensions are
// counted as ignored.
func expand(args []string) (srcs []source, ignored []string, err error) {
	seen := map[string]bool{}
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
			if !seen[a] {
				seen[a] = true
				srcs = append(srcs, source{path: a, size: fi.Size(), modTime: fi.ModTime()})
			}
			continue
		}
		var found []source
		err = filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("ingest %s: %w", p, err)
			}
			name := d.Name()
			if d.IsDir() {
				if p != a && (strings.HasPrefix(name, ".") || name == "CloudTrail-Digest") {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasPrefix(name, ".") || strings.Contains(name, "CloudTrail-Digest") || !d.Type().IsRegular() {
				return nil
			}
			if !wanted(name) {
				ignored = append(ignored, p)
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return fmt.Errorf("ingest %s: %w", p, err)
			}
			if !seen[p] {
				seen[p] = true
				found = append(found, source{path: p, size: info.Size(), modTime: info.ModTime()})
			}
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		sort.Slice(found, func(i, j int) bool { return found[i].path < found[j].path })
		srcs = append(srcs, found...)
	}
	return srcs, ignored, nil
}

// layout reads account, region and day from a CloudTrail S3 key:
// .../AWSLogs/[o-org/]<account>/CloudTrail/<region>/YYYY/MM/DD/<file>.
func layout(p string) (account, region, day string) {
	segs := strings.Split(filepath.ToSlash(p), "/")
	for i := 1; i+4 < len(segs); i++ {
		if segs[i] != "CloudTrail" {
			continue
		}
		acct, reg, y, m, d := segs[i-1], segs[i+1], segs[i+2], segs[i+3], segs[i+4]
		if len(acct) != 12 || len(y) != 4 || len(m) != 2 || len(d) != 2 {
			continue
		}
		if _, err := time.Parse("2006-01-02", y+"-"+m+"-"+d); err != nil {
			continue
		}
		return acct, reg, y + "-" + m + "-" + d
	}
	return "", "", ""
}

func metaFor(path string, size int64) store.FileMeta {
	m := store.FileMeta{Path: path, Size: size}
	m.Account, m.Region, m.Day = layout(path)
	return m
}

// countingReader adds the bytes read to a progress counter.
type countingReader struct {
	r io.Reader
	n *int64
	p *pipeline
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		c.p.addBytes(int64(n))
	}
	return n, err
}
