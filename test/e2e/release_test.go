package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/assets"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
)

// sha256sum runs the coreutils tool, as a witness comparing with SHA256SUMS would.
func sha256sum(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("sha256sum", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))[0]
}

// `keyceremony version --json` names the executable by its SHA-256, the
// version and commit stamped by TestMain, and the modules with checksums.
func TestVersionNamesTheBinary(t *testing.T) {
	out := mustRun(t, os.Environ(), binary, "version", "--json")
	var v struct {
		Version, Commit, SHA256 string
		Modules                 []struct{ Path, Version, Sum string }
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if v.SHA256 != sha256sum(t, binary) || v.Version != stampVersion || v.Commit != stampCommit {
		t.Fatalf("version --json: version %q commit %q sha256 %s; want %s %s %s", v.Version, v.Commit, v.SHA256, stampVersion, stampCommit, sha256sum(t, binary))
	}
	fyne := false
	for _, m := range v.Modules {
		fyne = fyne || m.Path == "fyne.io/fyne/v2" && strings.HasPrefix(m.Sum, "h1:")
	}
	if !fyne {
		t.Fatalf("fyne.io/fyne/v2 missing from the modules with its checksum")
	}
	text := mustRun(t, os.Environ(), binary, "version")
	if !strings.Contains(text, sha256sum(t, binary)) || !strings.Contains(text, "keyceremony "+stampVersion) {
		t.Fatalf("version:\n%s", text)
	}
}

// A root ceremony run by the real binary records that binary's SHA-256 in the
// transcript header, equal to what sha256sum prints, and `ceremony verify`
// prints it for the witness.
func TestTranscriptHeaderNamesTheBinary(t *testing.T) {
	env := softhsmStore(t)
	root := rootCeremony(t, env)
	env = root.env
	tr := filepath.Join(root.out, "example-root-2026.transcript.jsonl")
	rep, err := transcript.Verify(tr)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256sum(t, binary)
	header := rep.Entries[0]
	if header.Detail("binary sha256") != want || header.Detail("binary version") != stampVersion || header.Detail("binary commit") != stampCommit {
		t.Fatalf("transcript header: %v; sha256sum of the binary: %s", header.Details, want)
	}
	for _, verify := range [][]string{{"ceremony", "verify", tr}, {"transcript", "verify", tr}} {
		out := mustRun(t, env, binary, verify...)
		if !strings.Contains(out, "SHA-256 "+want) || !strings.Contains(out, header.Detail("binary words")) {
			t.Fatalf("%s %s does not print the binary hash:\n%s", verify[0], verify[1], out)
		}
	}
}

// rootRun is a root-generation ceremony run by the real binary on a fresh
// SoftHSM token: its output directory, the token's serial, and the answers
// (shares delivered to files with passphrases) later ceremonies present.
type rootRun struct {
	env     []string
	dir     string // the working directory
	out     string // the ceremony's output directory
	serial  string
	deliver string // the answers file's deliver section
}

// rootCeremony runs the shipped root-generation template (air gap warned,
// shares to files, no backup) with the binary.
func rootCeremony(t *testing.T, env []string) rootRun {
	t.Helper()
	serial := tokenSerial(t, env, "Root 2026", "vendor-so-1111", "vendor-user-2222")
	raw, err := assets.Ceremonies.ReadFile("ceremonies/root-generation.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := regexp.MustCompile(`uri: "pkcs11:[^"]*"`).ReplaceAllString(string(raw), `uri: "pkcs11:serial=`+serial+`"`)
	for _, r := range [][2]string{{"air_gap: block", "air_gap: warn"}, {"delivery: [card, file]", "delivery: [file]"},
		{"backup: true", "backup: false"}, {"not_before: 2026-12-01T00:00:00Z", "not_before: 2025-01-01T00:00:00Z"}} {
		if !strings.Contains(s, r[0]) {
			t.Fatalf("template lacks %q", r[0])
		}
		s = strings.Replace(s, r[0], r[1], 1)
	}
	// Without a backup there is no recovery quorum.
	s = regexp.MustCompile(`(?m)^recovery:\n(?:  .*\n)+`).ReplaceAllString(s, "")
	dir := t.TempDir()
	// Shares must not go into the temporary directory: give the binary its own.
	env = append(env, "TMPDIR="+t.TempDir())
	s = strings.Replace(s, "directory: ceremony-output", "directory: "+filepath.Join(dir, "out"), 1)
	script := filepath.Join(dir, "root.yaml")
	os.WriteFile(script, []byte(s), 0o600)
	var d strings.Builder
	d.WriteString("deliver:\n")
	for _, c := range []string{"Carol Chen", "Dan Diaz", "Erin Evans", "Frank Fox", "Grace Gray"} {
		fmt.Fprintf(&d, "  %s: {file: %s, passphrase: %q}\n", c, filepath.Join(dir, strings.ReplaceAll(c, " ", "_")+".age"), "passphrase of "+c)
	}
	answers := filepath.Join(dir, "answers.yaml")
	os.WriteFile(answers, []byte("confirm: true\npins: {so: vendor-so-1111, user: vendor-user-2222}\n"+d.String()+
		"present:\n  - {custodian: Grace Gray}\n  - {custodian: Dan Diaz}\n  - {custodian: Erin Evans}\n"), 0o600)
	mustRun(t, env, binary, "ceremony", "run", script, "--answers", answers, "--unattended-test")
	return rootRun{env: env, dir: dir, out: filepath.Join(dir, "out"), serial: serial, deliver: d.String()}
}
