package kmsimport_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/kmsimport"
	"github.com/keyceremony/keyceremony/ceremony/kmsimport/kmsimporttest"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/softhsm/softhsmtest"
)

func TestRules(t *testing.T) {
	tests := []struct {
		spec kmsimport.KeySpec
		alg  kmsimport.Algorithm
		wks  kmsimport.WrappingKeySpec
		ok   bool
		msg  string // part of the refusal
	}{
		{kmsimport.SymmetricDefault, kmsimport.RSAESOAEPSHA256, kmsimport.WrappingRSA2048, true, ""},
		{kmsimport.HMAC512, kmsimport.RSAESOAEPSHA1, kmsimport.WrappingRSA2048, true, ""},
		{kmsimport.RSA2048, kmsimport.RSAESOAEPSHA256, kmsimport.WrappingRSA4096, false, "RSA_AES_KEY_WRAP"},
		{kmsimport.RSA4096, kmsimport.RSAAESKeyWrapSHA256, kmsimport.WrappingRSA2048, true, ""},
		// AWS: P-521 material, an RSA_2048 wrapping key and RSAES_OAEP_* do not go together.
		{kmsimport.ECCNISTP521, kmsimport.RSAESOAEPSHA1, kmsimport.WrappingRSA2048, false, "too large"},
		{kmsimport.ECCNISTP521, kmsimport.RSAESOAEPSHA256, kmsimport.WrappingRSA2048, false, "too large"},
		{kmsimport.ECCNISTP521, kmsimport.RSAESOAEPSHA256, kmsimport.WrappingRSA3072, true, ""},
		{kmsimport.ECCNISTP384, kmsimport.RSAESOAEPSHA256, kmsimport.WrappingRSA2048, true, ""},
		{kmsimport.ECCNISTP521, kmsimport.RSAAESKeyWrapSHA1, kmsimport.WrappingRSA2048, true, ""},
		{kmsimport.SymmetricDefault, kmsimport.SM2PKE, kmsimport.WrappingRSA2048, false, "China"},
		{kmsimport.SymmetricDefault, kmsimport.RSAESPKCS1V15, kmsimport.WrappingRSA2048, false, "no longer"},
		{kmsimport.SymmetricDefault, kmsimport.RSAESOAEPSHA256, kmsimport.WrappingSM2, false, "SM2"},
		{"SYMMETRIC_128", kmsimport.RSAESOAEPSHA256, kmsimport.WrappingRSA2048, false, "cannot receive"},
	}
	for _, tc := range tests {
		err := kmsimport.Check(tc.spec, tc.alg, tc.wks)
		if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), tc.msg)) {
			t.Errorf("Check(%s, %s, %s) = %v, want ok=%v containing %q", tc.spec, tc.alg, tc.wks, err, tc.ok, tc.msg)
		}
	}
	// 11 specs x 4 algorithms x 3 wrapping keys, less RSA material under OAEP
	// (3x2x3) and P-521 under OAEP with RSA_2048 (2).
	if got, want := len(kmsimport.Allowed()), 11*4*3-3*2*3-2; got != want {
		t.Errorf("%d allowed combinations, want %d", got, want)
	}
}

func TestRequestValidation(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	priv, _ := rsa.GenerateKey(rand.Reader, 2048)
	spki, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	fresh := func() *kmsimport.Parameters {
		p, err := kmsimport.ParseParametersFiles("1234abcd-12ab-34cd-56ef-1234567890ab", spki, []byte("token"), now.Add(20*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	expired := fresh()
	expired.ParametersValidTo = now.Add(-time.Minute)
	tests := []struct {
		name string
		req  kmsimport.Request
		msgs []string
	}{
		{"valid", kmsimport.Request{Params: fresh(), Spec: kmsimport.SymmetricDefault, Algorithm: kmsimport.RSAAESKeyWrapSHA256, Import: kmsimport.Import{ExpirationModel: kmsimport.KeyMaterialExpires, ValidTo: now.Add(90 * 24 * time.Hour)}}, nil},
		{"expired parameters", kmsimport.Request{Params: expired, Spec: kmsimport.SymmetricDefault, Algorithm: kmsimport.RSAESOAEPSHA256, Import: kmsimport.Import{ExpirationModel: kmsimport.KeyMaterialDoesNotExpire}}, []string{"expired", "get-parameters-for-import"}},
		{"valid-to too far", kmsimport.Request{Params: fresh(), Spec: kmsimport.SymmetricDefault, Algorithm: kmsimport.RSAESOAEPSHA256, Import: kmsimport.Import{ExpirationModel: kmsimport.KeyMaterialExpires, ValidTo: now.Add(400 * 24 * time.Hour)}}, []string{"365 days"}},
		{"valid-to past", kmsimport.Request{Params: fresh(), Spec: kmsimport.SymmetricDefault, Algorithm: kmsimport.RSAESOAEPSHA256, Import: kmsimport.Import{ExpirationModel: kmsimport.KeyMaterialExpires, ValidTo: now.Add(-time.Hour)}}, []string{"in the past"}},
		{"new material for HMAC", kmsimport.Request{Params: fresh(), Spec: kmsimport.HMAC256, Algorithm: kmsimport.RSAESOAEPSHA256, Import: kmsimport.Import{ExpirationModel: kmsimport.KeyMaterialDoesNotExpire, ImportType: kmsimport.ImportTypeNew}}, []string{"only for SYMMETRIC_DEFAULT"}},
		{"all errors at once", kmsimport.Request{Params: expired, Spec: kmsimport.RSA2048, Algorithm: kmsimport.RSAESOAEPSHA1, Import: kmsimport.Import{ExpirationModel: "SOMETIMES"}}, []string{"expired", "RSA_AES_KEY_WRAP", "SOMETIMES"}},
	}
	for _, tc := range tests {
		errs := tc.req.Validate(now)
		if len(tc.msgs) == 0 && len(errs) > 0 {
			t.Errorf("%s: unexpected %v", tc.name, errs)
		}
		joined := fmt.Sprint(errs)
		for _, m := range tc.msgs {
			if !strings.Contains(joined, m) {
				t.Errorf("%s: errors %q lack %q", tc.name, joined, m)
			}
		}
	}
}

func TestParseParametersJSON(t *testing.T) {
	priv, _ := rsa.GenerateKey(rand.Reader, 3072)
	spki, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	for _, validTo := range []string{`"2026-11-24T13:02:02.144000-08:00"`, `1795611722.144`} {
		doc := fmt.Sprintf(`{"KeyId":"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab","ImportToken":%q,"PublicKey":%q,"ParametersValidTo":%s}`,
			base64.StdEncoding.EncodeToString([]byte{1, 2, 3, 250}), base64.StdEncoding.EncodeToString(spki), validTo)
		p, err := kmsimport.ParseParametersJSON([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", validTo, err)
		}
		if p.WrappingKeySpec() != kmsimport.WrappingRSA3072 || !bytes.Equal(p.ImportToken, []byte{1, 2, 3, 250}) || p.ParametersValidTo.Year() != 2026 {
			t.Errorf("parsed %+v", p)
		}
	}
	if _, err := kmsimport.ParseParametersJSON([]byte(`{"KeyId":"k"}`)); err == nil || !strings.Contains(err.Error(), "missing ImportToken, ParametersValidTo, PublicKey") {
		t.Errorf("missing fields: %v", err)
	}
	doc := func(spki []byte, validTo string) []byte {
		return []byte(fmt.Sprintf(`{"KeyId":"k","ImportToken":"AQID","PublicKey":%q,"ParametersValidTo":%s}`, base64.StdEncoding.EncodeToString(spki), validTo))
	}
	// The CLI's epoch seconds are taken exactly, without float noise.
	p, err := kmsimport.ParseParametersJSON(doc(spki, "1795611722.144"))
	if err != nil || !p.ParametersValidTo.Equal(time.Unix(1795611722, 144000000)) {
		t.Errorf("epoch 1795611722.144 parsed as %s (%v)", p.ParametersValidTo.Format(time.RFC3339Nano), err)
	}
	// Wrapping keys AWS never issues are named for what they are.
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecSPKI, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if _, err := kmsimport.ParseParametersJSON(doc(ecSPKI, "1795611722")); err == nil || !strings.Contains(err.Error(), "an EC key on P-256") || strings.Contains(err.Error(), "*ecdsa") {
		t.Errorf("EC wrapping key: %v", err)
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallSPKI, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	p, err = kmsimport.ParseParametersJSON(doc(smallSPKI, "1795611722"))
	if err != nil {
		t.Fatal(err)
	}
	err = kmsimport.Check(kmsimport.SymmetricDefault, kmsimport.RSAAESKeyWrapSHA256, p.WrappingKeySpec())
	if err == nil || !strings.Contains(err.Error(), "a 1024-bit RSA key") || strings.Contains(err.Error(), `"RSA_1024"`) {
		t.Errorf("1024-bit wrapping key: %v", err)
	}
}

// TestEveryAllowedCombination wraps token keys of every spec with every
// algorithm and wrapping key size AWS allows, unwraps them as AWS would, and
// proves the material is the token's key.
func TestEveryAllowedCombination(t *testing.T) {
	tok := softhsmtest.LoggedIn(t, "BYOK")
	ctx := context.Background()
	now := time.Now()
	aws := kmsimporttest.NewAWS(t)
	keys := map[kmsimport.KeySpec]*hsm.Key{}
	for _, c := range kmsimport.Allowed() {
		c := c
		t.Run(fmt.Sprintf("%s/%s/%s", c.Spec, c.Algorithm, c.Wrapping), func(t *testing.T) {
			info, _ := kmsimport.Spec(c.Spec)
			key := keys[c.Spec]
			if key == nil {
				var err error
				key, err = tok.GenerateKey(ctx, hsm.KeySpec{Type: info.TokenType, Label: "byok-" + string(c.Spec), Extractable: true})
				if err != nil {
					t.Fatal(err)
				}
				keys[c.Spec] = key
			}
			spki := aws.PublicKeyDER(t, c.Wrapping)
			params, err := kmsimport.ParseParametersFiles("1234abcd-12ab-34cd-56ef-1234567890ab", spki, []byte("import-token"), now.Add(23*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			req := kmsimport.Request{Params: params, Spec: c.Spec, Algorithm: c.Algorithm, Import: kmsimport.Import{ExpirationModel: kmsimport.KeyMaterialDoesNotExpire}}
			res, err := kmsimport.Wrap(ctx, tok, key, req, hsm.WrapOptions{AllowHostSteps: true}, now)
			if err != nil {
				t.Fatal(err)
			}
			material := aws.Unwrap(t, c.Algorithm, c.Wrapping, res.EncryptedKeyMaterial)
			defer clear(material)
			kmsimporttest.ProveMaterial(t, c.Spec, material, key)
			// The plan shown beforehand is what ran.
			if plan, err := kmsimport.Plan(tok, c.Algorithm, c.Spec, c.Wrapping); err != nil || len(plan) != len(res.Manifest.WrapSteps) {
				t.Errorf("plan %v, ran %v", plan, res.Manifest.WrapSteps)
			}
		})
	}
}

func TestWriteOutputs(t *testing.T) {
	mod := softhsmtest.NewToken(t, "BYOK", []byte("so-pin-9999"), []byte("user-pin-9999"))
	m, _ := hsm.Open(mod)
	defer m.Close()
	tok, _ := m.OpenToken(hsm.URI{Token: "BYOK"})
	defer tok.Close()
	tok.Login([]byte("user-pin-9999"))
	ctx := context.Background()
	now := time.Now()
	key, err := tok.GenerateKey(ctx, hsm.KeySpec{Type: hsm.AES256, Label: "import-me", Extractable: true})
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := rsa.GenerateKey(rand.Reader, 2048)
	spki, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	params, _ := kmsimport.ParseParametersFiles("arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", spki, []byte("opaque-import-token"), now.Add(20*time.Hour))
	validTo := now.Add(180 * 24 * time.Hour).Truncate(time.Second)
	req := kmsimport.Request{Params: params, Spec: kmsimport.SymmetricDefault, Algorithm: kmsimport.RSAESOAEPSHA1,
		Import: kmsimport.Import{ExpirationModel: kmsimport.KeyMaterialExpires, ValidTo: validTo, ImportType: kmsimport.ImportTypeNew}}
	res, err := kmsimport.Wrap(ctx, tok, key, req, hsm.WrapOptions{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.MaterialInHostMemory {
		t.Error("OAEP-SHA-1 on SoftHSM should run inside the token")
	}
	dir := t.TempDir()
	paths, err := kmsimport.WriteOutputs(dir, res, params.ImportToken)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v", p, st.Mode(), err)
		}
	}
	var man kmsimport.Manifest
	b, _ := os.ReadFile(filepath.Join(dir, kmsimport.ManifestFile))
	if err := json.Unmarshal(b, &man); err != nil {
		t.Fatal(err)
	}
	for name, sum := range man.Files {
		data, _ := os.ReadFile(filepath.Join(dir, name))
		if got := sha256.Sum256(data); fmt.Sprintf("%x", got) != sum {
			t.Errorf("manifest hash of %s does not match the file", name)
		}
	}
	for _, want := range []string{"aws kms import-key-material", "--key-id arn:aws:kms:eu-west-1:111122223333:key/1234abcd", "fileb://EncryptedKeyMaterial.bin", "--valid-to " + validTo.UTC().Format(time.RFC3339), "--import-type NEW_KEY_MATERIAL"} {
		if !strings.Contains(man.Command, want) {
			t.Errorf("command %q lacks %q", man.Command, want)
		}
	}
	instr, _ := os.ReadFile(filepath.Join(dir, kmsimport.InstructionsFile))
	if !strings.Contains(string(instr), "rotate-key-on-demand") || !strings.Contains(string(instr), man.Files[kmsimport.EncryptedKeyMaterialFile]) {
		t.Errorf("instructions incomplete:\n%s", instr)
	}
	// Outputs are never overwritten.
	if _, err := kmsimport.WriteOutputs(dir, res, params.ImportToken); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second write: %v", err)
	}
	// A key made non-extractable cannot be exported at all.
	locked, _ := tok.GenerateKey(ctx, hsm.KeySpec{Type: hsm.AES256, Label: "locked"})
	if _, err := kmsimport.Wrap(ctx, tok, locked, req, hsm.WrapOptions{}, now); err == nil || !strings.Contains(err.Error(), "non-extractable") {
		t.Errorf("non-extractable key: %v", err)
	}
}
