package kmsimport

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/outfile"
	"github.com/keyceremony/keyceremony/hsm"
)

// Expiration models of ImportKeyMaterial.
const (
	KeyMaterialExpires       = "KEY_MATERIAL_EXPIRES"
	KeyMaterialDoesNotExpire = "KEY_MATERIAL_DOES_NOT_EXPIRE"
	ImportTypeNew            = "NEW_KEY_MATERIAL"
	ImportTypeExisting       = "EXISTING_KEY_MATERIAL"
	maxValidity              = 365 * 24 * time.Hour
	defaultParametersMargin  = time.Hour
	EncryptedKeyMaterialFile = "EncryptedKeyMaterial.bin"
	ImportTokenFile          = "ImportToken.bin"
	ManifestFile             = "import-manifest.json"
	InstructionsFile         = "IMPORT-INSTRUCTIONS.txt"
)

// Import says how the material is to be imported.
type Import struct {
	ExpirationModel string    `json:"expirationModel"`
	ValidTo         time.Time `json:"validTo,omitzero"`
	// ImportType is NEW_KEY_MATERIAL (re-import for rotation, symmetric keys
	// only, followed by RotateKeyOnDemand), EXISTING_KEY_MATERIAL (re-import of
	// the same material), or empty for a first import.
	ImportType string `json:"importType,omitempty"`
}

// Request is one BYOK wrap: which material, for which KMS key, how.
type Request struct {
	Params    *Parameters
	Spec      KeySpec
	Algorithm Algorithm
	Import    Import
	// Margin: refuse parameters expiring sooner than this (default 1 hour),
	// so the files can still be carried to the connected machine.
	Margin time.Duration
}

// Validate lists every problem with the request at once.
func (r Request) Validate(now time.Time) []error {
	var errs []error
	if r.Params == nil {
		return []error{errors.New("no import parameters")}
	}
	margin := r.Margin
	if margin == 0 {
		margin = defaultParametersMargin
	}
	if err := r.Params.CheckFresh(now, margin); err != nil {
		errs = append(errs, err)
	}
	if err := Check(r.Spec, r.Algorithm, r.Params.WrappingKeySpec()); err != nil {
		errs = append(errs, err)
	}
	switch r.Import.ExpirationModel {
	case KeyMaterialExpires:
		switch {
		case r.Import.ValidTo.IsZero():
			errs = append(errs, errors.New("expiration model KEY_MATERIAL_EXPIRES needs a valid-to date"))
		case !r.Import.ValidTo.After(now):
			errs = append(errs, fmt.Errorf("valid-to %s is in the past: choose a date in the future", r.Import.ValidTo.Format(time.RFC3339)))
		case r.Import.ValidTo.After(now.Add(maxValidity)):
			errs = append(errs, fmt.Errorf("valid-to %s is more than 365 days ahead, which AWS KMS refuses: choose an earlier date", r.Import.ValidTo.Format(time.RFC3339)))
		}
	case KeyMaterialDoesNotExpire:
		if !r.Import.ValidTo.IsZero() {
			errs = append(errs, errors.New("a valid-to date was given with KEY_MATERIAL_DOES_NOT_EXPIRE: drop it or choose KEY_MATERIAL_EXPIRES"))
		}
	default:
		errs = append(errs, fmt.Errorf("expiration model %q: choose KEY_MATERIAL_EXPIRES or KEY_MATERIAL_DOES_NOT_EXPIRE", r.Import.ExpirationModel))
	}
	switch r.Import.ImportType {
	case "", ImportTypeExisting:
	case ImportTypeNew:
		if info, err := Spec(r.Spec); err == nil && !info.NewKeyMaterial {
			errs = append(errs, fmt.Errorf("import type NEW_KEY_MATERIAL (rotation by re-import) exists only for SYMMETRIC_DEFAULT keys, not %s", r.Spec))
		}
	default:
		errs = append(errs, fmt.Errorf("import type %q: choose NEW_KEY_MATERIAL or EXISTING_KEY_MATERIAL", r.Import.ImportType))
	}
	return errs
}

// Result is a finished wrap.
type Result struct {
	EncryptedKeyMaterial []byte
	Wrapped              *hsm.Wrapped
	Manifest             Manifest
}

// Manifest is import-manifest.json: what the connected machine needs to know
// and check before calling ImportKeyMaterial.
type Manifest struct {
	KeyID                string            `json:"keyId"`
	KeySpec              KeySpec           `json:"keySpec"`
	WrappingAlgorithm    Algorithm         `json:"wrappingAlgorithm"`
	WrappingKeySpec      WrappingKeySpec   `json:"wrappingKeySpec"`
	WrappingKeySHA256    string            `json:"wrappingPublicKeySha256"`
	ParametersValidTo    time.Time         `json:"parametersValidTo"`
	Import               Import            `json:"import"`
	TokenKey             string            `json:"tokenKey"`
	Files                map[string]string `json:"files"` // name -> SHA-256 hex
	WrapSteps            []hsm.WrapStep    `json:"wrapSteps"`
	MaterialInHostMemory bool              `json:"materialInHostMemory"`
	Command              string            `json:"command"`
	Rehearsal            bool              `json:"rehearsal,omitempty"`
	CreatedAt            time.Time         `json:"createdAt"`
}

// Plan shows the operator how the token will wrap, before anything runs;
// an error (an *hsm.CapabilityError) names what the token lacks.
// wrapping is the wrapping key's size (0 when not known).
func Plan(tok *hsm.Token, alg Algorithm, spec KeySpec, wrapping WrappingKeySpec) ([]hsm.WrapStep, error) {
	info, err := Spec(spec)
	if err != nil {
		return nil, err
	}
	return tok.WrapPlan(alg.Mechanism(), info.TokenType, wrapping.Bytes()*8)
}

// Wrap wraps target (a token key of the request's spec) for import.
func Wrap(ctx context.Context, tok *hsm.Token, target *hsm.Key, r Request, opts hsm.WrapOptions, now time.Time) (*Result, error) {
	if errs := r.Validate(now); len(errs) > 0 {
		return nil, fmt.Errorf("BYOK request: %w", errors.Join(errs...))
	}
	info, _ := Spec(r.Spec)
	if target.Type() != info.TokenType {
		return nil, fmt.Errorf("token key %q is %s but the KMS key is %s (needs %s)", target.Label(), target.Type(), r.Spec, info.TokenType)
	}
	if !target.Extractable() {
		return nil, fmt.Errorf("token key %q was created non-extractable, so it can never leave the token: generate the key for this import with the ceremony instead", target.Label())
	}
	// The wrapping key: the trusted one the security officer prepared
	// (hsm.PrepareTrustedWrap), for material only trusted keys may wrap;
	// otherwise a session copy imported now.
	wk := (*hsm.Key)(nil)
	if opts.Trusted != nil {
		wk = opts.Trusted.Wrapping
	} else {
		var err error
		if wk, err = tok.ImportWrappingKey(ctx, r.Params.PublicKeyDER); err != nil {
			return nil, err
		}
		defer tok.DestroyKey(wk)
	}
	w, err := tok.Wrap(ctx, wk, target, r.Algorithm.Mechanism(), opts)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(r.Params.PublicKeyDER)
	m := Manifest{
		KeyID:                r.Params.KeyID,
		KeySpec:              r.Spec,
		WrappingAlgorithm:    r.Algorithm,
		WrappingKeySpec:      r.Params.WrappingKeySpec(),
		WrappingKeySHA256:    hex.EncodeToString(sum[:]),
		ParametersValidTo:    r.Params.ParametersValidTo,
		Import:               r.Import,
		TokenKey:             target.URI().String(),
		WrapSteps:            w.Steps,
		MaterialInHostMemory: w.MaterialInHost(),
		CreatedAt:            now.UTC(),
		Files: map[string]string{
			EncryptedKeyMaterialFile: sha256Hex(w.Ciphertext),
			ImportTokenFile:          sha256Hex(r.Params.ImportToken),
		},
	}
	m.Command = ImportCommand(m)
	return &Result{EncryptedKeyMaterial: w.Ciphertext, Wrapped: w, Manifest: m}, nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// ImportCommand is the aws CLI command to run, in the output directory, on
// the connected machine.
func ImportCommand(m Manifest) string {
	parts := []string{"aws kms import-key-material",
		"--key-id " + shellQuote(m.KeyID),
		"--encrypted-key-material fileb://" + EncryptedKeyMaterialFile,
		"--import-token fileb://" + ImportTokenFile,
		"--expiration-model " + m.Import.ExpirationModel,
	}
	if m.Import.ExpirationModel == KeyMaterialExpires {
		parts = append(parts, "--valid-to "+m.Import.ValidTo.UTC().Format(time.RFC3339))
	}
	if m.Import.ImportType != "" {
		parts = append(parts, "--import-type "+m.Import.ImportType)
	}
	return strings.Join(parts, " \\\n    ")
}

func shellQuote(s string) string {
	if strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(":/-_.", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Instructions is the text for the connected machine, also shown on screen.
func Instructions(m Manifest) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Import of key material into AWS KMS key %s (%s)\n\n", m.KeyID, m.KeySpec)
	fmt.Fprintf(&b, "1. Carry this directory to the connected machine. The import parameters expire at %s;\n   after that, fetch new ones and run the ceremony again.\n", m.ParametersValidTo.UTC().Format(time.RFC3339))
	b.WriteString("2. Check the files against the ceremony transcript:\n")
	for _, name := range []string{EncryptedKeyMaterialFile, ImportTokenFile} {
		fmt.Fprintf(&b, "     sha256sum %s   # expect %s\n", name, m.Files[name])
	}
	b.WriteString("3. In this directory, with credentials allowed kms:ImportKeyMaterial on the key, run:\n\n    ")
	b.WriteString(m.Command)
	b.WriteString("\n\n4. Confirm: aws kms describe-key --key-id " + shellQuote(m.KeyID) + " shows KeyState Enabled.\n")
	if m.Import.ImportType == ImportTypeNew {
		b.WriteString("5. Rotate to the new material: aws kms rotate-key-on-demand --key-id " + shellQuote(m.KeyID) + "\n")
	}
	return b.String()
}

// WriteOutputs writes the import files into dir, each created new (O_EXCL,
// 0600), and returns their paths. The manifest lists the SHA-256 of the others.
func WriteOutputs(dir string, res *Result, importToken []byte) ([]string, error) {
	manifest, err := json.MarshalIndent(res.Manifest, "", "  ")
	if err != nil {
		return nil, err
	}
	files := []struct {
		name string
		data []byte
	}{
		{EncryptedKeyMaterialFile, res.EncryptedKeyMaterial},
		{ImportTokenFile, importToken},
		{ManifestFile, append(manifest, '\n')},
		{InstructionsFile, []byte(Instructions(res.Manifest))},
	}
	var paths []string
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := outfile.Create(p, f.data, "choose an empty output directory (outputs are never overwritten)"); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}
