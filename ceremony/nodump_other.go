//go:build !linux

package ceremony

// disableCoreDumps: only Linux is covered so far; the transcript says so.
func disableCoreDumps() (string, error) {
	return "not disabled by Key Ceremony on this system (only on Linux): turn off crash dumps in the operating system", nil
}
