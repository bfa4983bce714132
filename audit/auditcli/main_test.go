package auditcli

import "os"

// Subprocess tests (kill -9 and resume) and test/bench/audit.sh run this
// test binary as the audit CLI: KC_AUDIT_CLI_CHILD=1 ./auditcli.test audit ingest ...
func init() {
	if os.Getenv("KC_AUDIT_CLI_CHILD") == "1" {
		os.Exit(Main(os.Args[1:], &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}))
	}
}
