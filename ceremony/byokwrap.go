package ceremony

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/kmsimport"
	"github.com/keyceremony/keyceremony/ceremony/outfile"
	"github.com/keyceremony/keyceremony/ceremony/paper"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/ceremony/words"
	"github.com/keyceremony/keyceremony/hsm"
)

// byokState is what a byok-wrap ceremony works with, rebuilt from the inputs
// and the transcript on resume.
type byokState struct {
	params   *kmsimport.Parameters
	req      kmsimport.Request
	info     kmsimport.SpecInfo
	key      keyRef         // the key whose material is wrapped
	plan     []hsm.WrapStep // as confirmed before wrapping
	manifest *kmsimport.Manifest
}

// byokFiles are the outputs whose names the aws kms import-key-material
// command line refers to.
var byokFiles = []string{kmsimport.EncryptedKeyMaterialFile, kmsimport.ImportTokenFile, kmsimport.ManifestFile, kmsimport.InstructionsFile}

func byokKeyStep(s *script.Script) *step {
	st := &step{
		id: "byok-key", title: "Key material ready in the token",
		check:   "The key is of the type the KMS key spec needs, sensitive, and extractable (only wrapped) for this export.",
		record:  "The key's label, ID, type and attributes; its public key fingerprint, or for a secret key its key check value.",
		confirm: admins, usesSecret: true,
		run: runBYOKKey, restore: restoreBYOKKey,
	}
	if s.BYOK.Key.Source == script.KeyGenerate {
		st.do = fmt.Sprintf("Nothing: the token generates the key %q for this import.", s.BYOK.Key.Label)
	} else {
		st.do = fmt.Sprintf("Nothing: the engine finds the key %s.", s.BYOK.Key.URI)
	}
	return st
}

func runBYOKKey(ctx context.Context, r *stepRun) error {
	e := r.e
	b, st := e.s.BYOK, e.byok
	if err := e.loginAs(ctx, "user", "prepare the key material"); err != nil {
		return err
	}
	tok, _ := e.token()
	var k *hsm.Key
	var err error
	if b.Key.Source == script.KeyGenerate {
		label := b.Key.Label
		// GenerateKey refuses labels in use, so a key with this label the
		// transcript does not record was left by an interrupted attempt (or is
		// one this script must not reuse); it was never wrapped.
		if err := r.destroyUnrecorded(ctx, tok, label, fmt.Sprintf("A key labelled %q exists on the token but the transcript does not record its generation (an interrupted attempt, or a key this script must not reuse). Destroy it and generate a new one.", label)); err != nil {
			return err
		}
		// Escrow use only: the material is for AWS; in the token it does
		// nothing but give its check value and be wrapped.
		k, err = tok.GenerateKey(ctx, hsm.KeySpec{Type: st.info.TokenType, Label: label, Extractable: true, WrapWithTrusted: true, Usage: hsm.UseEscrow})
		if err != nil {
			return err
		}
		r.detail("source", "generated in the token for this import")
		r.detail("wrap with trusted only", "true: only keys the security officer made trusted can wrap it")
		if _, err := recordKeyAttributes(ctx, r, k); err != nil {
			return err
		}
	} else {
		u, err := hsm.ParseURI(b.Key.URI)
		if err != nil {
			return err
		}
		f := u.KeyFilter()
		if f.Class == hsm.ClassAny {
			f.Class = hsm.ClassPrivateKey
			if !st.info.Private {
				f.Class = hsm.ClassSecretKey
			}
		}
		if k, err = tok.FindKey(f); err != nil {
			return err
		}
		if k.Type() != st.info.TokenType {
			return fmt.Errorf("the KMS key is %s, which needs a %s key, but %s is %s: name another key or fetch parameters for a KMS key of the matching spec", st.info.Spec, st.info.TokenType, b.Key.URI, k.Type())
		}
		if !k.Extractable() {
			return fmt.Errorf("the token key %s was created non-extractable, so its material can never leave the token: use source: generate", b.Key.URI)
		}
		r.detail("source", "existing token key "+b.Key.URI)
	}
	if !k.Sensitive() || !k.Extractable() {
		return fmt.Errorf("key %q has sensitive=%v extractable=%v; it must be sensitive and extractable only wrapped", k.Label(), k.Sensitive(), k.Extractable())
	}
	st.key = refOf(k)
	r.detail("key label", k.Label())
	r.detail("key id", hex.EncodeToString(k.ID()))
	r.detail("key", k.String())
	r.detail("sensitive", "true")
	r.detail("extractable", "true (wrapped only)")
	facts := []Fact{{Label: "Key", Value: k.String()}}
	if fp := k.Fingerprint(); fp != nil {
		r.detail("public key sha256", hex.EncodeToString(fp))
		r.detail("public key words", words.String(fp))
		facts = append(facts, Fact{Label: "Public key SHA-256", Value: hex.EncodeToString(fp), Words: words.String(fp)})
	} else if kcv, how, err := keyCheckValue(k); err == nil {
		r.detail("key check value", hex.EncodeToString(kcv)+" ("+how+")")
		facts = append(facts, Fact{Label: "Key check value", Value: hex.EncodeToString(kcv) + " (" + how + ")"})
	}
	if err := st.key.record(r); err != nil {
		return err
	}
	return r.confirmStep(ctx, "This is the key whose material goes to AWS KMS.", facts)
}

// keyCheckValue identifies a secret key without revealing it: the first three
// bytes of its output on a zero block, as key ceremonies customarily record.
func keyCheckValue(k *hsm.Key) ([]byte, string, error) {
	zero := make([]byte, 16)
	switch k.Type() {
	case hsm.AES128, hsm.AES256:
		out, err := k.EncryptBlock(zero)
		if err != nil {
			return nil, "", err
		}
		return out[:3], "AES-ECB of a zero block, first 3 bytes", nil
	case hsm.HMACSHA224, hsm.HMACSHA256, hsm.HMACSHA384, hsm.HMACSHA512:
		out, err := k.MAC(zero)
		if err != nil {
			return nil, "", err
		}
		return out[:3], "HMAC of 16 zero bytes, first 3 bytes", nil
	}
	return nil, "", fmt.Errorf("no check value for %s", k.Type())
}

func restoreBYOKKey(ctx context.Context, e *Engine, en transcript.Entry) error {
	return e.byok.key.restore(en)
}

// byokKey finds the key of this ceremony on the logged-in token.
func (e *Engine) byokKey() (*hsm.Key, error) {
	class := hsm.ClassSecretKey
	if e.byok.info.Private {
		class = hsm.ClassPrivateKey
	}
	return e.findKey(e.byok.key, class)
}

func planLine(s hsm.WrapStep) string {
	where := "in the token"
	if !s.InToken {
		where = "IN HOST MEMORY"
	}
	return fmt.Sprintf("%s (%s), %s", s.Action, s.Mechanism, where)
}

func wrapPlanStep() *step {
	return &step{
		id: "wrap-plan", title: "Wrapping plan confirmed",
		do: "The user logs in with the quorum-derived PIN. Read how the token will wrap the material. Where the token lacks the mechanism, the same algorithm is composed from " +
			"what it has, and the steps that would run in the laptop's memory are marked; confirm only if that is acceptable.",
		check:   "The algorithm is never downgraded; a composition with host steps is refused unless the script allows it (allow_host_steps).",
		record:  "Every step of the plan and whether it runs in the token or in host memory.",
		confirm: admins, usesSecret: true, run: runWrapPlan,
		restore: func(ctx context.Context, e *Engine, en transcript.Entry) error {
			var st wrapPlan
			if err := loadState(en, &st, st.fromDetails); err != nil {
				return err
			}
			e.byok.plan = st.Plan
			return nil
		},
	}
}

// wrapPlan is the wrap-plan step's resume state: the plan as confirmed, which
// the wrap step must run exactly.
type wrapPlan struct {
	Plan []hsm.WrapStep `json:"plan"`
}

func runWrapPlan(ctx context.Context, r *stepRun) error {
	e := r.e
	st := e.byok
	if err := e.loginAs(ctx, "user", "plan the wrap"); err != nil {
		return err
	}
	tok, _ := e.token()
	plan, err := kmsimport.Plan(tok, st.req.Algorithm, st.req.Spec, st.params.WrappingKeySpec())
	if err != nil {
		return &CannotRunError{Token: tok.Label(), Lines: []CapabilityLine{{Step: "wrap-plan", Operation: "wrap the key material", Where: Cannot, Detail: err.Error()}}}
	}
	var host []string
	facts := []Fact{{Label: "Algorithm", Value: fmt.Sprintf("%s (%s)", st.req.Algorithm, st.req.Algorithm.Mechanism())}}
	for i, s := range plan {
		r.detail(fmt.Sprintf("plan step %d", i+1), planLine(s))
		facts = append(facts, Fact{Label: fmt.Sprintf("Step %d", i+1), Value: planLine(s)})
		if !s.InToken {
			host = append(host, s.Action)
		}
	}
	if len(host) > 0 && !e.s.BYOK.AllowHostSteps {
		return fmt.Errorf("this token cannot do %s for %s material entirely inside it: %s would run in host memory, which the script does not allow (allow_host_steps: false). "+
			"Use a token that does the algorithm in hardware (see ceremony/README.md), or review and set allow_host_steps: true", st.req.Algorithm, st.req.Spec, strings.Join(host, "; "))
	}
	statement := "The whole wrap runs inside the token."
	if len(host) > 0 {
		r.detail("host memory", "accepted: "+strings.Join(host, "; "))
		statement = "We accept that the steps marked IN HOST MEMORY run in this laptop's memory (the material or the ephemeral key is cleared right after)."
		if err := e.p.Inform(ctx, Notice{Step: r.st.id, Title: "Part of the wrap runs in host memory",
			Warning: fmt.Sprintf("This token does not do %s for %s material entirely in hardware; in this laptop's memory: %s.", st.req.Algorithm, st.req.Spec, strings.Join(host, "; "))}); err != nil {
			return err
		}
	} else {
		r.detail("host memory", "none: every step runs in the token")
	}
	if err := r.recordState(wrapPlan{Plan: plan}); err != nil {
		return err
	}
	st.plan = plan
	return r.confirmStep(ctx, statement, facts)
}

func wrapStep() *step {
	return &step{
		id: "wrap", title: "Key material wrapped for AWS KMS",
		do:           "Nothing: the security officer's derived PIN makes the wrapping keys trusted (the material may be wrapped by trusted keys only), then the token wraps the material as planned; read the fingerprint of EncryptedKeyMaterial.bin aloud.",
		check:        "The parameters are still valid; the wrap ran exactly as the confirmed plan; the files are new.",
		record:       "EncryptedKeyMaterial.bin, ImportToken.bin, import-manifest.json and IMPORT-INSTRUCTIONS.txt with their SHA-256; how the wrap ran; the import command.",
		confirm:      admins,
		fixedOutputs: byokFiles,
		usesSecret:   true, // the SO PIN, to make the wrapping keys trusted
		run:          runWrap,
		restore: func(ctx context.Context, e *Engine, en transcript.Entry) error {
			raw, err := os.ReadFile(filepath.Join(e.outDir, kmsimport.ManifestFile))
			if err != nil {
				return err
			}
			var m kmsimport.Manifest
			if err := json.Unmarshal(raw, &m); err != nil {
				return err
			}
			e.byok.manifest = &m
			if fp, err := hex.DecodeString(m.Files[kmsimport.EncryptedKeyMaterialFile]); err == nil {
				e.fingerprints = append(e.fingerprints, paper.Fingerprint{Label: kmsimport.EncryptedKeyMaterialFile, SHA256: fp})
			}
			return nil
		},
	}
}

func sameSteps(a, b []hsm.WrapStep) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func runWrap(ctx context.Context, r *stepRun) error {
	e := r.e
	st := e.byok
	tok, err := e.token()
	if err != nil {
		return err
	}
	if plan, err := kmsimport.Plan(tok, st.req.Algorithm, st.req.Spec, st.params.WrappingKeySpec()); err != nil || !sameSteps(plan, st.plan) {
		return errors.New("the token would now wrap differently from the plan confirmed (another token or module?); nothing was wrapped")
	}
	// The escrow copy may be wrapped by trusted keys only
	// (CKA_WRAP_WITH_TRUSTED), so the security officer, with the PIN derived
	// from the quorum, makes the wrapping keys trusted first.
	if err := e.loginAs(ctx, "so", "make the wrapping keys trusted"); err != nil {
		return err
	}
	trusted, err := tok.PrepareTrustedWrap(ctx, st.params.PublicKeyDER, st.req.Algorithm.Mechanism(), st.info.TokenType)
	if err != nil {
		return err
	}
	defer trusted.Destroy()
	r.detail("wrapping keys", "made trusted (CKA_TRUSTED) by the security officer: the wrapping public key"+map[bool]string{true: " and the ephemeral AES-256 key", false: ""}[trusted.Ephemeral != nil])
	if err := e.loginAs(ctx, "user", "wrap the key material"); err != nil {
		return err
	}
	k, err := e.byokKey()
	if err != nil {
		return err
	}
	res, err := kmsimport.Wrap(ctx, tok, k, st.req, hsm.WrapOptions{AllowHostSteps: e.s.BYOK.AllowHostSteps, Trusted: trusted}, time.Now())
	if err != nil {
		return err
	}
	if !sameSteps(res.Wrapped.Steps, st.plan) {
		return errors.New("the wrap ran differently from the plan confirmed; nothing was written")
	}
	paths, err := kmsimport.WriteOutputs(e.outDir, res, st.params.ImportToken)
	for _, p := range paths {
		if rerr := r.recordOutput(p); rerr != nil && err == nil {
			err = rerr
		}
	}
	if err != nil {
		return err
	}
	if err := outfile.SyncDir(e.outDir); err != nil {
		return err
	}
	m := res.Manifest
	st.manifest = &m
	ekm, _ := hex.DecodeString(m.Files[kmsimport.EncryptedKeyMaterialFile])
	itk, _ := hex.DecodeString(m.Files[kmsimport.ImportTokenFile])
	e.fingerprints = append(e.fingerprints, paper.Fingerprint{Label: kmsimport.EncryptedKeyMaterialFile, SHA256: ekm})
	for i, s := range res.Wrapped.Steps {
		r.detail(fmt.Sprintf("ran step %d", i+1), planLine(s))
	}
	inHost := "no"
	if res.Wrapped.MaterialInHost() {
		inHost = "yes, for the steps marked IN HOST MEMORY (cleared after use)"
	}
	r.detail("composed from other mechanisms", fmt.Sprint(res.Wrapped.Composed))
	r.detail("material or ephemeral key in host memory", inHost)
	r.detail("encrypted key material sha256", m.Files[kmsimport.EncryptedKeyMaterialFile])
	r.detail("encrypted key material words", words.String(ekm))
	r.detail("import token sha256", m.Files[kmsimport.ImportTokenFile])
	r.detail("import command", m.Command)
	return r.confirmStep(ctx, "The files for AWS KMS are written, and the fingerprint of EncryptedKeyMaterial.bin was read aloud.", []Fact{
		{Label: kmsimport.EncryptedKeyMaterialFile + " SHA-256", Value: m.Files[kmsimport.EncryptedKeyMaterialFile], Words: words.String(ekm)},
		{Label: kmsimport.ImportTokenFile + " SHA-256", Value: m.Files[kmsimport.ImportTokenFile], Words: words.String(itk)},
		{Label: "Ran in host memory", Value: inHost},
	})
}

func tokenCopyStep(s *script.Script) *step {
	st := &step{id: "token-copy", confirm: admins, run: runTokenCopy}
	if *s.BYOK.KeepInToken {
		st.title = "Token copy kept as escrow"
		st.do = "Nothing: the script keeps the token's copy of the material as the customer's own escrow copy."
		st.check = "The key is still on the token."
		st.record = "That the token keeps the key, with its label and ID."
	} else {
		st.title = "Token copy destroyed"
		st.do = "Confirm, then the token's copy of the material is destroyed."
		st.check = "After destruction no key with the label and ID is left on the token."
		st.record = "The destroyed key's label and ID, and the check that it is gone."
	}
	return st
}

func runTokenCopy(ctx context.Context, r *stepRun) error {
	e := r.e
	st := e.byok
	if err := e.loginAs(ctx, "user", "dispose of the token's copy"); err != nil {
		return err
	}
	tok, _ := e.token()
	filter := st.key.filter(hsm.ClassAny)
	k, err := e.byokKey()
	if *e.s.BYOK.KeepInToken {
		if err != nil {
			return fmt.Errorf("the key kept as escrow copy is not on the token: %w", err)
		}
		// It stays extractable on purpose: imported material expires or can be
		// deleted, and the same material must then be wrapped again
		// (EXISTING_KEY_MATERIAL). The quorum guards the token instead.
		r.detail("kept in token", k.String())
		return r.confirmStep(ctx, "The token keeps its copy of the material as our escrow copy; the token stays under the quorum's control.", []Fact{{Label: "Kept", Value: k.String()}})
	}
	if errors.Is(err, hsm.ErrKeyNotFound) {
		// An interrupted attempt of this step destroyed it before recording.
		r.detail("destroyed", fmt.Sprintf("label %q id %s was already gone (destroyed by the interrupted attempt of this step)", st.key.Label, hex.EncodeToString(st.key.ID)))
	} else if err != nil {
		return err
	} else {
		if err := r.confirmStep(ctx, "Destroy the token's copy of the material: after this only AWS KMS holds it. This cannot be undone.", []Fact{{Label: "Key to destroy", Value: k.String()}}); err != nil {
			return err
		}
		if err := tok.DestroyKey(k); err != nil {
			return err
		}
		r.detail("destroyed", k.String())
	}
	if left, err := tok.FindKeys(filter); err != nil {
		return err
	} else if len(left) > 0 {
		return fmt.Errorf("after destruction %d objects labelled %q with ID %x are still on the token", len(left), st.key.Label, []byte(st.key.ID))
	}
	r.detail("check", "no object with this label and ID is left on the token")
	return nil
}

func handoverStep() *step {
	return &step{
		id: "handover", title: "Import handed over to the connected machine",
		do: "Read the instructions for the connected machine: which files to carry, what to check and run there, and by when " +
			"(the import parameters expire 24 hours after AWS issued them).",
		check:   "The instructions name the files with their SHA-256 and the exact import command.",
		record:  "The deadline, the files to carry and the command.",
		confirm: admins, run: runHandover,
	}
}

func runHandover(ctx context.Context, r *stepRun) error {
	e := r.e
	m := e.byok.manifest
	if m == nil {
		return errors.New("no manifest: the wrap step has not run")
	}
	left := time.Until(m.ParametersValidTo).Truncate(time.Minute)
	carry := strings.Join(byokFiles, ", ")
	deadline := m.ParametersValidTo.UTC().Format(time.RFC3339)
	facts := []Fact{
		{Label: "1. Carry", Value: fmt.Sprintf("%s from %s to the connected machine", carry, e.outDir)},
		{Label: "   Deadline", Value: fmt.Sprintf("%s (in %s); after that fetch new parameters and repeat this ceremony", deadline, left)},
		{Label: "2. Check", Value: fmt.Sprintf("sha256sum %s shows %s", kmsimport.EncryptedKeyMaterialFile, m.Files[kmsimport.EncryptedKeyMaterialFile])},
		{Label: "   Check", Value: fmt.Sprintf("sha256sum %s shows %s", kmsimport.ImportTokenFile, m.Files[kmsimport.ImportTokenFile])},
		{Label: "3. Run there", Value: m.Command},
		{Label: "4. Confirm", Value: "aws kms describe-key --key-id " + m.KeyID + " shows KeyState Enabled"},
	}
	if m.Import.ImportType == kmsimport.ImportTypeNew {
		facts = append(facts, Fact{Label: "5. Rotate", Value: "aws kms rotate-key-on-demand --key-id " + m.KeyID})
	}
	facts = append(facts, Fact{Label: "The same, printable", Value: filepath.Join(e.outDir, kmsimport.InstructionsFile)})
	r.detail("import deadline", deadline)
	r.detail("files to carry", carry+" (from "+e.outDir+")")
	r.detail("import command", m.Command)
	if err := e.p.Inform(ctx, Notice{Step: r.st.id, Title: "On the connected machine", Facts: facts,
		Warning: fmt.Sprintf("Import before %s (in %s): the import token expires 24 hours after AWS issued it.", deadline, left)}); err != nil {
		return err
	}
	return r.confirm(ctx, "The administrator takes the output directory to the connected machine and runs the import as instructed before the deadline.",
		[]Fact{{Label: "Files to carry", Value: carry}, {Label: "Deadline", Value: deadline}}, e.people(r.st.confirm...))
}
