package ceremony

import (
	"bytes"
	"context"
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

// world is one test's room: a SoftHSM store with a token, custodians' media
// outside the temporary directory, and a private TMPDIR to search for secrets.
type world struct {
	t          *testing.T
	module     string
	serial     string
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
	w := &world{t: t, soPIN: []byte("old-so-pin-1111"), userPIN: []byte("old-user-pin-2222"), passphrase: map[string]string{}}
	w.module = softhsmtest.NewToken(t, label, w.soPIN, w.userPIN)
	w.serial = tokenSerial(t, w.module, label)
	w.media = t.TempDir()
	w.dir = t.TempDir()
	// Created last and then made TMPDIR: the media and outputs are not inside it.
	w.tmp = t.TempDir()
	t.Setenv("TMPDIR", w.tmp)
	for i, c := range custodians {
		w.passphrase[c] = "passphrase of " + c + " " + strings.Repeat("x", i)
	}
	return w
}

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
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(s, edits[i]) {
			w.t.Fatalf("script edit: %q not in %s", edits[i], tmpl)
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
	}
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

// answers confirms everything, delivers every share as card and file to the
// custodian's medium, and presents the first three custodians' files.
func (w *world) answers(prefix string) *Answers {
	a := &Answers{ConfirmAll: true, Deliver: map[string]AnswerDelivery{}, Log: &w.log}
	a.PINs.SO, a.PINs.User = string(w.soPIN), string(w.userPIN)
	for _, c := range custodians {
		a.Deliver[c] = w.delivery(prefix, c)
	}
	for _, c := range custodians[:3] {
		a.Present = append(a.Present, AnswerShare{Custodian: c})
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
	for _, m := range regexp.MustCompile(`(?m)^\s*[123]\s+((?:[A-Z2-7]{4} ){5}[A-Z2-7]{4})\s*$`).FindAllStringSubmatch(string(out), -1) {
		lines = append(lines, m[1])
	}
	if len(lines) != 3 {
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
}

type turn struct {
	custodian string
	card      string // whose card is typed (default: the custodian's own)
	mangle    func(string) string
	file      bool
	pass      string
}

func (p *typist) PresentShare(ctx context.Context, r ShareRequest) (ShareInput, error) {
	if r.Problem != "" {
		p.seen = append(p.seen, r.Problem)
	}
	if p.i >= len(p.turns) {
		return ShareInput{}, ErrAborted
	}
	tu := p.turns[p.i]
	p.i++
	if tu.file {
		d := p.w.delivery(p.prefix, tu.custodian)
		pass := d.Passphrase
		if tu.pass != "" {
			pass = tu.pass
		}
		return ShareInput{Custodian: tu.custodian, File: d.File, Passphrase: []byte(pass)}, nil
	}
	owner := tu.custodian
	if tu.card != "" {
		owner = tu.card
	}
	text := cardText(p.w.t, p.w.delivery(p.prefix, owner).Card)
	if tu.mangle != nil {
		text = tu.mangle(text)
	}
	return ShareInput{Custodian: tu.custodian, Text: []byte(text)}, nil
}
