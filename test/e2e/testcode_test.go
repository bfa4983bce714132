package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestReleaseBinaryLinksNoTestCode: the release binary links neither the
// testing package nor the test helpers (hsm/softhsm/softhsmtest), both by
// what the build of ./app depends on and by the symbols of the binary built
// for these tests.
func TestReleaseBinaryLinksNoTestCode(t *testing.T) {
	list := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}:{{range .Imports}} {{.}}{{end}}", "./app")
	list.Dir = repoRoot()
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list -deps ./app: %v", err)
	}
	forbidden := func(pkg string) bool { return pkg == "testing" || strings.HasSuffix(pkg, "/softhsmtest") }
	deps := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, ":")
		deps++
		if forbidden(pkg) {
			t.Errorf("./app depends on %s", pkg)
		}
		for _, imp := range strings.Fields(imports) {
			if forbidden(imp) {
				t.Errorf("%s imports %s, which the release binary must not link", pkg, imp)
			}
		}
	}
	if deps < 100 {
		t.Fatalf("go list -deps ./app listed only %d packages", deps)
	}
	nm, err := exec.Command("go", "tool", "nm", binary).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}
	syms := strings.Split(string(nm), "\n")
	if len(syms) < 1000 {
		t.Fatalf("go tool nm listed only %d symbols", len(syms))
	}
	for _, s := range syms {
		if f := strings.Fields(s); len(f) >= 3 && (strings.HasPrefix(f[2], "testing.") || strings.Contains(f[2], "/softhsmtest.")) {
			t.Fatalf("the binary holds %s", f[2])
		}
	}
}
