package awsfake

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/hsm/kwp"
)

// KMS is a local AWS KMS for BYOK: keys with Origin EXTERNAL, import
// parameters with real RSA wrapping keys, and ImportKeyMaterial that really
// unwraps what it is sent.
type KMS struct {
	*Server
	Account, Region string
	Now             func() time.Time

	// PageSize caps the entries of one ListKeys, ListAliases or
	// ListKeyRotations page below the request's Limit (AWS may return fewer
	// than asked), so tests page through a few keys. 0: the Limit.
	PageSize int
	// Trail, when set, records every call answered as a CloudTrail record
	// (trail.go).
	Trail *Trail
	// NoKeyLastUsage answers GetKeyLastUsage as an endpoint that does not
	// know the operation does (UnknownOperationException), like a
	// partition or region where the API does not exist yet.
	NoKeyLastUsage bool

	mu      sync.Mutex
	keys    map[string]*fakeKey // by key id
	aliases map[string]*fakeAlias
	tokens  map[string]*importParams
	failFor map[string]APIError // op + " " + key id
	counter int
}

type fakeKey struct {
	meta      map[string]any
	material  []byte
	rotation  map[string]any   // get-key-rotation-status answer; nil: per the key's kind
	materials []map[string]any // list-key-rotations entries, oldest first
	lastUsage map[string]any   // GetKeyLastUsage's KeyLastUsage; nil: never used
}

type fakeAlias struct {
	name, target string // target key id, "" for none
	created      time.Time
}

type importParams struct {
	keyID   string
	alg     string
	priv    *rsa.PrivateKey
	validTo time.Time
}

// NewKMS starts a KMS server for the test.
func NewKMS(t testing.TB) *KMS {
	k := &KMS{Account: "111122223333", Region: "eu-west-1", Now: time.Now, keys: map[string]*fakeKey{}, tokens: map[string]*importParams{},
		aliases: map[string]*fakeAlias{}, failFor: map[string]APIError{}}
	var srv *Server
	srv = newServer(t, nil)
	srv.Config.Handler = srv.jsonService("TrentService", map[string]func([]byte) (any, *APIError){
		"CreateKey":              k.createKey,
		"DescribeKey":            k.describeKey,
		"GetParametersForImport": k.getParametersForImport,
		"ImportKeyMaterial":      k.importKeyMaterial,
		"ListKeys":               k.listKeys,
		"ListAliases":            k.listAliases,
		"GetKeyRotationStatus":   k.getKeyRotationStatus,
		"ListKeyRotations":       k.listKeyRotations,
		"GetKeyLastUsage":        k.getKeyLastUsage,
	})
	srv.observe = k.kmsRecord
	k.Server = srv
	return k
}

func epoch(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func (k *KMS) arn(id string) string {
	return fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", k.Region, k.Account, id)
}

// resolve accepts a key id or ARN.
func (k *KMS) resolve(id string) (*fakeKey, *APIError) {
	for kid, key := range k.keys {
		if id == kid || id == k.arn(kid) {
			return key, nil
		}
	}
	return nil, &APIError{400, "NotFoundException", fmt.Sprintf("Key '%s' does not exist", id)}
}

// Material is the key material imported into a key, for the test to compare.
func (k *KMS) Material(keyID string) []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	key, err := k.resolve(keyID)
	if err != nil {
		return nil
	}
	return bytes.Clone(key.material)
}

// State is a key's KeyState.
func (k *KMS) State(keyID string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	key, err := k.resolve(keyID)
	if err != nil {
		return ""
	}
	return key.meta["KeyState"].(string)
}

func (k *KMS) createKey(body []byte) (any, *APIError) {
	var in struct{ Origin, KeySpec, KeyUsage, Description string }
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &APIError{400, "SerializationException", err.Error()}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.counter++
	id := fmt.Sprintf("%08x-1111-2222-3333-%012x", k.counter, k.counter)
	if in.KeySpec == "" {
		in.KeySpec = "SYMMETRIC_DEFAULT"
	}
	if in.Origin == "" {
		in.Origin = "AWS_KMS"
	}
	state := "Enabled"
	if in.Origin == "EXTERNAL" {
		state = "PendingImport"
	}
	meta := map[string]any{
		"KeyId": id, "Arn": k.arn(id), "AWSAccountId": k.Account, "CreationDate": epoch(k.Now()),
		"Description": in.Description, "Enabled": state == "Enabled", "KeyState": state, "KeyManager": "CUSTOMER",
		"KeySpec": in.KeySpec, "CustomerMasterKeySpec": in.KeySpec, "KeyUsage": in.KeyUsage, "Origin": in.Origin,
	}
	k.keys[id] = &fakeKey{meta: meta}
	return map[string]any{"KeyMetadata": meta}, nil
}

func (k *KMS) describeKey(body []byte) (any, *APIError) {
	var in struct{ KeyId string }
	json.Unmarshal(body, &in)
	k.mu.Lock()
	defer k.mu.Unlock()
	key, e := k.resolve(in.KeyId)
	if e != nil {
		return nil, e
	}
	return map[string]any{"KeyMetadata": key.meta}, nil
}

var wrappingBits = map[string]int{"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}

func (k *KMS) getParametersForImport(body []byte) (any, *APIError) {
	var in struct{ KeyId, WrappingAlgorithm, WrappingKeySpec string }
	json.Unmarshal(body, &in)
	k.mu.Lock()
	defer k.mu.Unlock()
	key, e := k.resolve(in.KeyId)
	if e != nil {
		return nil, e
	}
	if key.meta["Origin"] != "EXTERNAL" {
		return nil, &APIError{400, "UnsupportedOperationException", "key origin is not EXTERNAL"}
	}
	bits, ok := wrappingBits[in.WrappingKeySpec]
	if !ok {
		return nil, &APIError{400, "ValidationException", "WrappingKeySpec " + in.WrappingKeySpec}
	}
	switch in.WrappingAlgorithm {
	case "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256":
	default:
		return nil, &APIError{400, "ValidationException", "WrappingAlgorithm " + in.WrappingAlgorithm}
	}
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, &APIError{500, "KMSInternalException", err.Error()}
	}
	spki, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	token := make([]byte, 48)
	rand.Read(token)
	validTo := k.Now().Add(24 * time.Hour)
	k.tokens[string(token)] = &importParams{keyID: key.meta["KeyId"].(string), alg: in.WrappingAlgorithm, priv: priv, validTo: validTo}
	return map[string]any{"KeyId": key.meta["Arn"], "ImportToken": token, "PublicKey": spki, "ParametersValidTo": epoch(validTo)}, nil
}

func (k *KMS) importKeyMaterial(body []byte) (any, *APIError) {
	var in struct {
		KeyId                string
		ImportToken          []byte
		EncryptedKeyMaterial []byte
		ExpirationModel      string
		ValidTo              *float64
		ImportType           string
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &APIError{400, "SerializationException", err.Error()}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	key, e := k.resolve(in.KeyId)
	if e != nil {
		return nil, e
	}
	p, ok := k.tokens[string(in.ImportToken)]
	if !ok || p.keyID != key.meta["KeyId"] {
		return nil, &APIError{400, "InvalidImportTokenException", "The import token is invalid or for another key"}
	}
	if k.Now().After(p.validTo) {
		return nil, &APIError{400, "ExpiredImportTokenException", "The import token has expired"}
	}
	if in.ExpirationModel == "KEY_MATERIAL_EXPIRES" {
		if in.ValidTo == nil {
			return nil, &APIError{400, "ValidationException", "ValidTo is required"}
		}
		sec, frac := math.Modf(*in.ValidTo)
		vt := time.Unix(int64(sec), int64(frac*1e9))
		if !vt.After(k.Now()) || vt.After(k.Now().Add(365*24*time.Hour)) {
			return nil, &APIError{400, "ValidationException", "ValidTo must be in the future and within 365 days"}
		}
		key.meta["ValidTo"] = *in.ValidTo
	}
	material, err := unwrapImport(p, in.EncryptedKeyMaterial)
	if err != nil {
		return nil, &APIError{400, "InvalidCiphertextException", "The wrapped key material cannot be decrypted: " + err.Error()}
	}
	if err := checkMaterial(key.meta["KeySpec"].(string), material); err != nil {
		return nil, &APIError{400, "IncorrectKeyMaterialException", err.Error()}
	}
	if key.material != nil && !bytes.Equal(key.material, material) && in.ImportType != "NEW_KEY_MATERIAL" {
		return nil, &APIError{400, "IncorrectKeyMaterialException", "The key material differs from the key material previously imported"}
	}
	key.material = material
	key.meta["KeyState"], key.meta["Enabled"] = "Enabled", true
	key.meta["ExpirationModel"] = in.ExpirationModel
	delete(k.tokens, string(in.ImportToken))
	sum := sha256.Sum256(material)
	return map[string]any{"KeyId": key.meta["Arn"], "KeyMaterialId": hex.EncodeToString(sum[:])}, nil
}

func unwrapImport(p *importParams, ct []byte) ([]byte, error) {
	var h hash.Hash = sha256.New()
	if p.alg == "RSAES_OAEP_SHA_1" || p.alg == "RSA_AES_KEY_WRAP_SHA_1" {
		h = sha1.New()
	}
	switch p.alg {
	case "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256":
		return rsa.DecryptOAEP(h, nil, p.priv, ct, nil)
	}
	n := p.priv.Size()
	if len(ct) <= n {
		return nil, fmt.Errorf("ciphertext too short for RSA-AES key wrap")
	}
	aesKey, err := rsa.DecryptOAEP(h, nil, p.priv, ct[:n], nil)
	if err != nil {
		return nil, err
	}
	return kwp.Unwrap(aesKey, ct[n:])
}

var secretLen = map[string]int{"SYMMETRIC_DEFAULT": 32, "HMAC_224": 28, "HMAC_256": 32, "HMAC_384": 48, "HMAC_512": 64}

func checkMaterial(spec string, m []byte) error {
	if n, ok := secretLen[spec]; ok {
		if len(m) != n {
			return fmt.Errorf("%s key material must be %d bytes, got %d", spec, n, len(m))
		}
		return nil
	}
	pk, err := x509.ParsePKCS8PrivateKey(m)
	if err != nil {
		return fmt.Errorf("key material is not a PKCS#8 private key: %v", err)
	}
	switch pk.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey:
		return nil
	}
	return fmt.Errorf("unsupported private key %T", pk)
}
