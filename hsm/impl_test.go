package hsm_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/hsm"
)

// implementation is one PKCS#11 implementation the hsm tests run against,
// with what it is expected to do. Each is declared in a file of its own
// (softhsm_test.go, tpm2_test.go), as smallstep's kms/pkcs11 keeps one file
// per device; the tests in this file run against every one of them.
type implementation struct {
	name string
	// token gives the test a fresh module of its own with one token labelled
	// label, open and logged in as the user with userPIN.
	token func(t *testing.T, label string) *hsm.Token
	// addToken initialises one more token labelled label on the same module.
	addToken func(t *testing.T, tok *hsm.Token, label string)
	// refuses are the key types it cannot generate, each with what the
	// refusal must name.
	refuses map[hsm.KeyType]string
	// unmet are the restrictions it does not honour on a signing key pair
	// ("private CKA_DECRYPT"), sorted.
	unmet []string
	// privateUses is what the token reports a generated signing key may do.
	privateUses []string
	// sameSerial: every token of the module reports the same serial.
	sameSerial bool
	// wraps says whether it can wrap key material at all.
	wraps bool
}

func implementations() []implementation { return []implementation{softHSM, tpm2PKCS11} }

// forEach runs f as a subtest for each implementation.
func forEach(t *testing.T, f func(t *testing.T, impl implementation)) {
	for _, impl := range implementations() {
		t.Run(impl.name, func(t *testing.T) { f(t, impl) })
	}
}

// TestImplKeyGeneration: every type the implementation supports is
// generated, read back and (when it signs) verified with the standard
// library; every other type is refused before anything is made, naming the
// capability that is missing; and the token lists every key afterwards.
func TestImplKeyGeneration(t *testing.T) {
	forEach(t, func(t *testing.T, impl implementation) {
		tok := impl.token(t, "Keys")
		ctx := context.Background()
		var made []string
		for _, name := range hsm.KeyTypes() {
			kt, _ := hsm.ParseKeyType(name)
			label := "k-" + name
			k, err := tok.GenerateKey(ctx, hsm.KeySpec{Type: kt, Label: label})
			if want, refused := impl.refuses[kt]; refused {
				var ce *hsm.CapabilityError
				if !errors.As(err, &ce) || !strings.Contains(err.Error(), want) {
					t.Errorf("%s: err = %v, want a CapabilityError naming %q", name, err, want)
				}
				if n, _ := tok.ObjectsWithLabelForTest(label); n != 0 {
					t.Errorf("%s: a refused generation left %d objects", name, n)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			made = append(made, label)
			if k.Type() != kt || !k.Sensitive() || k.Extractable() {
				t.Errorf("%s: read back type %s sensitive=%v extractable=%v", name, k.Type(), k.Sensitive(), k.Extractable())
			}
			if !kt.Symmetric() {
				verifySigner(t, k)
			}
		}
		keys, err := tok.FindKeys(hsm.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		var listed []string
		for _, k := range keys {
			if k.Problem() != nil {
				t.Errorf("key %s cannot be read: %v", k.Label(), k.Problem())
			}
			listed = append(listed, k.Label())
		}
		sort.Strings(listed)
		sort.Strings(made)
		if !slices.Equal(listed, made) {
			t.Errorf("token lists %v, generated %v", listed, made)
		}
	})
}

// verifySigner signs a digest with the key and verifies it with its public key.
func verifySigner(t *testing.T, k *hsm.Key) {
	t.Helper()
	s, err := k.Signer()
	if err != nil {
		t.Fatalf("%s: %v", k.Label(), err)
	}
	msg := []byte("signed by " + k.Label())
	d := sha256.Sum256(msg)
	switch pub := s.Public().(type) {
	case *rsa.PublicKey:
		sig, err := s.Sign(rand.Reader, d[:], crypto.SHA256)
		if err != nil || rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig) != nil {
			t.Errorf("%s: RSA signature: %v", k.Label(), err)
		}
	case *ecdsa.PublicKey:
		sig, err := s.Sign(rand.Reader, d[:], crypto.SHA256)
		if err != nil || !ecdsa.VerifyASN1(pub, d[:], sig) {
			t.Errorf("%s: ECDSA signature: %v", k.Label(), err)
		}
	case ed25519.PublicKey:
		sig, err := s.Sign(rand.Reader, msg, crypto.Hash(0))
		if err != nil || !ed25519.Verify(pub, msg, sig) {
			t.Errorf("%s: Ed25519 signature: %v", k.Label(), err)
		}
	default:
		t.Errorf("%s: public key %T", k.Label(), pub)
	}
}

// TestImplLeastPrivilege: a signing key is made with every use attribute
// set, the attributes are read back, and what the token did not honour is
// named; OpenSC's pkcs11-tool then tries to decrypt with the private key,
// which must fail exactly where the token honoured CKA_DECRYPT false. A key
// made by pkcs11-tool itself (the token's defaults) is the control: on both
// implementations it decrypts, so the refusal is ours.
func TestImplLeastPrivilege(t *testing.T) {
	forEach(t, func(t *testing.T, impl implementation) {
		tok := impl.token(t, "Least")
		ctx := context.Background()
		k, err := tok.GenerateKey(ctx, hsm.KeySpec{Type: hsm.RSA2048, Label: "root-key"})
		if err != nil {
			t.Fatal(err)
		}
		var unmet []string
		for _, c := range k.Unmet() {
			unmet = append(unmet, c.Object+" "+c.Name)
		}
		sort.Strings(unmet)
		if !slices.Equal(unmet, impl.unmet) {
			t.Errorf("unmet restrictions %v, want %v (checks: %v)", unmet, impl.unmet, k.AttributeChecks())
		}
		names := map[string]bool{}
		for _, c := range k.AttributeChecks() {
			names[c.Object+" "+c.Name] = true
		}
		for _, want := range []string{"private CKA_SIGN", "private CKA_DECRYPT", "private CKA_UNWRAP", "private CKA_SIGN_RECOVER",
			"private CKA_DERIVE", "private CKA_MODIFIABLE", "private CKA_COPYABLE", "public CKA_ENCRYPT", "public CKA_WRAP", "public CKA_VERIFY"} {
			if !names[want] {
				t.Errorf("%s was not set and read back", want)
			}
		}
		found, err := tok.FindKey(hsm.Filter{Label: "root-key", Class: hsm.ClassPrivateKey})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(found.Uses(), impl.privateUses) {
			t.Errorf("the token says the key may %v, want %v", found.Uses(), impl.privateUses)
		}

		pin := string(userPINFor("Least"))
		_, decryptErr := pkcs11ToolDecrypt(t, tok, pin, k.ID(), k.Public().(*rsa.PublicKey))
		decrypts := slices.Contains(impl.privateUses, "decrypt")
		if (decryptErr == nil) != decrypts {
			t.Errorf("pkcs11-tool --decrypt with our key: err = %v, want it to succeed only if the token cannot restrict decryption (%v)", decryptErr, decrypts)
		}
		// The control: a key pair made by pkcs11-tool with the token's
		// defaults, its public key read by pkcs11-tool too (tpm2-pkcs11 shows
		// another process's new objects only after a new login).
		tool(t, tok, "--login", "--pin", pin, "--keypairgen", "--key-type", "rsa:2048", "--label", "control", "--id", "c0c0")
		spki := filepath.Join(t.TempDir(), "control.der")
		tool(t, tok, "--read-object", "--type", "pubkey", "--id", "c0c0", "--output-file", spki)
		der, err := os.ReadFile(spki)
		if err != nil {
			t.Fatal(err)
		}
		control, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pkcs11ToolDecrypt(t, tok, pin, []byte{0xc0, 0xc0}, control.(*rsa.PublicKey)); err != nil {
			t.Errorf("pkcs11-tool cannot decrypt with a key of its own making either, so the check above proves nothing: %v", err)
		}
	})
}

// tool runs OpenSC's pkcs11-tool on the token's module and slot.
func tool(t *testing.T, tok *hsm.Token, args ...string) string {
	t.Helper()
	out, err := toolErr(tok, args...)
	if err != nil {
		t.Fatalf("pkcs11-tool %v: %v\n%s", args, err, out)
	}
	return out
}

func toolErr(tok *hsm.Token, args ...string) (string, error) {
	base := []string{"--module", tok.Module().Path(), "--slot", strconv.FormatUint(uint64(tok.SlotID()), 10)}
	out, err := exec.Command("pkcs11-tool", append(base, args...)...).CombinedOutput()
	return string(out), err
}

// pkcs11ToolDecrypt encrypts a message to pub in Go and has pkcs11-tool
// decrypt it with the private key of that ID.
func pkcs11ToolDecrypt(t *testing.T, tok *hsm.Token, pin string, id []byte, pub *rsa.PublicKey) (string, error) {
	t.Helper()
	msg := []byte("a secret for the root key")
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, pub, msg)
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(t.TempDir(), "ct.bin")
	if err := os.WriteFile(in, ct, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := toolErr(tok, "--login", "--pin", pin, "--decrypt", "--mechanism", "RSA-PKCS", "--id", hex.EncodeToString(id), "--input-file", in)
	if err == nil && !bytes.Contains([]byte(out), msg) {
		return out, errors.New("pkcs11-tool did not print the message: " + out)
	}
	return out, err
}

// userPINFor is the user PIN the implementations' token helpers set.
func userPINFor(label string) []byte { return []byte("user-pin-" + label) }

// TestImplIncompleteGenerationLeavesNothing: a generation cancelled after the
// token made the key pair, before it was read back, destroys both halves and
// says so; nothing labelled with the key's label is left.
func TestImplIncompleteGenerationLeavesNothing(t *testing.T) {
	forEach(t, func(t *testing.T, impl implementation) {
		tok := impl.token(t, "Orphans")
		ctx := &cancelledAfter{Context: context.Background(), checks: 1}
		_, err := tok.GenerateKey(ctx, hsm.KeySpec{Type: hsm.ECP256, Label: "interrupted"})
		var ie *hsm.IncompleteKeyError
		if !errors.As(err, &ie) || !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want an IncompleteKeyError for a cancelled generation", err)
		}
		if len(ie.Destroyed) != 2 || ie.Leftover != "" || !strings.Contains(err.Error(), "nothing is left on the token") {
			t.Errorf("destroyed %v, leftover %q: %v", ie.Destroyed, ie.Leftover, err)
		}
		if n, err := tok.ObjectsWithLabelForTest("interrupted"); err != nil || n != 0 {
			t.Errorf("%d objects left (%v)", n, err)
		}
		// The label is free again.
		if _, err := tok.GenerateKey(context.Background(), hsm.KeySpec{Type: hsm.ECP256, Label: "interrupted"}); err != nil {
			t.Errorf("the label stayed taken: %v", err)
		}
	})
}

// cancelledAfter is a context whose Err reports cancellation after its
// first checks calls: the operator cancelling while the token works.
type cancelledAfter struct {
	context.Context
	checks int
}

func (c *cancelledAfter) Err() error {
	if c.checks > 0 {
		c.checks--
		return nil
	}
	return context.Canceled
}

// TestImplIdentity: two tokens that one URI attribute cannot tell apart (the
// same serial on a TPM, the same label on SoftHSM) are refused with both
// candidates named and what to add; the URI with that attribute added
// selects the right one.
func TestImplIdentity(t *testing.T) {
	forEach(t, func(t *testing.T, impl implementation) {
		first := impl.token(t, "Alpha")
		second := "Beta"
		if !impl.sameSerial {
			second = "Alpha"
		}
		impl.addToken(t, first, second)
		m := first.Module()
		id := first.Identity()
		sel := hsm.URI{Token: "Alpha"}
		add := "serial="
		if impl.sameSerial {
			sel, add = hsm.URI{Serial: id.Serial}, "token="
		}
		_, err := m.FindToken(sel)
		var ae *hsm.AmbiguousTokenError
		if !errors.As(err, &ae) || len(ae.Candidates) < 2 || !errors.Is(err, hsm.ErrAmbiguous) {
			t.Fatalf("FindToken(%s): err = %v, want an AmbiguousTokenError", sel, err)
		}
		// tpm2-pkcs11's blank slot has the same serial too; it is named with
		// its slot-id.
		for _, c := range ae.Candidates {
			if !strings.Contains(err.Error(), "slot "+strconv.FormatUint(uint64(c.ID), 10)+" ") {
				t.Errorf("the refusal does not name slot %d: %v", c.ID, err)
			}
			if c.Token.Initialized {
				continue
			}
			if !strings.Contains(err.Error(), "slot-id="+strconv.FormatUint(uint64(c.ID), 10)) {
				t.Errorf("the refusal does not say to choose the blank token by slot-id=: %v", err)
			}
		}
		if !strings.Contains(err.Error(), "Add to the URI "+add) {
			t.Errorf("the refusal does not say to add %s: %v", add, err)
		}
		// The first token's whole identity selects it, and only it.
		s, err := m.FindToken(id.URI())
		if err != nil || s.ID != first.SlotID() {
			t.Errorf("FindToken(identity %s) = slot %d, %v; want slot %d", id.URI(), s.ID, err, first.SlotID())
		}
		s, err = m.FindIdentity(id)
		if err != nil || s.ID != first.SlotID() {
			t.Errorf("FindIdentity = slot %d, %v", s.ID, err)
		}
	})
}

// TestImplPINTries: after one wrong PIN the token is not tried again until a
// person allows it, whether or not the token reports its counter.
func TestImplPINTries(t *testing.T) {
	forEach(t, func(t *testing.T, impl implementation) {
		tok := impl.token(t, "Tries")
		if err := tok.Logout(); err != nil {
			t.Fatal(err)
		}
		if err := tok.Login([]byte("not-the-pin")); !errors.Is(err, hsm.ErrPINIncorrect) {
			t.Fatalf("wrong PIN: %v", err)
		}
		var te *hsm.PINTriesError
		if err := tok.Login(userPINFor("Tries")); !errors.As(err, &te) || !te.RefusedHere {
			t.Fatalf("second login: err = %v, want a PINTriesError", err)
		}
		tok.AllowOneMoreTry(false)
		if err := tok.Login(userPINFor("Tries")); err != nil {
			t.Fatalf("allowed login with the right PIN: %v", err)
		}
	})
}

// TestImplWrapPlan: a token that can wrap plans a BYOK wrap; one that cannot
// is refused before anything runs, naming what is missing for each way.
func TestImplWrapPlan(t *testing.T) {
	forEach(t, func(t *testing.T, impl implementation) {
		tok := impl.token(t, "Plans")
		plan, err := tok.WrapPlan(hsm.RSAAESKeyWrapSHA256, hsm.AES256, 4096)
		if impl.wraps {
			if err != nil || len(plan) == 0 {
				t.Fatalf("plan %v, %v", plan, err)
			}
			return
		}
		var ce *hsm.CapabilityError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "in one mechanism") || !strings.Contains(err.Error(), "composed from an ephemeral AES key") {
			t.Fatalf("plan %v, err = %v: want a CapabilityError for both ways", plan, err)
		}
	})
}
