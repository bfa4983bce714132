// Package e2e runs the real keyceremony binary: the CLI against SoftHSM tokens
// made with softhsm2-util, and the GUI under a private Xvfb display.
package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// binary is the keyceremony executable built once for the package, stamped
// the way the Makefile stamps its builds.
var binary string

const (
	stampVersion = "0.0.0-e2e"
	stampCommit  = "0000000000000000000000000000000000e2e000"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keyceremony-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "keyceremony")
	_, here, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(here), "..", "..")
	build := exec.Command("go", "build", "-trimpath", "-o", binary, "-ldflags",
		"-X github.com/keyceremony/keyceremony/ceremony/buildinfo.stamp=keyceremony-stamp:v1:"+stampVersion+":"+stampCommit+":end", "./app")
	build.Dir = root
	var out bytes.Buffer
	build.Stdout, build.Stderr = &out, &out
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build keyceremony: %v\n%s", err, out.String())
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is the repository's top directory.
func repoRoot() string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "..", "..")
}

// softhsmStore writes a SoftHSM configuration with an empty token directory
// and returns the environment that selects it.
func softhsmStore(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(), "SOFTHSM2_CONF="+conf, "LANG=C.UTF-8", "LANGUAGE=en", "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
}

func mustRun(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s%s", name, args, err, out, stderr.Bytes())
	}
	if stderr.Len() > 0 {
		t.Logf("%s %v wrote to stderr: %s", name, args, stderr.Bytes())
	}
	return string(out)
}

// tokenSerial initialises a SoftHSM token with softhsm2-util (not with our
// code) and returns the serial softhsm2-util shows for it: one block per
// slot, the serial of the block with our label.
func tokenSerial(t *testing.T, env []string, label, soPIN, pin string) string {
	t.Helper()
	mustRun(t, env, "softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", soPIN, "--pin", pin)
	show := mustRun(t, env, "softhsm2-util", "--show-slots")
	labelRE := regexp.MustCompile(`Label:[ \t]+` + regexp.QuoteMeta(label) + `[ \t]*\n`)
	for _, block := range strings.Split(show, "\nSlot ") {
		if labelRE.MatchString(block + "\n") {
			if m := regexp.MustCompile(`Serial number:[ \t]+(\S+)`).FindStringSubmatch(block); m != nil {
				return m[1]
			}
		}
	}
	t.Fatalf("softhsm2-util does not show token %q:\n%s", label, show)
	return ""
}
