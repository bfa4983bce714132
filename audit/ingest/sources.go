package ingest

import (
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/audit/store"
)

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
