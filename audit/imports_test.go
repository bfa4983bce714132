// Package audit_test holds the check that keeps the audit side's layering:
// the packages under audit/ never import the ceremony engine, the token
// layer, the GUI or the application (nor Fyne). The one exception is the
// transcript reader (ceremony/transcript) with what it needs (words,
// outfile), which the key provenance join verifies ceremonies with: it
// imports neither the engine nor hsm, and a package it started to import
// from either would fail here.
package audit_test

import (
	"os/exec"
	"strings"
	"testing"
)

func TestAuditImportsNoCeremonyTokenOrGUI(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/keyceremony/keyceremony/ceremony",
		"github.com/keyceremony/keyceremony/hsm",
		"github.com/keyceremony/keyceremony/ui",
		"github.com/keyceremony/keyceremony/app",
		"fyne.io/",
	}
	allowed := map[string]bool{
		"github.com/keyceremony/keyceremony/ceremony/transcript": true,
		"github.com/keyceremony/keyceremony/ceremony/words":      true,
		"github.com/keyceremony/keyceremony/ceremony/outfile":    true,
		// Test support only (audit/ceremonies/ceremoniestest writes the
		// evidence the audit's tests load): it imports the reader alone.
		"github.com/keyceremony/keyceremony/ceremony/transcript/transcripttest": true,
	}
	n := 0
	for _, p := range strings.Fields(string(out)) {
		n++
		if allowed[p] {
			continue
		}
		for _, f := range forbidden {
			if p == f || strings.HasPrefix(p, strings.TrimSuffix(f, "/")+"/") {
				t.Errorf("a package under audit/ depends on %s", p)
			}
		}
	}
	if n < 20 {
		t.Fatalf("go list named only %d packages: %s", n, out)
	}
}
