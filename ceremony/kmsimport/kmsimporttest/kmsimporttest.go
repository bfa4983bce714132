// Package kmsimporttest plays AWS KMS's side of a key material import in
// tests. It imports the testing package, so only tests import it.
package kmsimporttest

import (
	"bytes"
	"crypto/aes"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"hash"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/certsign"
	"github.com/keyceremony/keyceremony/ceremony/kmsimport"
	"github.com/keyceremony/keyceremony/hsm"
)

// AWS holds the private halves of the wrapping keys AWS KMS hands out, and
// unwraps what a ceremony produced without our code: the Go standard library
// for RSA-OAEP and openssl for RFC 5649.
type AWS struct {
	Keys map[kmsimport.WrappingKeySpec]*rsa.PrivateKey
}

// NewAWS makes a wrapping key of each spec given, or of every spec AWS
// offers when none is given.
func NewAWS(t testing.TB, specs ...kmsimport.WrappingKeySpec) *AWS {
	t.Helper()
	if len(specs) == 0 {
		specs = kmsimport.WrappingKeySpecs()
	}
	a := &AWS{Keys: map[kmsimport.WrappingKeySpec]*rsa.PrivateKey{}}
	for _, wks := range specs {
		priv, err := rsa.GenerateKey(rand.Reader, wks.Bytes()*8)
		if err != nil {
			t.Fatal(err)
		}
		a.Keys[wks] = priv
	}
	return a
}

// PublicKeyDER is the wrapping public key of spec, as AWS hands it out.
func (a *AWS) PublicKeyDER(t testing.TB, wks kmsimport.WrappingKeySpec) []byte {
	t.Helper()
	spki, err := x509.MarshalPKIXPublicKey(&a.Keys[wks].PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return spki
}

// Parameters writes what `aws kms get-parameters-for-import` prints.
func (a *AWS) Parameters(t testing.TB, path, keyID string, wks kmsimport.WrappingKeySpec, token []byte, validTo time.Time) {
	t.Helper()
	doc, _ := json.MarshalIndent(map[string]string{
		"KeyId":       keyID,
		"ImportToken": base64.StdEncoding.EncodeToString(token),
		"PublicKey":   base64.StdEncoding.EncodeToString(a.PublicKeyDER(t, wks)),
		// As the CLI prints it: microseconds and the local offset.
		"ParametersValidTo": validTo.In(time.FixedZone("PST", -8*3600)).Format("2006-01-02T15:04:05.000000-07:00"),
	}, "", "    ")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Unwrap recovers the key material from EncryptedKeyMaterial.bin as
// ImportKeyMaterial does.
func (a *AWS) Unwrap(t testing.TB, alg kmsimport.Algorithm, wks kmsimport.WrappingKeySpec, ct []byte) []byte {
	t.Helper()
	var h hash.Hash = sha256.New()
	if alg == kmsimport.RSAESOAEPSHA1 || alg == kmsimport.RSAAESKeyWrapSHA1 {
		h = sha1.New()
	}
	priv := a.Keys[wks]
	if alg == kmsimport.RSAESOAEPSHA1 || alg == kmsimport.RSAESOAEPSHA256 {
		pt, err := rsa.DecryptOAEP(h, nil, priv, ct, nil)
		if err != nil {
			t.Fatalf("AWS side: RSA-OAEP decrypt: %v", err)
		}
		return pt
	}
	if len(ct) <= priv.Size() {
		t.Fatalf("AWS side: %d bytes are too short for RSA-AES key wrap", len(ct))
	}
	eph, err := rsa.DecryptOAEP(h, nil, priv, ct[:priv.Size()], nil)
	if err != nil {
		t.Fatalf("AWS side: RSA-OAEP decrypt of the ephemeral key: %v", err)
	}
	in := filepath.Join(t.TempDir(), "kwp.bin")
	if err := os.WriteFile(in, ct[priv.Size():], 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("openssl", "enc", "-d", "-id-aes256-wrap-pad", "-K", hex.EncodeToString(eph), "-iv", "A65959A6", "-in", in).Output()
	if err != nil {
		t.Fatalf("AWS side: openssl enc -d -id-aes256-wrap-pad: %v", err)
	}
	return out
}

// ProveMaterial checks that material is the token key's: the same
// ciphertext of a known block (AES), the same MAC (HMAC), the same public key.
func ProveMaterial(t testing.TB, spec kmsimport.KeySpec, material []byte, key *hsm.Key) {
	t.Helper()
	info, _ := kmsimport.Spec(spec)
	block := []byte("sixteen byte blk")
	switch {
	case spec == kmsimport.SymmetricDefault:
		if len(material) != 32 {
			t.Fatalf("symmetric material is %d bytes, want exactly 32", len(material))
		}
		want, err := key.EncryptBlock(block)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := aes.NewCipher(material)
		got := make([]byte, 16)
		c.Encrypt(got, block)
		if !bytes.Equal(got, want) {
			t.Fatal("the unwrapped material is not the token's AES key")
		}
	case !info.Private:
		if len(material) != info.Size {
			t.Fatalf("HMAC material is %d bytes, want %d", len(material), info.Size)
		}
		want, err := key.MAC(block)
		if err != nil {
			t.Fatal(err)
		}
		hf := map[kmsimport.KeySpec]func() hash.Hash{kmsimport.HMAC224: sha256.New224, kmsimport.HMAC256: sha256.New, kmsimport.HMAC384: sha512.New384, kmsimport.HMAC512: sha512.New}[spec]
		mac := hmac.New(hf, material)
		mac.Write(block)
		if !bytes.Equal(mac.Sum(nil), want) {
			t.Fatal("the unwrapped material is not the token's HMAC key")
		}
	default:
		if !certsign.SamePublicKey(PKCS8Public(t, material), key.Public()) {
			t.Fatal("the unwrapped material is not the token's private key")
		}
	}
}

// PKCS8Public parses PKCS#8 material (exactly one DER structure, as AWS
// requires) and returns its public key.
func PKCS8Public(t testing.TB, material []byte) any {
	t.Helper()
	var seq asn1.RawValue
	if rest, err := asn1.Unmarshal(material, &seq); err != nil || len(rest) != 0 {
		t.Fatalf("PKCS#8 material has %d trailing bytes (%v)", len(rest), err)
	}
	pk, err := x509.ParsePKCS8PrivateKey(material)
	if err != nil {
		t.Fatalf("material is not PKCS#8: %v", err)
	}
	switch k := pk.(type) {
	case *rsa.PrivateKey:
		return &k.PublicKey
	case *ecdsa.PrivateKey:
		return &k.PublicKey
	}
	t.Fatalf("PKCS#8 holds %T", pk)
	return nil
}
