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

func memberWanted(name string) bool {
	base := path.Base(name)
	return !strings.HasPrefix(base, ".") && !strings.Contains(name, "CloudTrail-Digest") && wanted(base)
}

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
		if h.Typeflag != tar.TypeReg || !memberWanted(h.Name) {
			continue
		}
		wk.member(archive, h.Name, h.Size, tr)
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
		if f.FileInfo().IsDir() || !memberWanted(f.Name) {
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
