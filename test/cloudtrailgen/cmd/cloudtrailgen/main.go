// Command cloudtrailgen writes a CloudTrail S3 log tree with AWS KMS events
// for the audit ingest benchmark and tests, and prints the exact counts as JSON.
//
//	go run ./test/cloudtrailgen/cmd/cloudtrailgen -out /tmp/ct -events 1000000
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/keyceremony/keyceremony/test/cloudtrailgen"
)

func main() {
	out := flag.String("out", "", "output directory (required)")
	events := flag.Int("events", 10000, "unique KMS events")
	days := flag.Int("days", 7, "days of logs")
	interval := flag.Duration("interval", time.Hour, "span of one log file per account and region")
	seed := flag.Uint64("seed", 1, "random seed")
	start := flag.String("start", "", "first day, YYYY-MM-DD (default 2025-03-01)")
	flag.Parse()
	var first time.Time
	if *start != "" {
		var err error
		if first, err = time.Parse("2006-01-02", *start); err != nil {
			fmt.Fprintln(os.Stderr, "cloudtrailgen: -start:", err)
			os.Exit(2)
		}
	}
	if *out == "" {
		fmt.Fprintln(os.Stderr, "cloudtrailgen: -out is required")
		os.Exit(2)
	}
	st, err := cloudtrailgen.Generate(*out, cloudtrailgen.Config{
		Seed: *seed, KMSEvents: *events, Days: *days, FileInterval: *interval, Start: first,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "cloudtrailgen:", err)
		os.Exit(1)
	}
	st.Keys = nil // long and not needed by scripts
	st.Aliases = nil
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	enc.Encode(st)
}
