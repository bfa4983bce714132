package ceremony

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/quorum"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/hsm"
)

// backupFormat identifies key backup files.
const backupFormat = "keyceremony-key-backup/v1"

// backupFile is a wrapped private key with what a restore needs to know. It
// holds no plaintext secret: the key is wrapped under the quorum's KEK.
type backupFile struct {
	Format     string    `json:"format"`
	CeremonyID string    `json:"ceremony_id"`
	Created    time.Time `json:"created"`
	QuorumSet  string    `json:"quorum_set"`
	KeyLabel   string    `json:"key_label"`
	KeyID      string    `json:"key_id"`
	KeyType    string    `json:"key_type"`
	PublicKey  string    `json:"public_key"` // base64 DER SubjectPublicKeyInfo
	Mechanism  string    `json:"mechanism"`
	// KEKCheck lets a restore confirm the quorum rebuilt the right KEK before
	// unwrapping: 8 bytes derived from the quorum secret beside the KEK (not from it).
	KEKCheck string `json:"kek_check"`
	Wrapped  string `json:"wrapped"` // base64
}

const kekCheckPurpose quorum.Purpose = "backup-kek-check"

func backupKeyStep() *step {
	return &step{
		id: "backup-key", title: "Key backed up",
		do: "Nothing: the security officer's quorum PIN imports the quorum-derived KEK into the token as a trusted session key; " +
			"the token wraps the private key with it (CKM_AES_KEY_WRAP_PAD); the KEK is destroyed.",
		check:   "The key is extractable only under a trusted key; the KEK never persists on the token.",
		record:  "The backup file (output), its key's label, ID and type, the KEK check value.",
		confirm: admins, usesSecret: true, outputs: []string{"key-backup.json"},
		run: runBackup,
	}
}

// importKEK puts the quorum-derived KEK into the token as a session object,
// so it never persists on the token, not even after a crash, and returns it.
// The caller destroys it when done. trusted (CKA_TRUSTED) needs the security
// officer logged in; such a key is a public object, because the officer
// cannot create private ones.
func (e *Engine) importKEK(ctx context.Context, trusted bool) (*hsm.Key, error) {
	kek, err := e.secret.KEK()
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	tok, err := e.token()
	if err != nil {
		return nil, err
	}
	id, err := tok.Random(8)
	if err != nil {
		return nil, err
	}
	k, err := tok.ImportSecretKey(ctx, kek, hsm.KeySpec{Type: hsm.AES256, Label: "ceremony-kek-" + hex.EncodeToString(id), ID: id, Session: true, Trusted: trusted})
	if err != nil {
		return nil, fmt.Errorf("import the backup KEK: %w", err)
	}
	return k, nil
}

func (e *Engine) kekCheck() (string, error) {
	c, err := e.secret.Derive(kekCheckPurpose, 8)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(c), nil
}

func runBackup(ctx context.Context, r *stepRun) error {
	e := r.e
	ref := e.key
	if e.s.Kind == script.KeyBackup {
		ref = keyRef{Label: e.s.Backup.KeyLabel}
	}
	if err := e.ensureSecret(ctx, "back up the key"); err != nil {
		return err
	}
	// CKA_TRUSTED can only be set by the security officer.
	if err := e.loginAs(ctx, "so", "back up the key"); err != nil {
		return err
	}
	imported, err := e.importKEK(ctx, true)
	if err != nil {
		return err
	}
	tok, _ := e.token()
	defer tok.DestroyKey(imported)
	if err := e.loginAs(ctx, "user", "back up the key"); err != nil {
		return err
	}
	// Find the KEK again as the user: handles are not promised to survive a change of login.
	kek, err := tok.FindKey(hsm.Filter{Label: imported.Label(), Class: hsm.ClassSecretKey})
	if err != nil {
		return err
	}
	k, err := e.findKey(ref, hsm.ClassPrivateKey)
	if err != nil {
		return err
	}
	if !k.Extractable() {
		return fmt.Errorf("key %q was created non-extractable and cannot be backed up; only keys generated with backup: true can", ref.Label)
	}
	wrapped, err := tok.WrapKey(ctx, kek, k, hsm.AESKeyWrapPad)
	if err != nil {
		return err
	}
	if err := tok.DestroyKey(kek); err != nil {
		return fmt.Errorf("destroy the session KEK: %w", err)
	}
	check, err := e.kekCheck()
	if err != nil {
		return err
	}
	spki, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return err
	}
	b := backupFile{
		Format: backupFormat, CeremonyID: e.s.ID, Created: time.Now().UTC().Truncate(time.Second),
		QuorumSet: e.record.SetID, KeyLabel: ref.Label, KeyID: hex.EncodeToString(k.ID()), KeyType: k.Type().String(),
		PublicKey: base64.StdEncoding.EncodeToString(spki), Mechanism: "CKM_AES_KEY_WRAP_PAD",
		KEKCheck: check, Wrapped: base64.StdEncoding.EncodeToString(wrapped),
	}
	raw, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	if _, err := r.output("key-backup.json", append(raw, '\n')); err != nil {
		return err
	}
	ws := sha256.Sum256(wrapped)
	r.detail("key", k.String())
	r.detail("mechanism", "CKM_AES_KEY_WRAP_PAD under a quorum-derived AES-256 KEK (trusted session object, destroyed after use)")
	r.detail("kek check", check)
	r.detail("wrapped sha256", hex.EncodeToString(ws[:]))
	return r.confirmStep(ctx, "The key backup was written; it opens only with the quorum.", []Fact{
		{Label: "Key", Value: k.String()},
		{Label: "KEK check value", Value: check},
	})
}

func inputsStep(s *script.Script) *step {
	check := "The quorum record is well formed and matches the script."
	if s.Kind == script.KeyRestore {
		check += " The backup belongs to this quorum; its public key is the certificate's; the certificate's self-signature verifies."
	}
	return &step{
		id: "inputs", title: "Inputs checked",
		do:      "Compare the SHA-256 of each input with the copy from the earlier ceremony's transcript.",
		check:   check,
		record:  "Path, size and SHA-256 of every input.",
		confirm: admins, run: runInputs,
		restore: func(ctx context.Context, e *Engine, en transcript.Entry) error { return e.loadInputs(nil) },
	}
}

// loadInputs reads the quorum record and, for a restore, the backup and the
// certificate, recording them when r is not nil.
func (e *Engine) loadInputs(r *stepRun) error {
	in := func(path string) ([]byte, error) {
		p := e.s.Resolve(path)
		if r != nil {
			if _, err := r.input(p); err != nil {
				return nil, err
			}
		}
		return os.ReadFile(p)
	}
	if _, err := in(e.s.Quorum.Record.Path); err != nil {
		return err
	}
	rec, err := quorum.ReadRecord(e.s.Resolve(e.s.Quorum.Record.Path))
	if err != nil {
		return err
	}
	e.record = rec
	if e.s.Restore == nil {
		return nil
	}
	raw, err := in(e.s.Restore.Backup.Path)
	if err != nil {
		return err
	}
	var b backupFile
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil || b.Format != backupFormat {
		return fmt.Errorf("%s is not a key backup file (%v)", e.s.Restore.Backup.Path, err)
	}
	if b.QuorumSet != rec.SetID {
		return fmt.Errorf("the backup belongs to quorum %s, the quorum record is %s: they come from different ceremonies", b.QuorumSet, rec.SetID)
	}
	certPEM, err := in(e.s.Restore.Certificate.Path)
	if err != nil {
		return err
	}
	der := certPEM
	if blk, _ := pem.Decode(certPEM); blk != nil {
		der = blk.Bytes
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("%s: %w", e.s.Restore.Certificate.Path, err)
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		return fmt.Errorf("the root certificate's self-signature does not verify: %w", err)
	}
	if base64.StdEncoding.EncodeToString(cert.RawSubjectPublicKeyInfo) != b.PublicKey {
		return errors.New("the backup's public key is not the certificate's: they belong to different keys")
	}
	e.backup, e.cert = &b, cert
	return nil
}

func runInputs(ctx context.Context, r *stepRun) error {
	if err := r.e.loadInputs(r); err != nil {
		return err
	}
	var facts []Fact
	for _, f := range r.entry.Inputs {
		facts = append(facts, Fact{Label: f.Path, Value: fmt.Sprintf("SHA-256 %s (%d bytes)", f.SHA256, f.Size)})
	}
	r.detail("quorum set", r.e.record.SetID)
	if b := r.e.backup; b != nil {
		r.detail("backup of key", fmt.Sprintf("%s %q id=%s", b.KeyType, b.KeyLabel, b.KeyID))
		r.detail("certificate subject", r.e.cert.Subject.String())
	}
	return r.confirmStep(ctx, "These are the inputs produced by the earlier ceremony.", facts)
}

func restoreKeyStep() *step {
	return &step{
		id: "restore-key", title: "Key restored",
		do: "Nothing: the quorum-derived KEK is imported into the token as a session key, the backup is unwrapped into a " +
			"sensitive, non-extractable key, the public key is imported from the certificate, and the KEK is destroyed.",
		check:   "The KEK check value matches the backup's; the restored key is sensitive and not extractable.",
		record:  "The restored key's label, ID, type and attributes.",
		confirm: admins, usesSecret: true,
		run: runRestore, restore: restoreRestore,
	}
}

func runRestore(ctx context.Context, r *stepRun) error {
	e := r.e
	b := e.backup
	if err := e.ensureSecret(ctx, "restore the key"); err != nil {
		return err
	}
	check, err := e.kekCheck()
	if err != nil {
		return err
	}
	if check != b.KEKCheck {
		return fmt.Errorf("the quorum's KEK check value %s differs from the backup's %s: the shares belong to another quorum", check, b.KEKCheck)
	}
	if err := e.loginAs(ctx, "user", "restore the key"); err != nil {
		return err
	}
	tok, _ := e.token()
	kt, err := hsm.ParseKeyType(b.KeyType)
	if err != nil {
		return err
	}
	label := b.KeyLabel
	if e.s.Restore.Label != "" {
		label = e.s.Restore.Label
	}
	id, err := hex.DecodeString(b.KeyID)
	if err != nil {
		return err
	}
	if err := r.destroyUnrecorded(ctx, tok, label, fmt.Sprintf("Keys labelled %q exist on the token but the transcript does not record a restore (an interrupted attempt). Destroy them and restore again.", label)); err != nil {
		return err
	}
	wrapped, err := base64.StdEncoding.DecodeString(b.Wrapped)
	if err != nil {
		return fmt.Errorf("backup file: %w", err)
	}
	kek, err := e.importKEK(ctx, false)
	if err != nil {
		return err
	}
	defer tok.DestroyKey(kek)
	if _, err := tok.UnwrapKey(ctx, kek, wrapped, hsm.AESKeyWrapPad, hsm.KeySpec{Type: kt, Label: label, ID: id}); err != nil {
		return err
	}
	// The public half comes from the certificate (a wrapped private key
	// carries none), so the restored key is found with it and can sign.
	if _, err := tok.ImportPublicKey(ctx, e.cert.PublicKey, hsm.KeySpec{Type: kt, Label: label, ID: id}); err != nil {
		return fmt.Errorf("import the public key from the certificate: %w", err)
	}
	if err := tok.DestroyKey(kek); err != nil {
		return fmt.Errorf("destroy the session KEK: %w", err)
	}
	e.key = keyRef{Label: label, ID: id}
	k, err := e.rootKey()
	if err != nil {
		return err
	}
	if !k.Sensitive() || k.Extractable() {
		return fmt.Errorf("the restored key has sensitive=%v extractable=%v; expected a sensitive, non-extractable key", k.Sensitive(), k.Extractable())
	}
	r.detail("key label", label)
	r.detail("key id", hex.EncodeToString(id))
	r.detail("key", k.String())
	r.detail("sensitive", "true")
	r.detail("extractable", "false")
	if err := e.key.record(r); err != nil {
		return err
	}
	return r.confirmStep(ctx, "The key was restored into this token.", []Fact{{Label: "Restored key", Value: k.String()}})
}

func restoreRestore(ctx context.Context, e *Engine, en transcript.Entry) error {
	return e.key.restore(en)
}

func proveKeyStep() *step {
	return &step{
		id: "prove-key", title: "Restored key proven",
		do:      "Nothing: the restored key signs a challenge from the token's RNG bound to this transcript.",
		check:   "The signature verifies with the public key of the root certificate.",
		record:  "The challenge and signature (output) and the verification result.",
		confirm: admins, outputs: []string{"proof.json"},
		run: runProve,
	}
}

// proof is the restore's evidence: a signature by the restored key over a
// fresh challenge and the transcript so far.
type proof struct {
	Message         string `json:"message"`
	Hash            string `json:"hash"`
	Signature       string `json:"signature"` // base64
	CertificateHash string `json:"certificate_sha256"`
}

func runProve(ctx context.Context, r *stepRun) error {
	e := r.e
	if err := e.loginAs(ctx, "user", "prove the restored key"); err != nil {
		return err
	}
	tok, _ := e.token()
	k, err := e.rootKey()
	if err != nil {
		return err
	}
	challenge, err := tok.Random(32)
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("keyceremony restore proof v1\nceremony %s\nchallenge %x\ntranscript %s\n", e.s.ID, challenge, e.tw.Last().Hash)
	h := proofHash(e.cert.PublicKey)
	hh := h.New()
	hh.Write([]byte(msg))
	digest := hh.Sum(nil)
	signer, err := k.Signer()
	if err != nil {
		return err
	}
	sig, err := signer.Sign(nil, digest, h)
	if err != nil {
		return err
	}
	if err := verifyWith(e.cert.PublicKey, digest, sig, h); err != nil {
		return fmt.Errorf("the restored key's signature does not verify with the root certificate: %w", err)
	}
	cs := sha256.Sum256(e.cert.Raw)
	raw, _ := json.MarshalIndent(proof{Message: msg, Hash: h.String(), Signature: base64.StdEncoding.EncodeToString(sig), CertificateHash: hex.EncodeToString(cs[:])}, "", "  ")
	if _, err := r.output("proof.json", append(raw, '\n')); err != nil {
		return err
	}
	r.detail("challenge", hex.EncodeToString(challenge))
	r.detail("signature", "verified with the public key of "+e.cert.Subject.String())
	return r.confirmStep(ctx, "The restored key signed the challenge and the root certificate verifies it.", []Fact{
		{Label: "Challenge", Value: hex.EncodeToString(challenge)},
		{Label: "Verified with", Value: e.cert.Subject.String()},
	})
}

func proofHash(pub crypto.PublicKey) crypto.Hash {
	if p, ok := pub.(*ecdsa.PublicKey); ok {
		switch p.Curve {
		case elliptic.P384():
			return crypto.SHA384
		case elliptic.P521():
			return crypto.SHA512
		}
	}
	return crypto.SHA256
}

func verifyWith(pub crypto.PublicKey, digest, sig []byte, h crypto.Hash) error {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(p, digest, sig) {
			return errors.New("ECDSA signature invalid")
		}
		return nil
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(p, h, digest, sig)
	}
	return fmt.Errorf("unsupported public key %T", pub)
}
