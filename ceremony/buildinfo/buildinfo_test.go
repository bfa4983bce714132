package buildinfo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestExecutableHashIsTheRunningFile hashes the test binary independently.
func TestExecutableHashIsTheRunningFile(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(raw)
	in, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	if in.SHA256 != hex.EncodeToString(want[:]) {
		t.Fatalf("SHA256 = %s, want %x", in.SHA256, want)
	}
	if in.GoVersion != runtime.Version() || in.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Fatalf("go %q platform %q", in.GoVersion, in.Platform)
	}
}

// TestFileToHash: only Linux reads /proc/self/exe. This test runs on Linux,
// where /proc/self/exe exists, so a choice made by looking for it (as a
// Windows binary under Wine would also find it, naming the wineserver) fails
// here for every other system.
func TestFileToHash(t *testing.T) {
	if _, err := os.Stat("/proc/self/exe"); err != nil {
		t.Fatalf("this test needs /proc mounted: %v", err)
	}
	for _, tc := range []struct{ goos, started, want string }{
		{"linux", "/usr/bin/keyceremony", "/proc/self/exe"},
		{"windows", `C:\Program Files\Key Ceremony\keyceremony.exe`, `C:\Program Files\Key Ceremony\keyceremony.exe`},
		{"windows", "/win/keyceremony-cli.exe", "/win/keyceremony-cli.exe"},
		{"darwin", "/Applications/Key Ceremony.app/Contents/MacOS/keyceremony", "/Applications/Key Ceremony.app/Contents/MacOS/keyceremony"},
		{"freebsd", "/usr/local/bin/keyceremony", "/usr/local/bin/keyceremony"},
	} {
		if got := fileToHash(tc.goos, tc.started); got != tc.want {
			t.Errorf("fileToHash(%s, %s) = %s, want %s", tc.goos, tc.started, got, tc.want)
		}
	}
}

// TestStampedBuild links a small program with the Makefile's -X flags and
// -buildvcs=false, and checks it reports the stamped version and commit, its
// own hash, and the modules it links (with go.sum checksums).
func TestStampedBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	exe := filepath.Join(t.TempDir(), "printinfo")
	pkg := "github.com/keyceremony/keyceremony/ceremony/buildinfo"
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-o", exe,
		"-ldflags", "-X "+pkg+".stamp=keyceremony-stamp:v1:9.8.7:0123abcd:end",
		"./testdata/printinfo")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(exe).Output()
	if err != nil {
		t.Fatal(err)
	}
	var in Info
	if err := json.Unmarshal(out, &in); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	raw, _ := os.ReadFile(exe)
	sum := sha256.Sum256(raw)
	if in.Version != "9.8.7" || in.Commit != "0123abcd" || in.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("version %q commit %q sha256 %s (file %x)", in.Version, in.Commit, in.SHA256, sum)
	}
	var yaml *Module
	for i, m := range in.Modules {
		if m.Path == "gopkg.in/yaml.v3" {
			yaml = &in.Modules[i]
		}
	}
	if yaml == nil || yaml.Version == "" || !strings.HasPrefix(yaml.Sum, "h1:") {
		t.Fatalf("yaml.v3 module not listed with version and checksum: %+v", in.Modules)
	}

	// The SBOM of that binary, read from the file: stamped version and
	// commit, the file's hash, the module with its go.sum checksum; and the
	// same bytes every time.
	var a, b bytes.Buffer
	if err := WriteSBOM(&a, exe); err != nil {
		t.Fatal(err)
	}
	if err := WriteSBOM(&b, exe); err != nil || !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatalf("SBOM not deterministic (%v)", err)
	}
	var bom struct {
		BOMFormat, SpecVersion string
		Metadata               struct{ Component cdxComponent }
		Components             []cdxComponent
	}
	if err := json.Unmarshal(a.Bytes(), &bom); err != nil {
		t.Fatal(err)
	}
	mc := bom.Metadata.Component
	if bom.BOMFormat != "CycloneDX" || mc.Version != "9.8.7" || len(mc.Hashes) != 1 || mc.Hashes[0].Content != in.SHA256 {
		t.Fatalf("SBOM metadata: %+v", bom)
	}
	if !hasProp(mc.Properties, "vcs:commit", "0123abcd") || !hasProp(mc.Properties, "go:build:CGO_ENABLED", "0") {
		t.Fatalf("SBOM build properties: %+v", mc.Properties)
	}
	found := false
	for _, c := range bom.Components {
		if c.Name == "gopkg.in/yaml.v3" {
			found = c.Version == yaml.Version && hasProp(c.Properties, "go:module:sum", yaml.Sum) && c.PURL == "pkg:golang/gopkg.in/yaml.v3@"+yaml.Version+"?type=module"
		}
	}
	if !found {
		t.Fatalf("SBOM lacks gopkg.in/yaml.v3 %s with its checksum: %s", yaml.Version, a.String())
	}
}

func hasProp(props []cdxProperty, name, value string) bool {
	for _, p := range props {
		if p.Name == name && p.Value == value {
			return true
		}
	}
	return false
}

// TestUnstampedFallbacks: an unstamped test binary is "dev" at "unknown" or
// the VCS revision, never empty.
func TestUnstampedFallbacks(t *testing.T) {
	if Version() == "" || Commit() == "" {
		t.Fatalf("version %q commit %q", Version(), Commit())
	}
	old := stamp
	defer func() { stamp = old }()
	stamp = "keyceremony-stamp:v1:1.0.0-rc.1:4948be22fa48d569d0d621737666b4b121f1674f-dirty:end"
	if Version() != "1.0.0-rc.1" || Commit() != "4948be22fa48d569d0d621737666b4b121f1674f-dirty" {
		t.Fatalf("stamp ignored: %q %q", Version(), Commit())
	}
	stamp = "keyceremony-stamp:v1:1.0.0:not hex:end"
	if Version() == "1.0.0" {
		t.Fatalf("malformed stamp accepted")
	}
}
