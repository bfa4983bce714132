package hsm_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/softhsm/softhsmtest"
)

func TestSlotsAndMechanisms(t *testing.T) {
	mod := softhsmtest.NewToken(t, "Listed", soPIN, userPIN)
	m, err := hsm.Open(mod)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	slots, err := m.Slots()
	if err != nil {
		t.Fatal(err)
	}
	var found *hsm.Slot
	for i := range slots {
		if slots[i].Token != nil && slots[i].Token.Label == "Listed" {
			found = &slots[i]
		}
	}
	if found == nil {
		t.Fatalf("token not listed in %+v", slots)
	}
	ti := found.Token
	if !ti.Initialized || !ti.LoginRequired || !ti.UserPINInitialized || ti.Serial == "" || ti.Manufacturer == "" {
		t.Errorf("token info %+v lacks expected flags", ti)
	}
	mechs, err := m.Mechanisms(found.ID)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]hsm.MechanismInfo{}
	for _, mi := range mechs {
		names[mi.Name] = mi
	}
	for _, want := range []string{"CKM_AES_KEY_WRAP_PAD", "CKM_RSA_PKCS_OAEP", "CKM_ECDSA", "CKM_EDDSA"} {
		if _, ok := names[want]; !ok {
			t.Errorf("mechanism %s missing from %d listed", want, len(mechs))
		}
	}
	if rsa := names["CKM_RSA_PKCS_KEY_PAIR_GEN"]; rsa.MaxKeySize < 4096 || !slices.Contains(rsa.Flags, "generate-key-pair") {
		t.Errorf("RSA keygen info %+v", rsa)
	}
}

func TestPINChanges(t *testing.T) {
	mod := softhsmtest.NewToken(t, "Pins", soPIN, userPIN)
	m, err := hsm.Open(mod)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok, err := m.OpenToken(hsm.URI{Token: "Pins"})
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	newPIN := []byte("a-new-user-pin")
	if err := tok.Login(userPIN); err != nil {
		t.Fatal(err)
	}
	if err := tok.SetPIN(userPIN, newPIN); err != nil {
		t.Fatal(err)
	}
	tok.Logout()
	if err := tok.Login(userPIN); !errors.Is(err, hsm.ErrPINIncorrect) {
		t.Fatalf("old PIN after change: err = %v", err)
	}
	// After a refused PIN the next login needs a person's go-ahead.
	if err := tok.Login(newPIN); !errors.Is(err, hsm.ErrPINTriesLow) {
		t.Fatalf("login right after a refused PIN: err = %v, want ErrPINTriesLow", err)
	}
	tok.AllowOneMoreTry(false)
	if err := tok.Login(newPIN); err != nil {
		t.Fatalf("new PIN: %v", err)
	}
	tok.Logout()
	// The SO resets the user PIN.
	if err := tok.LoginSO(soPIN); err != nil {
		t.Fatal(err)
	}
	if err := tok.InitPIN(userPIN); err != nil {
		t.Fatal(err)
	}
	tok.Logout()
	if err := tok.Login(userPIN); err != nil {
		t.Fatalf("PIN set by SO: %v", err)
	}
}

func TestConcurrentSigning(t *testing.T) {
	tok := newToken(t)
	k, err := tok.GenerateKey(context.Background(), hsm.KeySpec{Type: hsm.ECP256, Label: "busy"})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := k.Signer()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 4; j++ {
				d := sha256.Sum256([]byte(fmt.Sprint(i, j)))
				sig, err := s.Sign(rand.Reader, d[:], crypto.SHA256)
				if err != nil {
					errs <- err
					return
				}
				if !ecdsa.VerifyASN1(s.Public().(*ecdsa.PublicKey), d[:], sig) {
					errs <- fmt.Errorf("signature %d/%d does not verify", i, j)
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestWrapWithTrustedOnly(t *testing.T) {
	tok := newToken(t)
	ctx := context.Background()
	// A key that may only be wrapped by trusted keys refuses an untrusted KEK.
	target, err := tok.GenerateKey(ctx, hsm.KeySpec{Type: hsm.ECP384, Label: "guarded", Extractable: true, WrapWithTrusted: true})
	if err != nil {
		t.Fatal(err)
	}
	untrusted, err := tok.GenerateKey(ctx, hsm.KeySpec{Type: hsm.AES256, Label: "untrusted-kek"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tok.WrapKey(ctx, untrusted, target, hsm.AESKeyWrapPad); err == nil {
		t.Fatal("an untrusted KEK wrapped a CKA_WRAP_WITH_TRUSTED key")
	}
	// The security officer makes a trusted KEK; the user then wraps with it.
	tok.Logout()
	if err := tok.LoginSO(soPIN); err != nil {
		t.Fatal(err)
	}
	kek, err := tok.GenerateKey(ctx, hsm.KeySpec{Type: hsm.AES256, Label: "trusted-kek", Trusted: true})
	if err != nil {
		t.Fatalf("SO creates trusted KEK: %v", err)
	}
	if !kek.Sensitive() || kek.Extractable() {
		t.Errorf("trusted KEK sensitive=%v extractable=%v", kek.Sensitive(), kek.Extractable())
	}
	tok.Logout()
	if err := tok.Login(userPIN); err != nil {
		t.Fatal(err)
	}
	// Handles of private objects do not survive a logout: find the key again.
	target, err = tok.FindKey(hsm.Filter{Label: "guarded", Class: hsm.ClassPrivateKey})
	if err != nil {
		t.Fatal(err)
	}
	blob, err := tok.WrapKey(ctx, kek, target, hsm.AESKeyWrapPad)
	if err != nil {
		t.Fatalf("trusted KEK wrap: %v", err)
	}
	if len(blob) < 56 { // a P-384 PKCS#8 key is about 80 bytes before wrapping
		t.Errorf("wrapped P-384 PKCS#8 is only %d bytes", len(blob))
	}
}

func TestImportSecretKey(t *testing.T) {
	tok := newToken(t)
	ctx := context.Background()
	value := bytes.Repeat([]byte{0x42}, 32)
	kek, err := tok.ImportSecretKey(ctx, value, hsm.KeySpec{Type: hsm.AES256, Label: "derived-kek", Session: true})
	if err != nil {
		t.Fatal(err)
	}
	if !kek.Sensitive() || kek.Extractable() || kek.Type() != hsm.AES256 {
		t.Errorf("imported KEK sensitive=%v extractable=%v type=%s", kek.Sensitive(), kek.Extractable(), kek.Type())
	}
	// It is the key we gave: same ciphertext as software AES with that value.
	block := []byte("0123456789abcdef")
	got, err := kek.EncryptBlock(block)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := aes.NewCipher(value)
	want := make([]byte, 16)
	c.Encrypt(want, block)
	if !bytes.Equal(got, want) {
		t.Error("imported key encrypts differently from its value")
	}
	if _, err := tok.ImportSecretKey(ctx, value[:20], hsm.KeySpec{Type: hsm.AES256, Label: "short", Session: true}); err == nil {
		t.Error("a 20-byte value was accepted as AES-256")
	}
}

// A module already loaded under one SoftHSM configuration is not silently
// reused under another (a rehearsal must never reach the real token store).
func TestOpenRefusesOtherConfiguration(t *testing.T) {
	mod := softhsmtest.NewToken(t, "First", soPIN, userPIN)
	m, err := hsm.Open(mod)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	softhsmtest.NewStore(t) // points SOFTHSM2_CONF elsewhere
	if _, err := hsm.Open(mod); !errors.Is(err, hsm.ErrModuleBusy) {
		t.Fatalf("err = %v, want ErrModuleBusy", err)
	}
}
