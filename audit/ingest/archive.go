package ingest

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

// Archives: a .tar (optionally gzipped) or .zip of a CloudTrail tree, as a
// reviewer may bring it. Each member is its own file for provenance,
// deduplication and the all-or-nothing rule, named "archive!member".

// memberSkip is why a regular archive member is not read ("" to read it),
// by the rules of a directory walk.
func memberSkip(name string) string {
	base := path.Base(name)
	switch {
	case strings.HasPrefix(base, "."):
		return SkipHidden
	case strings.Contains(name, "CloudTrail-Digest"):
		return SkipDigest
	case !wanted(base):
		return SkipName
	}
	return ""
}

// leavesArchive reports whether a member's name points outside the
// archive (absolute, or climbing out with ".."): a classic path traversal
// when an archive is extracted. The ingest reads members in memory and
// writes nothing to disk, so it is harmless here, but a reviewer should
// know the archive carries such a name.
func leavesArchive(name string) bool {
	n := strings.ReplaceAll(name, "\\", "/")
	if strings.HasPrefix(n, "/") || (len(n) > 1 && n[1] == ':') {
		return true
	}
	c := path.Clean(n)
	return c == ".." || strings.HasPrefix(c, "../")
}

// wantMember notes what a regular member's name calls for (a warning for
// a name that leaves the archive; a skipped entry, counted and named like
// a walked file's) and reports whether to read it.
func (wk *worker) wantMember(archive, name string) bool {
	if leavesArchive(name) {
		wk.p.noteWarning(fmt.Sprintf("%s!%s: the member's name leaves the archive (path traversal if extracted); read in memory only, nothing was written outside it", archive, name))
	}
	if why := memberSkip(name); why != "" {
		wk.p.noteSkipped(Skipped{Path: archive + "!" + name, Reason: why, Detail: "archive member"})
		return false
	}
	return true
}

// member reads one regular member of an archive.
func (wk *worker) member(archive, name string, size int64, r io.Reader) {
	p := wk.p
	p.filesTotal.Add(1)
	meta := metaFor(archive+"!"+name, size)
	if size <= smallFile {
		data, err := io.ReadAll(r)
		if err != nil {
			wk.failEarly(meta, err)
			return
		}
		sum := sha256.Sum256(data)
		if id, ok := p.isKnown(sum); ok {
			wk.dup(meta, id)
			return
		}
		wk.stream(meta, bytes.NewReader(data), data, &sum, memberTime())
		return
	}
	wk.stream(meta, r, nil, nil, memberTime())
}

func (wk *worker) tar(r io.Reader, archive string) {
	wk.inArchive = true
	defer func() { wk.inArchive = false }()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			wk.failEarly(metaFor(archive, 0), fmt.Errorf("tar: %w", err))
			return
		}
		switch h.Typeflag {
		case tar.TypeReg:
			if wk.wantMember(archive, h.Name) {
				wk.member(archive, h.Name, h.Size, tr)
			}
		case tar.TypeDir:
			// structure, not content
		default:
			wk.p.noteSkipped(Skipped{Path: archive + "!" + h.Name, Reason: SkipNotRegular,
				Detail: fmt.Sprintf("archive member of tar type %q (links in archives are not followed)", h.Typeflag)})
		}
		if wk.p.ctx.Err() != nil {
			return
		}
	}
}

func (wk *worker) zip(r io.ReaderAt, size int64, archive string) {
	wk.inArchive = true
	defer func() { wk.inArchive = false }()
	zr, err := zip.NewReader(r, size)
	if err != nil {
		wk.failEarly(metaFor(archive, size), fmt.Errorf("zip: %w", err))
		return
	}
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		if !f.Mode().IsRegular() {
			wk.p.noteSkipped(Skipped{Path: archive + "!" + f.Name, Reason: SkipNotRegular, Detail: "archive member " + f.Mode().Type().String()})
			continue
		}
		if !wk.wantMember(archive, f.Name) {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			wk.failEarly(metaFor(archive+"!"+f.Name, int64(f.UncompressedSize64)), fmt.Errorf("zip: %w", err))
			continue
		}
		wk.member(archive, f.Name, int64(f.UncompressedSize64), rc)
		rc.Close()
		if wk.p.ctx.Err() != nil {
			return
		}
	}
}

// memberTime dates inventory documents found in archives (no usable mtime).
func memberTime() time.Time { return time.Now() }
