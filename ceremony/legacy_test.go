package ceremony

import (
	"context"
	"crypto"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/ceremony/quorum"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/softhsm"
)

// The transcripts in testdata/legacy were written by the binary of commit
// 561d7ad, before resume state was recorded as typed values (see its README).
const legacyDir = "testdata/legacy"

var legacyTranscripts = map[string]string{
	"root":        "completed/ceremony-output/example-root-2026.transcript.jsonl",
	"signing":     "completed/signing-output/example-issuing-ca-1-2026.transcript.jsonl",
	"byok":        "completed/byok-output/example-kms-key-2026-import.transcript.jsonl",
	"interrupted": "interrupted/ceremony-output/example-root-2026.transcript.jsonl",
}

func legacyPassphrase(c string) string { return "test passphrase of " + c }

// TestLegacyTranscriptsVerify: the transcripts of the earlier version verify
// (chain, entry hashes, every output), and their certificates and CRL verify
// with openssl.
func TestLegacyTranscriptsVerify(t *testing.T) {
	for name, rel := range legacyTranscripts {
		rep, err := transcript.Verify(filepath.Join(legacyDir, rel))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := "transcript-pdf"
		if name == "interrupted" {
			want = "lint-certificate"
		}
		if got := rep.Last().Step; got != want {
			t.Errorf("%s ends with %s, want %s", name, got, want)
		}
		// They carry no anchors: flagged, and accepted only with the
		// paper's final hash or explicitly.
		if rep.Plan != nil || len(rep.Signatures) != 0 || rep.MACFrom != 0 {
			t.Errorf("%s: an earlier version's transcript with anchors?", name)
		}
		if err := rep.Check(transcript.Expect{AllowIncomplete: true}); err == nil || !strings.Contains(err.Error(), "NO ANCHORS") {
			t.Errorf("%s without the paper: %v", name, err)
		}
		if err := rep.Check(transcript.Expect{AllowIncomplete: true, AllowUnanchored: true}); err != nil {
			t.Errorf("%s accepted explicitly: %v", name, err)
		}
		if final, ok := rep.Final(); ok {
			if err := rep.Check(transcript.Expect{FinalHash: final.HashBytes()}); err != nil {
				t.Errorf("%s with the paper's final hash: %v", name, err)
			}
		}
	}
	root := filepath.Join(legacyDir, "completed/ceremony-output/example-root-2026.cert.pem")
	opensslVerify(t, root, root)
	opensslVerify(t, root, filepath.Join(legacyDir, "completed/signing-output/example-issuing-ca-1-2026.subordinate.pem"))
	opensslCRLVerify(t, root, filepath.Join(legacyDir, "completed/signing-output/example-issuing-ca-1-2026.crl.pem"))
}

// copyTree copies the fixture directory src into dst, so a test never
// changes the committed files.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLegacyInterruptedResumes resumes the root ceremony the earlier version
// was killed in (while sign-certificate waited for its confirmation) on the
// token store it left: the engine restores the key and the linted serial and
// to-be-signed hash from the old transcript's entries, moves the unrecorded
// certificate files aside, signs exactly what was linted, and finishes.
func TestLegacyInterruptedResumes(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, filepath.Join(legacyDir, "interrupted"), dir)
	conf, err := softhsm.WriteConfig(filepath.Join(dir, "softhsm"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(softhsm.EnvConf, conf)
	t.Setenv("TMPDIR", t.TempDir())
	s := mustLoad(t, filepath.Join(dir, "root-generation.yaml"))
	before, err := transcript.Verify(filepath.Join(dir, legacyTranscripts["interrupted"][len("interrupted/"):]))
	if err != nil {
		t.Fatal(err)
	}

	var log strings.Builder
	a := &Answers{ConfirmAll: true, Log: &log}
	media := filepath.Join(dir, "media")
	for _, c := range []string{"Frank Fox", "Carol Chen", "Erin Evans"} {
		a.Present = append(a.Present, AnswerShare{Custodian: c, File: filepath.Join(media, strings.ReplaceAll(c, " ", "_")+".share.age"), Passphrase: legacyPassphrase(c)})
	}
	e, err := New(s, Options{UnattendedTest: true, Prompter: a})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(context.Background())
	if err != nil {
		t.Fatalf("resume the legacy ceremony: %v\n%s", err, log.String())
	}
	if !res.Resumed {
		t.Error("result not marked resumed")
	}
	rep, err := transcript.Verify(res.Transcript)
	if err != nil {
		t.Fatal(err)
	}
	once(t, before, rep, "begin", "issue-shares", "enrol-token", "generate-key", "backup-key", "lint-certificate", "sign-certificate", "finish")
	resume := entryByStep(t, rep, "resume")
	if !strings.HasPrefix(resume.Detail("anchors checked"), "none: the transcript carries no anchors") ||
		!strings.Contains(log.String(), "The transcript carries no anchors, and we confirm it is the one the interrupted ceremony wrote.") {
		t.Errorf("resuming an unanchored transcript was not confirmed as such: %q", resume.Detail("anchors checked"))
	}
	// From the resume on, the new entries are anchored: the quorum's MAC
	// from the unlock, the root key's signature and seal.
	if rep.MACFrom == 0 || len(rep.Signatures) != 2 {
		t.Errorf("the resumed legacy ceremony: MAC from %d, %d signatures", rep.MACFrom, len(rep.Signatures))
	}
	moved := 0
	for _, d := range resume.Details {
		if d.Key == "incomplete output moved aside" {
			moved++
		}
	}
	if moved != 3 {
		t.Errorf("%d incomplete outputs moved aside, want 3 (cert.pem, cert.der, fingerprints.txt):\n%v", moved, resume.Details)
	}
	lint, sign := entryByStep(t, rep, "lint-certificate"), entryByStep(t, rep, "sign-certificate")
	if sign.Detail("tbs sha256") != lint.Detail("tbs sha256") {
		t.Errorf("signed TBS %s, linted %s", sign.Detail("tbs sha256"), lint.Detail("tbs sha256"))
	}
	certPath := filepath.Join(dir, "ceremony-output", "example-root-2026.cert.pem")
	opensslVerify(t, certPath, certPath)
	cert := readCert(t, certPath)
	if got := cert.SerialNumber.Text(16); got != trimZeros(lint.Detail("serial")) {
		t.Errorf("certificate serial %s, linted %s", got, lint.Detail("serial"))
	}

	// The certified key is the one the earlier version generated.
	m, err := hsm.Open(s.Token.Module)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok, err := m.OpenToken(hsm.URI{Serial: strings.TrimPrefix(s.Token.URI, "pkcs11:serial=")})
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	rec, err := quorum.ReadRecord(filepath.Join(dir, "ceremony-output", "example-root-2026.quorum.json"))
	if err != nil {
		t.Fatal(err)
	}
	var shares []*quorum.Share
	for _, c := range []string{"Carol Chen", "Dan Diaz", "Grace Gray"} {
		f, err := os.Open(filepath.Join(media, strings.ReplaceAll(c, " ", "_")+".share.age"))
		if err != nil {
			t.Fatal(err)
		}
		sh, err := quorum.ReadFile(f, []byte(legacyPassphrase(c)))
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		shares = append(shares, sh)
	}
	sec := unlockWith(t, rec, shares...)
	pin, _ := sec.PIN(quorum.UserPIN, 255)
	if err := tok.Login(pin); err != nil {
		t.Fatal(err)
	}
	gen := entryByStep(t, rep, "generate-key")
	k, err := tok.FindKey(hsm.Filter{Label: gen.Detail("key label"), Class: hsm.ClassPrivateKey})
	if err != nil {
		t.Fatal(err)
	}
	if !k.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(cert.PublicKey) {
		t.Error("the certified key is not the key the interrupted ceremony generated")
	}
}
