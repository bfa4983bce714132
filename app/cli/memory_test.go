package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkCeremonyMemory measures the peak resident memory (VmHWM) of a
// whole root ceremony run through the CLI in a child process, as an
// operator runs it: 3 of 5 custodians, every share an age file encrypted
// with scrypt (work factor 2^18, 256 MiB each), three opened again at the
// unlock, the root key backed up under a 2-of-3 recovery quorum whose two
// share files are opened too. Reported as peak-RSS-MB.
//
//	go test -run '^$' -bench CeremonyMemory -benchtime 1x ./app/cli/
//
// With KC_CEREMONY_BINARY=PATH the built keyceremony binary runs the
// ceremony instead of this test binary, measured by GNU time (%M).
func BenchmarkCeremonyMemory(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.ReportMetric(ceremonyPeakMB(b), "peak-RSS-MB")
	}
}

// ceremonyPeakMB runs the ceremony in a child and returns its VmHWM in MB.
func ceremonyPeakMB(b *testing.B) float64 {
	r := newRoom(b)
	path := r.script(b, "delivery: [card, file]", "delivery: [file]", "delivery: [card]", "delivery: [file]",
		"medium: /media/root-backup", "medium: "+r.media)
	var a strings.Builder
	fmt.Fprintf(&a, "confirm: true\npins: {so: %q, user: %q}\ndeliver:\n", r.soPIN, r.userPIN)
	for _, c := range append(append([]string(nil), custodians...), "Ivan Ito", "Judy Jones", "Karl Kim") {
		fmt.Fprintf(&a, "  %s: {file: %s, passphrase: %q}\n", c, r.sharePath(c), r.passphrase(c))
	}
	fmt.Fprintf(&a, "present:\n  - {custodian: Grace Gray}\n  - {custodian: Dan Diaz}\n  - {custodian: Erin Evans}\n")
	fmt.Fprintf(&a, "present_recovery:\n  - {custodian: Ivan Ito}\n  - {custodian: Karl Kim}\n")
	answers := filepath.Join(r.dir, "answers.yaml")
	os.WriteFile(answers, []byte(a.String()), 0o600)
	args := []string{"ceremony", "run", path, "--answers", answers, "--unattended-test"}
	var stderr string
	var code int
	if bin := os.Getenv("KC_CEREMONY_BINARY"); bin != "" {
		cmd := exec.Command("/usr/bin/time", append([]string{"-f", "PEAK %M kB", bin}, args...)...)
		cmd.Env = append(os.Environ(), os.Getenv("KC_CEREMONY_ENV"))
		var errb strings.Builder
		cmd.Stderr = &errb
		if err := cmd.Run(); err != nil {
			code = 1
		}
		stderr = errb.String()
		if os.Getenv("KC_CEREMONY_ENV") != "" {
			b.Log(stderr)
		}
	} else {
		_, stderr, code, _ = cli(b, []string{"KEYCEREMONY_TEST_HWM=1"}, args...)
	}
	m := regexp.MustCompile(`PEAK (\d+) kB`).FindStringSubmatch(stderr)
	if code != 0 || m == nil {
		b.Fatalf("ceremony (exit %d): %s", code, stderr)
	}
	kb, _ := strconv.ParseFloat(m[1], 64)
	return kb / 1024
}
