package ceremony

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/assets"
	"github.com/keyceremony/keyceremony/ceremony/quorum"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/softhsm/softhsmtest"
)

var custodians = []string{"Carol Chen", "Dan Diaz", "Erin Evans", "Frank Fox", "Grace Gray"}

// recoveryCustodians hold the recovery quorum of the templates (2 of 3).
var recoveryCustodians = []string{"Ivan Ito", "Judy Jones", "Karl Kim"}

// world is one test's room: a SoftHSM store with a token, custodians' media
// outside the temporary directory, and a private TMPDIR to search for secrets.
type world struct {
	t          *testing.T
	module     string
	serial     string
	uri        string // the URI scripts select the token by
	soPIN      []byte
	userPIN    []byte
	media      string // the custodians' own media
	tmp        string // TMPDIR of the ceremony
	dir        string // where scripts and outputs live
	passphrase map[string]string
	log        bytes.Buffer
}

func newWorld(t *testing.T, label string) *world {
	t.Helper()
	return newWorldOn(t, func(w *world) {
		w.module = softhsmtest.NewToken(t, label, w.soPIN, w.userPIN)
		w.serial = tokenSerial(t, w.module, label)
		w.uri = "pkcs11:serial=" + w.serial
	})
}

// newWorldOn is a world whose token setup sets module, serial and uri (the
// URI scripts select the token by); it runs before TMPDIR is redirected, so
// token stores are not in the directory searched for secrets.
func newWorldOn(t *testing.T, setup func(w *world)) *world {
	t.Helper()
	w := &world{t: t, soPIN: []byte("old-so-pin-1111"), userPIN: []byte("old-user-pin-2222"), passphrase: map[string]string{}}
	setup(w)
	w.media = t.TempDir()
	w.dir = t.TempDir()
	// Created last and then made TMPDIR: the media and outputs are not inside it.
	w.tmp = t.TempDir()
	t.Setenv("TMPDIR", w.tmp)
	for i, c := range append(append([]string(nil), custodians...), recoveryCustodians...) {
		w.passphrase[c] = "passphrase of " + c + " " + strings.Repeat("x", i)
	}
	for _, d := range []string{"backup-medium", "backup-medium-2"} {
		if err := os.MkdirAll(filepath.Join(w.dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// backupMedium is the test's backup medium (the templates' recovery.medium).
func (w *world) backupMedium() string { return filepath.Join(w.dir, "backup-medium") }

func tokenSerial(t *testing.T, module, label string) string {
	t.Helper()
	m, err := hsm.Open(module)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := m.FindToken(hsm.URI{Token: label})
	if err != nil {
		t.Fatal(err)
	}
	return s.Token.Serial
}

func template(t *testing.T, name string) string {
	t.Helper()
	b, err := fs.ReadFile(assets.Ceremonies, "ceremonies/"+name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dropRecovery, as a script edit (with any replacement), removes the
// template's recovery section: a script of the form written before
// recovery quorums.
const dropRecovery = "\x00drop the recovery section"

var recoveryBlock = regexp.MustCompile(`(?m)^recovery:\n(?:  .*\n)+`)

// writeScript adapts a shipped template to the test's token and writes it.
// Only the token, the output directory and the air-gap mode change (the test
// machine is networked); edits are further replacements.
func (w *world) writeScript(name, tmpl, uri, out string, edits ...string) *script.Script {
	w.t.Helper()
	s := template(w.t, tmpl)
	re := regexp.MustCompile(`uri: "pkcs11:[^"]*"`)
	s = re.ReplaceAllString(s, `uri: "`+uri+`"`)
	s = strings.Replace(s, "module: /usr/lib/softhsm/libsofthsm2.so", "module: "+w.module, 1)
	s = strings.Replace(s, "air_gap: block", "air_gap: warn", 1)
	s = regexp.MustCompile(`(?m)^  directory: \S+`).ReplaceAllString(s, "  directory: "+out)
	s = strings.Replace(s, "medium: /media/root-backup-2", "medium: "+filepath.Join(w.dir, "backup-medium-2"), 1)
	s = strings.Replace(s, "medium: /media/root-backup", "medium: "+w.backupMedium(), 1)
	s = strings.Replace(s, "path: /media/root-backup/", "path: "+w.backupMedium()+"/", 1)
	for i := 0; i+1 < len(edits); i += 2 {
		if edits[i] == dropRecovery {
			s = recoveryBlock.ReplaceAllString(s, "")
			continue
		}
		if !strings.Contains(s, edits[i]) {
			w.t.Fatalf("script edit: %q not in %s", edits[i], tmpl)
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
		if edits[i] == "backup: true" && edits[i+1] == "backup: false" {
			// Without a backup there is no recovery quorum.
			s = recoveryBlock.ReplaceAllString(s, "")
		}
	}
	s = w.pinInputs(s)
	path := filepath.Join(w.dir, name)
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		w.t.Fatal(err)
	}
	sc, err := script.Load(path)
	if err != nil {
		w.t.Fatal(err)
	}
	return sc
}

// templatePin is the placeholder pin of the signing templates.
var templatePin = regexp.MustCompile(`\{path: ([^,}]+), sha256: "0{64}"\}`)

// pinInputs replaces each placeholder pin by the SHA-256 of the file, as a
// reviewer does with sha256sum; a file that does not exist yet keeps the
// placeholder (and the ceremony refuses it).
func (w *world) pinInputs(s string) string {
	return templatePin.ReplaceAllStringFunc(s, func(m string) string {
		p := templatePin.FindStringSubmatch(m)[1]
		if !filepath.IsAbs(p) {
			p = filepath.Join(w.dir, p)
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return m
		}
		sum := sha256.Sum256(raw)
		return strings.Replace(m, `"`+strings.Repeat("0", 64)+`"`, hex.EncodeToString(sum[:]), 1)
	})
}

// answers confirms everything, delivers every share as card and file to the
// custodian's medium, and presents the first three custodians' files.
func (w *world) answers(prefix string) *Answers {
	a := &Answers{ConfirmAll: true, Deliver: map[string]AnswerDelivery{}, Log: &w.log}
	a.PINs.SO, a.PINs.User = string(w.soPIN), string(w.userPIN)
	for _, c := range append(append([]string(nil), custodians...), recoveryCustodians...) {
		a.Deliver[c] = w.delivery(prefix, c)
	}
	for _, c := range custodians[:3] {
		a.Present = append(a.Present, AnswerShare{Custodian: c})
	}
	for _, c := range recoveryCustodians[:2] {
		a.PresentRecovery = append(a.PresentRecovery, AnswerShare{Custodian: c})
	}
	return a
}

func (w *world) delivery(prefix, c string) AnswerDelivery {
	base := filepath.Join(w.media, prefix+"-"+strings.ReplaceAll(c, " ", "_"))
	return AnswerDelivery{Card: base + ".card.pdf", File: base + ".share.age", Passphrase: w.passphrase[c]}
}

func (w *world) run(s *script.Script, p Prompter, opt Options) (*Result, error) {
	w.t.Helper()
	opt.Prompter = p
	opt.UnattendedTest = true // the test's answers stand in for the people
	e, err := New(s, opt)
	if err != nil {
		return nil, err
	}
	return e.Run(context.Background())
}

// cardText reads a share card back with pdftotext, as a custodian reads it.
func cardText(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("pdftotext", "-layout", path, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext %s: %v", path, err)
	}
	var lines []string
	for _, m := range regexp.MustCompile(`(?m)^\s*[1-4]\s+((?:[A-Z2-7]{4} ){4}[A-Z2-7]{4})\s*$`).FindAllStringSubmatch(string(out), -1) {
		lines = append(lines, m[1])
	}
	if len(lines) != 4 {
		t.Fatalf("card %s: found %d share lines", path, len(lines))
	}
	return strings.Join(lines, " ")
}

// shareFromFile opens a custodian's share file with their passphrase.
func (w *world) shareFromFile(prefix, c string) *quorum.Share {
	w.t.Helper()
	d := w.delivery(prefix, c)
	f, err := os.Open(d.File)
	if err != nil {
		w.t.Fatal(err)
	}
	defer f.Close()
	s, err := quorum.ReadFile(f, []byte(d.Passphrase))
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// typist is a Prompter whose custodians type their shares from their cards,
// some of them badly, in a scripted order.
type typist struct {
	*Answers
	w      *world
	prefix string
	turns  []turn
	i      int
	seen   []string // problems reported back by the engine
	// recovery are the turns at unlocks of the recovery quorum (default:
	// the first two recovery custodians type their cards, again at each unlock).
	recovery []turn
	ri       int
}

type turn struct {
	custodian string
	card      string // whose card is typed (default: the custodian's own)
	prefix    string // of which issue (default: the typist's)
	mangle    func(string) string
	file      bool
	pass      string
}

func (p *typist) PresentShare(ctx context.Context, r ShareRequest) (ShareInput, error) {
	if r.Problem != "" {
		p.seen = append(p.seen, r.Problem)
	}
	var tu turn
	if r.Quorum == recoveryQuorumName {
		turns := p.recovery
		if turns == nil {
			turns = []turn{{custodian: recoveryCustodians[0]}, {custodian: recoveryCustodians[1]}}
			if r.Have == 0 && r.Problem == "" {
				p.ri = 0
			}
		}
		if p.ri >= len(turns) {
			return ShareInput{}, ErrAborted
		}
		tu = turns[p.ri]
		p.ri++
	} else {
		if p.i >= len(p.turns) {
			return ShareInput{}, ErrAborted
		}
		tu = p.turns[p.i]
		p.i++
	}
	if tu.file {
		d := p.w.delivery(p.prefix, tu.custodian)
		pass := d.Passphrase
		if tu.pass != "" {
			pass = tu.pass
		}
		return ShareInput{Custodian: tu.custodian, File: d.File, Passphrase: []byte(pass)}, nil
	}
	owner, prefix := tu.custodian, p.prefix
	if tu.card != "" {
		owner = tu.card
	}
	if tu.prefix != "" {
		prefix = tu.prefix
	}
	text := cardText(p.w.t, p.w.delivery(prefix, owner).Card)
	if tu.mangle != nil {
		text = tu.mangle(text)
	}
	return ShareInput{Custodian: tu.custodian, Text: []byte(text)}, nil
}
