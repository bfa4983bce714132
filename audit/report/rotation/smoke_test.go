package rotation

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/store"
)

func TestSmoke1M(t *testing.T) {
	if os.Getenv("KR_SMOKE") == "" {
		t.Skip()
	}
	ctx := context.Background()
	if os.Getenv("KR_MMAP") != "" {
		report.MmapSize = 1 << 30
	}
	st, err := store.Open(ctx, os.Getenv("KR_SMOKE"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := time.Now()
	r, err := Build(ctx, st, Options{Scope: report.Scope{From: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2025, 3, 8, 0, 0, 0, 0, time.UTC)},
		Progress: func(p report.Progress) { t.Logf("%v %s", time.Since(start), p.Stage) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("build %v keys %d summary %+v", time.Since(start), len(r.Keys), r.Summary.ByStatus)
	rss(t)
	var buf bytes.Buffer
	if err := r.WritePDF(&buf); err != nil {
		t.Fatal(err)
	}
	t.Logf("pdf %v %d bytes", time.Since(start), buf.Len())
	os.WriteFile("/tmp/kr/rot.pdf", buf.Bytes(), 0o600)
	buf.Reset()
	r.WriteJSON(&buf)
	os.WriteFile("/tmp/kr/rot.json", buf.Bytes(), 0o600)
	buf.Reset()
	r.WriteCSV(&buf)
	os.WriteFile("/tmp/kr/rot.csv", buf.Bytes(), 0o600)
	t.Logf("total %v", time.Since(start))
	st.Close()
	t.Logf("closed %v", time.Since(start))
	rss(t)
}

func rss(t *testing.T) {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range bytes.Split(b, []byte("\n")) {
		if bytes.HasPrefix(l, []byte("VmHWM")) || bytes.HasPrefix(l, []byte("Rss")) {
			t.Logf("%s", l)
		}
	}
}
