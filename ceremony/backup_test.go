package ceremony

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/ceremony/quorum"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/hsm"
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

// TestBackupAndRestore: the root ceremony backs its key up under the quorum;
// a key-restore ceremony from the shipped template restores it into a second
// token, and the restored key's signature verifies with the root certificate.
func TestBackupAndRestore(t *testing.T) {
	w := newWorld(t, "Root 2026")
	rootOut := filepath.Join(w.dir, "ceremony-output")
	root := w.writeScript("root.yaml", "root-generation.yaml", "pkcs11:serial="+w.serial, rootOut,
		"delivery: [card, file]", "delivery: [card]", "not_before: 2026-12-01T00:00:00Z", "not_before: "+today())
	if _, err := w.run(root, w.cardsOnly("root", "Carol Chen", "Dan Diaz", "Erin Evans"), Options{}); err != nil {
		t.Fatalf("root ceremony: %v\n%s", err, w.log.String())
	}
	backupPath := filepath.Join(rootOut, "example-root-2026.key-backup.json")
	var b backupFile
	raw, err := os.ReadFile(backupPath)
	if err != nil || json.Unmarshal(raw, &b) != nil || b.Wrapped == "" || b.KeyType != "ec-p384" {
		t.Fatalf("backup file: %v %+v", err, b)
	}
	rec, _ := quorum.ReadRecord(filepath.Join(rootOut, "example-root-2026.quorum.json"))

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
		sec := unlockWith(t, rec, w.sharesFromCards("root", "Frank Fox", "Grace Gray", "Carol Chen")...)
		pin, _ := sec.PIN(quorum.UserPIN, 255)
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

	// A later key-backup ceremony from the shipped template: the token is
	// already enrolled under the quorum, and the backup opens with the same KEK.
	kb := w.writeScript("backup.yaml", "key-backup.yaml", "pkcs11:serial="+w.serial, filepath.Join(w.dir, "backup-output"))
	kbres, err := w.run(kb, w.cardsOnly("root", "Grace Gray", "Erin Evans", "Dan Diaz"), Options{})
	if err != nil {
		t.Fatalf("key-backup ceremony: %v\n%s", err, w.log.String())
	}
	if _, err := transcript.Verify(kbres.Transcript); err != nil {
		t.Fatal(err)
	}
	var b2 backupFile
	raw2, _ := os.ReadFile(filepath.Join(w.dir, "backup-output", "example-root-2026-backup.key-backup.json"))
	if err := json.Unmarshal(raw2, &b2); err != nil || b2.KEKCheck != b.KEKCheck || b2.PublicKey != b.PublicKey || b2.QuorumSet != b.QuorumSet {
		t.Fatalf("second backup does not match the first: %v %+v", err, b2)
	}

	// A second token, initialised by its vendor with its own PINs.
	so2, user2 := []byte("second-so-3333"), []byte("second-user-4444")
	softhsmtest.InitToken(t, w.module, "Root 2026 B", so2, user2)
	serial2 := tokenSerial(t, w.module, "Root 2026 B")
	restore := w.writeScript("restore.yaml", "key-restore.yaml", "pkcs11:token=Root%202026%20B;serial="+serial2, filepath.Join(w.dir, "restore-output"))
	p := w.cardsOnly("root", "Dan Diaz", "Frank Fox", "Grace Gray")
	p.PINs.SO, p.PINs.User = string(so2), string(user2)
	res, err := w.run(restore, p, Options{})
	if err != nil {
		t.Fatalf("restore ceremony: %v\n%s", err, w.log.String())
	}
	rep, err := transcript.Verify(res.Transcript)
	if err != nil {
		t.Fatal(err)
	}
	checkStateMatchesDetails(t, rep)
	var steps []string
	for _, en := range rep.Entries {
		steps = append(steps, en.Step)
	}
	for _, want := range []string{"inputs", "unlock", "enrol-token", "restore-key", "prove-key", "finish", "transcript-pdf"} {
		if !slices.Contains(steps, want) {
			t.Errorf("restore transcript lacks step %s: %v", want, steps)
		}
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
	all := w.sharesFromCards("root", custodians...)
	so, _ := sec.PIN(quorum.SOPIN, 255)
	kek, _ := sec.KEK()
	assertNoSecrets(t, w, all, [][]byte{pin, so, kek, so2, user2}, rootOut, filepath.Join(w.dir, "restore-output"), w.tmp)
	if strings.Contains(w.log.String(), string(so2)) {
		t.Error("the second token's PIN reached the log")
	}
}
