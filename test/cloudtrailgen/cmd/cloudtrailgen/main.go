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
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "cloudtrailgen: -out is required")
		os.Exit(2)
	}
	st, err := cloudtrailgen.Generate(*out, cloudtrailgen.Config{
		Seed: *seed, KMSEvents: *events, Days: *days, FileInterval: *interval,
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
