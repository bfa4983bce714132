package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestReleaseBinaryLinksNoTestCode: the release binary links neither the
// testing package nor our test helper packages (named *test, such as
// hsm/softhsm/softhsmtest), both by what the build of ./app depends on and
// by the symbols of the binary built for these tests.
func TestReleaseBinaryLinksNoTestCode(t *testing.T) {
	list := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}:{{range .Imports}} {{.}}{{end}}", "./app")
	list.Dir = repoRoot()
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list -deps ./app: %v", err)
	}
	const module = "github.com/keyceremony/keyceremony/"
	forbidden := func(pkg string) bool {
		return pkg == "testing" || strings.HasPrefix(pkg, module) && strings.HasSuffix(pkg, "test")
	}
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
		if f := strings.Fields(s); len(f) >= 3 && forbidden(symbolPackage(f[2])) {
			t.Fatalf("the binary holds %s", f[2])
		}
	}
}

// symbolPackage is the import path of a Go symbol's package:
// "github.com/a/b.F" is in "github.com/a/b", "testing.(*T).Run" in "testing".
func symbolPackage(sym string) string {
	slash := strings.LastIndex(sym, "/")
	pkg, _, _ := strings.Cut(sym[slash+1:], ".")
	return sym[:slash+1] + pkg
}
