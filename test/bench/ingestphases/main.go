// Command ingestphases runs the audit ingest on a tree and prints how long
// each phase took (loading, indexing, resolving aliases): the benchmark in
// test/bench/audit.sh measures the whole run, this says where it went.
//
//	go run ./test/bench/ingestphases -db /tmp/x.db ~/.cache/keyceremony-bench/cloudtrail-1000000/AWSLogs
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"time"

	"github.com/keyceremony/keyceremony/audit/ingest"
	"github.com/keyceremony/keyceremony/audit/store"
)

func main() {
	db := flag.String("db", "", "database to create (must not exist)")
	prof := flag.String("cpuprofile", "", "write a CPU profile")
	workers := flag.Int("workers", 0, "parsing goroutines (0: GOMAXPROCS)")
	appendTo := flag.Bool("append", false, "load into an existing database (an incremental ingest)")
	heapAfter := flag.Duration("heapprofile-after", 0, "write a heap profile (to -db + .heap) this long after the start")
	maxIDs := flag.Int("maxids", 0, "cap of the bulk load's eventID set (0: the store's default)")
	bulkMode := flag.Int("bulk", 0, "0 auto, 1 on, 2 off (indexes kept during the load)")
	flag.Parse()
	if *db == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: ingestphases -db NEW.db PATH...")
		os.Exit(2)
	}
	if _, err := os.Stat(*db); err == nil && !*appendTo {
		fmt.Fprintln(os.Stderr, *db, "exists")
		os.Exit(2)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(128 << 20) // as the CLI does
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
	ctx := context.Background()
	start := time.Now()
	if *heapAfter > 0 {
		time.AfterFunc(*heapAfter, func() {
			f, err := os.Create(*db + ".heap")
			if err == nil {
				pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
			}
		})
	}
	st, err := store.Open(ctx, *db)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	phase, since := "", start
	opt := ingest.Options{Workers: *workers, Bulk: ingest.BulkMode(*bulkMode), MaxBulkIDs: *maxIDs, ProgressEvery: 10 * time.Millisecond, Progress: func(p ingest.Progress) {
		if p.Phase != phase {
			if phase != "" {
				fmt.Printf("%-18s %6.2f s\n", phase, time.Since(since).Seconds())
			}
			phase, since = p.Phase, time.Now()
		}
	}}
	sum, err := ingest.Run(ctx, st, flag.Args(), opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%-18s %6.2f s\n", phase, time.Since(since).Seconds())
	closing := time.Now()
	if err := st.Close(); err != nil { // the last checkpoint of the WAL
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%-18s %6.2f s\n", "closing", time.Since(closing).Seconds())
	fmt.Printf("total              %6.2f s, %d new events, %d files\n", time.Since(start).Seconds(), sum.KMSNew, sum.FilesOK)
}
