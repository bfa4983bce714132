package ceremony

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/keyceremony/keyceremony/ceremony/quorum"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/kwp"
)

// The inputs of key-backup and key-restore ceremonies, and the restore:
// unwrap the backup into a token, then prove the restored key signs.

func inputsStep(s *script.Script) *step {
	check := "The quorum record is well formed and matches the script."
	if s.Recovery != nil {
		check += " The recovery quorum record is a recovery quorum's."
	}
	if s.Kind == script.KeyRestore {
		check += " The backup belongs to these quorums; its public key is the certificate's; the certificate's self-signature verifies."
	}
	return &step{
		id: "inputs", title: "Inputs checked",
		do:      "Compare the SHA-256 of each input with the copy from the earlier ceremony's transcript.",
		check:   check,
		record:  "Path, size and SHA-256 of every input.",
		confirm: admins, run: runInputs,
		restore: func(ctx context.Context, e *Engine, en transcript.Entry) error { return e.restoreInputs(en, nil) },
	}
}

// loadInputs reads the quorum record and, for a restore, the backup and the
// certificate, each once (recording them when r is not nil); every problem
// goes to bad.
func (e *Engine) loadInputs(r *stepRun, bad func(path string, err error)) {
	raw := e.readInput(r, "quorum.record", *e.s.Quorum.Record, bad)
	if raw == nil {
		return
	}
	rec, err := quorum.ParseRecord(raw)
	if err != nil {
		bad("quorum.record", fmt.Errorf("%s: %w", e.s.Quorum.Record.Path, err))
		return
	}
	if rec.Purpose != "" {
		bad("quorum.record", fmt.Errorf("%s is a %s quorum record, not the record of the quorum that unlocks the token", e.s.Quorum.Record.Path, rec.Purpose))
		return
	}
	e.record = rec
	if rc := e.s.Recovery; rc != nil && rc.Record != nil {
		raw := e.readInput(r, "recovery.record", *rc.Record, bad)
		if raw == nil {
			return
		}
		rr, err := quorum.ParseRecord(raw)
		switch {
		case err != nil:
			bad("recovery.record", fmt.Errorf("%s: %w", rc.Record.Path, err))
			return
		case rr.Purpose != quorum.RecoveryQuorum:
			bad("recovery.record", fmt.Errorf("%s is not a recovery quorum record (it is the record of a quorum that unlocks a token)", rc.Record.Path))
			return
		}
		e.recoveryRecord = rr
	}
	if e.s.Restore == nil {
		return
	}
	raw = e.readInput(r, "restore.backup", e.s.Restore.Backup, bad)
	certPEM := e.readInput(r, "restore.certificate", e.s.Restore.Certificate, bad)
	if raw == nil || certPEM == nil {
		return
	}
	b, err := readBackup(raw)
	if err != nil {
		bad("restore.backup", fmt.Errorf("%s is not a key backup file: %w", e.s.Restore.Backup.Path, err))
		return
	}
	switch {
	case b.QuorumSet != rec.SetID:
		bad("restore.backup", fmt.Errorf("the backup belongs to quorum %s, the quorum record is %s: they come from different ceremonies", b.QuorumSet, rec.SetID))
		return
	case b.Format == backupFormat && e.recoveryRecord == nil:
		bad("recovery.record", errors.New("the backup opens with a recovery quorum: name its record in recovery.record"))
		return
	case b.Format == backupFormat && b.RecoverySet != e.recoveryRecord.SetID:
		bad("recovery.record", fmt.Errorf("the backup opens with recovery quorum %s, the recovery record is %s", b.RecoverySet, e.recoveryRecord.SetID))
		return
	case b.Format == backupFormatV1 && e.s.Recovery != nil:
		bad("recovery", errors.New("the backup was made before recovery quorums (format 1): its KEK comes from the quorum that unlocks the token; remove the recovery section"))
		return
	}
	cert, err := parseCertificate(certPEM)
	if err != nil {
		bad("restore.certificate", fmt.Errorf("%s: %w", e.s.Restore.Certificate.Path, err))
		return
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		bad("restore.certificate", fmt.Errorf("the root certificate's self-signature does not verify: %w", err))
		return
	}
	if base64.StdEncoding.EncodeToString(cert.RawSubjectPublicKeyInfo) != b.PublicKey {
		bad("restore.backup", errors.New("the backup's public key is not the certificate's: they belong to different keys"))
		return
	}
	e.backup, e.cert = b, cert
}

func runInputs(ctx context.Context, r *stepRun) error {
	var ps problems
	r.e.loadInputs(r, ps.add)
	if err := ps.err(); err != nil {
		return err
	}
	var facts []Fact
	for _, f := range r.entry.Inputs {
		facts = append(facts, Fact{Label: f.Path, Value: fmt.Sprintf("SHA-256 %s (%d bytes)", f.SHA256, f.Size)})
	}
	r.detail("quorum set", r.e.record.SetID)
	if rr := r.e.recoveryRecord; rr != nil {
		r.detail("recovery quorum set", rr.SetID)
	}
	if b := r.e.backup; b != nil {
		r.detail("backup of key", fmt.Sprintf("%s %q id=%s", b.KeyType, b.KeyLabel, b.KeyID))
		r.detail("certificate subject", r.e.cert.Subject.String())
	}
	return r.confirmStep(ctx, "These are the inputs produced by the earlier ceremony.", facts)
}

func restoreKeyStep() *step {
	return &step{
		id: "restore-key", title: "Key restored",
		do: "Nothing: the KEK derived from the recovery quorum is imported into the token as a session key, the backup is unwrapped into a " +
			"sensitive, non-extractable key, the public key is imported from the certificate, and the KEK is destroyed.",
		check:   "The KEK check value matches the backup's; the backup's wrap suits this token (or the script allows the padding repair); the restored key is sensitive and not extractable.",
		record:  "The restored key's label, ID, type and attributes.",
		confirm: admins, usesSecret: true,
		run: runRestore, restore: restoreRestore,
	}
}

func runRestore(ctx context.Context, r *stepRun) error {
	e := r.e
	b := e.backup
	kekValue, check, err := e.backupKEK(ctx, b.Format, "restore the key")
	if err != nil {
		return err
	}
	defer clear(kekValue)
	if check != b.KEKCheck {
		return fmt.Errorf("the quorum's KEK check value %s differs from the backup's %s: the shares belong to another quorum", check, b.KEKCheck)
	}
	if err := e.ensureSecret(ctx, "restore the key"); err != nil {
		return err
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
	if wrapped, err = e.repairPadding(r, tok, b, kekValue, wrapped); err != nil {
		return err
	}
	kek, err := e.importKEK(ctx, kekValue, false)
	if err != nil {
		return err
	}
	defer tok.DestroyKey(kek)
	unwrapped, err := tok.UnwrapKey(ctx, kek, wrapped, hsm.AESKeyWrapPad, hsm.KeySpec{Type: kt, Label: label, ID: id})
	if err != nil {
		return err
	}
	if _, err := recordKeyAttributes(ctx, r, unwrapped); err != nil {
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
	e.wipeRecovery()
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
		do:      "Nothing: the restored key signs a challenge (the token's RNG mixed with the host's) bound to this transcript.",
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
	challenge, err := tok.RandomMixed(32)
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

// repairPadding returns the wrapped key a token can unwrap. A backup made by
// a token whose AES key wrap with padding is not RFC 5649 (SoftHSM 2.6 zero-pads
// the PKCS #8 key first and records the padded length) unwraps with trailing
// zeros on a token that follows RFC 5649. With restore.repair_padding the key
// is unwrapped here with the KEK, cut to its DER length and wrapped again per
// RFC 5649: the root private key is in host memory for that moment, which is
// why the script must allow it, and it is recorded.
func (e *Engine) repairPadding(r *stepRun, tok *hsm.Token, b *backupFile, kek, wrapped []byte) ([]byte, error) {
	if b.Format != backupFormat || b.KWP == kwpRFC5649 {
		return wrapped, nil
	}
	if !e.s.Restore.RepairPadding {
		if tok.KWPCompliant() {
			return nil, errors.New("the backup was wrapped by a token whose AES key wrap with padding is not RFC 5649 (recorded in the backup), and this token follows RFC 5649: " +
				"it would unwrap the key with trailing zeros. Set restore.repair_padding: true (the key passes through host memory once, recorded) and start the ceremony again")
		}
		r.detail("padding", "the backup's zero padding is kept: this token's AES key wrap with padding behaves as the one that made it")
		return wrapped, nil
	}
	plain, err := kwp.Unwrap(kek, wrapped)
	if err != nil {
		return nil, fmt.Errorf("repair the backup's padding: %w", err)
	}
	defer clear(plain)
	n, err := derLength(plain)
	if err != nil {
		return nil, fmt.Errorf("repair the backup's padding: the unwrapped key is not DER: %w", err)
	}
	for _, z := range plain[n:] {
		if z != 0 {
			return nil, errors.New("repair the backup's padding: the bytes after the key are not zeros")
		}
	}
	out, err := kwp.Wrap(kek, plain[:n])
	if err != nil {
		return nil, err
	}
	r.detail("padding repaired", fmt.Sprintf("in host memory: %d zero bytes removed after the %d-byte PKCS #8 key, wrapped again per RFC 5649 (restore.repair_padding)", len(plain)-n, n))
	return out, nil
}

// derLength is the length of the DER element at the start of b.
func derLength(b []byte) (int, error) {
	s := cryptobyte.String(b)
	var elem cryptobyte.String
	var tag cbasn1.Tag
	if !s.ReadAnyASN1Element(&elem, &tag) || tag != cbasn1.SEQUENCE {
		return 0, errors.New("no DER SEQUENCE")
	}
	return len(elem), nil
}
