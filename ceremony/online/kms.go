package online

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyceremony/keyceremony/ceremony/kmsimport"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/internal/awsapi"
	"github.com/keyceremony/keyceremony/internal/newfile"
)

// KMS is the AWS KMS side of a BYOK import.
type KMS struct {
	client *kms.Client
}

// NewKMS connects to AWS KMS.
func NewKMS(ctx context.Context, c Connection) (*KMS, error) {
	cfg, err := c.Load(ctx)
	if err != nil {
		return nil, err
	}
	return &KMS{client: kms.NewFromConfig(cfg, func(o *kms.Options) { o.BaseEndpoint = awsapi.Endpoint(c.Endpoint) })}, nil
}

// PrepareRequest says which key receives material and how it is wrapped.
type PrepareRequest struct {
	KeyID           string // existing EXTERNAL key; empty to create one
	Description     string // for a new key
	KeySpec         kmsimport.KeySpec
	KeyUsage        string // ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC; default from the spec
	Algorithm       kmsimport.Algorithm
	WrappingKeySpec kmsimport.WrappingKeySpec
}

// ParametersFile is the bundle the byok-wrap ceremony reads: the JSON of
// get-parameters-for-import, plus the key spec and algorithm chosen.
const ParametersFile = "import-parameters.json"

// Bundle is what PrepareBYOK wrote.
type Bundle struct {
	KeyARN            string                    `json:"KeyId"`
	ImportToken       []byte                    `json:"ImportToken"`
	PublicKey         []byte                    `json:"PublicKey"`
	ParametersValidTo time.Time                 `json:"ParametersValidTo"`
	KeySpec           kmsimport.KeySpec         `json:"KeySpec"`
	WrappingAlgorithm kmsimport.Algorithm       `json:"WrappingAlgorithm"`
	WrappingKeySpec   kmsimport.WrappingKeySpec `json:"WrappingKeySpec"`
	Created           bool                      `json:"CreatedKey"`
}

func defaultUsage(spec kmsimport.KeySpec) string {
	switch spec {
	case kmsimport.SymmetricDefault:
		return "ENCRYPT_DECRYPT"
	case kmsimport.HMAC224, kmsimport.HMAC256, kmsimport.HMAC384, kmsimport.HMAC512:
		return "GENERATE_VERIFY_MAC"
	}
	return "SIGN_VERIFY"
}

// PrepareBYOK creates (or checks) an EXTERNAL key, fetches import parameters
// and writes them to dir/import-parameters.json for the ceremony.
func (k *KMS) PrepareBYOK(ctx context.Context, r PrepareRequest, dir string) (*Bundle, error) {
	if err := kmsimport.Check(r.KeySpec, r.Algorithm, r.WrappingKeySpec); err != nil {
		return nil, err
	}
	b := &Bundle{KeySpec: r.KeySpec, WrappingAlgorithm: r.Algorithm, WrappingKeySpec: r.WrappingKeySpec}
	keyID := r.KeyID
	if keyID == "" {
		usage := r.KeyUsage
		if usage == "" {
			usage = defaultUsage(r.KeySpec)
		}
		out, err := k.client.CreateKey(ctx, &kms.CreateKeyInput{
			Origin: types.OriginTypeExternal, KeySpec: types.KeySpec(r.KeySpec), KeyUsage: types.KeyUsageType(usage),
			Description: aws.String(r.Description),
		})
		if err != nil {
			return nil, explain("create an EXTERNAL key", err)
		}
		keyID, b.Created = aws.ToString(out.KeyMetadata.Arn), true
	} else {
		out, err := k.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
		if err != nil {
			return nil, explain("describe key "+keyID, err)
		}
		md := out.KeyMetadata
		if md.Origin != types.OriginTypeExternal {
			return nil, fmt.Errorf("key %s has origin %s: material can be imported only into keys created with origin EXTERNAL", keyID, md.Origin)
		}
		if string(md.KeySpec) != string(r.KeySpec) {
			return nil, fmt.Errorf("key %s is %s, not %s: choose the key spec the key was created with", keyID, md.KeySpec, r.KeySpec)
		}
		keyID = aws.ToString(md.Arn)
	}
	out, err := k.client.GetParametersForImport(ctx, &kms.GetParametersForImportInput{
		KeyId: aws.String(keyID), WrappingAlgorithm: types.AlgorithmSpec(r.Algorithm), WrappingKeySpec: types.WrappingKeySpec(r.WrappingKeySpec),
	})
	if err != nil {
		return nil, explain("get import parameters for "+keyID, err)
	}
	b.KeyARN, b.ImportToken, b.PublicKey = keyID, out.ImportToken, out.PublicKey
	b.ParametersValidTo = aws.ToTime(out.ParametersValidTo).UTC()
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeNew(filepath.Join(dir, ParametersFile), append(data, '\n')); err != nil {
		return nil, err
	}
	return b, nil
}

// ImportResultFile is written next to the ceremony's outputs after import.
const ImportResultFile = "import-result.json"

// ImportResult is the evidence of a completed import.
type ImportResult struct {
	KeyARN         string    `json:"keyArn"`
	KeyMaterialID  string    `json:"keyMaterialId,omitempty"`
	KeyState       string    `json:"keyState"`
	ImportedAt     time.Time `json:"importedAt"`
	RequestID      string    `json:"requestId,omitempty"`
	ManifestSHA256 string    `json:"manifestSha256"`
	// Transcript is the ceremony transcript found beside the files, verified,
	// whose wrap step records this manifest; nil when there was none.
	Transcript *TranscriptCheck `json:"transcript"`
}

// TranscriptCheck is the ceremony transcript an import was checked against.
type TranscriptCheck struct {
	Path      string `json:"path"`
	FinalHash string `json:"finalHash"`
	WrapEntry int    `json:"wrapEntry"` // the sequence number of the wrap step's entry
}

// checkMaterialSize refuses EncryptedKeyMaterial.bin whose length cannot be
// what the manifest's algorithm and wrapping key produce.
func checkMaterialSize(m kmsimport.Manifest, n int) error {
	min, max, err := kmsimport.CiphertextLen(m.KeySpec, m.WrappingAlgorithm, m.WrappingKeySpec)
	if err != nil {
		return fmt.Errorf("%s: %w", kmsimport.ManifestFile, err)
	}
	if n < min || n > max {
		want := fmt.Sprintf("%d bytes", min)
		if max != min {
			want = fmt.Sprintf("%d to %d bytes", min, max)
		}
		return fmt.Errorf("%s has %d bytes, but %s material wrapped with %s under an %s key has %s: it is not what the ceremony wrote; do not import it (nothing was sent to AWS)",
			kmsimport.EncryptedKeyMaterialFile, n, m.KeySpec, m.WrappingAlgorithm, m.WrappingKeySpec, want)
	}
	return nil
}

// checkTranscript ties the manifest to the ceremony: when the byok-wrap
// ceremony's transcript is beside the files, it must verify (chain, entry
// hashes, every output file's SHA-256), and its wrap step must record this
// manifest and these files. The manifest's own hash list is only as good as
// the manifest; the transcript is the evidence the ceremony signed off.
func checkTranscript(dir string, manifest []byte, files map[string][]byte) (*TranscriptCheck, error) {
	found, _ := filepath.Glob(filepath.Join(dir, "*.transcript.jsonl"))
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("%d ceremony transcripts in %s: keep only the byok-wrap ceremony's with its files", len(found), dir)
	}
	rep, err := transcript.Verify(found[0])
	if err != nil {
		return nil, fmt.Errorf("the ceremony transcript beside the files does not verify: %w; do not import (nothing was sent to AWS)", err)
	}
	want := map[string][]byte{kmsimport.ManifestFile: manifest}
	for name, data := range files {
		want[name] = data
	}
	for _, en := range rep.Entries {
		if en.Step != "wrap" || !en.OK() {
			continue
		}
		recorded := map[string]string{}
		for _, o := range en.Outputs {
			recorded[o.Path] = o.SHA256
		}
		for name, data := range want {
			sum := sha256.Sum256(data)
			if recorded[name] != hex.EncodeToString(sum[:]) {
				return nil, fmt.Errorf("%s is not the file the ceremony's transcript records (entry %d): do not import it (nothing was sent to AWS)", name, en.Seq)
			}
		}
		final, ok := rep.Final()
		if !ok {
			return nil, fmt.Errorf("the transcript %s is not complete (missing: %s): the ceremony did not end; do not import (nothing was sent to AWS)", found[0], strings.Join(rep.Missing(), ", "))
		}
		return &TranscriptCheck{Path: found[0], FinalHash: final.Hash, WrapEntry: en.Seq}, nil
	}
	return nil, fmt.Errorf("the transcript %s records no completed wrap step: it is not the byok-wrap ceremony that wrote these files", found[0])
}

// ImportBYOK reads a byok-wrap ceremony's output directory, checks every file
// against the manifest, imports the material, confirms the key is Enabled,
// and writes import-result.json.
func (k *KMS) ImportBYOK(ctx context.Context, dir string, now time.Time) (*ImportResult, error) {
	manifestBytes, err := os.ReadFile(filepath.Join(dir, kmsimport.ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("read the ceremony's %s: %w", kmsimport.ManifestFile, err)
	}
	var m kmsimport.Manifest
	if err := json.Unmarshal(manifestBytes, &m); err != nil {
		return nil, fmt.Errorf("%s is damaged: %w", kmsimport.ManifestFile, err)
	}
	files := map[string][]byte{}
	for _, name := range []string{kmsimport.EncryptedKeyMaterialFile, kmsimport.ImportTokenFile} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		if len(data) == 0 {
			return nil, fmt.Errorf("%s is empty: it was not copied whole from the ceremony's medium; copy it again (nothing was sent to AWS)", name)
		}
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != m.Files[name] {
			return nil, fmt.Errorf("%s does not match the SHA-256 in the manifest: the file changed since the ceremony; do not import it", name)
		}
		files[name] = data
	}
	if err := checkMaterialSize(m, len(files[kmsimport.EncryptedKeyMaterialFile])); err != nil {
		return nil, err
	}
	tr, err := checkTranscript(dir, manifestBytes, files)
	if err != nil {
		return nil, err
	}
	if now.After(m.ParametersValidTo) {
		return nil, fmt.Errorf("the import parameters expired at %s: run 'keyceremony aws byok prepare' for the same key and repeat the ceremony", m.ParametersValidTo.Format(time.RFC3339))
	}
	in := &kms.ImportKeyMaterialInput{
		KeyId:                aws.String(m.KeyID),
		ImportToken:          files[kmsimport.ImportTokenFile],
		EncryptedKeyMaterial: files[kmsimport.EncryptedKeyMaterialFile],
		ExpirationModel:      types.ExpirationModelType(m.Import.ExpirationModel),
		ImportType:           types.ImportType(m.Import.ImportType),
	}
	if m.Import.ExpirationModel == kmsimport.KeyMaterialExpires {
		in.ValidTo = aws.Time(m.Import.ValidTo)
	}
	out, err := k.client.ImportKeyMaterial(ctx, in)
	if err != nil {
		return nil, explain("import key material into "+m.KeyID, err)
	}
	desc, err := k.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(m.KeyID)})
	if err != nil {
		return nil, explain("describe key "+m.KeyID, err)
	}
	sum := sha256.Sum256(manifestBytes)
	res := &ImportResult{KeyARN: aws.ToString(desc.KeyMetadata.Arn), KeyMaterialID: aws.ToString(out.KeyMaterialId),
		KeyState: string(desc.KeyMetadata.KeyState), ImportedAt: now.UTC(), ManifestSHA256: hex.EncodeToString(sum[:]), Transcript: tr}
	if rid, ok := requestID(out.ResultMetadata); ok {
		res.RequestID = rid
	}
	if desc.KeyMetadata.KeyState != types.KeyStateEnabled {
		return res, fmt.Errorf("the import call succeeded but key %s is %s, not Enabled", m.KeyID, desc.KeyMetadata.KeyState)
	}
	data, _ := json.MarshalIndent(res, "", "  ")
	if err := writeNew(filepath.Join(dir, ImportResultFile), append(data, '\n')); err != nil {
		return res, err
	}
	return res, nil
}

// kmsHints turn KMS error codes into what the operator should do.
var kmsHints = map[string]string{
	"ExpiredImportTokenException":   "the import token expired (24 hours): prepare again and repeat the ceremony",
	"InvalidImportTokenException":   "the import token does not belong to this key or these parameters: use the bundle prepared for this key",
	"InvalidCiphertextException":    "AWS could not unwrap the material: the ceremony used other parameters or the files were damaged",
	"IncorrectKeyMaterialException": "the material is not what this key expects (a different key's material, or a wrong format)",
	"AccessDeniedException":         "the credentials lack permission; check the IAM policy and key policy",
	"ThrottlingException":           "AWS is throttling requests; wait and retry",
	"NotFoundException":             "no such key in this account and region",
}

func explain(what string, err error) error { return awsapi.Explain(what, err, kmsHints) }

// writeNew writes an output into a ceremony directory: 0600, never over
// an existing file.
func writeNew(path string, data []byte) error {
	return newfile.Write(path, data, "use a new directory")
}

// writeNewFile writes a file the operator named: 0600, never over an
// existing file.
func writeNewFile(path string, data []byte) error {
	return newfile.Write(path, data, "choose another file name (nothing is overwritten)")
}
