package ceremony

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"

	"github.com/keyceremony/keyceremony/ceremony/quorum"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/hsm"
)

// TestRootGeneration runs the shipped root-generation template, 3 of 5, on
// SoftHSM, with custodians typing from their cards (some badly) at the unlock,
// and checks everything the acceptance lists for it.
func TestRootGeneration(t *testing.T) {
	w := newWorld(t, "Root 2026")
	out := filepath.Join(w.dir, "out")
	s := w.writeScript("root.yaml", "root-generation.yaml", "pkcs11:token=Root%202026;serial="+w.serial, out,
		"backup: true", "backup: false", "not_before: 2026-12-01T00:00:00Z", "not_before: "+today())
	flip := func(text string) string { // one mistyped character
		b := []byte(text)
		if b[5] == 'A' {
			b[5] = 'B'
		} else {
			b[5] = 'A'
		}
		return string(b)
	}
	p := &typist{Answers: w.answers("root"), w: w, prefix: "root", turns: []turn{
		{custodian: "Carol Chen", mangle: flip},
		{custodian: "Dan Diaz", card: "Erin Evans"},
		{custodian: "Carol Chen"},
		{custodian: "Erin Evans", file: true, pass: "wrong passphrase"},
		{custodian: "Erin Evans", file: true},
		{custodian: "Carol Chen", file: true},
		{custodian: "Grace Gray"},
	}}
	res, err := w.run(s, p, Options{})
	if err != nil {
		t.Fatalf("ceremony: %v\n%s", err, w.log.String())
	}

	// The unlock named every bad share and why.
	wantProblems := []string{
		"share from Carol Chen refused: share checksum does not match",
		"share from Dan Diaz refused: it is share 3, issued to Erin Evans",
		"share from Erin Evans refused: open share file: the passphrase does not open this share file",
		"share from Carol Chen refused: share already presented: share 1 (Carol Chen) was already presented",
	}
	if len(p.seen) != len(wantProblems) {
		t.Fatalf("problems reported: %q", p.seen)
	}
	for i, want := range wantProblems {
		if !strings.HasPrefix(p.seen[i], want) {
			t.Errorf("problem %d = %q, want %q", i+1, p.seen[i], want)
		}
	}

	if raw, _ := os.ReadFile(res.Transcript); os.Getenv("KC_DUMP") != "" {
		os.WriteFile("/tmp/kc/t.jsonl", raw, 0o600)
		pdfb, _ := os.ReadFile(res.PDF)
		os.WriteFile("/tmp/kc/t.pdf", pdfb, 0o600)
	}
	rep, err := transcript.Verify(res.Transcript)
	if err != nil {
		t.Fatal(err)
	}
	// The first entry names the binary that ran the ceremony: here the test
	// binary, hashed independently.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	selfBytes, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rep.Entries[0].Detail("binary sha256"), fmt.Sprintf("%x", sha256.Sum256(selfBytes)); got != want {
		t.Errorf("transcript names binary %q, the running binary is %s", got, want)
	}
	if rep.Entries[0].Detail("binary words") == "" || rep.Entries[0].Detail("binary version") == "" {
		t.Errorf("binary words/version missing: %v", rep.Entries[0].Details)
	}
	var unlock transcript.Entry
	for _, en := range rep.Entries {
		if en.Step == "unlock" {
			unlock = en
		}
	}
	if got := unlock.Detail("shares presented"); got != "1 Carol Chen, 3 Erin Evans, 5 Grace Gray" {
		t.Errorf("unlock recorded shares presented = %q", got)
	}
	if n := strings.Count(fmt.Sprint(unlock.Details), "share refused"); n != 4 {
		t.Errorf("unlock recorded %d refused shares, want 4", n)
	}

	cert := checkRootCertificate(t, out)

	// The private key is in the token, sensitive and not extractable; any 3
	// of the 5 shares unlock the token, 2 do not.
	rec, err := quorum.ReadRecord(filepath.Join(out, "example-root-2026.quorum.json"))
	if err != nil {
		t.Fatal(err)
	}
	var shares []*quorum.Share
	for _, c := range custodians {
		shares = append(shares, w.shareFromFile("root", c))
	}
	m, err := hsm.Open(w.module)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok, err := m.OpenToken(hsm.URI{Serial: w.serial})
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	if err := tok.Login(w.userPIN); !errors.Is(err, hsm.ErrPINIncorrect) {
		t.Fatalf("the token's old user PIN still works or fails oddly: %v", err)
	}
	// After a refused PIN, hsm tries no other until a person allows it.
	tok.AllowOneMoreTry(false)
	checkAnyThreeUnlock(t, rec, shares, tok)
	col := rec.NewCollector()
	col.Add(shares[0])
	col.Add(shares[4])
	if _, err := col.Combine(); !errors.Is(err, quorum.ErrNotEnough) {
		t.Fatalf("two shares: %v", err)
	}
	sec := unlockWith(t, rec, shares[1], shares[2], shares[3])
	pin, _ := sec.PIN(quorum.UserPIN, 255)
	if err := tok.Login(pin); err != nil {
		t.Fatal(err)
	}
	k, err := tok.FindKey(hsm.Filter{Label: "example-root-2026", Class: hsm.ClassPrivateKey})
	if err != nil {
		t.Fatal(err)
	}
	if !k.Sensitive() || k.Extractable() {
		t.Errorf("root key sensitive=%v extractable=%v", k.Sensitive(), k.Extractable())
	}
	if !k.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(cert.PublicKey) {
		t.Error("the certificate's public key is not the token key's")
	}

	// Outputs: all recorded, all 0600, none of the shares or PINs anywhere.
	for _, o := range res.Outputs {
		if fi, err := os.Stat(o); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("output %s: %v %v", o, fi.Mode(), err)
		}
	}
	pdf := pdfText(t, res.PDF)
	for _, want := range []string{"Example Corp Root CA 2026", "Alice Adams", "Grace Gray", "sign-certificate", "Final hash", "Signatures"} {
		if !strings.Contains(pdf, want) {
			t.Errorf("transcript PDF lacks %q", want)
		}
	}
	so, _ := sec.PIN(quorum.SOPIN, 255)
	assertNoSecrets(t, w, shares, [][]byte{pin, so, w.soPIN, w.userPIN}, out, w.tmp, w.dir)
	if err := tok.Logout(); err != nil {
		t.Fatal(err)
	}
}

// checkRootCertificate checks the root certificate a root-generation
// ceremony wrote to out: openssl accepts it as its own trust anchor, the
// profile is the template's, the DER and PEM agree, zlint finds no error.
func checkRootCertificate(t *testing.T, out string) *x509.Certificate {
	t.Helper()
	certPEM := filepath.Join(out, "example-root-2026.cert.pem")
	if b, err := exec.Command("openssl", "verify", "-CAfile", certPEM, certPEM).CombinedOutput(); err != nil || !strings.Contains(string(b), ": OK") {
		t.Fatalf("openssl verify: %v %s", err, b)
	}
	cert := readCert(t, certPEM)
	if !cert.IsCA || cert.MaxPathLen != -1 || cert.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign || cert.Subject.CommonName != "Example Corp Root CA 2026" {
		t.Errorf("certificate profile: CA=%v pathlen=%d ku=%v subject=%s", cert.IsCA, cert.MaxPathLen, cert.KeyUsage, cert.Subject)
	}
	if cert.SerialNumber.BitLen() < 64 {
		t.Errorf("serial has %d bits", cert.SerialNumber.BitLen())
	}
	der, _ := os.ReadFile(filepath.Join(out, "example-root-2026.cert.der"))
	if !bytes.Equal(der, cert.Raw) {
		t.Error("DER and PEM outputs differ")
	}
	zc, err := zx509.ParseCertificate(cert.Raw)
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range zlint.LintCertificate(zc).Results {
		if r.Status == lint.Error || r.Status == lint.Fatal {
			t.Errorf("zlint %s: %s", name, r.Details)
		}
	}

	return cert
}

// checkAnyThreeUnlock: every 3 of the 5 shares rebuild the secret whose
// user PIN logs in to tok.
func checkAnyThreeUnlock(t *testing.T, rec *quorum.Record, shares []*quorum.Share, tok *hsm.Token) {
	t.Helper()
	combos := 0
	for a := 0; a < 5; a++ {
		for b := a + 1; b < 5; b++ {
			for c := b + 1; c < 5; c++ {
				col := rec.NewCollector()
				for _, i := range []int{a, b, c} {
					cp, _ := quorum.ParseShare(shares[i].Text())
					if _, err := col.Add(cp); err != nil {
						t.Fatal(err)
					}
				}
				sec, err := col.Combine()
				if err != nil {
					t.Fatal(err)
				}
				pin, _ := sec.PIN(quorum.UserPIN, 255)
				if err := tok.Login(pin); err != nil {
					t.Fatalf("shares %d,%d,%d do not unlock the token: %v", a+1, b+1, c+1, err)
				}
				tok.Logout()
				combos++
			}
		}
	}
	if combos != 10 {
		t.Fatal("not all subsets tried")
	}
}

// today is a not_before that openssl accepts now (the template's date may be ahead).
func today() string { return time.Now().UTC().Add(-24 * time.Hour).Format("2006-01-02T00:00:00Z") }

func unlockWith(t *testing.T, rec *quorum.Record, shares ...*quorum.Share) *quorum.Secret {
	t.Helper()
	col := rec.NewCollector()
	for _, s := range shares {
		cp, _ := quorum.ParseShare(s.Text())
		if _, err := col.Add(cp); err != nil {
			t.Fatal(err)
		}
	}
	sec, err := col.Combine()
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pdfText(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("pdftotext", path, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext %s: %v", path, err)
	}
	return string(out)
}

// assertNoSecrets searches every file under dirs (and the text of every PDF
// there) and the ceremony's log for the PINs and every form of every share.
// A planted copy of one share proves the search would find a leak.
func assertNoSecrets(t *testing.T, w *world, shares []*quorum.Share, pins [][]byte, dirs ...string) {
	t.Helper()
	plant := filepath.Join(t.TempDir(), "planted.txt")
	os.WriteFile(plant, shares[0].Lines()[1], 0o600)
	if hits, _ := findSecrets(t, w, shares, pins, filepath.Dir(plant)); len(hits) != 1 {
		t.Fatalf("the secret search does not find a planted share line: %v", hits)
	}
	hits, files := findSecrets(t, w, shares, pins, dirs...)
	if files < 5 {
		t.Fatalf("searched only %d files", files)
	}
	for _, h := range hits {
		t.Error(h)
	}
}

func findSecrets(t *testing.T, w *world, shares []*quorum.Share, pins [][]byte, dirs ...string) (hits []string, files int) {
	var needles [][]byte
	for _, s := range shares {
		needles = append(needles, s.Text(), s.Compact())
		needles = append(needles, s.Lines()...)
	}
	needles = append(needles, pins...)
	for c, pass := range w.passphrase {
		_ = c
		needles = append(needles, []byte(pass))
	}
	search := func(where string, hay []byte) {
		for _, n := range needles {
			if len(n) > 0 && bytes.Contains(hay, n) {
				hits = append(hits, fmt.Sprintf("secret %.6q... found in %s", n, where))
				return
			}
		}
	}
	search("the ceremony log", w.log.Bytes())
	for _, d := range dirs {
		filepath.Walk(d, func(p string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() {
				return nil
			}
			if strings.HasSuffix(p, ".yaml") && strings.HasPrefix(filepath.Base(p), "answers") {
				return nil // the test's own answers file holds passphrases by design
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			files++
			search(p, b)
			if strings.HasSuffix(p, ".pdf") {
				search(p+" (text)", []byte(pdfText(t, p)))
			}
			return nil
		})
	}
	return hits, files
}

// TestValidationListsEveryProblem: problems that need no token are all
// reported by New before anything touches the token.
func TestValidationListsEveryProblem(t *testing.T) {
	w := newWorld(t, "Restore B")
	out := filepath.Join(w.dir, "restore-out")
	os.MkdirAll(out, 0o700)
	os.WriteFile(filepath.Join(out, "example-root-2026-restore.proof.json"), []byte("{}"), 0o600)
	s := w.writeScript("restore.yaml", "key-restore.yaml", "pkcs11:serial="+w.serial, out,
		"certificate: {path: ceremony-output/example-root-2026.cert.pem}", "certificate: {path: root.pem, sha256: "+strings.Repeat("ab", 32)+"}")
	os.WriteFile(filepath.Join(w.dir, "root.pem"), []byte("not the reviewed file"), 0o600)
	_, err := New(s, Options{Prompter: &Answers{}})
	for _, want := range []string{
		"example-root-2026-restore.proof.json already exists",
		"quorum.record.path: cannot read",
		"restore.backup.path: cannot read",
		"restore.certificate.sha256: ",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validation error lacks %q:\n%v", want, err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "example-root-2026-restore.transcript.jsonl")); err == nil {
		t.Error("a transcript was started despite validation errors")
	}
	_ = context.Background
}

// TestRootLintWarningsAndIgnoredLints: the root certificate goes through the
// signing path of the certificates it issues. A zlint warning (a root with a
// pathLenConstraint) is shown and the confirmation says it was read and is
// accepted; a lint the script's certificate profile ignores is recorded as
// ignored and no longer asks for acceptance.
func TestRootLintWarningsAndIgnoredLints(t *testing.T) {
	const lintName = "w_root_ca_basic_constraints_path_len_constraint_field_present"
	for _, ignore := range []bool{false, true} {
		// No "=" in the name: it becomes part of SoftHSM's token directory,
		// which its configuration file cannot hold.
		name := map[bool]string{false: "warning", true: "ignored"}[ignore]
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, "Root 2026")
			out := filepath.Join(w.dir, "out")
			profile := "  max_path_length: 1"
			if ignore {
				profile += "\n  ignore_lints: [" + lintName + "]"
			}
			s := w.rootCardsScript(out, "backup: true", "backup: false", "  max_path_length: -1", profile)
			res, err := w.run(s, w.cardsOnly("root", "Carol Chen", "Dan Diaz", "Erin Evans"), Options{})
			if err != nil {
				t.Fatalf("ceremony: %v\n%s", err, w.log.String())
			}
			rep, err := transcript.Verify(res.Transcript)
			if err != nil {
				t.Fatal(err)
			}
			lint := entryByStep(t, rep, "lint-certificate")
			accepted := strings.Contains(w.log.String(), "The 1 zlint warning(s) shown were read and are accepted.")
			if ignore {
				if lint.Detail("lint warnings") != "" || !strings.Contains(lint.Detail("lint ignored by the profile"), lintName) || accepted {
					t.Errorf("ignored lint: warnings %q, ignored %q, warnings accepted: %v", lint.Detail("lint warnings"), lint.Detail("lint ignored by the profile"), accepted)
				}
			} else if !strings.Contains(lint.Detail("lint warnings"), lintName) || !accepted {
				t.Errorf("warning %q not recorded, or not accepted in the confirmation (%v):\n%s", lint.Detail("lint warnings"), accepted, w.log.String())
			}
			cert := readCert(t, filepath.Join(out, "example-root-2026.cert.pem"))
			if cert.MaxPathLen != 1 {
				t.Errorf("root path length %d", cert.MaxPathLen)
			}
			opensslVerify(t, filepath.Join(out, "example-root-2026.cert.pem"), filepath.Join(out, "example-root-2026.cert.pem"))
		})
	}
}
