package cli

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/assets"
	"github.com/keyceremony/keyceremony/ceremony"
	"github.com/keyceremony/keyceremony/ceremony/quorum"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/ceremony/transcript/transcripttest"
	"github.com/keyceremony/keyceremony/ceremony/words"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/softhsm/softhsmtest"
)

// The ceremony subprocess tests re-execute this test binary as the
// keyceremony CLI (so they never link Fyne): with KEYCEREMONY_TEST_CLI=1 it
// runs Main on its arguments, and KEYCEREMONY_TEST_KILL_AFTER=STEP makes it
// kill itself with SIGKILL right after STEP's entry is on disk.
func TestMain(m *testing.M) {
	if os.Getenv("KEYCEREMONY_TEST_CLI") == "1" {
		if stop := os.Getenv("KEYCEREMONY_TEST_KILL_AFTER"); stop != "" {
			afterStep = func(s ceremony.StepInfo, _ transcript.Entry) {
				if s.ID == stop {
					p, _ := os.FindProcess(os.Getpid())
					p.Kill()
					select {}
				}
			}
		}
		code := Main(os.Args[1:], &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
		if os.Getenv("KEYCEREMONY_TEST_HWM") == "1" {
			// Peak resident memory of the whole run, for BenchmarkCeremonyMemory.
			status, _ := os.ReadFile("/proc/self/status")
			for _, l := range strings.Split(string(status), "\n") {
				if strings.HasPrefix(l, "VmHWM:") {
					fmt.Fprintln(os.Stderr, "PEAK "+strings.TrimSpace(strings.TrimPrefix(l, "VmHWM:")))
				}
			}
		}
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// cli runs the CLI in a child process and returns its output and exit code.
func cli(t testing.TB, extraEnv []string, args ...string) (string, string, int, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "KEYCEREMONY_TEST_CLI=1"), extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code, err
}

var custodians = []string{"Carol Chen", "Dan Diaz", "Erin Evans", "Frank Fox", "Grace Gray"}

type room struct {
	dir, media, tmp, serial string
	config                  string // XDG_CONFIG_HOME: where the audit database and settings would live
	module                  string
	soPIN, userPIN          string
}

func newRoom(t testing.TB) *room {
	r := &room{soPIN: "vendor-so-1111", userPIN: "vendor-user-2222"}
	r.module = softhsmtest.NewToken(t, "Root 2026", []byte(r.soPIN), []byte(r.userPIN))
	m, err := hsm.Open(r.module)
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.FindToken(hsm.URI{Token: "Root 2026"})
	m.Close()
	if err != nil {
		t.Fatal(err)
	}
	r.serial = s.Token.Serial
	r.dir, r.media = t.TempDir(), t.TempDir()
	r.config = t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", r.config)
	r.tmp = t.TempDir()
	t.Setenv("TMPDIR", r.tmp)
	return r
}

// script writes the shipped root template adapted to the test token.
func (r *room) script(t testing.TB, edits ...string) string {
	b, err := fs.ReadFile(assets.Ceremonies, "ceremonies/root-generation.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := regexp.MustCompile(`uri: "pkcs11:[^"]*"`).ReplaceAllString(string(b), `uri: "pkcs11:serial=`+r.serial+`"`)
	edits = append([]string{"air_gap: block", "air_gap: warn", "directory: ceremony-output", "directory: out",
		"not_before: 2026-12-01T00:00:00Z", "not_before: 2025-01-01T00:00:00Z"}, edits...)
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(s, edits[i]) {
			t.Fatalf("template lacks %q", edits[i])
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
		if edits[i] == "backup: true" && edits[i+1] == "backup: false" {
			// Without a backup there is no recovery quorum.
			s = regexp.MustCompile(`(?m)^recovery:\n(?:  .*\n)+`).ReplaceAllString(s, "")
		}
	}
	p := filepath.Join(r.dir, "root.yaml")
	os.WriteFile(p, []byte(s), 0o600)
	return p
}

func (r *room) sharePath(c string) string {
	return filepath.Join(r.media, strings.ReplaceAll(c, " ", "_")+".age")
}

func (r *room) passphrase(c string) string { return "passphrase of " + c }

// TestCeremonyCLIKilledAndResumed runs a 3-of-5 root ceremony through the CLI
// with an answers file, kills the process right after the key is generated,
// resumes it, and then checks `ceremony verify` on the result and on
// tampered copies.
func TestCeremonyCLIKilledAndResumed(t *testing.T) {
	r := newRoom(t)
	path := r.script(t, "delivery: [card, file]", "delivery: [file]", "backup: true", "backup: false")
	var a strings.Builder
	fmt.Fprintf(&a, "confirm: true\npins: {so: %q, user: %q}\ndeliver:\n", r.soPIN, r.userPIN)
	for _, c := range custodians {
		fmt.Fprintf(&a, "  %s: {file: %s, passphrase: %q}\n", c, r.sharePath(c), r.passphrase(c))
	}
	fmt.Fprintf(&a, "present:\n  - {custodian: Grace Gray}\n  - {custodian: Dan Diaz}\n  - {custodian: Erin Evans}\n")
	answers := filepath.Join(r.dir, "answers.yaml")
	os.WriteFile(answers, []byte(a.String()), 0o600)
	out := filepath.Join(r.dir, "out")
	tr := filepath.Join(out, "example-root-2026.transcript.jsonl")

	// An answers file confirms for people who are not there: refused
	// outside a rehearsal unless the run says it is an automated test.
	if _, serr, code, _ := cli(t, nil, "ceremony", "run", path, "--answers", answers); code != 2 || !strings.Contains(serr, "refused outside a rehearsal") {
		t.Fatalf("--answers without --rehearse: exit %d: %s", code, serr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("the refused run created the output directory")
	}
	stdout1, stderr1, _, err := cli(t, []string{"KEYCEREMONY_TEST_KILL_AFTER=generate-key"}, "ceremony", "run", path, "--answers", answers, "--unattended-test")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != -1 {
		t.Fatalf("the child was not killed: %v\n%s\n%s", err, stdout1, stderr1)
	}
	// An interrupted transcript is not a ceremony's evidence: verify says
	// what is missing and exits non-zero unless told to accept it, and never
	// calls the last hash a final hash.
	vout, verr, code, _ := cli(t, nil, "ceremony", "verify", tr)
	if code != 1 || !regexp.MustCompile(`INCOMPLETE: the transcript ends at entry \d+ \(generate-key, ok\); missing: anchor, lint-certificate, sign-certificate, finish, seal, transcript-pdf`).MatchString(vout) ||
		strings.Contains(vout, "printed on the transcript PDF") || !strings.Contains(verr, "INCOMPLETE") {
		t.Fatalf("verify after the kill (exit %d):\n%s\n%s", code, vout, verr)
	}
	if _, verr, code, _ := cli(t, nil, "ceremony", "verify", "--allow-incomplete", tr); code != 0 {
		t.Fatalf("verify --allow-incomplete after the kill (exit %d): %s", code, verr)
	}

	stdout2, stderr2, code, _ := cli(t, nil, "ceremony", "run", path, "--answers", answers, "--unattended-test")
	if code != 0 || !strings.Contains(stdout2, "Ceremony complete.") || !strings.Contains(stdout2, "For testing and rehearsal only") {
		t.Fatalf("resumed run (exit %d):\n%s\n%s", code, stdout2, stderr2)
	}
	vout, verr, code, _ = cli(t, nil, "ceremony", "verify", tr)
	if code != 0 || !strings.Contains(vout, "Transcript verified") || !strings.Contains(vout, "the transcript PDF is entry") ||
		!regexp.MustCompile(`token signature: entries \d+ \(anchor\), \d+ \(seal\), each over the hash before it, all verified`).MatchString(vout) ||
		!strings.Contains(vout, "the key of example-root-2026.cert.pem") ||
		!strings.Contains(vout, "UNATTENDED: --unattended-test") {
		t.Fatalf("verify (exit %d): %s %s", code, vout, verr)
	}
	rep, err := transcript.Verify(tr)
	if err != nil {
		t.Fatal(err)
	}
	// The header names the binary that ran the ceremony (here the test
	// binary acting as the CLI), and verify prints it.
	self, _ := os.ReadFile(os.Args[0])
	selfSum := fmt.Sprintf("%x", sha256.Sum256(self))
	if got := rep.Entries[0].Detail("binary sha256"); got != selfSum {
		t.Errorf("transcript header names binary %q, the CLI binary is %s", got, selfSum)
	}
	if !strings.Contains(vout, "SHA-256 "+selfSum) || !strings.Contains(vout, rep.Entries[0].Detail("binary words")) {
		t.Errorf("verify does not print the binary's hash and words:\n%s", vout)
	}
	count := map[string]int{}
	for _, en := range rep.Entries {
		count[en.Step]++
	}
	if count["generate-key"] != 1 || count["resume"] != 1 || count["unlock"] != 2 || count["sign-certificate"] != 1 {
		t.Fatalf("steps recorded: %v", count)
	}
	final, _ := rep.Final()
	if !strings.Contains(vout, final.Hash) || !strings.Contains(stdout2, final.Hash) {
		t.Error("verify and run do not print the same final hash")
	}
	checkVerifyExpect(t, tr, final, filepath.Join(out, "example-root-2026.cert.pem"))
	cert := filepath.Join(out, "example-root-2026.cert.pem")
	if b, err := exec.Command("openssl", "verify", "-CAfile", cert, cert).CombinedOutput(); err != nil {
		t.Fatalf("openssl verify: %v %s", err, b)
	}

	// One flipped byte in an output file, or in any entry, is named.
	seqOf := map[string]int{}
	for _, en := range rep.Entries {
		for _, o := range en.Outputs {
			seqOf[o.Path] = en.Seq
		}
	}
	for name, seq := range seqOf {
		p := filepath.Join(out, name)
		orig, _ := os.ReadFile(p)
		mod := bytes.Clone(orig)
		mod[len(mod)/2] ^= 0x04
		os.WriteFile(p, mod, 0o600)
		_, verr, code, _ := cli(t, nil, "ceremony", "verify", tr)
		os.WriteFile(p, orig, 0o600)
		if code != 1 || !strings.Contains(verr, fmt.Sprintf("transcript entry %d (step ", seq)) || !strings.Contains(verr, name+" has changed") {
			t.Errorf("flipped %s: exit %d: %s", name, code, verr)
		}
	}
	orig, _ := os.ReadFile(tr)
	lines := bytes.SplitAfter(orig, []byte("\n"))
	for _, seq := range []int{1, 7, len(rep.Entries)} {
		mod := bytes.Clone(orig)
		off := len(bytes.Join(lines[:seq-1], nil)) + len(lines[seq-1])/2
		mod[off] ^= 0x01
		os.WriteFile(tr, mod, 0o600)
		_, verr, code, _ := cli(t, nil, "ceremony", "verify", tr)
		if code != 1 || !strings.Contains(verr, fmt.Sprintf("transcript entry %d", seq)) {
			t.Errorf("flipped a byte of entry %d: exit %d: %s", seq, code, verr)
		}
	}
	os.WriteFile(tr, orig, 0o600)

	// No PIN, share or passphrase in the outputs, the temporary directory,
	// the configuration directory (audit database, settings) or anything the
	// CLI printed.
	rec, err := quorum.ReadRecord(filepath.Join(out, "example-root-2026.quorum.json"))
	if err != nil {
		t.Fatal(err)
	}
	var needles [][]byte
	col := rec.NewCollector()
	for _, c := range custodians {
		f, _ := os.Open(r.sharePath(c))
		s, err := quorum.ReadFile(f, []byte(r.passphrase(c)))
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		needles = append(needles, s.Text(), s.Compact(), []byte(r.passphrase(c)))
		needles = append(needles, s.Lines()...)
		col.Add(s)
	}
	sec, err := col.Combine()
	if err != nil {
		t.Fatal(err)
	}
	user, _ := sec.PIN(quorum.UserPIN, 255)
	so, _ := sec.PIN(quorum.SOPIN, 255)
	needles = append(needles, user, so, []byte(r.soPIN), []byte(r.userPIN))
	hay := map[string][]byte{"run output": []byte(stdout1 + stderr1 + stdout2 + stderr2 + vout)}
	for _, d := range []string{out, r.tmp, r.config} {
		filepath.Walk(d, func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				hay[p], _ = os.ReadFile(p)
				if strings.HasSuffix(p, ".pdf") {
					txt, _ := exec.Command("pdftotext", p, "-").Output()
					hay[p+" (text)"] = txt
				}
			}
			return nil
		})
	}
	if len(hay) < 8 {
		t.Fatalf("searched only %d places", len(hay))
	}
	for where, h := range hay {
		for _, n := range needles {
			if bytes.Contains(h, n) {
				t.Errorf("a secret (%.5q...) is in %s", n, where)
			}
		}
	}
}

// checkVerifyExpect: the final hash on paper (hex or words) and the root
// certificate are what verify compares with; a forged, re-chained copy and a
// truncated copy fail.
func checkVerifyExpect(t *testing.T, tr string, final transcript.Entry, root string) {
	t.Helper()
	wordsOnPaper := words.String(final.HashBytes())
	for _, expect := range []string{final.Hash, wordsOnPaper} {
		if vout, verr, code, _ := cli(t, nil, "ceremony", "verify", tr, "--expect", expect, "--root", root); code != 0 || !strings.Contains(vout, "paper: the final hash is the one written on the signed paper") {
			t.Fatalf("verify --expect %q (exit %d): %s %s", expect, code, vout, verr)
		}
	}
	other := strings.Repeat("ab", 32)
	if _, verr, code, _ := cli(t, nil, "ceremony", "verify", tr, "--expect", other); code != 1 || !strings.Contains(verr, "differs from the one on the paper") {
		t.Errorf("verify --expect with another hash (exit %d): %s", code, verr)
	}
	orig, _ := os.ReadFile(tr)
	defer os.WriteFile(tr, orig, 0o600)
	// The reviewer's forgery: one entry changed in the middle, every hash recomputed.
	transcripttest.Rechain(t, tr, func(es []transcript.Entry) []transcript.Entry {
		for i := range es {
			if es[i].Step == "generate-key" {
				es[i].Details[0].Value = "a-key-nobody-generated"
			}
		}
		return es
	})
	for _, args := range [][]string{{tr}, {tr, "--expect", wordsOnPaper}} {
		if _, verr, code, _ := cli(t, nil, append([]string{"ceremony", "verify"}, args...)...); code != 1 || !strings.Contains(verr, "(step anchor): the token's signature does not verify") {
			t.Errorf("verify %v of the forgery (exit %d): %s", args[1:], code, verr)
		}
	}
	// A copy whose last entries were deleted.
	lines := bytes.SplitAfter(orig, []byte("\n"))
	os.WriteFile(tr, bytes.Join(lines[:len(lines)-4], nil), 0o600)
	vout, verr, code, _ := cli(t, nil, "ceremony", "verify", tr, "--expect", wordsOnPaper)
	if code != 1 || !strings.Contains(verr, "INCOMPLETE") || !strings.Contains(verr, "not in this transcript") || strings.Contains(vout, "printed on the transcript PDF") {
		t.Errorf("verify of a truncated copy (exit %d):\n%s\n%s", code, vout, verr)
	}
}

// TestCeremonyOnTheTerminal runs a 2-of-3 ceremony answered
// line by line on standard input, as an operator would type it, through the
// terminal prompter.
func TestCeremonyOnTheTerminal(t *testing.T) {
	r := newRoom(t)
	path := r.script(t, "delivery: [card, file]", "delivery: [file]", "threshold: 3", "threshold: 2",
		"custodians: [Carol Chen, Dan Diaz, Erin Evans, Frank Fox, Grace Gray]", "custodians: [Carol Chen, Dan Diaz, Erin Evans]",
		"backup: true", "backup: false")
	var in strings.Builder
	yes := func(n int) { in.WriteString(strings.Repeat("yes\n", n)) }
	yes(2)  // begin
	yes(2)  // air-gap (warn: confirm despite interfaces) or no interface
	yes(2)  // clock
	yes(2)  // token
	yes(11) // sign-in
	for _, c := range custodians[:3] {
		fmt.Fprintf(&in, "%s\n%s\n", r.sharePath(c), r.passphrase(c))
		yes(1)
	}
	yes(2) // issue-shares
	// Custodians are chosen by number from the record's list; a typed name is not taken.
	fmt.Fprintf(&in, "Mallory\n3\nf\n%s\nwrong passphrase\n", r.sharePath("Erin Evans"))
	fmt.Fprintf(&in, "3\nf\n%s\n%s\n", r.sharePath("Erin Evans"), r.passphrase("Erin Evans"))
	fmt.Fprintf(&in, "1\nf\n%s\n%s\n", r.sharePath("Carol Chen"), r.passphrase("Carol Chen"))
	fmt.Fprintf(&in, "%s\n%s\n", r.soPIN, r.userPIN)
	yes(2)  // enrol
	yes(2)  // generate-key
	yes(2)  // lint
	yes(2)  // sign
	yes(11) // finish
	stdout, stderr, err := run(t, in.String(), "ceremony", "run", path)
	if err != nil {
		t.Fatalf("ceremony on the terminal: %v\n%s\n%s", err, stdout, stderr)
	}
	for _, want := range []string{
		"=== Step 1 of 15: Script identified", "Script SHA-256:",
		"Share 2 of 3 of the quorum (any 2 unlock) for Dan Diaz",
		"Refused: share from Erin Evans refused: open share file: the passphrase does not open this share file",
		"Quorum needed to verify the new shares and enrol the token: 1 of 2 shares accepted.",
		"      1. Carol Chen\n      2. Dan Diaz\n      3. Erin Evans", "Not a number from the list above.",
		"Ceremony complete.", "Final words",
	} {
		if !strings.Contains(stdout+stderr, want) {
			t.Errorf("terminal output lacks %q", want)
		}
	}
	for _, secret := range []string{r.passphrase("Carol Chen"), r.soPIN, r.userPIN} {
		if strings.Contains(stdout+stderr, secret) {
			t.Errorf("the terminal echoed a secret: %q", secret)
		}
	}
	// A declined confirmation stops the run with a message naming the person.
	os.RemoveAll(filepath.Join(r.dir, "out2"))
	_, _, err = run(t, "yes\nno\n", "ceremony", "run", path, "--out", filepath.Join(r.dir, "out2"))
	if !errors.Is(err, ceremony.ErrDeclined) || !strings.Contains(err.Error(), "Wendy Webb") {
		t.Fatalf("declined: %v", err)
	}
}

func TestCeremonyPlanTemplateAndUsage(t *testing.T) {
	out, _, err := run(t, "", "ceremony", "template", "key-restore")
	if err != nil || !strings.Contains(out, "kind: key-restore") {
		t.Fatalf("template: %v %s", err, out)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "root.yaml")
	b, _ := fs.ReadFile(assets.Ceremonies, "ceremonies/root-generation.yaml")
	os.WriteFile(p, b, 0o600)
	out, _, err = run(t, "", "ceremony", "plan", p)
	if err != nil || !strings.Contains(out, "17. Ceremony completed [finish]") || !strings.Contains(out, "Confirm: Ceremony Administrator, Internal Witness") {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	os.WriteFile(p, append(b, []byte("surprise: 1\n")...), 0o600)
	if _, _, err := run(t, "", "ceremony", "plan", p); err == nil || !strings.Contains(err.Error(), "surprise: unknown key") {
		t.Fatalf("plan of a bad script: %v", err)
	}
	for _, args := range [][]string{{"ceremony"}, {"ceremony", "run"}, {"ceremony", "verify"}, {"ceremony", "template", "nope"}, {"ceremony", "frobnicate"}} {
		if _, _, err := run(t, "", args...); !errors.Is(err, ErrUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	if _, _, err := run(t, "", "ceremony", "verify", filepath.Join(dir, "missing.jsonl")); err == nil {
		t.Error("verify of a missing transcript succeeded")
	}
}
