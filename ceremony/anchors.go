package ceremony

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/keyceremony/keyceremony/ceremony/quorum"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/ceremony/words"
	"github.com/keyceremony/keyceremony/hsm"
)

// The transcript's anchors (see the transcript package): the ceremony key
// signs the chain head once the key exists (step anchor) and the closing
// entry's hash (step seal); the quorum's MAC covers every entry from the
// first unlock on; the final hash goes on the signed paper. A byok-wrap
// ceremony has no key of its own to sign with: the material's key must not
// sign anything, and the token need not hold a root key, so its transcript
// is anchored by the quorum's MAC and the paper alone.

const (
	stepAnchor = "anchor"
	stepSeal   = "seal"
)

// signsTranscript reports whether the kind has a key that signs its transcript.
func signsTranscript(k script.Kind) bool { return k != script.BYOKWrap }

func anchorStep() *step {
	return &step{
		id: stepAnchor, title: "Transcript anchored by the root key",
		do:     "Nothing: the token signs the hash of the transcript so far with the root key.",
		check:  "The signature verifies with the root key's public key; it signs a message no certificate or CRL can be (see ceremony/README.md).",
		record: "The signature over the previous entry's hash, with the key and algorithm: anyone holding the root certificate checks it offline.",
		run:    func(ctx context.Context, r *stepRun) error { return runAnchor(ctx, r, "the transcript so far") },
	}
}

func sealStep() *step {
	return &step{
		id: stepSeal, title: "Transcript sealed by the root key",
		do:     "Nothing: the token signs the closing entry's hash with the root key. The hash of this entry is the final hash written on the signed paper.",
		check:  "The signature verifies with the root key's public key.",
		record: "The signature over the closing entry's hash, with the key and algorithm.",
		run:    func(ctx context.Context, r *stepRun) error { return runAnchor(ctx, r, "the closing entry") },
	}
}

// anchorKey is the key that signs the transcript: the root key, generated,
// restored, found for signing or for a backup.
func (e *Engine) anchorKey() (*hsm.Key, error) {
	switch e.s.Kind {
	case script.CASigning, script.CRLIssuance:
		return e.issuerKey()
	case script.KeyBackup:
		return e.findKey(keyRef{Label: e.s.Backup.KeyLabel}, hsm.ClassPrivateKey)
	}
	return e.rootKey()
}

func runAnchor(ctx context.Context, r *stepRun, what string) error {
	e := r.e
	// Log in first: a resumed ceremony may record an unlock, which moves
	// the chain head.
	if err := e.loginAs(ctx, "user", "sign the transcript"); err != nil {
		return err
	}
	k, err := e.anchorKey()
	if err != nil {
		return err
	}
	head := e.tw.Last().Hash
	digest, h, alg, err := transcript.AnchorDigest(k.Public(), head)
	if err != nil {
		return err
	}
	signer, err := k.Signer()
	if err != nil {
		return err
	}
	sig, err := signer.Sign(nil, digest, h)
	if err != nil {
		return fmt.Errorf("the token did not sign the transcript: %w", err)
	}
	anchor, err := transcript.NewSignature(k.Public(), alg, sig)
	if err != nil {
		return err
	}
	r.entry.Signature = anchor
	fp := k.Fingerprint()
	r.detail("signed", fmt.Sprintf("%s: the hash of entry %d, %s", what, e.tw.Last().Seq, head))
	r.detail("key", k.String())
	r.detail("key public key sha256", hex.EncodeToString(fp))
	r.detail("algorithm", alg)
	return e.p.Inform(ctx, Notice{Step: r.st.id, Title: r.st.title, Facts: []Fact{
		{Label: "Signed hash", Value: head, Words: words.String(mustHex(head))},
		{Label: "Signed by", Value: k.String()},
	}})
}

func mustHex(s string) []byte {
	b, _ := hex.DecodeString(s)
	return b
}

// anchorPlan is what the first entry promises about the anchors.
func (e *Engine) anchorPlan() (transcript.Detail, error) {
	p := transcript.Plan{MACFrom: "unlock",
		Paper: "the final hash, read aloud at the end and written on the signed transcript: keyceremony ceremony verify TRANSCRIPT --expect WORDS"}
	for _, st := range e.plan {
		p.Steps = append(p.Steps, st.id)
		if st.id == stepAnchor || st.id == stepSeal {
			p.Signed = append(p.Signed, st.id)
		}
	}
	if len(p.Signed) > 0 {
		p.Key = "the root key (its certificate's public key verifies every signature anchor)"
	} else {
		p.Key = "none: a " + string(e.s.Kind) + " ceremony has no key of its own that may sign; the quorum's MAC and the paper anchor its transcript"
	}
	return p.Detail()
}

// startMAC makes every entry from now on carry the quorum's MAC.
func (e *Engine) startMAC() error {
	if e.tw == nil || e.secret == nil {
		return nil
	}
	key, err := e.secret.Derive(quorum.TranscriptMAC, 32)
	if err != nil {
		return err
	}
	defer clear(key)
	e.tw.SetMACKey(key)
	return nil
}

// checkMACs checks, with the quorum just unlocked, every MAC the transcript
// carries; then the transcript is extended under the same key.
func (e *Engine) checkMACs() error {
	key, err := e.secret.Derive(quorum.TranscriptMAC, 32)
	if err != nil {
		return err
	}
	defer clear(key)
	if err := transcript.CheckMACs(e.tw.Entries(), key); err != nil {
		return &TranscriptError{Path: e.TranscriptPath(), Err: err}
	}
	e.tw.SetMACKey(key)
	return nil
}

// TranscriptError says a resumed ceremony's transcript does not verify
// (chain, a signature anchor, the quorum's MAC): it was changed after the
// engine wrote it, and the ceremony does not resume from it.
type TranscriptError struct {
	Path string
	Err  error
}

func (t *TranscriptError) Error() string {
	return fmt.Sprintf("the transcript %s does not verify, so the ceremony will not resume from it (nothing was done on the token): %v. "+
		"Keep the output medium as evidence and have the auditor compare it with the printed records", t.Path, t.Err)
}

func (t *TranscriptError) Unwrap() error { return t.Err }

// hashOf is the hex SHA-256 of b.
func hashOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

var errNoRecord = errors.New("no quorum record: the step that creates or reads it has not run")

// recordBegin records, in the first entry, what this engine adds to the
// preflight's record: the anchor plan.
func (e *Engine) recordBegin(r *stepRun) error {
	d, err := e.anchorPlan()
	if err != nil {
		return err
	}
	r.entry.Details = append(r.entry.Details, d)
	r.detail("core dumps", e.coreDumps)
	if u, ok := e.p.(unattended); ok && u.Unattended() {
		how := "the rehearsal's answers file: prompts were answered by a file, not by the people named"
		if !e.opt.Rehearse {
			how = "--unattended-test: prompts were answered by a file, not by the people named; an automated test, NOT a witnessed ceremony"
		}
		r.detail(UnattendedDetail, how)
	}
	return nil
}

// UnattendedDetail is the first entry's detail that says an answers file
// answered the prompts.
const UnattendedDetail = transcript.UnattendedDetail

// unattended is a Prompter that answers on behalf of people (Answers).
type unattended interface{ Unattended() bool }
