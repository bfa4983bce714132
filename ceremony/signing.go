package ceremony

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/certsign"
	"github.com/keyceremony/keyceremony/ceremony/paper"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/ceremony/words"
)

// The signing path. Everything the root key signs (its own certificate, a
// subordinate CA certificate, a cross-certificate, a CRL: the artefacts of
// artefacts.go) goes through the same two steps:
//
//   - lint-<artefact>: what the sign step must reuse is fixed (serial and
//     time, or CRL number and dates), the object is built and linted with a
//     throwaway key (certsign.Lint), the findings, notes and the SHA-256 of
//     the to-be-signed bytes are recorded, and people confirm what they see,
//     warnings included.
//   - sign-<artefact>: the object is rebuilt from what the lint step
//     recorded, linted again and compared with the confirmed hash
//     (certsign.Confirm), signed by the token, and written.

func lintStep(a *artefact) *step {
	return &step{
		id: "lint-" + a.id, title: a.title + " linted",
		do: a.lint.do, check: a.lint.check, record: a.lint.record,
		confirm: admins,
		run:     func(ctx context.Context, r *stepRun) error { return runLint(ctx, r, a) },
		restore: func(ctx context.Context, e *Engine, en transcript.Entry) error {
			rec := a.newRecord()
			if err := loadState(en, rec, rec.fromDetails); err != nil {
				return err
			}
			e.linted[a.id] = rec
			return nil
		},
	}
}

func runLint(ctx context.Context, r *stepRun, a *artefact) error {
	e := r.e
	if err := e.loginAs(ctx, "user", "lint the "+strings.ToLower(a.title)); err != nil {
		return err
	}
	k, err := a.key(e)
	if err != nil {
		return err
	}
	rec, err := a.fix(r)
	if err != nil {
		return err
	}
	tmpl, opt, notes, err := a.build(e, k, rec)
	if err != nil {
		return fmt.Errorf("nothing was signed: %w", err)
	}
	l, lerr := certsign.Lint(tmpl, opt)
	if l != nil {
		recordLint(r, l.Results)
	}
	for _, n := range notes {
		r.detail("note", n)
	}
	if lerr != nil {
		return startOver{fmt.Errorf("the %s fails linting and was not signed: %w", strings.ToLower(a.title), lerr)}
	}
	rec.setTBS(l.TBSSHA256())
	if err := rec.record(r); err != nil {
		return err
	}
	e.linted[a.id] = rec
	facts := a.facts(r, l, rec)
	for _, n := range notes {
		facts = append(facts, Fact{Label: "Note", Value: n})
	}
	facts = append(facts, lintFacts(l.Results)...)
	statement := fmt.Sprintf("The %s contents are what the reviewed script specifies.", a.label())
	if len(l.Results.Warnings) > 0 {
		statement += fmt.Sprintf(" The %d zlint warning(s) shown were read and are accepted.", len(l.Results.Warnings))
	}
	return r.confirmStep(ctx, statement, facts)
}

// signedState is a sign step's resume state: the SHA-256 of what the token
// signed, for the fingerprints printed on the transcript.
type signedState struct {
	SHA256 hexBytes `json:"sha256"`
}

func signStep(a *artefact) *step {
	return &step{
		id: "sign-" + a.id, title: a.title + " signed",
		do: a.sign.do, check: a.sign.check, record: a.sign.record,
		confirm: admins, outputs: a.outputs,
		run: func(ctx context.Context, r *stepRun) error { return runSign(ctx, r, a) },
		restore: func(ctx context.Context, e *Engine, en transcript.Entry) error {
			var st signedState
			if err := loadState(en, &st, func(en transcript.Entry) error { return st.fromDetails(en, a.noun()) }); err != nil {
				return err
			}
			e.fingerprints = append(e.fingerprints, paper.Fingerprint{Label: a.title, SHA256: st.SHA256})
			return nil
		},
	}
}

func runSign(ctx context.Context, r *stepRun, a *artefact) error {
	e := r.e
	rec := e.linted[a.id]
	if rec == nil {
		return fmt.Errorf("the %s was not linted", strings.ToLower(a.title))
	}
	if err := e.loginAs(ctx, "user", "sign the "+strings.ToLower(a.title)); err != nil {
		return err
	}
	if a.beforeSign != nil {
		if err := a.beforeSign(e, rec); err != nil {
			return err
		}
	}
	k, err := a.key(e)
	if err != nil {
		return err
	}
	// Rebuilt from what the lint step recorded (a resumed ceremony has only
	// the transcript), linted again and compared with the confirmed hash.
	tmpl, opt, _, err := a.build(e, k, rec)
	if err != nil {
		return err
	}
	c, err := certsign.Confirm(tmpl, opt, rec.tbs())
	if err != nil {
		return err
	}
	signer, err := k.Signer()
	if err != nil {
		return err
	}
	signed, err := c.Sign(signer)
	if err != nil {
		return err
	}
	fp := sha256.Sum256(signed.DER)
	facts := []Fact{{Label: a.fingerprintFact, Value: hex.EncodeToString(fp[:]), Words: words.String(fp[:])}}
	more, err := a.write(r, rec, signed)
	if err != nil {
		return err
	}
	facts = append(facts, more...)
	e.fingerprints = append(e.fingerprints, paper.Fingerprint{Label: a.title, SHA256: fp[:]})
	r.detail("tbs sha256", rec.tbs())
	r.detail("signature", "made by the token, verified with "+a.verifiedWith)
	r.detail(a.noun()+" sha256", hex.EncodeToString(fp[:]))
	r.detail(a.noun()+" words", words.String(fp[:]))
	if err := r.recordState(signedState{SHA256: fp[:]}); err != nil {
		return err
	}
	return r.confirmStep(ctx, fmt.Sprintf("The %s fingerprint was read aloud.", a.label()), facts)
}

// lintRecord is what a lint step fixed for its artefact and recorded; the
// sign step rebuilds the artefact from it. Its JSON form is the lint step's
// resume state.
type lintRecord interface {
	tbs() string
	setTBS(string)
	// record records the prose details and the resume state.
	record(r *stepRun) error
	// fromDetails reads the record from the prose details of an earlier version.
	fromDetails(en transcript.Entry) error
}

// certLint is what a certificate's lint step fixes.
type certLint struct {
	Serial    hexBytes  `json:"serial"`
	IssuedAt  time.Time `json:"issued_at"`
	TBSSHA256 string    `json:"tbs_sha256"`
}

func (c *certLint) tbs() string     { return c.TBSSHA256 }
func (c *certLint) setTBS(h string) { c.TBSSHA256 = h }
func (c *certLint) record(r *stepRun) error {
	r.detail("serial", hex.EncodeToString(c.Serial))
	r.detail("issued at", c.IssuedAt.Format(time.RFC3339))
	r.detail("tbs sha256", c.TBSSHA256)
	return r.recordState(c)
}

// crlLint is what a CRL's lint step fixes.
type crlLint struct {
	Number     bigInt    `json:"crl_number"`
	ThisUpdate time.Time `json:"this_update"`
	NextUpdate time.Time `json:"next_update"`
	TBSSHA256  string    `json:"tbs_sha256"`
}

func (c *crlLint) tbs() string     { return c.TBSSHA256 }
func (c *crlLint) setTBS(h string) { c.TBSSHA256 = h }
func (c *crlLint) record(r *stepRun) error {
	r.detail("crl number", c.Number.String())
	r.detail("this update", c.ThisUpdate.Format(time.RFC3339))
	r.detail("next update", c.NextUpdate.Format(time.RFC3339))
	r.detail("tbs sha256", c.TBSSHA256)
	return r.recordState(c)
}

func recordLint(r *stepRun, res certsign.Results) {
	r.detail("lint errors", strings.Join(res.Errors, "; "))
	r.detail("lint warnings", strings.Join(res.Warnings, "; "))
	r.detail("lint notices", strings.Join(res.Notices, "; "))
	if len(res.Ignored) > 0 {
		r.detail("lint ignored by the profile", strings.Join(res.Ignored, "; "))
	}
}

func lintFacts(res certsign.Results) []Fact {
	facts := []Fact{{Label: "zlint", Value: fmt.Sprintf("no errors, %d warnings, %d notices, %d ignored by the profile", len(res.Warnings), len(res.Notices), len(res.Ignored))}}
	for _, w := range res.Warnings {
		facts = append(facts, Fact{Label: "Warning", Value: w})
	}
	for _, w := range res.Ignored {
		facts = append(facts, Fact{Label: "Ignored", Value: w})
	}
	return facts
}
