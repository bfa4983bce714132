package ceremony

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// disableCoreDumps keeps the process's memory (the quorum secret, derived
// PINs and KEKs, shares being typed) out of core files and away from
// debuggers of the same user for the rest of its life: RLIMIT_CORE 0 (soft
// and hard, so it cannot be raised again) and PR_SET_DUMPABLE 0 (no core
// dump, no ptrace attach, /proc/PID/mem and friends owned by root).
func disableCoreDumps() (string, error) {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		return "", fmt.Errorf("disable core dumps (RLIMIT_CORE 0): %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return "", fmt.Errorf("disable core dumps (PR_SET_DUMPABLE 0): %w", err)
	}
	return "disabled for the process: RLIMIT_CORE 0 (soft and hard), PR_SET_DUMPABLE 0", nil
}
