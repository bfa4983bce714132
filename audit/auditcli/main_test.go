package auditcli

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// Subprocess tests (kill -9 and resume) and test/bench/audit.sh run this
// test binary as the audit CLI: KC_AUDIT_CLI_CHILD=1 ./auditcli.test audit ingest ...
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
