package ceremony

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/keyceremony/keyceremony/ceremony/script"
)

// TestMain runs, with KC_TEST_CORE_DUMPS=1, the child of
// TestCoreDumpsDisabled: a fresh process, so that what a ceremony changes
// is seen against the process's state before it.
func TestMain(m *testing.M) {
	if os.Getenv("KC_TEST_CORE_DUMPS") == "1" {
		os.Exit(coreDumpChild())
	}
	os.Exit(m.Run())
}

// coreDumpChild starts a ceremony (declined at its first confirmation) and
// prints the process's dump settings before and after.
func coreDumpChild() int {
	before, _ := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	raw, err := os.ReadFile(os.Getenv("KC_TEST_SCRIPT"))
	if err != nil {
		fmt.Println(err)
		return 1
	}
	s, err := script.Parse(raw)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	e, err := New(s, Options{Prompter: &Answers{}, UnattendedTest: true, OutDir: filepath.Join(os.TempDir(), "out")})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	_, err = e.Run(context.Background())
	after, _ := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	var lim unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_CORE, &lim)
	fmt.Printf("DUMPABLE before=%d after=%d core=%d/%d run=%v\n", before, after, lim.Cur, lim.Max, err)
	return 0
}

// TestCoreDumpsDisabled: a ceremony disables core dumps (RLIMIT_CORE 0,
// PR_SET_DUMPABLE 0) before anything secret is in memory.
func TestCoreDumpsDisabled(t *testing.T) {
	w := newWorld(t, "Root 2026")
	s := w.rootCardsScript(filepath.Join(w.dir, "out"), "backup: true", "backup: false")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "KC_TEST_CORE_DUMPS=1", "KC_TEST_SCRIPT="+s.Path)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "DUMPABLE before=1 after=0 core=0/0") || !strings.Contains(string(out), "not confirmed") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
