package ceremony

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/ceremony/quorum"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/kwp"
	"github.com/keyceremony/keyceremony/hsm/softhsm/softhsmtest"
)

// cardsOnly makes a Prompter for a script edited to hand out cards only:
// custodians type their shares from their cards at each unlock.
func (w *world) cardsOnly(prefix string, presenters ...string) *typist {
	a := w.answers(prefix)
	for c, d := range a.Deliver {
		a.Deliver[c] = AnswerDelivery{Card: d.Card}
	}
	p := &typist{Answers: a, w: w, prefix: prefix}
	for _, c := range presenters {
		p.turns = append(p.turns, turn{custodian: c})
	}
	return p
}

func (w *world) sharesFromCards(prefix string, who ...string) []*quorum.Share {
	var out []*quorum.Share
	for _, c := range who {
		s, err := quorum.ParseShare([]byte(cardText(w.t, w.delivery(prefix, c).Card)))
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// TestBackupAndRestore: the root ceremony issues a recovery quorum and
// backs its key up under the recovery quorum's KEK to the backup medium;
// the quorum every routine ceremony unlocks cannot derive that KEK; a
// key-backup ceremony from the shipped template writes a second backup; a
// key-restore ceremony restores the key into a second token, repairing the
// padding of SoftHSM's non-RFC 5649 wrap, and the restored key's signature
// verifies with the root certificate.
func TestBackupAndRestore(t *testing.T) {
	w := newWorld(t, "Root 2026")
	rootOut := filepath.Join(w.dir, "ceremony-output")
	// P-256: SoftHSM's PKCS #8 form of the key is 67 bytes, not a multiple
	// of 8, so its wrap pads it, and the restore must repair that.
	root := w.writeScript("root.yaml", "root-generation.yaml", "pkcs11:serial="+w.serial, rootOut,
		"delivery: [card, file]", "delivery: [card]", "not_before: 2026-12-01T00:00:00Z", "not_before: "+today(), "type: ec-p384", "type: ec-p256")
	if _, err := w.run(root, w.cardsOnly("root", "Carol Chen", "Dan Diaz", "Erin Evans"), Options{}); err != nil {
		t.Fatalf("root ceremony: %v\n%s", err, w.log.String())
	}
	backupPath := filepath.Join(w.backupMedium(), "example-root-2026.key-backup.json")
	raw, err := os.ReadFile(backupPath)
	if err != nil {
		t.Fatal(err)
	}
	b, err := readBackup(raw)
	if err != nil || b.Wrapped == "" || b.KeyType != "ec-p256" || b.Format != backupFormat || b.KWP != kwpZeroPadded {
		t.Fatalf("backup file: %v %+v", err, b)
	}
	if _, err := os.Stat(filepath.Join(rootOut, "example-root-2026.key-backup.json")); err == nil {
		t.Error("the backup was written to the output directory")
	}
	rep, err := transcript.Verify(filepath.Join(rootOut, "example-root-2026.transcript.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if en := entryByStep(t, rep, "backup-key"); en.Detail("backup file") != backupPath || en.Detail("backup file sha256") != hashOf(raw) {
		t.Errorf("the transcript does not record the backup file: %v", en.Details)
	}
	rec, _ := quorum.ReadRecord(filepath.Join(rootOut, "example-root-2026.quorum.json"))
	recovery, err := quorum.ReadRecord(filepath.Join(rootOut, "example-root-2026.recovery-quorum.json"))
	if err != nil || recovery.Purpose != quorum.RecoveryQuorum || b.RecoverySet != recovery.SetID {
		t.Fatalf("recovery quorum record: %v %+v", err, recovery)
	}
	wrapped, _ := base64.StdEncoding.DecodeString(b.Wrapped)

	// The quorum a CRL ceremony unlocks (memory captured there) cannot open
	// the backup: no KEK from it, its check value differs, and a KEK derived
	// from it as if it were the recovery quorum's does not unwrap.
	routine := unlockWith(t, rec, w.sharesFromCards("root", "Frank Fox", "Grace Gray", "Carol Chen")...)
	if _, err := routine.RecoveryKEK(); err == nil {
		t.Fatal("the routine quorum derived the backup KEK")
	}
	for _, p := range []quorum.Purpose{recoveryCheckPurpose, kekCheckPurpose} {
		if c, _ := routine.Derive(p, 8); hex.EncodeToString(c) == b.KEKCheck {
			t.Fatalf("the routine quorum's %s matches the backup's KEK check value", p)
		}
	}
	for _, p := range []quorum.Purpose{quorum.RecoveryKEK, quorum.BackupKEK} {
		k, _ := routine.Derive(p, 32)
		if _, err := kwp.Unwrap(k, wrapped); err == nil {
			t.Fatalf("a KEK derived (%s) from the routine quorum unwraps the backup", p)
		}
	}
	// The recovery quorum's cards do; SoftHSM's wrap is not RFC 5649, as the
	// backup says: a compliant unwrap gives the PKCS #8 key and zeros.
	rsec := unlockWith(t, recovery, w.sharesFromCards("root", "Judy Jones", "Karl Kim")...)
	rkek, err := rsec.RecoveryKEK()
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := rsec.Derive(recoveryCheckPurpose, 8); hex.EncodeToString(c) != b.KEKCheck {
		t.Fatal("the recovery quorum's check value is not the backup's")
	}
	plain, err := kwp.Unwrap(rkek, wrapped)
	if err != nil {
		t.Fatal(err)
	}
	n, err := derLength(plain)
	if err != nil || n == len(plain) || !bytes.Equal(plain[n:], make([]byte, len(plain)-n)) {
		t.Fatalf("the backup's padding: DER %d bytes of %d: %v", n, len(plain), err)
	}
	checkKeyIsCert(t, plain[:n], filepath.Join(rootOut, "example-root-2026.cert.pem"))
	// The repair the restore makes is RFC 5649 by openssl's reading.
	repaired, _ := kwp.Wrap(rkek, plain[:n])
	checkOpenSSLUnwrap(t, rkek, repaired, plain[:n])
	clear(plain)

	// On the first token the key is extractable only under a trusted key,
	// and no KEK is left behind.
	func() {
		m, _ := hsm.Open(w.module)
		defer m.Close()
		tok, err := m.OpenToken(hsm.URI{Serial: w.serial})
		if err != nil {
			t.Fatal(err)
		}
		defer tok.Close()
		pin, _ := routine.PIN(quorum.UserPIN, 255)
		if err := tok.Login(pin); err != nil {
			t.Fatal(err)
		}
		k, err := tok.FindKey(hsm.Filter{Label: "example-root-2026", Class: hsm.ClassPrivateKey})
		if err != nil || !k.Sensitive() || !k.Extractable() {
			t.Fatalf("backed-up root key: %v", err)
		}
		if secrets, _ := tok.FindKeys(hsm.Filter{Class: hsm.ClassSecretKey}); len(secrets) != 0 {
			t.Errorf("a KEK stayed on the token: %v", secrets)
		}
		untrusted, err := tok.GenerateKey(context.Background(), hsm.KeySpec{Type: hsm.AES256, Label: "untrusted", Session: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tok.WrapKey(context.Background(), untrusted, k, hsm.AESKeyWrapPad); err == nil {
			t.Error("an untrusted key wrapped the root key")
		}
	}()

	// A later key-backup ceremony from the shipped template: the quorum logs
	// the token in, the recovery quorum opens the same KEK.
	kb := w.writeScript("backup.yaml", "key-backup.yaml", "pkcs11:serial="+w.serial, filepath.Join(w.dir, "backup-output"))
	kbres, err := w.run(kb, w.cardsOnly("root", "Grace Gray", "Erin Evans", "Dan Diaz"), Options{})
	if err != nil {
		t.Fatalf("key-backup ceremony: %v\n%s", err, w.log.String())
	}
	if _, err := transcript.Verify(kbres.Transcript); err != nil {
		t.Fatal(err)
	}
	raw2, _ := os.ReadFile(filepath.Join(w.dir, "backup-medium-2", "example-root-2026-backup.key-backup.json"))
	b2, err := readBackup(raw2)
	if err != nil || b2.KEKCheck != b.KEKCheck || b2.PublicKey != b.PublicKey || b2.QuorumSet != b.QuorumSet || b2.RecoverySet != b.RecoverySet {
		t.Fatalf("second backup does not match the first: %v %+v", err, b2)
	}

	// A second token, initialised by its vendor with its own PINs; the
	// restore repairs the padding (the script allows it), and a routine
	// custodian presenting at the recovery quorum's unlock is refused.
	so2, user2 := []byte("second-so-3333"), []byte("second-user-4444")
	softhsmtest.InitToken(t, w.module, "Root 2026 B", so2, user2)
	serial2 := tokenSerial(t, w.module, "Root 2026 B")
	restore := w.writeScript("restore.yaml", "key-restore.yaml", "pkcs11:token=Root%202026%20B;serial="+serial2, filepath.Join(w.dir, "restore-output"),
		"  certificate: {path: ceremony-output/example-root-2026.cert.pem}\n\noutput:", "  certificate: {path: ceremony-output/example-root-2026.cert.pem}\n  repair_padding: true\n\noutput:")
	p := w.cardsOnly("root", "Dan Diaz", "Frank Fox", "Grace Gray")
	p.recovery = []turn{{custodian: "Carol Chen"}, {custodian: "Karl Kim"}, {custodian: "Ivan Ito"}}
	p.PINs.SO, p.PINs.User = string(so2), string(user2)
	res, err := w.run(restore, p, Options{})
	if err != nil {
		t.Fatalf("restore ceremony: %v\n%s", err, w.log.String())
	}
	rep, err = transcript.Verify(res.Transcript)
	if err != nil {
		t.Fatal(err)
	}
	checkStateMatchesDetails(t, rep)
	var steps []string
	for _, en := range rep.Entries {
		steps = append(steps, en.Step)
	}
	for _, want := range []string{"inputs", "unlock", "enrol-token", "unlock-recovery", "restore-key", "anchor", "prove-key", "finish", "seal", "transcript-pdf"} {
		if !slices.Contains(steps, want) {
			t.Errorf("restore transcript lacks step %s: %v", want, steps)
		}
	}
	if en := entryByStep(t, rep, "unlock-recovery"); !strings.Contains(en.Detail("share refused"), "not a custodian of the quorum record") {
		t.Errorf("a routine custodian at the recovery unlock: %v", en.Details)
	}
	if en := entryByStep(t, rep, "restore-key"); !strings.Contains(en.Detail("padding repaired"), "zero bytes removed") {
		t.Errorf("the padding repair is not recorded: %v", en.Details)
	}
	if _, err := os.Stat(filepath.Join(w.dir, "restore-output", "example-root-2026-restore.proof.json")); err != nil {
		t.Error(err)
	}

	// Sign with the restored key ourselves and verify with the root certificate.
	cert := readCert(t, filepath.Join(rootOut, "example-root-2026.cert.pem"))
	m, _ := hsm.Open(w.module)
	defer m.Close()
	tok2, err := m.OpenToken(hsm.URI{Serial: serial2})
	if err != nil {
		t.Fatal(err)
	}
	defer tok2.Close()
	if err := tok2.Login(user2); !errors.Is(err, hsm.ErrPINIncorrect) {
		t.Fatalf("the second token's vendor PIN still works: %v", err)
	}
	// After a refused PIN, hsm tries no other until a person allows it.
	tok2.AllowOneMoreTry(false)
	sec := unlockWith(t, rec, w.sharesFromCards("root", "Erin Evans", "Carol Chen", "Grace Gray")...)
	pin, _ := sec.PIN(quorum.UserPIN, 255)
	if err := tok2.Login(pin); err != nil {
		t.Fatal(err)
	}
	k, err := tok2.FindKey(hsm.Filter{Label: "example-root-2026", Class: hsm.ClassPrivateKey})
	if err != nil {
		t.Fatal(err)
	}
	if !k.Sensitive() || k.Extractable() {
		t.Errorf("restored key sensitive=%v extractable=%v", k.Sensitive(), k.Extractable())
	}
	signer, err := k.Signer()
	if err != nil {
		t.Fatal(err)
	}
	digest := sha512.Sum384([]byte("signed by the restored root key"))
	sig, err := signer.Sign(nil, digest[:], crypto.SHA384)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatal("the restored key's signature does not verify with the root certificate")
	}
	if secrets, _ := tok2.FindKeys(hsm.Filter{Class: hsm.ClassSecretKey}); len(secrets) != 0 {
		t.Errorf("a KEK stayed on the second token: %v", secrets)
	}
	all := w.sharesFromCards("root", append(append([]string(nil), custodians...), recoveryCustodians...)...)
	so, _ := sec.PIN(quorum.SOPIN, 255)
	assertNoSecrets(t, w, all, [][]byte{pin, so, rkek, so2, user2}, rootOut, filepath.Join(w.dir, "restore-output"), filepath.Join(w.dir, "backup-output"), w.tmp)
	if strings.Contains(w.log.String(), string(so2)) {
		t.Error("the second token's PIN reached the log")
	}
}

// TestBackupMediumApart: the backup medium is never the output directory,
// not even through a symbolic link.
func TestBackupMediumApart(t *testing.T) {
	w := newWorld(t, "Root 2026")
	out := filepath.Join(w.dir, "ceremony-output")
	os.MkdirAll(out, 0o700)
	link := filepath.Join(w.dir, "backup-link")
	if err := os.Symlink(out, link); err != nil {
		t.Fatal(err)
	}
	for _, medium := range []string{filepath.Join(out, "backup"), link} {
		s := w.writeScript("root.yaml", "root-generation.yaml", "pkcs11:serial="+w.serial, out, "medium: "+w.backupMedium(), "medium: "+medium)
		if _, err := New(s, Options{UnattendedTest: true, Prompter: w.answers("root")}); err == nil || !strings.Contains(err.Error(), "recovery.medium") || !strings.Contains(err.Error(), "a medium of its own") {
			t.Errorf("backup medium %s: %v", medium, err)
		}
	}
	// A script of the earlier form (backup without a recovery quorum) does
	// not start a new ceremony.
	s := w.writeScript("root.yaml", "root-generation.yaml", "pkcs11:serial="+w.serial, filepath.Join(w.dir, "out2"), dropRecovery, "")
	if !s.LegacyBackup() {
		t.Fatal("the script without a recovery section is not of the earlier form")
	}
	if _, err := New(s, Options{UnattendedTest: true, Prompter: w.answers("root")}); err == nil || !strings.Contains(err.Error(), "key.backup needs a recovery quorum") {
		t.Errorf("a new ceremony backing up without a recovery quorum: %v", err)
	}
}

func checkKeyIsCert(t *testing.T, pkcs8 []byte, certPath string) {
	t.Helper()
	key, err := x509.ParsePKCS8PrivateKey(pkcs8)
	if err != nil {
		t.Fatalf("the unwrapped backup is not a PKCS #8 key: %v", err)
	}
	cert := readCert(t, certPath)
	if !key.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(cert.PublicKey) {
		t.Fatal("the backup holds another key than the certificate's")
	}
}

// checkOpenSSLUnwrap: openssl's RFC 5649 (id-aes256-wrap-pad) unwraps the
// repaired backup to exactly the key.
func checkOpenSSLUnwrap(t *testing.T, kek, wrapped, want []byte) {
	t.Helper()
	cmd := exec.Command("openssl", "enc", "-d", "-id-aes256-wrap-pad", "-K", hex.EncodeToString(kek), "-iv", "A65959A6")
	cmd.Stdin = bytes.NewReader(wrapped)
	out, err := cmd.Output()
	if err != nil || !bytes.Equal(out, want) {
		t.Fatalf("openssl RFC 5649 unwrap of the repaired backup: %v (%d bytes, want %d)", err, len(out), len(want))
	}
}
