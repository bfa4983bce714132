package ceremony

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/kmsimport"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/ceremony/words"
)

// The inputs step of a byok-wrap ceremony: the import parameters AWS KMS
// issued, checked against the rules of package kmsimport.

// parametersMaxAge: AWS import parameters expire 24 hours after they are
// issued; a ParametersValidTo further ahead is a mistake (a mistyped date, or
// the laptop's clock), allowing a few minutes of clock difference.
const parametersMaxAge = 24*time.Hour + 10*time.Minute

func byokInputsStep() *step {
	return &step{
		id: "inputs", title: "Import parameters checked",
		do: "Compare the SHA-256 of the import parameters with the one computed on the connected machine, and the wrapping public key's " +
			"fingerprint with the one shown there.",
		check: "The parameters are AWS's (KeyId, ImportToken, PublicKey, ParametersValidTo), unexpired, with at least an hour left; " +
			"the key spec, wrapping algorithm and wrapping key size are a combination AWS KMS accepts; the expiration and import type are allowed.",
		record:  "Path, size and SHA-256 of every input; the KMS key, key spec, algorithm, wrapping key size and fingerprint, expiry of the parameters, and the import choices.",
		confirm: admins, run: runBYOKInputs,
		restore: func(ctx context.Context, e *Engine, en transcript.Entry) error {
			if err := e.restoreInputs(en, func(bad func(string, error)) { e.byok = e.loadBYOKState(nil, time.Now(), false, bad) }); err != nil {
				return err
			}
			// The material's expiry was fixed when the inputs were checked.
			var st byokInputs
			if err := loadState(en, &st, st.fromDetails); err != nil {
				return err
			}
			if st.MaterialValidTo != nil {
				e.byok.req.Import.ValidTo = *st.MaterialValidTo
			}
			return nil
		},
	}
}

// byokInputs is the inputs step's resume state: the material's expiry, which
// valid_for_days turned into a date when the inputs were checked (null when
// the material does not expire).
type byokInputs struct {
	MaterialValidTo *time.Time `json:"material_valid_to"`
}

// bundleFields are the fields import-parameters.json (written by the
// connected side's prepare step) adds to the get-parameters-for-import JSON.
type bundleFields struct {
	KeySpec           string `json:"KeySpec"`
	WrappingAlgorithm string `json:"WrappingAlgorithm"`
	WrappingKeySpec   string `json:"WrappingKeySpec"`
}

func (e *Engine) loadBYOK(r *stepRun, now time.Time, bad func(path string, err error)) *byokState {
	return e.loadBYOKState(r, now, true, bad)
}

// loadBYOKState reads the import parameters and builds the request; full
// adds the checks that depend on the time (skipped when a resumed ceremony
// rebuilds its state).
func (e *Engine) loadBYOKState(r *stepRun, now time.Time, full bool, bad func(path string, err error)) *byokState {
	b := e.s.BYOK
	st := &byokState{}
	read := func(path string, in *script.Input) []byte { return e.readInput(r, path, *in, bad) }
	if b.Parameters != nil {
		if data := read("byok.parameters", b.Parameters); data != nil {
			p, err := kmsimport.ParseParametersJSON(data)
			if err != nil {
				bad("byok.parameters", fmt.Errorf("%s: %w", b.Parameters.Path, err))
			} else {
				st.params = p
				var extra bundleFields
				if json.Unmarshal(data, &extra) == nil {
					if extra.KeySpec != "" && extra.KeySpec != b.KeySpec {
						bad("byok.key_spec", fmt.Errorf("the parameters were prepared for a %s key, the script says %s: the script must name the KMS key's spec", extra.KeySpec, b.KeySpec))
					}
					if extra.WrappingAlgorithm != "" && extra.WrappingAlgorithm != b.WrappingAlgorithm {
						bad("byok.wrapping_algorithm", fmt.Errorf("the parameters were requested for %s, the script says %s: AWS accepts the material only wrapped with the algorithm the parameters were requested for; fetch new parameters or correct the script", extra.WrappingAlgorithm, b.WrappingAlgorithm))
					}
					if extra.WrappingKeySpec != "" && extra.WrappingKeySpec != string(p.WrappingKeySpec()) {
						bad("byok.parameters", fmt.Errorf("the parameters say wrapping key %s but the public key is %s: the file was altered", extra.WrappingKeySpec, p.WrappingKeySpec()))
					}
				}
			}
		}
	} else {
		pub := read("byok.public_key", b.PublicKey)
		tok := read("byok.import_token", b.ImportToken)
		if pub != nil && tok != nil {
			p, err := kmsimport.ParseParametersFiles(b.KeyID, pub, tok, b.ParametersValidTo.UTC())
			if err != nil {
				bad("byok", err)
			} else {
				st.params = p
			}
		}
	}
	info, err := kmsimport.Spec(kmsimport.KeySpec(b.KeySpec))
	if err != nil {
		bad("byok.key_spec", err)
		return st
	}
	st.info = info
	st.req = kmsimport.Request{
		Params: st.params, Spec: info.Spec, Algorithm: kmsimport.Algorithm(b.WrappingAlgorithm),
		Import: kmsimport.Import{ExpirationModel: b.Expiration.Model, ValidTo: b.Expiration.ValidToFrom(now), ImportType: b.ImportType},
	}
	if st.params == nil {
		return st
	}
	if full {
		for _, err := range st.req.Validate(now) {
			bad("byok", err)
		}
		if st.params.ParametersValidTo.After(now.Add(parametersMaxAge)) {
			bad("byok.parameters", fmt.Errorf("ParametersValidTo %s is more than 24 hours ahead, but AWS import parameters expire 24 hours after they are issued: check the value and the laptop's clock",
				st.params.ParametersValidTo.Format(time.RFC3339)))
		}
	} else if err := kmsimport.Check(st.req.Spec, st.req.Algorithm, st.params.WrappingKeySpec()); err != nil {
		bad("byok", err)
	}
	return st
}

func runBYOKInputs(ctx context.Context, r *stepRun) error {
	e := r.e
	now := time.Now()
	var ps problems
	e.loadInputs(r, ps.add)
	st := e.loadBYOK(r, now, ps.add)
	if err := ps.err(); err != nil {
		return fmt.Errorf("the import parameters cannot be used, nothing was wrapped: %w", err)
	}
	e.byok = st
	p, req := st.params, st.req
	wfp := sha256.Sum256(p.PublicKeyDER)
	left := p.ParametersValidTo.Sub(now).Truncate(time.Minute)
	r.detail("quorum set", e.record.SetID)
	r.detail("kms key", p.KeyID)
	r.detail("key spec", string(req.Spec))
	r.detail("wrapping algorithm", string(req.Algorithm))
	r.detail("wrapping key spec", string(p.WrappingKeySpec()))
	r.detail("wrapping public key sha256", hex.EncodeToString(wfp[:]))
	r.detail("wrapping public key words", words.String(wfp[:]))
	r.detail("parameters valid to", p.ParametersValidTo.UTC().Format(time.RFC3339))
	r.detail("expiration model", req.Import.ExpirationModel)
	var state byokInputs
	if !req.Import.ValidTo.IsZero() {
		r.detail("material valid to", req.Import.ValidTo.UTC().Format(time.RFC3339))
		t := req.Import.ValidTo.UTC()
		state.MaterialValidTo = &t
	}
	r.detail("import type", importTypeText(req.Import.ImportType))
	if err := r.recordState(state); err != nil {
		return err
	}
	facts := []Fact{}
	for _, f := range r.entry.Inputs {
		facts = append(facts, Fact{Label: f.Path, Value: fmt.Sprintf("SHA-256 %s (%d bytes)", f.SHA256, f.Size)})
	}
	facts = append(facts,
		Fact{Label: "KMS key", Value: p.KeyID},
		Fact{Label: "Key spec", Value: fmt.Sprintf("%s (%s)", req.Spec, st.info.Material)},
		Fact{Label: "Wrapping algorithm", Value: string(req.Algorithm)},
		Fact{Label: "Wrapping key", Value: string(p.WrappingKeySpec())},
		Fact{Label: "Wrapping public key SHA-256", Value: hex.EncodeToString(wfp[:]), Words: words.String(wfp[:])},
		Fact{Label: "Parameters expire", Value: fmt.Sprintf("%s (in %s): the import must run on the connected machine before then", p.ParametersValidTo.UTC().Format(time.RFC3339), left)},
		Fact{Label: "Material expiry", Value: materialExpiry(req.Import)},
		Fact{Label: "Import type", Value: importTypeText(req.Import.ImportType)},
	)
	return r.confirmStep(ctx, "These are the import parameters AWS issued for this KMS key, and the import choices are those reviewed.", facts)
}

func importTypeText(t string) string {
	switch t {
	case kmsimport.ImportTypeNew:
		return "NEW_KEY_MATERIAL (re-import for rotation; then aws kms rotate-key-on-demand)"
	case kmsimport.ImportTypeExisting:
		return "EXISTING_KEY_MATERIAL (re-import of the same material)"
	}
	return "first import (no --import-type)"
}

func materialExpiry(imp kmsimport.Import) string {
	if imp.ExpirationModel == kmsimport.KeyMaterialExpires {
		return "KEY_MATERIAL_EXPIRES at " + imp.ValidTo.UTC().Format(time.RFC3339)
	}
	return imp.ExpirationModel
}
