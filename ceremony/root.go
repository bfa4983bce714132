package ceremony

import (
	"context"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"

	"github.com/keyceremony/keyceremony/ceremony/certsign"
	"github.com/keyceremony/keyceremony/ceremony/paper"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/ceremony/words"
	"github.com/keyceremony/keyceremony/hsm"
)

func generateKeyStep(s *script.Script) *step {
	ext := "sensitive and never extractable"
	if s.Key.Backup {
		ext = "sensitive, extractable only wrapped by a trusted key (for the backup)"
	}
	return &step{
		id: "generate-key", title: "Root key pair generated",
		do:      fmt.Sprintf("Nothing: the token generates the key pair (%s) labelled %q; read its fingerprint aloud.", s.Key.Type, s.Key.Label),
		check:   "The private key is " + ext + ".",
		record:  "Key label, ID, type, attributes, public key (output) and its SHA-256 fingerprint with PGP words.",
		confirm: admins, outputs: []string{"pubkey.pem"},
		run: runGenerateKey, restore: restoreGenerateKey,
	}
}

func runGenerateKey(ctx context.Context, r *stepRun) error {
	e := r.e
	if err := e.loginAs(ctx, "user", "generate the key"); err != nil {
		return err
	}
	tok, _ := e.token()
	kt, err := hsm.ParseKeyType(e.s.Key.Type)
	if err != nil {
		return err
	}
	label := e.s.Key.Label
	if old, err := tok.FindKeys(hsm.Filter{Label: label}); err == nil && len(old) > 0 {
		// Only an interrupted attempt of this step leaves such a key: it was
		// never recorded, certified or backed up. Replace it openly.
		if err := r.confirmStep(ctx, fmt.Sprintf("A key labelled %q exists on the token but the transcript does not record its generation (an interrupted attempt). Destroy it and generate a new one.", label),
			[]Fact{{Label: "Existing key", Value: old[0].String()}}); err != nil {
			return err
		}
		for _, k := range old {
			if err := tok.DestroyKey(k); err != nil {
				return err
			}
			r.detail("unrecorded key destroyed", k.String())
		}
	}
	k, err := tok.GenerateKey(ctx, hsm.KeySpec{Type: kt, Label: label, Extractable: e.s.Key.Backup, WrapWithTrusted: e.s.Key.Backup})
	if err != nil {
		return err
	}
	if !k.Sensitive() || k.Extractable() != e.s.Key.Backup {
		return fmt.Errorf("the token created key %q with sensitive=%v extractable=%v, not what was asked", label, k.Sensitive(), k.Extractable())
	}
	e.keyLabel, e.keyID = label, k.ID()
	spki, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return err
	}
	if _, err := r.output("pubkey.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})); err != nil {
		return err
	}
	fp := sha256.Sum256(spki)
	e.fingerprints = append(e.fingerprints, paper.Fingerprint{Label: "Root public key (SPKI)", SHA256: fp[:]})
	r.detail("key label", label)
	r.detail("key id", hex.EncodeToString(k.ID()))
	r.detail("key type", kt.String())
	r.detail("sensitive", fmt.Sprint(k.Sensitive()))
	r.detail("extractable", fmt.Sprint(k.Extractable()))
	r.detail("wrap with trusted only", fmt.Sprint(e.s.Key.Backup))
	r.detail("public key sha256", hex.EncodeToString(fp[:]))
	r.detail("public key words", words.String(fp[:]))
	return r.confirmStep(ctx, "The public key fingerprint was read aloud.", []Fact{
		{Label: "Key", Value: k.String()},
		{Label: "Public key SHA-256", Value: hex.EncodeToString(fp[:]), Words: words.String(fp[:])},
	})
}

func restoreGenerateKey(ctx context.Context, e *Engine, en transcript.Entry) error {
	e.keyLabel = en.Detail("key label")
	id, err := hex.DecodeString(en.Detail("key id"))
	if err != nil {
		return err
	}
	e.keyID = id
	if fp, err := hex.DecodeString(en.Detail("public key sha256")); err == nil {
		e.fingerprints = append(e.fingerprints, paper.Fingerprint{Label: "Root public key (SPKI)", SHA256: fp})
	}
	return nil
}

// rootKey finds the root private key on the (logged-in) token.
func (e *Engine) rootKey() (*hsm.Key, error) {
	tok, err := e.token()
	if err != nil {
		return nil, err
	}
	return tok.FindKey(hsm.Filter{Label: e.keyLabel, ID: e.keyID, Class: hsm.ClassPrivateKey})
}

// rootTemplate builds the root certificate from the script's profile.
func rootTemplate(s *script.Script, pub crypto.PublicKey, serial []byte) (*x509.Certificate, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	// RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bit string.
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		return nil, err
	}
	ski := sha1.Sum(info.PublicKey.Bytes)
	c := s.Certificate
	name := pkix.Name{CommonName: c.Subject.CommonName}
	add := func(dst *[]string, v string) {
		if v != "" {
			*dst = []string{v}
		}
	}
	add(&name.Organization, c.Subject.Organization)
	add(&name.OrganizationalUnit, c.Subject.OrganizationalUnit)
	add(&name.Country, c.Subject.Country)
	add(&name.Province, c.Subject.Province)
	add(&name.Locality, c.Subject.Locality)
	t := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(serial),
		Subject:               name,
		Issuer:                name,
		NotBefore:             c.NotBefore.UTC(),
		NotAfter:              c.NotAfter.UTC(),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            *c.MaxPathLength,
		MaxPathLenZero:        *c.MaxPathLength == 0,
		SubjectKeyId:          ski[:],
		SignatureAlgorithm:    s.SignatureAlgorithm(),
	}
	return t, nil
}

// lintRoot builds the root certificate from the script's profile and lints
// it (package certsign: throwaway key, zlint, and a value that alone can be
// signed). On lint errors it returns the findings and a *certsign.LintError.
func lintRoot(s *script.Script, pub crypto.PublicKey, serial []byte) (*certsign.Linted, error) {
	tmpl, err := rootTemplate(s, pub, serial)
	if err != nil {
		return nil, err
	}
	return certsign.LintCertificate(tmpl, nil, pub, certsign.Options{})
}

func lintStep() *step {
	return &step{
		id: "lint-certificate", title: "Root certificate linted",
		do:      "Read the certificate's contents and the lint results.",
		check:   "The certificate built from the script's profile, with a serial from the token's RNG, has no zlint error; it is signed here only by a throwaway software key.",
		record:  "Serial, SHA-256 of the to-be-signed bytes, zlint errors, warnings and notices.",
		confirm: admins, run: runLint, restore: restoreLint,
	}
}

func runLint(ctx context.Context, r *stepRun) error {
	e := r.e
	if err := e.loginAs(ctx, "user", "lint the certificate"); err != nil {
		return err
	}
	tok, _ := e.token()
	k, err := e.rootKey()
	if err != nil {
		return err
	}
	serial, err := tok.Random(16)
	if err != nil {
		return err
	}
	// Positive and a full 16 bytes: 126 bits from the token's RNG.
	serial[0] = serial[0]&0x7f | 0x40
	l, lerr := lintRoot(e.s, k.Public(), serial)
	if l != nil {
		r.detail("lint errors", strings.Join(l.Results.Errors, "; "))
		r.detail("lint warnings", strings.Join(l.Results.Warnings, "; "))
		r.detail("lint notices", strings.Join(l.Results.Notices, "; "))
	}
	if lerr != nil {
		return fmt.Errorf("the certificate profile fails linting; fix the script and start a new ceremony: %w", lerr)
	}
	tbs := sha256.Sum256(l.TBS())
	e.serial, e.lintTBSHash = serial, hex.EncodeToString(tbs[:])
	r.detail("serial", hex.EncodeToString(serial))
	r.detail("tbs sha256", e.lintTBSHash)
	t := l.Preview
	facts := []Fact{
		{Label: "Subject", Value: t.Subject.String()},
		{Label: "Validity (UTC)", Value: t.NotBefore.Format("2006-01-02 15:04:05") + " to " + t.NotAfter.Format("2006-01-02 15:04:05")},
		{Label: "Serial", Value: hex.EncodeToString(serial)},
		{Label: "Key usage", Value: "keyCertSign, cRLSign (critical)"},
		{Label: "Basic constraints", Value: pathLen(t)},
		{Label: "Signature algorithm", Value: t.SignatureAlgorithm.String()},
		{Label: "Subject key ID", Value: hex.EncodeToString(t.SubjectKeyId)},
		{Label: "zlint", Value: fmt.Sprintf("no errors, %d warnings, %d notices", len(l.Results.Warnings), len(l.Results.Notices))},
	}
	for _, w := range l.Results.Warnings {
		facts = append(facts, Fact{Label: "Warning", Value: w})
	}
	return r.confirmStep(ctx, "The certificate contents are what the reviewed script specifies.", facts)
}

func pathLen(t *x509.Certificate) string {
	if t.MaxPathLen < 0 {
		return "CA, no path length limit"
	}
	return fmt.Sprintf("CA, path length %d", t.MaxPathLen)
}

func restoreLint(ctx context.Context, e *Engine, en transcript.Entry) error {
	s, err := hex.DecodeString(en.Detail("serial"))
	if err != nil || len(s) == 0 {
		return fmt.Errorf("lint entry %d has no serial", en.Seq)
	}
	e.serial, e.lintTBSHash = s, en.Detail("tbs sha256")
	return nil
}

func signStep() *step {
	return &step{
		id: "sign-certificate", title: "Root certificate signed",
		do:      "Nothing: the token signs the linted certificate; read the certificate fingerprint aloud.",
		check:   "The to-be-signed bytes are those linted (same SHA-256); the signature verifies with the root public key.",
		record:  "Certificate (PEM and DER), fingerprints file, certificate SHA-256 with PGP words.",
		confirm: admins, outputs: []string{"cert.pem", "cert.der", "fingerprints.txt"},
		run: runSign, restore: restoreSign,
	}
}

func runSign(ctx context.Context, r *stepRun) error {
	e := r.e
	if err := e.loginAs(ctx, "user", "sign the certificate"); err != nil {
		return err
	}
	k, err := e.rootKey()
	if err != nil {
		return err
	}
	// Lint again: the linted bytes must be in memory to compare, and a
	// resumed ceremony rebuilds them from the recorded serial.
	l, err := lintRoot(e.s, k.Public(), e.serial)
	if err != nil {
		return err
	}
	if tbs := sha256.Sum256(l.TBS()); hex.EncodeToString(tbs[:]) != e.lintTBSHash {
		return fmt.Errorf("the certificate rebuilt for signing (TBS SHA-256 %x) is not the one linted and confirmed (%s)", tbs, e.lintTBSHash)
	}
	signer, err := k.Signer()
	if err != nil {
		return err
	}
	der, cert, err := l.Sign(signer)
	if err != nil {
		return err
	}
	e.cert = cert
	fp := sha256.Sum256(der)
	spki := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	if _, err := r.output("cert.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); err != nil {
		return err
	}
	if _, err := r.output("cert.der", der); err != nil {
		return err
	}
	var fps strings.Builder
	if e.opt.Rehearse {
		fps.WriteString("REHEARSAL - throwaway SoftHSM token - not for production\n")
	}
	fmt.Fprintf(&fps, "Root certificate of %s\nSubject: %s\nSerial: %s\n", e.s.Title, cert.Subject, hex.EncodeToString(e.serial))
	fmt.Fprintf(&fps, "Certificate SHA-256: %s\nCertificate words: %s\n", hex.EncodeToString(fp[:]), words.String(fp[:]))
	fmt.Fprintf(&fps, "Public key (SPKI) SHA-256: %s\nPublic key words: %s\n", hex.EncodeToString(spki[:]), words.String(spki[:]))
	if _, err := r.output("fingerprints.txt", []byte(fps.String())); err != nil {
		return err
	}
	e.fingerprints = append(e.fingerprints, paper.Fingerprint{Label: "Root certificate", SHA256: fp[:]})
	r.detail("tbs sha256", e.lintTBSHash)
	r.detail("signature", "verified with the root public key")
	r.detail("certificate sha256", hex.EncodeToString(fp[:]))
	r.detail("certificate words", words.String(fp[:]))
	return r.confirmStep(ctx, "The certificate fingerprint was read aloud.", []Fact{
		{Label: "Certificate SHA-256", Value: hex.EncodeToString(fp[:]), Words: words.String(fp[:])},
	})
}

func restoreSign(ctx context.Context, e *Engine, en transcript.Entry) error {
	der, err := os.ReadFile(filepath.Join(e.outDir, e.name("cert.der")))
	if err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	e.cert = cert
	fp := sha256.Sum256(der)
	e.fingerprints = append(e.fingerprints, paper.Fingerprint{Label: "Root certificate", SHA256: fp[:]})
	return nil
}
