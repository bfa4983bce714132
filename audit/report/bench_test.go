package report_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/audit/ingest"
	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/report/rotation"
	"github.com/keyceremony/keyceremony/audit/report/usage"
	"github.com/keyceremony/keyceremony/audit/store"
	"github.com/keyceremony/keyceremony/test/cloudtrailgen"
)

// The report benchmarks run on a database of KC_BENCH_EVENTS generated KMS
// events (default 1,000,000; 20,000 with -short), built once and cached
// outside the repository under $KC_BENCH_CACHE (default
// os.TempDir()/keyceremony-report-bench), keyed by the event count, the
// generator seed and the schema version; KC_BENCH_REBUILD=1 rebuilds it.
//
//	go test -run '^$' -bench 'Report$' -benchtime 1x ./audit/report/
//
// Each benchmark also runs the report once more in a child process (this
// test binary) exactly as the CLI does, PDF + CSV + JSON to files, and
// reports its wall time and peak resident memory (VmHWM) as child-s and
// peak-RSS-MB: the benchmark process itself is no measure of memory, as it
// generated and ingested the database.

var benchPeriod = report.Scope{From: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2025, 3, 8, 0, 0, 0, 0, time.UTC)}

func benchDB(b *testing.B) string {
	b.Helper()
	n := 1_000_000
	if testing.Short() {
		n = 20_000
	}
	if s := os.Getenv("KC_BENCH_EVENTS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			b.Fatalf("KC_BENCH_EVENTS=%q", s)
		}
		n = v
	}
	cache := os.Getenv("KC_BENCH_CACHE")
	if cache == "" {
		cache = filepath.Join(os.TempDir(), "keyceremony-report-bench")
	}
	db := filepath.Join(cache, fmt.Sprintf("audit-%d-seed1-schema%d.db", n, store.SchemaVersion))
	if _, err := os.Stat(db); err == nil && os.Getenv("KC_BENCH_REBUILD") == "" {
		return db
	}
	b.Logf("building the benchmark database %s (%d events, once)...", db, n)
	if err := os.MkdirAll(cache, 0o700); err != nil {
		b.Fatal(err)
	}
	os.Remove(db)
	tree, err := os.MkdirTemp(cache, "tree-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(tree)
	if _, err := cloudtrailgen.Generate(tree, cloudtrailgen.Config{Seed: 1, KMSEvents: n}); err != nil {
		b.Fatal(err)
	}
	tmp := db + ".building"
	os.Remove(tmp)
	st, err := store.Open(context.Background(), tmp)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := ingest.Run(context.Background(), st, []string{tree}, ingest.Options{}); err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(tmp + suffix)
	}
	if err := os.Rename(tmp, db); err != nil {
		b.Fatal(err)
	}
	return db
}

// render builds one report and writes its PDF, CSV and JSON, as the CLI does.
func render(ctx context.Context, st *store.Store, kind string, out func(string) io.Writer) error {
	var pdf, csv, js func(io.Writer) error
	switch kind {
	case "rotation":
		r, err := rotation.Build(ctx, st, rotation.Options{Scope: benchPeriod})
		if err != nil {
			return err
		}
		pdf, csv, js = r.WritePDF, r.WriteCSV, r.WriteJSON
	case "usage":
		r, err := usage.Build(ctx, st, usage.Options{Scope: benchPeriod})
		if err != nil {
			return err
		}
		pdf, csv, js = r.WritePDF, r.WriteCSV, r.WriteJSON
	}
	// At once, as the CLI writes them (app/cli/audit_report.go).
	outs := map[string]func(io.Writer) error{"pdf": pdf, "csv": csv, "json": js}
	errs := make(chan error, len(outs))
	for ext, f := range outs {
		w := out(ext)
		go func() {
			bw := bufio.NewWriterSize(w, 1<<16)
			err := f(bw)
			if err == nil {
				err = bw.Flush()
			}
			if c, ok := w.(io.Closer); ok {
				c.Close()
			}
			errs <- err
		}()
	}
	var err error
	for range outs {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	return err
}

func benchReport(b *testing.B, kind string) {
	db := benchDB(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Open and close inside the loop: a report is one CLI run.
		st, err := store.Open(ctx, db)
		if err != nil {
			b.Fatal(err)
		}
		if err := render(ctx, st, kind, func(string) io.Writer { return io.Discard }); err != nil {
			b.Fatal(err)
		}
		st.Close()
	}
	b.StopTimer()
	secs, rss := child(b, kind, db)
	b.ReportMetric(secs, "child-s")
	b.ReportMetric(rss, "peak-RSS-MB")
}

func BenchmarkRotationReport(b *testing.B) { benchReport(b, "rotation") }
func BenchmarkUsageReport(b *testing.B)    { benchReport(b, "usage") }

// child runs the report in a fresh process of this test binary (TestMain's
// child mode) and reads its figures.
func child(b *testing.B, kind, db string) (secs, rssMB float64) {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "KC_REPORT_CHILD="+kind, "KC_REPORT_DB="+db, "KC_REPORT_OUT="+b.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("child: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "REPORT-CHILD" {
			secs, _ = strconv.ParseFloat(f[1], 64)
			rssMB, _ = strconv.ParseFloat(f[2], 64)
			return secs, rssMB
		}
	}
	b.Fatalf("child printed no figures:\n%s", out)
	return 0, 0
}

// TestMain runs the benchmark's child process instead of the tests when
// KC_REPORT_CHILD names a report (see child).
func TestMain(m *testing.M) {
	if kind := os.Getenv("KC_REPORT_CHILD"); kind != "" {
		if err := reportChild(kind); err != nil {
			fmt.Fprintln(os.Stderr, "report child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// reportChild renders one report as the CLI does and prints its wall time
// and peak resident memory.
func reportChild(kind string) error {
	ctx := context.Background()
	start := time.Now()
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(report.MemoryLimit) // as the CLI sets it
	}
	st, err := store.Open(ctx, os.Getenv("KC_REPORT_DB"))
	if err != nil {
		return err
	}
	dir := os.Getenv("KC_REPORT_OUT")
	var openErr error
	err = render(ctx, st, kind, func(ext string) io.Writer {
		f, err := os.OpenFile(filepath.Join(dir, kind+"."+ext), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			openErr = err
			return io.Discard
		}
		return f
	})
	if err == nil {
		err = openErr
	}
	if err != nil {
		return err
	}
	st.Close()
	secs := time.Since(start).Seconds()
	status, _ := os.ReadFile("/proc/self/status")
	var hwmKB float64
	for _, l := range bytes.Split(status, []byte("\n")) {
		if f := strings.Fields(string(l)); len(f) >= 2 && f[0] == "VmHWM:" {
			hwmKB, _ = strconv.ParseFloat(f[1], 64)
		}
	}
	fmt.Printf("REPORT-CHILD %.3f %.1f\n", secs, hwmKB/1024)
	return nil
}
