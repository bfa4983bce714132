package cli

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// The audit subprocess tests (kill -9 and resume) and test/bench/audit.sh
// run this test binary as the CLI without linking Fyne:
// KC_AUDIT_CLI_CHILD=1 ./cli.test audit ingest ... (init runs before
// TestMain).
// KC_AUDIT_CPUPROFILE=FILE also writes a CPU profile of the command, which
// is how the ingest's costs in docs/audit-ingest.md were found.
func init() {
	if os.Getenv("KC_AUDIT_CLI_CHILD") == "1" {
		stop := func() {}
		if path := os.Getenv("KC_AUDIT_CPUPROFILE"); path != "" {
			f, err := os.Create(path)
			if err != nil {
				fmt.Fprintln(os.Stderr, "cpu profile:", err)
				os.Exit(1)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				fmt.Fprintln(os.Stderr, "cpu profile:", err)
				os.Exit(1)
			}
			stop = func() { pprof.StopCPUProfile(); f.Close() }
		}
		code := Main(os.Args[1:], &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
		stop()
		os.Exit(code)
	}
}
