package ceremony

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/quorum"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/hsm"
)

// Key backup. The backup KEK comes from the recovery quorum (a quorum of its
// own, whose cards are presented only at key-backup and key-restore
// ceremonies), never from the quorum every routine ceremony unlocks: host
// memory captured at a CRL ceremony, together with the backup file, must not
// give the root key. The backup file goes to a medium of its own (the
// script's recovery.medium), never into the output directory that is copied
// and archived. See ceremony/README.md, "Key backup and restore".

// Backup file formats. Format 1 (before the recovery quorum) was wrapped
// under a KEK derived from the quorum that unlocks the token; such backups
// still restore.
const (
	backupFormatV1 = "keyceremony-key-backup/v1"
	backupFormat   = "keyceremony-key-backup/v2"
)

// backupFile is a wrapped private key with what a restore needs to know. It
// holds no plaintext secret: the key is wrapped under the KEK.
type backupFile struct {
	Format     string    `json:"format"`
	CeremonyID string    `json:"ceremony_id"`
	Created    time.Time `json:"created"`
	// QuorumSet is the quorum that unlocks the token (format 1: whose secret
	// derived the KEK).
	QuorumSet string `json:"quorum_set"`
	// RecoverySet is the recovery quorum whose secret alone derives the KEK
	// (format 2).
	RecoverySet string `json:"recovery_set,omitempty"`
	KeyLabel    string `json:"key_label"`
	KeyID       string `json:"key_id"`
	KeyType     string `json:"key_type"`
	PublicKey   string `json:"public_key"` // base64 DER SubjectPublicKeyInfo
	Mechanism   string `json:"mechanism"`
	// KWP says whether the token that wrapped followed RFC 5649 (format 2):
	// kwpRFC5649, or kwpZeroPadded for a token (SoftHSM 2.6) that zero-pads
	// the key to a multiple of 8 bytes first and records the padded length.
	KWP string `json:"kwp,omitempty"`
	// KEKCheck lets a restore confirm the quorum rebuilt the right KEK before
	// unwrapping: 8 bytes derived from the quorum secret beside the KEK (not from it).
	KEKCheck string `json:"kek_check"`
	Wrapped  string `json:"wrapped"` // base64
}

// What a backup says of its wrap.
const (
	kwpRFC5649    = "rfc5649"
	kwpZeroPadded = "zero-padded: the token padded the key with zeros to a multiple of 8 bytes before wrapping and recorded the padded length, which RFC 5649 does not; " +
		"an RFC 5649 unwrap returns the PKCS #8 key followed by those zeros (the DER length says where the key ends): restore with restore.repair_padding on a token that follows RFC 5649"
)

// The check values stored in backups, derived beside the KEK.
const (
	kekCheckPurpose      quorum.Purpose = "backup-kek-check"
	recoveryCheckPurpose quorum.Purpose = "recovery-kek-check"
)

func backupKeyStep() *step {
	return &step{
		id: "backup-key", title: "Key backed up",
		do: "Nothing: the security officer's quorum PIN imports the KEK derived from the recovery quorum into the token as a trusted session key; " +
			"the token wraps the private key with it (CKM_AES_KEY_WRAP_PAD); the KEK is destroyed; the backup file is written to the backup medium.",
		check:   "The key is extractable only under a trusted key; the KEK never persists on the token; the backup medium is not the output directory.",
		record:  "The backup file's path, size and SHA-256 on the backup medium, its key's label, ID and type, the KEK check value, whether the token's wrap follows RFC 5649.",
		confirm: admins, usesSecret: true,
		run: runBackup,
	}
}

// legacyBackupStep is the backup step of a root-generation script written
// before the recovery quorum, kept so such a ceremony resumes; New refuses
// to start one.
func legacyBackupStep() *step {
	st := backupKeyStep()
	st.record = "The backup file (output), its key's label, ID and type, the KEK check value."
	st.outputs = []string{"key-backup.json"}
	return st
}

// importKEK puts the KEK into the token as a session object, so it never
// persists on the token, not even after a crash, and returns it. The caller
// destroys it when done. trusted (CKA_TRUSTED) needs the security officer
// logged in; such a key is a public object, because the officer cannot
// create private ones.
func (e *Engine) importKEK(ctx context.Context, kek []byte, trusted bool) (*hsm.Key, error) {
	tok, err := e.token()
	if err != nil {
		return nil, err
	}
	id, err := tok.RandomMixed(8)
	if err != nil {
		return nil, err
	}
	k, err := tok.ImportSecretKey(ctx, kek, hsm.KeySpec{Type: hsm.AES256, Label: "ceremony-kek-" + hex.EncodeToString(id), ID: id, Session: true, Trusted: trusted})
	if err != nil {
		return nil, fmt.Errorf("import the backup KEK: %w", err)
	}
	return k, nil
}

// backupKEK derives the KEK and its check value for a backup of format:
// from the recovery quorum (format 2), or from the quorum that unlocks the
// token (format 1). The caller wipes the KEK.
func (e *Engine) backupKEK(ctx context.Context, format, purpose string) (kek []byte, check string, err error) {
	var sec *quorum.Secret
	checkPurpose := recoveryCheckPurpose
	if format == backupFormatV1 {
		if err := e.ensureSecret(ctx, purpose); err != nil {
			return nil, "", err
		}
		sec, checkPurpose = e.secret, kekCheckPurpose
		kek, err = sec.LegacyKEK()
	} else {
		if err := e.ensureRecovery(ctx, purpose); err != nil {
			return nil, "", err
		}
		sec = e.recoverySecret
		kek, err = sec.RecoveryKEK()
	}
	if err != nil {
		return nil, "", err
	}
	c, err := sec.Derive(checkPurpose, 8)
	if err != nil {
		clear(kek)
		return nil, "", err
	}
	return kek, hex.EncodeToString(c), nil
}

// backupDir is the directory the backup file goes to: the script's backup
// medium (beside the rehearsal's output directory in a rehearsal).
func (e *Engine) backupDir() string {
	if e.opt.Rehearse {
		return e.outDir + "-backup-medium"
	}
	return e.s.Resolve(e.s.Recovery.Medium)
}

// checkBackupDir refuses a backup medium inside the output directory (or the
// output directory inside it), symbolic links resolved on both sides.
func (e *Engine) checkBackupDir(dir string) error {
	real, out := resolved(dir), resolved(e.outDir)
	if within(real, out) || within(out, real) {
		return fmt.Errorf("the backup medium %s is the output directory %s or overlaps it: the backup goes to a medium of its own, stored apart from the outputs that are copied and archived", dir, e.outDir)
	}
	return nil
}

func runBackup(ctx context.Context, r *stepRun) error {
	e := r.e
	ref := e.key
	if e.s.Kind == script.KeyBackup {
		ref = keyRef{Label: e.s.Backup.KeyLabel}
	}
	format := backupFormat
	if e.s.LegacyBackup() {
		format = backupFormatV1
	}
	var dir string
	if format == backupFormat {
		dir = e.backupDir()
		if err := e.checkBackupDir(dir); err != nil {
			return err
		}
		if e.opt.Rehearse {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return fmt.Errorf("the backup medium %s is not a directory (is it mounted?)", dir)
		}
	}
	kek, check, err := e.backupKEK(ctx, format, "back up the key")
	if err != nil {
		return err
	}
	defer clear(kek)
	if err := e.ensureSecret(ctx, "back up the key"); err != nil {
		return err
	}
	// CKA_TRUSTED can only be set by the security officer.
	if err := e.loginAs(ctx, "so", "back up the key"); err != nil {
		return err
	}
	imported, err := e.importKEK(ctx, kek, true)
	if err != nil {
		return err
	}
	tok, _ := e.token()
	defer tok.DestroyKey(imported)
	if err := e.loginAs(ctx, "user", "back up the key"); err != nil {
		return err
	}
	// Find the KEK again as the user: handles are not promised to survive a change of login.
	wrapKEK, err := tok.FindKey(hsm.Filter{Label: imported.Label(), Class: hsm.ClassSecretKey})
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
	wrapped, err := tok.WrapKey(ctx, wrapKEK, k, hsm.AESKeyWrapPad)
	if err != nil {
		return err
	}
	if err := tok.DestroyKey(wrapKEK); err != nil {
		return fmt.Errorf("destroy the session KEK: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return err
	}
	b := backupFile{
		Format: format, CeremonyID: e.s.ID, Created: time.Now().UTC().Truncate(time.Second),
		QuorumSet: e.record.SetID, KeyLabel: ref.Label, KeyID: hex.EncodeToString(k.ID()), KeyType: k.Type().String(),
		PublicKey: base64.StdEncoding.EncodeToString(spki), Mechanism: "CKM_AES_KEY_WRAP_PAD",
		KEKCheck: check, Wrapped: base64.StdEncoding.EncodeToString(wrapped),
	}
	if format == backupFormat {
		b.RecoverySet = e.recoveryRecord.SetID
		b.KWP = kwpZeroPadded
		if tok.KWPCompliant() {
			b.KWP = kwpRFC5649
		}
	}
	raw, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	raw = append(raw, '\n')
	ws := sha256.Sum256(wrapped)
	r.detail("key", k.String())
	if format == backupFormat {
		if err := e.writeBackup(r, dir, raw); err != nil {
			return err
		}
		r.detail("mechanism", "CKM_AES_KEY_WRAP_PAD under an AES-256 KEK derived from the recovery quorum (trusted session object, destroyed after use)")
		r.detail("recovery quorum set", b.RecoverySet)
		r.detail("token's AES key wrap with padding", b.KWP)
	} else {
		if _, err := r.output("key-backup.json", raw); err != nil {
			return err
		}
		r.detail("mechanism", "CKM_AES_KEY_WRAP_PAD under a quorum-derived AES-256 KEK (trusted session object, destroyed after use)")
	}
	r.detail("kek check", check)
	r.detail("wrapped sha256", hex.EncodeToString(ws[:]))
	e.wipeRecovery()
	return r.confirmStep(ctx, "The key backup was written; it opens only with the recovery quorum. Take the backup medium away and store it apart from the output medium.", []Fact{
		{Label: "Key", Value: k.String()},
		{Label: "KEK check value", Value: check},
		{Label: "Backup medium", Value: dir},
	})
}

// writeBackup writes the backup file on the backup medium and records its
// hash; a file an interrupted attempt left there is moved aside first.
func (e *Engine) writeBackup(r *stepRun, dir string, raw []byte) error {
	path := filepath.Join(dir, e.name("key-backup.json"))
	if _, err := os.Lstat(path); err == nil {
		aside := fmt.Sprintf("%s.incomplete-%s", path, time.Now().UTC().Format("20060102T150405Z"))
		if err := os.Rename(path, aside); err != nil {
			return fmt.Errorf("move aside the backup file an interrupted attempt left: %w", err)
		}
		r.detail("unrecorded backup file moved aside", aside)
	}
	if err := writeExcl(path, raw); err != nil {
		return err
	}
	r.detail("backup file", path)
	r.detail("backup file sha256", hashOf(raw))
	r.detail("backup file size", fmt.Sprint(len(raw)))
	return nil
}

// readBackup decodes a backup file of either format.
func readBackup(raw []byte) (*backupFile, error) {
	var b backupFile
	if err := decodeStrict(raw, &b); err != nil {
		return nil, err
	}
	switch b.Format {
	case backupFormat:
		if b.RecoverySet == "" || b.KWP == "" {
			return nil, errors.New("a format-2 backup names its recovery quorum and its wrap")
		}
	case backupFormatV1:
	default:
		return nil, fmt.Errorf("format %q is not a key backup's", b.Format)
	}
	return &b, nil
}
