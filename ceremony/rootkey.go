package ceremony

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

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
	if err := r.destroyUnrecorded(ctx, tok, label, fmt.Sprintf("A key labelled %q exists on the token but the transcript does not record its generation (an interrupted attempt). Destroy it and generate a new one.", label)); err != nil {
		return err
	}
	k, err := tok.GenerateKey(ctx, hsm.KeySpec{Type: kt, Label: label, Extractable: e.s.Key.Backup, WrapWithTrusted: e.s.Key.Backup})
	var ce *hsm.CapabilityError
	if errors.As(err, &ce) {
		// Running the script again cannot help: the script must change
		// (amend.go), and nothing is left on the token (hsm destroyed it).
		p := &prober{e: e, caps: mustCaps(tok)}
		return &CannotRunError{Token: tok.Label(), Lines: []CapabilityLine{{Step: "generate-key", Operation: "generate the " + kt.String() + " key pair", Where: Cannot,
			Detail: err.Error() + "; change key.type " + p.alternatives()}}}
	}
	if err != nil {
		return err
	}
	if !k.Sensitive() || k.Extractable() != e.s.Key.Backup {
		return fmt.Errorf("the token created key %q with sensitive=%v extractable=%v, not what was asked", label, k.Sensitive(), k.Extractable())
	}
	unmet, err := recordKeyAttributes(ctx, r, k)
	if err != nil {
		return err
	}
	e.key = refOf(k)
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
	if err := r.recordState(generatedKey{Key: e.key, PublicKeySHA256: fp[:]}); err != nil {
		return err
	}
	facts := []Fact{
		{Label: "Key", Value: k.String()},
		{Label: "The token says it may", Value: strings.Join(k.Uses(), ", ")},
		{Label: "Public key SHA-256", Value: hex.EncodeToString(fp[:]), Words: words.String(fp[:])},
	}
	for _, c := range unmet {
		facts = append(facts, Fact{Label: "NOT HONOURED by the token", Value: c.String()})
	}
	return r.confirmStep(ctx, "The public key fingerprint was read aloud.", facts)
}

// recordKeyAttributes records every attribute the key was made with and what
// the token reports now, and names, in the transcript and on screen, the
// restrictions the token refused or ignored (tpm2-pkcs11 makes every key able
// to decrypt). It returns those.
func recordKeyAttributes(ctx context.Context, r *stepRun, k *hsm.Key) ([]hsm.AttributeCheck, error) {
	r.detail("key uses (read back)", strings.Join(k.Uses(), ", "))
	for _, c := range k.AttributeChecks() {
		r.detail("attribute", c.String())
	}
	unmet := k.Unmet()
	if len(unmet) == 0 {
		r.detail("attributes honoured", "every attribute reads back as asked")
		return nil, nil
	}
	var names []string
	for _, c := range unmet {
		names = append(names, c.Object+" "+c.Name+"="+fmt.Sprint(c.Want))
		r.detail("token did not honour", c.String())
	}
	tok := k.Token()
	warning := fmt.Sprintf("Token %q (%s %s) does not honour %s for this key: it can do more than the ceremony asked (%s). "+
		"This is recorded in the transcript; the quorum's PIN still guards the key.", tok.Label(), tok.Identity().Manufacturer, tok.Identity().Model,
		strings.Join(names, ", "), strings.Join(k.Uses(), ", "))
	return unmet, r.e.p.Inform(ctx, Notice{Step: r.st.id, Title: "The token ignores part of the key's protection", Warning: warning})
}

// generatedKey is the generate-key step's resume state.
type generatedKey struct {
	Key             keyRef   `json:"key"`
	PublicKeySHA256 hexBytes `json:"public_key_sha256"`
}

func restoreGenerateKey(ctx context.Context, e *Engine, en transcript.Entry) error {
	var st generatedKey
	if err := loadState(en, &st, st.fromDetails); err != nil {
		return err
	}
	e.key = st.Key
	e.fingerprints = append(e.fingerprints, paper.Fingerprint{Label: "Root public key (SPKI)", SHA256: st.PublicKeySHA256})
	return nil
}

// rootKey finds the root private key, generated or restored by this
// ceremony, on the (logged-in) token.
func (e *Engine) rootKey() (*hsm.Key, error) { return e.findKey(e.key, hsm.ClassPrivateKey) }
