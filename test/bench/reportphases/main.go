// Command reportphases builds an audit report and renders its outputs one
// after the other, printing how long each took and the heap: the
// benchmark in test/bench/audit.sh times the whole CLI run, this says
// where it went (computing the model, or drawing a PDF of thousands of
// pages).
//
//	go run ./test/bench/reportphases -db /var/tmp/kc10m.db -kind rotation -from 2025-03-01 -to 2025-05-30 -cpuprofile /tmp/rot.prof
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/report/rotation"
	"github.com/keyceremony/keyceremony/audit/report/usage"
	"github.com/keyceremony/keyceremony/audit/store"
)

func main() {
	db := flag.String("db", "", "audit database")
	kind := flag.String("kind", "usage", "rotation or usage")
	fromS := flag.String("from", "2025-03-01", "first day (UTC)")
	toS := flag.String("to", "", "day after the last (UTC)")
	prof := flag.String("cpuprofile", "", "write a CPU profile")
	outDir := flag.String("out", "", "write the outputs into this directory (default: discarded)")
	heapProf := flag.String("memprofile", "", "write a heap profile of the built model (before any output)")
	cacheKiB := flag.Int64("cache-kib", report.CacheKiB, "page cache of the report's connection (report.CacheKiB)")
	flag.Parse()
	if *db == "" || *toS == "" {
		fmt.Fprintln(os.Stderr, "usage: reportphases -db DB -kind rotation|usage -from DAY -to DAY")
		os.Exit(2)
	}
	from, err1 := time.Parse(time.DateOnly, *fromS)
	to, err2 := time.Parse(time.DateOnly, *toS)
	if err1 != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, "-from and -to: YYYY-MM-DD")
		os.Exit(2)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		defer report.LimitMemory(report.MemoryLimit)() // as the CLI does
	}
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	report.CacheKiB = *cacheKiB
	ctx := context.Background()
	st, err := store.Open(ctx, *db)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer st.Close()
	sc := report.Scope{From: from, To: to}
	last := time.Now()
	phase := func(name string) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Printf("%-8s %7.2f s  heap %4d MiB  GC cycles %d\n", name, time.Since(last).Seconds(), ms.HeapAlloc>>20, ms.NumGC)
		last = time.Now()
	}
	var outputs map[string]func(io.Writer) error
	progress := func(p report.Progress) {
		fmt.Printf("  [%d/%d] %s at %.2f s\n", p.Step, p.Steps, p.Stage, time.Since(last).Seconds())
	}
	switch *kind {
	case "rotation":
		r, err := rotation.Build(ctx, st, rotation.Options{Scope: sc, Progress: progress})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		outputs = map[string]func(io.Writer) error{"pdf": r.WritePDF, "csv": r.WriteCSV, "json": r.WriteJSON}
	case "usage":
		r, err := usage.Build(ctx, st, usage.Options{Scope: sc, Progress: progress})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		outputs = map[string]func(io.Writer) error{"pdf": r.WritePDF, "csv": r.WriteCSV, "json": r.WriteJSON}
	default:
		fmt.Fprintln(os.Stderr, "-kind: rotation or usage")
		os.Exit(2)
	}
	phase("build")
	if *heapProf != "" {
		runtime.GC()
		f, err := os.Create(*heapProf)
		if err == nil {
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	for _, name := range []string{"csv", "json", "pdf"} {
		var w io.Writer = io.Discard
		if *outDir != "" {
			f, err := os.OpenFile(*outDir+"/"+*kind+"."+name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			defer f.Close()
			w = f
		}
		if err := outputs[name](w); err != nil {
			fmt.Fprintln(os.Stderr, name, err)
			os.Exit(1)
		}
		phase(name)
	}
}
