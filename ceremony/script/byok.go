package script

import (
	"fmt"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/kmsimport"
	"github.com/keyceremony/keyceremony/hsm"
)

// BYOK describes a byok-wrap ceremony: key material in the token wrapped for
// import into an AWS KMS key.
type BYOK struct {
	// Parameters is the JSON printed by `aws kms get-parameters-for-import`
	// (KeyId, ImportToken, PublicKey, ParametersValidTo), or the
	// import-parameters.json written by the connected side's prepare step.
	Parameters *Input `yaml:"parameters"`
	// Or the parameters as separate files, as the console downloads them:
	// the wrapping public key (DER, PEM or base64) and the import token
	// (binary or base64), with the key ID and expiry copied from AWS.
	PublicKey         *Input    `yaml:"public_key"`
	ImportToken       *Input    `yaml:"import_token"`
	KeyID             string    `yaml:"key_id"`
	ParametersValidTo time.Time `yaml:"parameters_valid_to"`

	// KeySpec is the KMS key's spec (SYMMETRIC_DEFAULT, HMAC_256, RSA_3072,
	// ECC_NIST_P384, ...) and WrappingAlgorithm the algorithm the parameters
	// were requested for.
	KeySpec           string `yaml:"key_spec"`
	WrappingAlgorithm string `yaml:"wrapping_algorithm"`

	Key BYOKKey `yaml:"key"`
	// KeepInToken keeps the token's copy of the material (the customer's
	// own escrow copy); false destroys it after wrapping. Required.
	KeepInToken *bool `yaml:"keep_in_token"`
	// AllowHostSteps accepts a wrap composed from the token's mechanisms in
	// which a step runs in host memory (see the hsm package). Without it
	// such a wrap is refused.
	AllowHostSteps bool `yaml:"allow_host_steps"`

	Expiration Expiration `yaml:"expiration"`
	// ImportType is empty for a first import, NEW_KEY_MATERIAL (rotation by
	// re-import, symmetric keys only) or EXISTING_KEY_MATERIAL (re-import of
	// the same material).
	ImportType string `yaml:"import_type"`
}

// BYOKKey says where the material comes from.
type BYOKKey struct {
	// Source is "generate" (a new key in the token, made for this import) or
	// "existing" (a token key named by URI).
	Source string `yaml:"source"`
	// Label of the key to generate.
	Label string `yaml:"label"`
	// URI names the existing key (object=, id=, type=); the token is token.uri.
	URI string `yaml:"uri"`
}

// Expiration is the ImportKeyMaterial expiration choice.
type Expiration struct {
	// Model is KEY_MATERIAL_EXPIRES or KEY_MATERIAL_DOES_NOT_EXPIRE.
	Model string `yaml:"model"`
	// ValidTo, or ValidForDays counted from the ceremony, when the material expires.
	ValidTo      time.Time `yaml:"valid_to"`
	ValidForDays int       `yaml:"valid_for_days"`
}

// Sources of BYOK material.
const (
	KeyGenerate = "generate"
	KeyExisting = "existing"
)

func (s *Script) validateBYOK(b *BYOK, bad func(string, string, ...any)) {
	files := b.PublicKey != nil || b.ImportToken != nil || b.KeyID != "" || !b.ParametersValidTo.IsZero()
	switch {
	case b.Parameters != nil && files:
		bad("byok", "give either parameters (the JSON of get-parameters-for-import) or public_key, import_token, key_id and parameters_valid_to, not both")
	case b.Parameters != nil:
		validateInput(*b.Parameters, "byok.parameters", true, bad)
	case !files:
		bad("byok.parameters", "required: the JSON of `aws kms get-parameters-for-import` (or import-parameters.json from the connected side), or public_key, import_token, key_id and parameters_valid_to")
	default:
		if b.PublicKey == nil {
			bad("byok.public_key", "required with separate parameter files: the wrapping public key file")
		} else {
			validateInput(*b.PublicKey, "byok.public_key", true, bad)
		}
		if b.ImportToken == nil {
			bad("byok.import_token", "required with separate parameter files: the import token file")
		} else {
			validateInput(*b.ImportToken, "byok.import_token", true, bad)
		}
		if strings.TrimSpace(b.KeyID) == "" {
			bad("byok.key_id", "required with separate parameter files: the KMS key ID or ARN the parameters were issued for")
		}
		if b.ParametersValidTo.IsZero() {
			bad("byok.parameters_valid_to", "required with separate parameter files: ParametersValidTo as AWS printed it")
		}
	}

	specOK := false
	if b.KeySpec == "" {
		bad("byok.key_spec", "required: the KMS key spec (SYMMETRIC_DEFAULT, HMAC_224/256/384/512, RSA_2048/3072/4096, ECC_NIST_P256/P384/P521)")
	} else if _, err := kmsimport.Spec(kmsimport.KeySpec(b.KeySpec)); err != nil {
		bad("byok.key_spec", "%v", err)
	} else {
		specOK = true
	}
	if b.WrappingAlgorithm == "" {
		bad("byok.wrapping_algorithm", "required: RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256")
	} else if specOK {
		// The wrapping key's size is known only from the parameters; check
		// what does not depend on it (RSA material under OAEP, SM2, names).
		if err := kmsimport.Check(kmsimport.KeySpec(b.KeySpec), kmsimport.Algorithm(b.WrappingAlgorithm), kmsimport.WrappingRSA4096); err != nil {
			bad("byok.wrapping_algorithm", "%v", err)
		}
	}

	switch b.Key.Source {
	case KeyGenerate:
		if strings.TrimSpace(b.Key.Label) == "" || len(b.Key.Label) > 64 {
			bad("byok.key.label", "required when source is generate: the label of the new token key, at most 64 bytes")
		}
		if b.Key.URI != "" {
			bad("byok.key.uri", "only used when source is existing")
		}
	case KeyExisting:
		if b.Key.Label != "" {
			bad("byok.key.label", "only used when source is generate (name the existing key in uri)")
		}
		if b.Key.URI == "" {
			bad("byok.key.uri", "required when source is existing: a PKCS#11 URI naming the key, e.g. pkcs11:object=kms-key-2026;type=secret-key")
		} else if u, err := hsm.ParseURI(b.Key.URI); err != nil {
			bad("byok.key.uri", "%v", err)
		} else {
			if u.Object == "" && len(u.ID) == 0 {
				bad("byok.key.uri", "must name the key with object= and/or id=")
			}
			if u.Token != "" || u.Serial != "" || u.Manufacturer != "" || u.Model != "" || u.SlotID != nil || u.ModulePath != "" {
				bad("byok.key.uri", "must name only the key (object=, id=, type=); the token is token.uri")
			}
			if u.Type == "public" || u.Type == "cert" || u.Type == "data" {
				bad("byok.key.uri", "type=%s cannot hold key material: use secret-key or private", u.Type)
			}
		}
	case "":
		bad("byok.key.source", "required: generate (a new key in the token for this import) or existing (a token key named by uri)")
	default:
		bad("byok.key.source", "must be generate or existing, got %q", b.Key.Source)
	}
	if b.KeepInToken == nil {
		bad("byok.keep_in_token", "required: true keeps the token's copy as your own escrow copy; false destroys it after wrapping and records that")
	}

	e := b.Expiration
	switch e.Model {
	case kmsimport.KeyMaterialExpires:
		switch {
		case e.ValidTo.IsZero() && e.ValidForDays == 0:
			bad("byok.expiration", "KEY_MATERIAL_EXPIRES needs valid_to or valid_for_days (at most 365 days ahead)")
		case !e.ValidTo.IsZero() && e.ValidForDays != 0:
			bad("byok.expiration.valid_for_days", "give either valid_to or valid_for_days, not both")
		case e.ValidForDays < 0 || e.ValidForDays > 365:
			bad("byok.expiration.valid_for_days", "must be 1 to 365 (AWS KMS refuses a valid-to more than 365 days ahead), got %d", e.ValidForDays)
		}
	case kmsimport.KeyMaterialDoesNotExpire:
		if !e.ValidTo.IsZero() || e.ValidForDays != 0 {
			bad("byok.expiration", "KEY_MATERIAL_DOES_NOT_EXPIRE takes no valid_to or valid_for_days")
		}
	case "":
		bad("byok.expiration.model", "required: KEY_MATERIAL_EXPIRES (with valid_to or valid_for_days) or KEY_MATERIAL_DOES_NOT_EXPIRE")
	default:
		bad("byok.expiration.model", "must be KEY_MATERIAL_EXPIRES or KEY_MATERIAL_DOES_NOT_EXPIRE, got %q", e.Model)
	}
	switch b.ImportType {
	case "", kmsimport.ImportTypeExisting:
	case kmsimport.ImportTypeNew:
		if info, err := kmsimport.Spec(kmsimport.KeySpec(b.KeySpec)); err == nil && !info.NewKeyMaterial {
			bad("byok.import_type", "NEW_KEY_MATERIAL (rotation by re-import, then RotateKeyOnDemand) exists only for SYMMETRIC_DEFAULT keys, not %s", b.KeySpec)
		}
	default:
		bad("byok.import_type", "must be empty (first import), NEW_KEY_MATERIAL or EXISTING_KEY_MATERIAL, got %q", b.ImportType)
	}
}

// ValidToFrom is the material's expiry as the script states it, counted from now
// when the script gives valid_for_days; zero when it does not expire.
func (e Expiration) ValidToFrom(now time.Time) time.Time {
	if e.Model != kmsimport.KeyMaterialExpires {
		return time.Time{}
	}
	if !e.ValidTo.IsZero() {
		return e.ValidTo.UTC()
	}
	return now.UTC().Truncate(time.Second).Add(time.Duration(e.ValidForDays) * 24 * time.Hour)
}

// Describe is the expiration choice in words.
func (e Expiration) Describe() string {
	switch {
	case e.Model == kmsimport.KeyMaterialDoesNotExpire:
		return "KEY_MATERIAL_DOES_NOT_EXPIRE"
	case !e.ValidTo.IsZero():
		return fmt.Sprintf("KEY_MATERIAL_EXPIRES at %s", e.ValidTo.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("KEY_MATERIAL_EXPIRES %d days after the ceremony", e.ValidForDays)
}
