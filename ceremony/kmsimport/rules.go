// Package kmsimport prepares key material held in a PKCS#11 token for import
// into AWS KMS ("bring your own key"): it reads the parameters AWS hands out
// (GetParametersForImport), knows which key spec / wrapping algorithm /
// wrapping key combinations AWS accepts, wraps the material inside the token
// through the hsm package, and writes the files ImportKeyMaterial takes.
//
// The rules follow the AWS KMS developer guide, "Importing key material"
// (steps 2 and 3, and "Requirements for imported key material"). They live in
// one table, used by the code and by the tests alike.
package kmsimport

import (
	"crypto"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/keyceremony/keyceremony/hsm"
)

// KeySpec is the AWS KMS key spec of the key receiving the material.
type KeySpec string

const (
	SymmetricDefault KeySpec = "SYMMETRIC_DEFAULT"
	HMAC224          KeySpec = "HMAC_224"
	HMAC256          KeySpec = "HMAC_256"
	HMAC384          KeySpec = "HMAC_384"
	HMAC512          KeySpec = "HMAC_512"
	RSA2048          KeySpec = "RSA_2048"
	RSA3072          KeySpec = "RSA_3072"
	RSA4096          KeySpec = "RSA_4096"
	ECCNISTP256      KeySpec = "ECC_NIST_P256"
	ECCNISTP384      KeySpec = "ECC_NIST_P384"
	ECCNISTP521      KeySpec = "ECC_NIST_P521"
)

// Algorithm is an AWS KMS wrapping algorithm.
type Algorithm string

const (
	RSAESOAEPSHA1       Algorithm = "RSAES_OAEP_SHA_1"
	RSAESOAEPSHA256     Algorithm = "RSAES_OAEP_SHA_256"
	RSAAESKeyWrapSHA1   Algorithm = "RSA_AES_KEY_WRAP_SHA_1"
	RSAAESKeyWrapSHA256 Algorithm = "RSA_AES_KEY_WRAP_SHA_256"
	// Refused with an explanation.
	SM2PKE        Algorithm = "SM2PKE"
	RSAESPKCS1V15 Algorithm = "RSAES_PKCS1_V1_5"
)

// WrappingKeySpec is the size of the RSA wrapping key AWS issues.
type WrappingKeySpec string

const (
	WrappingRSA2048 WrappingKeySpec = "RSA_2048"
	WrappingRSA3072 WrappingKeySpec = "RSA_3072"
	WrappingRSA4096 WrappingKeySpec = "RSA_4096"
	WrappingSM2     WrappingKeySpec = "SM2"
)

// Bytes is the RSA modulus size in bytes.
func (w WrappingKeySpec) Bytes() int {
	switch w {
	case WrappingRSA2048:
		return 256
	case WrappingRSA3072:
		return 384
	case WrappingRSA4096:
		return 512
	}
	return 0
}

// SpecInfo is what the table knows about one key spec.
type SpecInfo struct {
	Spec KeySpec
	// TokenType is the hsm key type that holds such material.
	TokenType hsm.KeyType
	// Material describes the binary format AWS expects.
	Material string
	// Size is the length of the material in bytes as AWS receives it: exact
	// for raw secrets; for private keys, the PKCS#8 DER of an RFC 5915 key with
	// its public key (the largest usual encoding), used for OAEP capacity.
	Size int
	// Private is true for asymmetric private keys.
	Private bool
	// NewKeyMaterial is true when the spec allows ImportType NEW_KEY_MATERIAL
	// (re-import for rotation, followed by RotateKeyOnDemand).
	NewKeyMaterial bool
}

var specTable = map[KeySpec]SpecInfo{
	SymmetricDefault: {SymmetricDefault, hsm.AES256, "raw 256-bit AES key (32 bytes)", 32, false, true},
	HMAC224:          {HMAC224, hsm.HMACSHA224, "raw HMAC key (28 bytes)", 28, false, false},
	HMAC256:          {HMAC256, hsm.HMACSHA256, "raw HMAC key (32 bytes)", 32, false, false},
	HMAC384:          {HMAC384, hsm.HMACSHA384, "raw HMAC key (48 bytes)", 48, false, false},
	HMAC512:          {HMAC512, hsm.HMACSHA512, "raw HMAC key (64 bytes)", 64, false, false},
	RSA2048:          {RSA2048, hsm.RSA2048, "RSA private key, PKCS#8 DER", 1218, true, false},
	RSA3072:          {RSA3072, hsm.RSA3072, "RSA private key, PKCS#8 DER", 1793, true, false},
	RSA4096:          {RSA4096, hsm.RSA4096, "RSA private key, PKCS#8 DER", 2374, true, false},
	ECCNISTP256:      {ECCNISTP256, hsm.ECP256, "EC private key, PKCS#8 DER", 138, true, false},
	ECCNISTP384:      {ECCNISTP384, hsm.ECP384, "EC private key, PKCS#8 DER", 185, true, false},
	ECCNISTP521:      {ECCNISTP521, hsm.ECP521, "EC private key, PKCS#8 DER", 241, true, false},
}

// Spec looks up a key spec.
func Spec(s KeySpec) (SpecInfo, error) {
	info, ok := specTable[KeySpec(strings.ToUpper(string(s)))]
	if !ok {
		return SpecInfo{}, fmt.Errorf("key spec %q cannot receive imported material from this tool (one of: %s)", s, strings.Join(specNames(), ", "))
	}
	return info, nil
}

// SpecFor is the key spec that a token key type maps to.
func SpecFor(kt hsm.KeyType) (SpecInfo, bool) {
	for _, info := range specTable {
		if info.TokenType == kt {
			return info, true
		}
	}
	return SpecInfo{}, false
}

func specNames() []string {
	var out []string
	for s := range specTable {
		out = append(out, string(s))
	}
	sort.Strings(out)
	return out
}

// Algorithms lists the wrapping algorithms this tool uses.
func Algorithms() []Algorithm {
	return []Algorithm{RSAESOAEPSHA1, RSAESOAEPSHA256, RSAAESKeyWrapSHA1, RSAAESKeyWrapSHA256}
}

// WrappingKeySpecs lists the RSA wrapping key sizes.
func WrappingKeySpecs() []WrappingKeySpec {
	return []WrappingKeySpec{WrappingRSA2048, WrappingRSA3072, WrappingRSA4096}
}

// Mechanism is the hsm wrapping mechanism for an algorithm.
func (a Algorithm) Mechanism() hsm.WrapMechanism {
	switch a {
	case RSAESOAEPSHA1:
		return hsm.RSAOAEPSHA1
	case RSAESOAEPSHA256:
		return hsm.RSAOAEPSHA256
	case RSAAESKeyWrapSHA1:
		return hsm.RSAAESKeyWrapSHA1
	case RSAAESKeyWrapSHA256:
		return hsm.RSAAESKeyWrapSHA256
	}
	return hsm.WrapUnknown
}

func (a Algorithm) oaepHash() crypto.Hash {
	switch a {
	case RSAESOAEPSHA1, RSAAESKeyWrapSHA1:
		return crypto.SHA1
	}
	return crypto.SHA256
}

// Check says whether AWS accepts material of spec wrapped with alg under a
// wrapping key of wks, and if not, what to request instead.
func Check(spec KeySpec, alg Algorithm, wks WrappingKeySpec) error {
	info, err := Spec(spec)
	if err != nil {
		return err
	}
	switch alg {
	case RSAESOAEPSHA1, RSAESOAEPSHA256, RSAAESKeyWrapSHA1, RSAAESKeyWrapSHA256:
	case SM2PKE:
		return fmt.Errorf("wrapping algorithm SM2PKE is for AWS China Regions with an SM2 wrapping key and is not supported here: request RSA_AES_KEY_WRAP_SHA_256 with an RSA_4096 wrapping key")
	case RSAESPKCS1V15:
		return fmt.Errorf("wrapping algorithm RSAES_PKCS1_V1_5 is no longer accepted by AWS KMS (since October 2023): request RSAES_OAEP_SHA_256 or RSA_AES_KEY_WRAP_SHA_256")
	default:
		return fmt.Errorf("unknown wrapping algorithm %q (one of: RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, RSA_AES_KEY_WRAP_SHA_1, RSA_AES_KEY_WRAP_SHA_256)", alg)
	}
	if wks == WrappingSM2 {
		return fmt.Errorf("SM2 wrapping keys (China Regions) are not supported: request an RSA_4096 wrapping key")
	}
	if wks.Bytes() == 0 {
		if bits, err := strconv.Atoi(strings.TrimPrefix(string(wks), "RSA_")); err == nil && strings.HasPrefix(string(wks), "RSA_") {
			return fmt.Errorf("the wrapping public key is a %d-bit RSA key, but AWS KMS issues 2048-, 3072- or 4096-bit wrapping keys (RSA_2048, RSA_3072, RSA_4096): "+
				"these are not AWS KMS import parameters, or the public key was replaced; fetch the parameters again", bits)
		}
		return fmt.Errorf("unknown wrapping key spec %q (one of: RSA_2048, RSA_3072, RSA_4096)", wks)
	}
	oaep := alg == RSAESOAEPSHA1 || alg == RSAESOAEPSHA256
	if oaep && info.Spec.isRSA() {
		return fmt.Errorf("%s material (an RSA private key) can only be wrapped with RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256: request new import parameters with one of them", spec)
	}
	if oaep {
		if capacity := hsm.OAEPCapacity(wks.Bytes(), alg.oaepHash()); info.Size > capacity {
			return fmt.Errorf("%s material (%d bytes) is too large for %s with an %s wrapping key (at most %d bytes): request an RSA_AES_KEY_WRAP_* algorithm or a larger wrapping key", spec, info.Size, alg, wks, capacity)
		}
	}
	return nil
}

func (s KeySpec) isRSA() bool { return s == RSA2048 || s == RSA3072 || s == RSA4096 }

// Combination is one (spec, algorithm, wrapping key) triple.
type Combination struct {
	Spec      KeySpec
	Algorithm Algorithm
	Wrapping  WrappingKeySpec
}

// Allowed lists every combination Check accepts, in a stable order.
func Allowed() []Combination {
	var out []Combination
	for _, s := range specNames() {
		for _, a := range Algorithms() {
			for _, w := range WrappingKeySpecs() {
				if Check(KeySpec(s), a, w) == nil {
					out = append(out, Combination{KeySpec(s), a, w})
				}
			}
		}
	}
	return out
}

// CiphertextLen is the range of lengths EncryptedKeyMaterial.bin can have for
// material of spec wrapped with alg under a wrapping key of wks: RSAES_OAEP_*
// gives exactly the modulus size; RSA_AES_KEY_WRAP_* the modulus size, then
// the RFC 5649 wrap of the material (8 bytes more than the material padded
// to 8), exact for raw secrets and bounded for PKCS#8 private keys, whose
// DER length varies by a few bytes.
func CiphertextLen(spec KeySpec, alg Algorithm, wks WrappingKeySpec) (min, max int, err error) {
	if err := Check(spec, alg, wks); err != nil {
		return 0, 0, err
	}
	info, _ := Spec(spec)
	k := wks.Bytes()
	if alg == RSAESOAEPSHA1 || alg == RSAESOAEPSHA256 {
		return k, k, nil
	}
	kwp := func(n int) int { return 8 + (n+7)/8*8 }
	if !info.Private {
		return k + kwp(info.Size), k + kwp(info.Size), nil
	}
	// A PKCS#8 private key is at least half the largest usual encoding
	// (an EC key without its public point), and at most a little more.
	return k + kwp(info.Size/2), k + kwp(info.Size+16), nil
}
