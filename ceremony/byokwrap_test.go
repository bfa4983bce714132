package ceremony

import (
	"bytes"
	"context"
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
	"fmt"
	"hash"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/certsign"
	"github.com/keyceremony/keyceremony/ceremony/kmsimport"
	"github.com/keyceremony/keyceremony/ceremony/online"
	"github.com/keyceremony/keyceremony/ceremony/quorum"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/test/awsfake"
)

// kmsSide plays AWS KMS: it holds the private halves of the wrapping keys it
// hands out, and unwraps what the ceremony produced without our code: the
// Go standard library for RSA-OAEP and openssl for RFC 5649.
type kmsSide struct {
	keys map[kmsimport.WrappingKeySpec]*rsa.PrivateKey
}

func newKMSSide(t *testing.T) *kmsSide {
	k := &kmsSide{keys: map[kmsimport.WrappingKeySpec]*rsa.PrivateKey{}}
	for _, wks := range kmsimport.WrappingKeySpecs() {
		priv, err := rsa.GenerateKey(rand.Reader, wks.Bytes()*8)
		if err != nil {
			t.Fatal(err)
		}
		k.keys[wks] = priv
	}
	return k
}

// parameters writes what `aws kms get-parameters-for-import` prints.
func (k *kmsSide) parameters(t *testing.T, path, keyID string, wks kmsimport.WrappingKeySpec, token []byte, validTo time.Time) {
	t.Helper()
	spki, _ := x509.MarshalPKIXPublicKey(&k.keys[wks].PublicKey)
	doc, _ := json.MarshalIndent(map[string]string{
		"KeyId":       keyID,
		"ImportToken": base64.StdEncoding.EncodeToString(token),
		"PublicKey":   base64.StdEncoding.EncodeToString(spki),
		// As the CLI prints it: microseconds and the local offset.
		"ParametersValidTo": validTo.In(time.FixedZone("PST", -8*3600)).Format("2006-01-02T15:04:05.000000-07:00"),
	}, "", "    ")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (k *kmsSide) unwrap(t *testing.T, alg kmsimport.Algorithm, wks kmsimport.WrappingKeySpec, ct []byte) []byte {
	t.Helper()
	var h hash.Hash = sha256.New()
	if alg == kmsimport.RSAESOAEPSHA1 || alg == kmsimport.RSAAESKeyWrapSHA1 {
		h = sha1.New()
	}
	priv := k.keys[wks]
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
	os.WriteFile(in, ct[priv.Size():], 0o600)
	out, err := exec.Command("openssl", "enc", "-d", "-id-aes256-wrap-pad", "-K", hex.EncodeToString(eph), "-iv", "A65959A6", "-in", in).Output()
	if err != nil {
		t.Fatalf("AWS side: openssl enc -d -id-aes256-wrap-pad: %v", err)
	}
	return out
}

// withToken logs in to the fixture's token with the quorum-derived user PIN,
// as the custodians could, and runs fn.
func (f *rootFixture) withToken(t *testing.T, fn func(tok *hsm.Token)) {
	t.Helper()
	shares := f.w.sharesFromCards("root", "Carol Chen", "Dan Diaz", "Erin Evans")
	sec := unlockWith(t, mustRecord(t, f.record), shares...)
	defer sec.Wipe()
	pin, err := sec.PIN(quorum.UserPIN, 255)
	if err != nil {
		t.Fatal(err)
	}
	defer clear(pin)
	m, err := hsm.Open(f.w.module)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok, err := m.OpenToken(hsm.URI{Serial: f.w.serial})
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	if err := tok.Login(pin); err != nil {
		t.Fatal(err)
	}
	fn(tok)
}

// proveMaterial checks that material is the token key's: the same
// ciphertext of a known block (AES), the same MAC (HMAC), the same public key.
func proveMaterial(t *testing.T, spec kmsimport.KeySpec, material []byte, key *hsm.Key) {
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
		if !certsign.SamePublicKey(pkcs8Public(t, material), key.Public()) {
			t.Fatal("the unwrapped material is not the token's private key")
		}
	}
}

// pkcs8Public parses PKCS#8 material (exactly one DER structure, as AWS
// requires) and returns its public key.
func pkcs8Public(t *testing.T, material []byte) any {
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

func sameMaterial(t *testing.T, spec kmsimport.KeySpec, a, b []byte) bool {
	info, _ := kmsimport.Spec(spec)
	if info.Private {
		return certsign.SamePublicKey(pkcs8Public(t, a), pkcs8Public(t, b))
	}
	return bytes.Equal(a, b)
}

// byokRun is one byok-wrap ceremony of the matrix.
type byokRun struct {
	spec     kmsimport.KeySpec
	alg      kmsimport.Algorithm
	wks      kmsimport.WrappingKeySpec
	generate bool // else the key generated by the spec's first run
	keep     bool
	files    bool // parameters as separate files instead of the JSON
	noHost   bool // allow_host_steps: false
}

func keyLabel(spec kmsimport.KeySpec) string {
	return "kms-" + strings.ToLower(strings.ReplaceAll(string(spec), "_", "-"))
}

// byokScript adapts the shipped byok-wrap template to one run.
func (f *rootFixture) byokScript(t *testing.T, kms *kmsSide, id string, r byokRun, token []byte, validTo time.Time) (*Engine, string, error) {
	t.Helper()
	w := f.w
	dir := filepath.Join(w.dir, "byok-in")
	os.MkdirAll(dir, 0o700)
	arn := "arn:aws:kms:eu-west-1:111122223333:key/" + id
	params := "  parameters: {path: byok-in/" + id + ".json}\n"
	if r.files {
		spki, _ := x509.MarshalPKIXPublicKey(&kms.keys[r.wks].PublicKey)
		os.WriteFile(filepath.Join(dir, id+".WrappingPublicKey.bin"), spki, 0o600)
		os.WriteFile(filepath.Join(dir, id+".ImportToken.b64"), []byte(base64.StdEncoding.EncodeToString(token)+"\n"), 0o600)
		params = fmt.Sprintf("  public_key: {path: byok-in/%s.WrappingPublicKey.bin}\n  import_token: {path: byok-in/%s.ImportToken.b64}\n  key_id: %s\n  parameters_valid_to: %s\n",
			id, id, arn, validTo.UTC().Format(time.RFC3339))
	} else {
		kms.parameters(t, filepath.Join(dir, id+".json"), arn, r.wks, token, validTo)
	}
	key := "    source: generate\n    label: " + keyLabel(r.spec)
	if !r.generate {
		key = `    source: existing
    uri: "pkcs11:object=` + keyLabel(r.spec) + `"`
	}
	edits := []string{
		"id: example-kms-key-2026-import", "id: " + id,
		"  parameters: {path: inputs/import-parameters.json}\n", params,
		"key_spec: SYMMETRIC_DEFAULT", "key_spec: " + string(r.spec),
		"wrapping_algorithm: RSA_AES_KEY_WRAP_SHA_256", "wrapping_algorithm: " + string(r.alg),
		"    source: generate\n    label: example-kms-key-2026", key,
		"keep_in_token: true", fmt.Sprintf("keep_in_token: %v", r.keep),
	}
	if r.noHost {
		edits = append(edits, "allow_host_steps: true", "allow_host_steps: false")
	}
	out := filepath.Join(w.dir, "byok-out", id)
	s := w.writeScript(id+".yaml", "byok-wrap.yaml", "pkcs11:serial="+w.serial, out, edits...)
	e, err := New(s, Options{Prompter: f.quorumPrompter()})
	return e, out, err
}

// TestBYOKWrapEveryAllowedPair runs a byok-wrap ceremony from the shipped
// template for every key spec x wrapping algorithm pair AWS KMS allows,
// playing AWS's side with wrapping keys the test generated, and proves that
// what AWS unwraps from EncryptedKeyMaterial.bin is the token's key.
func TestBYOKWrapEveryAllowedPair(t *testing.T) {
	f := newRootFixture(t, "KMS Token")
	kms := newKMSSide(t)

	// The pairs come from the rules table the code uses; each gets one of
	// the wrapping key sizes AWS allows for it, in turn.
	var runs []byokRun
	sizes := map[[2]string][]kmsimport.WrappingKeySpec{}
	var order [][2]string
	for _, c := range kmsimport.Allowed() {
		k := [2]string{string(c.Spec), string(c.Algorithm)}
		if _, ok := sizes[k]; !ok {
			order = append(order, k)
		}
		sizes[k] = append(sizes[k], c.Wrapping)
	}
	if len(order) != 11*4-3*2 {
		t.Fatalf("%d spec x algorithm pairs allowed, want 38 (RSA material only with RSA_AES_KEY_WRAP_*)", len(order))
	}
	for i, k := range order {
		spec := kmsimport.KeySpec(k[0])
		first := i == 0 || order[i-1][0] != k[0]
		last := i == len(order)-1 || order[i+1][0] != k[0]
		ws := sizes[k]
		runs = append(runs, byokRun{spec: spec, alg: kmsimport.Algorithm(k[1]), wks: ws[i%len(ws)], generate: first, keep: !last, files: i%3 == 1})
	}

	materials := map[kmsimport.KeySpec][]byte{}
	for i, r := range runs {
		id := fmt.Sprintf("byok-%02d-%s", i, strings.ToLower(strings.ReplaceAll(string(r.spec)+"-"+string(r.alg), "_", "-")))
		t.Run(fmt.Sprintf("%s/%s/%s", r.spec, r.alg, r.wks), func(t *testing.T) {
			token := make([]byte, 40)
			rand.Read(token)
			e, out, err := f.byokScript(t, kms, id, r, token, time.Now().Add(23*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			res, err := e.Run(context.Background())
			if err != nil {
				t.Fatalf("ceremony: %v\n%s", err, f.w.log.String())
			}
			rep, err := transcript.Verify(res.Transcript)
			if err != nil {
				t.Fatal(err)
			}
			var m kmsimport.Manifest
			raw, _ := os.ReadFile(filepath.Join(out, kmsimport.ManifestFile))
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			if m.KeySpec != r.spec || m.WrappingAlgorithm != r.alg || m.WrappingKeySpec != r.wks || !strings.HasSuffix(m.KeyID, id) {
				t.Errorf("manifest %+v", m)
			}
			for name, sum := range m.Files {
				data, _ := os.ReadFile(filepath.Join(out, name))
				if fingerprintHex(data) != sum {
					t.Errorf("manifest hash of %s does not match the file", name)
				}
			}
			if got, _ := os.ReadFile(filepath.Join(out, kmsimport.ImportTokenFile)); !bytes.Equal(got, token) {
				t.Error("ImportToken.bin is not the import token AWS issued")
			}
			wrap := entryByStep(t, rep, "wrap")
			recorded := map[string]bool{}
			for _, o := range wrap.Outputs {
				recorded[o.Path] = true
			}
			for _, name := range byokFiles {
				if !recorded[name] {
					t.Errorf("%s is not recorded in the transcript", name)
				}
				if fi, err := os.Stat(filepath.Join(out, name)); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: %v %v", name, fi, err)
				}
			}
			// What was shown before confirming is what ran, host steps included.
			plan := entryByStep(t, rep, "wrap-plan")
			host := 0
			for j, s := range m.WrapSteps {
				if got := plan.Detail(fmt.Sprintf("plan step %d", j+1)); got != planLine(s) {
					t.Errorf("plan step %d confirmed as %q, ran as %q", j+1, got, planLine(s))
				}
				if !s.InToken {
					host++
					if !strings.Contains(plan.Detail(fmt.Sprintf("plan step %d", j+1)), "IN HOST MEMORY") {
						t.Errorf("host step %d not marked", j+1)
					}
				}
			}
			if (host > 0) != m.MaterialInHostMemory || (host > 0) != strings.HasPrefix(wrap.Detail("material or ephemeral key in host memory"), "yes") {
				t.Errorf("host steps %d, manifest %v, transcript %q", host, m.MaterialInHostMemory, wrap.Detail("material or ephemeral key in host memory"))
			}
			// SoftHSM 2.6 refuses OAEP with SHA-256: the SHA-256 variants
			// always need a host step; AES-256 under the SHA-1 ones never does.
			if strings.HasSuffix(string(r.alg), "SHA_256") && host == 0 {
				t.Errorf("%s ran entirely in SoftHSM, which cannot do OAEP-SHA-256", r.alg)
			}
			if r.spec == kmsimport.SymmetricDefault && strings.HasSuffix(string(r.alg), "SHA_1") && host != 0 {
				t.Errorf("AES-256 under %s needed %d host steps; SoftHSM does it in the token", r.alg, host)
			}

			ct, _ := os.ReadFile(filepath.Join(out, kmsimport.EncryptedKeyMaterialFile))
			material := kms.unwrap(t, r.alg, r.wks, ct)
			defer clear(material)
			if r.generate {
				f.withToken(t, func(tok *hsm.Token) {
					k, err := tok.FindKey(hsm.Filter{Label: keyLabel(r.spec), Class: map[bool]hsm.KeyClass{true: hsm.ClassPrivateKey, false: hsm.ClassSecretKey}[strings.HasPrefix(string(r.spec), "RSA") || strings.HasPrefix(string(r.spec), "ECC")]})
					if err != nil {
						t.Fatal(err)
					}
					if !k.Sensitive() || !k.Extractable() {
						t.Errorf("BYOK key sensitive=%v extractable=%v", k.Sensitive(), k.Extractable())
					}
					proveMaterial(t, r.spec, material, k)
				})
				materials[r.spec] = bytes.Clone(material)
				// A secret key is identified in the transcript by its check value.
				if kcv := entryByStep(t, rep, "byok-key").Detail("key check value"); r.spec == kmsimport.SymmetricDefault || strings.HasPrefix(string(r.spec), "HMAC") {
					if want := checkValue(r.spec, material); !strings.HasPrefix(kcv, want+" (") {
						t.Errorf("key check value %q, want %s", kcv, want)
					}
				}
			} else if !sameMaterial(t, r.spec, materials[r.spec], material) {
				t.Fatal("the existing key's material is not the key generated earlier")
			}
			left := -1
			f.withToken(t, func(tok *hsm.Token) {
				keys, _ := tok.FindKeys(hsm.Filter{Label: keyLabel(r.spec)})
				left = len(keys)
			})
			copyEntry := entryByStep(t, rep, "token-copy")
			if r.keep {
				if left == 0 || !strings.Contains(copyEntry.Detail("kept in token"), keyLabel(r.spec)) {
					t.Errorf("the escrow copy is gone (%d keys) or not recorded (%q)", left, copyEntry.Detail("kept in token"))
				}
			} else if left != 0 || !strings.Contains(copyEntry.Detail("destroyed"), keyLabel(r.spec)) || copyEntry.Detail("check") == "" {
				t.Errorf("the token copy was not destroyed (%d keys left) or not recorded (%q)", left, copyEntry.Detail("destroyed"))
			}
		})
	}
}

// TestBYOKRefusals: expired or impossible parameters, and a composition the
// script does not allow, are refused with what to do, before anything is wrapped.
func TestBYOKRefusals(t *testing.T) {
	f := newRootFixture(t, "KMS Token")
	kms := &kmsSide{keys: map[kmsimport.WrappingKeySpec]*rsa.PrivateKey{}}
	for _, wks := range []kmsimport.WrappingKeySpec{kmsimport.WrappingRSA2048} {
		priv, _ := rsa.GenerateKey(rand.Reader, 2048)
		kms.keys[wks] = priv
	}
	token := []byte("opaque import token")
	cases := []struct {
		name    string
		run     byokRun
		validTo time.Time
		want    []string
	}{
		{"expired parameters", byokRun{spec: kmsimport.SymmetricDefault, alg: kmsimport.RSAESOAEPSHA256, wks: kmsimport.WrappingRSA2048, generate: true, keep: true},
			time.Now().Add(-time.Minute), []string{"expired at", "run get-parameters-for-import again"}},
		{"parameters about to expire", byokRun{spec: kmsimport.SymmetricDefault, alg: kmsimport.RSAESOAEPSHA256, wks: kmsimport.WrappingRSA2048, generate: true, keep: true},
			time.Now().Add(20 * time.Minute), []string{"less than 1h0m0s from now"}},
		{"parameters valid for more than 24 hours", byokRun{spec: kmsimport.SymmetricDefault, alg: kmsimport.RSAESOAEPSHA256, wks: kmsimport.WrappingRSA2048, generate: true, keep: true, files: true},
			time.Now().Add(72 * time.Hour), []string{"more than 24 hours ahead"}},
		{"P-521 under OAEP with an RSA_2048 wrapping key", byokRun{spec: kmsimport.ECCNISTP521, alg: kmsimport.RSAESOAEPSHA256, wks: kmsimport.WrappingRSA2048, generate: true, keep: true},
			time.Now().Add(23 * time.Hour), []string{"ECC_NIST_P521 material (241 bytes) is too large for RSAES_OAEP_SHA_256 with an RSA_2048 wrapping key (at most 190 bytes): request an RSA_AES_KEY_WRAP_* algorithm or a larger wrapping key"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, out, err := f.byokScript(t, kms, fmt.Sprintf("refused-%d", i), tc.run, token, tc.validTo)
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v lacks %q", err, w)
				}
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("a refused ceremony created its output directory")
			}
		})
	}

	t.Run("parameters requested for another algorithm", func(t *testing.T) {
		r := byokRun{spec: kmsimport.SymmetricDefault, alg: kmsimport.RSAESOAEPSHA1, wks: kmsimport.WrappingRSA2048, generate: true, keep: true}
		e, _, err := f.byokScript(t, kms, "bundle-mismatch", r, token, time.Now().Add(23*time.Hour))
		if err != nil {
			t.Fatalf("the get-parameters-for-import JSON alone is accepted: %v", err)
		}
		// The connected side's import-parameters.json also names what the
		// parameters were requested for.
		p := filepath.Join(f.w.dir, "byok-in", "bundle-mismatch.json")
		var doc map[string]any
		raw, _ := os.ReadFile(p)
		json.Unmarshal(raw, &doc)
		doc["KeySpec"], doc["WrappingAlgorithm"], doc["WrappingKeySpec"] = "SYMMETRIC_DEFAULT", "RSA_AES_KEY_WRAP_SHA_256", "RSA_2048"
		raw, _ = json.Marshal(doc)
		os.WriteFile(p, raw, 0o600)
		_, err = New(e.Script(), Options{Prompter: f.quorumPrompter()})
		if err == nil || !strings.Contains(err.Error(), "byok.wrapping_algorithm: the parameters were requested for RSA_AES_KEY_WRAP_SHA_256, the script says RSAES_OAEP_SHA_1") {
			t.Fatalf("mismatch: %v", err)
		}
	})

	t.Run("host steps the script does not allow", func(t *testing.T) {
		r := byokRun{spec: kmsimport.SymmetricDefault, alg: kmsimport.RSAESOAEPSHA256, wks: kmsimport.WrappingRSA2048, generate: true, keep: false, noHost: true}
		e, out, err := f.byokScript(t, kms, "no-host", r, token, time.Now().Add(23*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.Run(context.Background())
		if err == nil || !strings.Contains(err.Error(), "would run in host memory, which the script does not allow (allow_host_steps: false)") {
			t.Fatalf("host steps: %v", err)
		}
		if _, err := os.Stat(filepath.Join(out, kmsimport.EncryptedKeyMaterialFile)); err == nil {
			t.Error("material was wrapped although the plan was refused")
		}
		f.withToken(t, func(tok *hsm.Token) {
			if keys, _ := tok.FindKeys(hsm.Filter{Label: keyLabel(r.spec)}); len(keys) != 0 {
				t.Error("a key was generated for a wrap the script does not allow")
			}
		})
		rep, err := transcript.Verify(filepath.Join(out, "no-host.transcript.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		if last := rep.Final(); last.Step != "wrap-plan" || last.OK() {
			t.Errorf("last entry %s %s", last.Step, last.Result)
		}
	})

	t.Run("everything in the token, allowed without host steps", func(t *testing.T) {
		r := byokRun{spec: kmsimport.SymmetricDefault, alg: kmsimport.RSAESOAEPSHA1, wks: kmsimport.WrappingRSA2048, generate: true, keep: true, noHost: true}
		e, out, err := f.byokScript(t, kms, "in-token", r, token, time.Now().Add(23*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.Run(context.Background())
		if err != nil {
			t.Fatalf("%v\n%s", err, f.w.log.String())
		}
		rep, _ := transcript.Verify(res.Transcript)
		if got := entryByStep(t, rep, "wrap-plan").Detail("host memory"); got != "none: every step runs in the token" {
			t.Errorf("plan host memory %q", got)
		}
		ct, _ := os.ReadFile(filepath.Join(out, kmsimport.EncryptedKeyMaterialFile))
		material := kms.unwrap(t, r.alg, r.wks, ct)
		f.withToken(t, func(tok *hsm.Token) {
			k, err := tok.FindKey(hsm.Filter{Label: keyLabel(r.spec), Class: hsm.ClassSecretKey})
			if err != nil {
				t.Fatal(err)
			}
			proveMaterial(t, r.spec, material, k)
		})
	})
}

// TestBYOKWithConnectedSide: the connected side prepares the import against
// a local KMS (keyceremony's online package writes import-parameters.json),
// the ceremony reads that file as it is, and the connected side imports the
// ceremony's output directory: the KMS ends up with the token's key.
func TestBYOKWithConnectedSide(t *testing.T) {
	f := newRootFixture(t, "KMS Token")
	srv := awsfake.NewKMS(t)
	awsfake.IsolateEnv(t)
	ctx := context.Background()
	k, err := online.NewKMS(ctx, online.Connection{Region: "eu-west-1", Endpoint: srv.URL, RootCAs: srv.CertPool()})
	if err != nil {
		t.Fatal(err)
	}
	inputs := filepath.Join(f.w.dir, "inputs")
	os.MkdirAll(inputs, 0o700)
	b, err := k.PrepareBYOK(ctx, online.PrepareRequest{KeySpec: kmsimport.SymmetricDefault, Algorithm: kmsimport.RSAAESKeyWrapSHA256, WrappingKeySpec: kmsimport.WrappingRSA3072, Description: "BYOK ceremony test"}, inputs)
	if err != nil {
		t.Fatal(err)
	}
	// The shipped template names inputs/import-parameters.json.
	out := filepath.Join(f.w.dir, "byok-output")
	s := f.w.writeScript("byok.yaml", "byok-wrap.yaml", "pkcs11:serial="+f.w.serial, out)
	res, err := f.w.run(s, f.quorumPrompter(), Options{})
	if err != nil {
		t.Fatalf("ceremony: %v\n%s", err, f.w.log.String())
	}
	if !strings.Contains(f.w.log.String(), "3. Run there: aws kms import-key-material") || !strings.Contains(f.w.log.String(), "Import before") {
		t.Error("the handover did not show the connected side's instructions")
	}
	imp, err := k.ImportBYOK(ctx, out, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if imp.KeyState != "Enabled" || srv.State(b.KeyARN) != "Enabled" {
		t.Fatalf("import: %+v", imp)
	}
	f.withToken(t, func(tok *hsm.Token) {
		key, err := tok.FindKey(hsm.Filter{Label: "example-kms-key-2026", Class: hsm.ClassSecretKey})
		if err != nil {
			t.Fatal(err)
		}
		proveMaterial(t, kmsimport.SymmetricDefault, srv.Material(b.KeyARN), key)
	})
	rep, err := transcript.Verify(res.Transcript)
	if err != nil {
		t.Fatal(err)
	}
	in := entryByStep(t, rep, "inputs")
	if in.Detail("kms key") != b.KeyARN || in.Detail("wrapping key spec") != "RSA_3072" {
		t.Errorf("inputs recorded %q %q", in.Detail("kms key"), in.Detail("wrapping key spec"))
	}
	vt, err := time.Parse(time.RFC3339, in.Detail("material valid to"))
	if err != nil || vt.Before(time.Now().Add(364*24*time.Hour)) || vt.After(time.Now().Add(365*24*time.Hour)) {
		t.Errorf("material valid to %v (%v): want 365 days from the ceremony", vt, err)
	}
	if h := entryByStep(t, rep, "handover"); h.Detail("import command") == "" || !strings.Contains(h.Detail("files to carry"), kmsimport.EncryptedKeyMaterialFile) {
		t.Errorf("handover recorded %+v", h.Details)
	}
	shares := f.w.sharesFromCards("root", custodians...)
	sec := unlockWith(t, mustRecord(t, f.record), shares[0], shares[1], shares[2])
	pin, _ := sec.PIN(quorum.UserPIN, 255)
	so, _ := sec.PIN(quorum.SOPIN, 255)
	assertNoSecrets(t, f.w, shares, [][]byte{pin, so}, out, f.w.tmp)
}

// checkValue computes a key check value from the material, as the ceremony
// records it from the token.
func checkValue(spec kmsimport.KeySpec, material []byte) string {
	zero := make([]byte, 16)
	if spec == kmsimport.SymmetricDefault {
		c, _ := aes.NewCipher(material)
		out := make([]byte, 16)
		c.Encrypt(out, zero)
		return hex.EncodeToString(out[:3])
	}
	hf := map[kmsimport.KeySpec]func() hash.Hash{kmsimport.HMAC224: sha256.New224, kmsimport.HMAC256: sha256.New, kmsimport.HMAC384: sha512.New384, kmsimport.HMAC512: sha512.New}[spec]
	mac := hmac.New(hf, material)
	mac.Write(zero)
	return hex.EncodeToString(mac.Sum(nil)[:3])
}

func hmacOf(spec kmsimport.KeySpec, key, data []byte) []byte {
	hf := map[kmsimport.KeySpec]func() hash.Hash{kmsimport.HMAC224: sha256.New224, kmsimport.HMAC256: sha256.New, kmsimport.HMAC384: sha512.New384, kmsimport.HMAC512: sha512.New}[spec]
	mac := hmac.New(hf, key)
	mac.Write(data)
	return mac.Sum(nil)
}
