// Command generate writes the legacy transcript fixtures of ceremony/testdata/legacy
// with a keyceremony binary built from an earlier commit, as a ceremony would
// run them: real SoftHSM tokens, the CLI, answers files (completed
// ceremonies) and the terminal prompter driven through a pipe (the
// interrupted one, killed with SIGKILL while it waits in sign-certificate).
//
//	go build -o /tmp/kc-main ./app   # at the commit whose transcripts are wanted
//	go run ./ceremony/testdata/legacy/generate -bin /tmp/kc-main -out ceremony/testdata/legacy
//
// Everything it writes is throwaway test material: the tokens' vendor PINs and
// the custodians' passphrases are listed in the README next to the fixtures.
package main

import (
	"bufio"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

var custodians = []string{"Carol Chen", "Dan Diaz", "Erin Evans", "Frank Fox", "Grace Gray"}

const (
	vendorSO   = "vendor-so-1111"
	vendorUser = "vendor-user-2222"
)

func passphrase(c string) string { return "test passphrase of " + c }

func shareFile(media, c string) string {
	return filepath.Join(media, strings.ReplaceAll(c, " ", "_")+".share.age")
}

type gen struct {
	bin  string
	tmp  string // TMPDIR of the children, XDG_CONFIG_HOME, throwaway keys
	conf string // SOFTHSM2_CONF
}

func main() {
	bin := flag.String("bin", "", "keyceremony binary to run")
	out := flag.String("out", "", "fixture directory (completed/ and interrupted/ are created in it)")
	flag.Parse()
	if *bin == "" || *out == "" {
		log.Fatal("usage: generate -bin KEYCEREMONY -out DIR")
	}
	abs, err := filepath.Abs(*out)
	check(err)
	for _, d := range []string{"completed", "interrupted"} {
		if _, err := os.Stat(filepath.Join(abs, d)); err == nil {
			log.Fatalf("%s already exists: remove it first", filepath.Join(abs, d))
		}
	}
	binAbs, err := filepath.Abs(*bin)
	check(err)
	completed(binAbs, filepath.Join(abs, "completed"))
	interrupted(binAbs, filepath.Join(abs, "interrupted"))
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

// newGen makes a token store whose tokens live in tokens (created), with one
// token "Root 2026" initialised with the vendor PINs; it returns its serial.
func newGen(bin, tokens string) (*gen, string) {
	tmp, err := os.MkdirTemp("", "kc-fixtures-")
	check(err)
	check(os.MkdirAll(tokens, 0o700))
	conf := filepath.Join(tmp, "softhsm2.conf")
	check(os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"), 0o600))
	g := &gen{bin: bin, tmp: tmp, conf: conf}
	g.cmd("softhsm2-util", "--init-token", "--free", "--label", "Root 2026", "--so-pin", vendorSO, "--pin", vendorUser)
	slots := g.cmd("softhsm2-util", "--show-slots")
	// softhsm2-util prints a slot's serial a few lines before its label.
	m := regexp.MustCompile(`Serial number:[ \t]+(\S+)[ \t]*\n(?:.*\n)*?[ \t]*Label:[ \t]+Root 2026`).FindStringSubmatch(slots)
	if m == nil {
		log.Fatalf("no serial for token Root 2026 in:\n%s", slots)
	}
	return g, m[1]
}

func (g *gen) env() []string {
	return append(os.Environ(), "SOFTHSM2_CONF="+g.conf, "TMPDIR="+g.tmp, "XDG_CONFIG_HOME="+g.tmp, "LANG=C.UTF-8", "LC_ALL=C.UTF-8")
}

// cmd runs a command and returns its standard output.
func (g *gen) cmd(name string, args ...string) string {
	c := exec.Command(name, args...)
	c.Env = g.env()
	var stderr strings.Builder
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		log.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// script writes the binary's own template of kind, adapted to the token.
func (g *gen) script(dir, kind, serial string, edits ...string) string {
	s := g.cmd(g.bin, "ceremony", "template", kind)
	s = regexp.MustCompile(`uri: "pkcs11:[^"]*"`).ReplaceAllString(s, `uri: "pkcs11:serial=`+serial+`"`)
	edits = append([]string{"air_gap: block", "air_gap: warn"}, edits...)
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(s, edits[i]) {
			log.Fatalf("template %s lacks %q", kind, edits[i])
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
	}
	p := filepath.Join(dir, kind+".yaml")
	check(os.WriteFile(p, []byte(s), 0o600))
	return p
}

func (g *gen) answers(name, media string, present ...string) string {
	var a strings.Builder
	fmt.Fprintf(&a, "confirm: true\npins: {so: %q, user: %q}\ndeliver:\n", vendorSO, vendorUser)
	for _, c := range custodians {
		fmt.Fprintf(&a, "  %s: {file: %s, passphrase: %q}\n", c, shareFile(media, c), passphrase(c))
	}
	a.WriteString("present:\n")
	for _, c := range present {
		fmt.Fprintf(&a, "  - {custodian: %s}\n", c)
	}
	p := filepath.Join(g.tmp, name+".answers.yaml")
	check(os.WriteFile(p, []byte(a.String()), 0o600))
	return p
}

// completed runs root-generation (with backup), ca-signing (subordinate and
// CRL) and byok-wrap on one token, each to its end.
func completed(bin, dir string) {
	media := filepath.Join(dir, "media")
	inputs := filepath.Join(dir, "inputs")
	check(os.MkdirAll(media, 0o700))
	check(os.MkdirAll(inputs, 0o700))
	g, serial := newGen(bin, filepath.Join(os.TempDir(), fmt.Sprintf("kc-fixture-tokens-%d", time.Now().UnixNano())))
	root := g.script(dir, "root-generation", serial, "delivery: [card, file]", "delivery: [file]")
	g.cmd(bin, "ceremony", "run", root, "--answers", g.answers("root", media, "Grace Gray", "Dan Diaz", "Erin Evans"))

	g.cmd("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-nodes",
		"-keyout", filepath.Join(g.tmp, "issuing-ca-1.key"), "-out", filepath.Join(inputs, "issuing-ca-1.csr"),
		"-subj", "/C=DE/O=Example Corp/CN=Example Corp Issuing CA 1")
	signing := g.script(dir, "ca-signing", serial,
		"revoked: []", `revoked: [{serial: "7a:11:03:5c:90:2e:4d:8b", revoked_at: 2026-11-02T10:00:00Z, reason: cessation-of-operation}]`)
	g.cmd(bin, "ceremony", "run", signing, "--answers", g.answers("signing", media, "Carol Chen", "Frank Fox", "Erin Evans"))

	wrapping, err := rsa.GenerateKey(rand.Reader, 2048)
	check(err)
	spki, err := x509.MarshalPKIXPublicKey(&wrapping.PublicKey)
	check(err)
	token := make([]byte, 64)
	rand.Read(token)
	params, err := json.MarshalIndent(map[string]string{
		"KeyId":             "arn:aws:kms:eu-west-1:111122223333:key/11111111-2222-3333-4444-555555555555",
		"ImportToken":       base64.StdEncoding.EncodeToString(token),
		"PublicKey":         base64.StdEncoding.EncodeToString(spki),
		"ParametersValidTo": time.Now().Add(23 * time.Hour).UTC().Format("2006-01-02T15:04:05.000000-07:00"),
	}, "", "    ")
	check(err)
	check(os.WriteFile(filepath.Join(inputs, "import-parameters.json"), params, 0o600))
	byok := g.script(dir, "byok-wrap", serial)
	g.cmd(bin, "ceremony", "run", byok, "--answers", g.answers("byok", media, "Dan Diaz", "Grace Gray", "Carol Chen"))
	fmt.Println("completed:", dir)
}

// interrupted runs a root-generation ceremony on the terminal prompter and
// kills it (SIGKILL) at the first prompt of sign-certificate: after the
// token signed and the certificate files were written, before the step was
// recorded. Its token store is kept under dir/softhsm/tokens.
func interrupted(bin, dir string) {
	media := filepath.Join(dir, "media")
	check(os.MkdirAll(media, 0o700))
	g, serial := newGen(bin, filepath.Join(dir, "softhsm", "tokens"))
	root := g.script(dir, "root-generation", serial, "delivery: [card, file]", "delivery: [file]")
	c := exec.Command(bin, "ceremony", "run", root)
	c.Env = g.env()
	stdin, err := c.StdinPipe()
	check(err)
	pr, pw := io.Pipe()
	c.Stdout, c.Stderr = pw, pw
	check(c.Start())
	done := make(chan error, 1)
	go func() { done <- c.Wait(); pw.Close() }()

	present := []string{"Grace Gray", "Dan Diaz", "Erin Evans"}
	next, presenting := 0, ""
	step := ""
	var line strings.Builder
	r := bufio.NewReader(pr)
	var transcript strings.Builder
	answer := func(s string) { io.WriteString(stdin, s+"\n") }
	for {
		b, err := r.ReadByte()
		if err != nil {
			log.Fatalf("the ceremony ended before it was killed: %v\n%s", <-done, transcript.String())
		}
		transcript.WriteByte(b)
		if b == '\n' {
			if m := regexp.MustCompile(`^=== Step \d+ of \d+: (.*)$`).FindStringSubmatch(line.String()); m != nil {
				step = m[1]
			}
			line.Reset()
			continue
		}
		line.WriteByte(b)
		l := line.String()
		if !strings.HasSuffix(l, ": ") && !strings.HasSuffix(l, "? ") {
			continue
		}
		if step == "Root certificate signed" && strings.Contains(l, "type yes to confirm") {
			// The token has signed and the files are written; the step waits
			// for its confirmation and is not recorded yet.
			check(c.Process.Kill())
			<-done
			fmt.Println("interrupted:", dir, "killed at:", l)
			return
		}
		switch {
		case strings.Contains(l, "type yes to confirm"):
			answer("yes")
		case strings.Contains(l, "Path for the encrypted share file on "):
			name := strings.TrimSuffix(strings.SplitN(l, "Path for the encrypted share file on ", 2)[1], "'s medium: ")
			answer(shareFile(media, name))
		case strings.Contains(l, "New passphrase for "):
			name := strings.TrimSuffix(strings.SplitN(l, "New passphrase for ", 2)[1], "'s share file: ")
			answer(passphrase(name))
		case strings.Contains(l, "Custodian presenting"):
			presenting = present[next%len(present)]
			next++
			answer(presenting)
		case strings.Contains(l, "Type the share from the card (t) or open the share file (f)?"):
			answer("f")
		case strings.Contains(l, "Share file path: "):
			answer(shareFile(media, presenting))
		case strings.Contains(l, "Passphrase (not shown): "):
			answer(passphrase(presenting))
		case strings.Contains(l, "Current security officer (SO) PIN"):
			answer(vendorSO)
		case strings.Contains(l, "Current user PIN"):
			answer(vendorUser)
		default:
			continue
		}
		line.Reset()
	}
}
