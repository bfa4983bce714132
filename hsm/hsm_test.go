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
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/softhsm/softhsmtest"
)

var (
	soPIN   = []byte("so-pin-1234")
	userPIN = []byte("user-pin-5678")
)

// newToken gives the test a fresh SoftHSM token, logged in as the user.
func newToken(t *testing.T) *hsm.Token {
	t.Helper()
	mod := softhsmtest.NewToken(t, "Test Token", soPIN, userPIN)
	m, err := hsm.Open(mod)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	tok, err := m.OpenToken(hsm.URI{Token: "Test Token"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tok.Close() })
	if err := tok.Login(userPIN); err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestGenerateEveryKeyType(t *testing.T) {
	tok := newToken(t)
	ctx := context.Background()
	for _, name := range hsm.KeyTypes() {
		kt, err := hsm.ParseKeyType(name)
		if err != nil {
			t.Fatal(err)
		}
		k, err := tok.GenerateKey(ctx, hsm.KeySpec{Type: kt, Label: "k-" + name})
		if err != nil {
			t.Fatalf("generate %s: %v", name, err)
		}
		if k.Type() != kt {
			t.Errorf("%s: read back type %s", name, k.Type())
		}
		if !k.Sensitive() || k.Extractable() {
			t.Errorf("%s: sensitive=%v extractable=%v, want sensitive and non-extractable by default", name, k.Sensitive(), k.Extractable())
		}
		if len(k.ID()) != 16 {
			t.Errorf("%s: CKA_ID is %d bytes, want 16 random bytes", name, len(k.ID()))
		}
		if kt.Symmetric() {
			if k.Class() != hsm.ClassSecretKey || k.Public() != nil {
				t.Errorf("%s: class %s, public %T", name, k.Class(), k.Public())
			}
			continue
		}
		if k.Class() != hsm.ClassPrivateKey || k.Public() == nil {
			t.Fatalf("%s: class %s, no public key", name, k.Class())
		}
		// The key is found again by its URI.
		found, err := tok.FindKey(k.URI().KeyFilter())
		if err != nil {
			t.Fatalf("%s: find by URI %s: %v", name, k.URI(), err)
		}
		if !bytes.Equal(found.Fingerprint(), k.Fingerprint()) {
			t.Errorf("%s: found a different key", name)
		}
	}
}

func TestSignersVerifyWithStdlib(t *testing.T) {
	tok := newToken(t)
	ctx := context.Background()
	msg := []byte("key ceremony signing test")
	d256 := sha256.Sum256(msg)
	d384 := sha512.Sum384(msg)
	d512 := sha512.Sum512(msg)
	digests := map[crypto.Hash][]byte{crypto.SHA256: d256[:], crypto.SHA384: d384[:], crypto.SHA512: d512[:]}

	for _, kt := range []hsm.KeyType{hsm.RSA2048, hsm.RSA3072, hsm.ECP256, hsm.ECP384, hsm.ECP521, hsm.Ed25519} {
		k, err := tok.GenerateKey(ctx, hsm.KeySpec{Type: kt, Label: "sig-" + kt.String()})
		if err != nil {
			t.Fatal(err)
		}
		s, err := k.Signer()
		if err != nil {
			t.Fatal(err)
		}
		switch pub := s.Public().(type) {
		case *rsa.PublicKey:
			for h, d := range digests {
				sig, err := s.Sign(rand.Reader, d, h)
				if err != nil {
					t.Fatalf("%s PKCS1v15 %v: %v", kt, h, err)
				}
				if err := rsa.VerifyPKCS1v15(pub, h, d, sig); err != nil {
					t.Errorf("%s PKCS1v15 %v: %v", kt, h, err)
				}
				sig, err = s.Sign(rand.Reader, d, &rsa.PSSOptions{Hash: h, SaltLength: rsa.PSSSaltLengthEqualsHash})
				if err != nil {
					t.Fatalf("%s PSS %v: %v", kt, h, err)
				}
				if err := rsa.VerifyPSS(pub, h, d, sig, &rsa.PSSOptions{Hash: h, SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
					t.Errorf("%s PSS %v: %v", kt, h, err)
				}
			}
		case *ecdsa.PublicKey:
			for h, d := range digests {
				sig, err := s.Sign(rand.Reader, d, h)
				if err != nil {
					t.Fatalf("%s ECDSA %v: %v", kt, h, err)
				}
				if !ecdsa.VerifyASN1(pub, d, sig) {
					t.Errorf("%s ECDSA %v: signature does not verify", kt, h)
				}
			}
		case ed25519.PublicKey:
			sig, err := s.Sign(rand.Reader, msg, crypto.Hash(0))
			if err != nil {
				t.Fatal(err)
			}
			if !ed25519.Verify(pub, msg, sig) {
				t.Error("Ed25519 signature does not verify")
			}
		default:
			t.Fatalf("unexpected public key %T", pub)
		}
		// A tampered digest must not verify: proves the check above is real.
		if ec, ok := s.Public().(*ecdsa.PublicKey); ok {
			sig, _ := s.Sign(rand.Reader, d256[:], crypto.SHA256)
			bad := bytes.Clone(d256[:])
			bad[0] ^= 1
			if ecdsa.VerifyASN1(ec, bad, sig) {
				t.Error("ECDSA signature verified over a different digest")
			}
		}
	}
}

func TestSelfSignedCertificateWithTokenKey(t *testing.T) {
	tok := newToken(t)
	for _, kt := range []hsm.KeyType{hsm.ECP384, hsm.RSA3072, hsm.Ed25519} {
		k, err := tok.GenerateKey(context.Background(), hsm.KeySpec{Type: kt, Label: "root-" + kt.String()})
		if err != nil {
			t.Fatal(err)
		}
		s, err := k.Signer()
		if err != nil {
			t.Fatal(err)
		}
		serial, err := tok.Random(16)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber:          new(big.Int).SetBytes(serial),
			Subject:               pkix.Name{CommonName: "Test Root " + kt.String()},
			NotBefore:             time.Now().Add(-time.Minute),
			NotAfter:              time.Now().Add(24 * time.Hour),
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, s.Public(), s)
		if err != nil {
			t.Fatalf("%s: CreateCertificate: %v", kt, err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		if err := cert.CheckSignatureFrom(cert); err != nil {
			t.Errorf("%s: self-signature: %v", kt, err)
		}
		crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour)}, cert, s)
		if err != nil {
			t.Fatalf("%s: CreateRevocationList: %v", kt, err)
		}
		rl, err := x509.ParseRevocationList(crl)
		if err != nil {
			t.Fatal(err)
		}
		if err := rl.CheckSignatureFrom(cert); err != nil {
			t.Errorf("%s: CRL signature: %v", kt, err)
		}
	}
}

func TestErrors(t *testing.T) {
	t.Run("missing module", func(t *testing.T) {
		_, err := hsm.Open(filepath.Join(t.TempDir(), "nope.so"))
		if !errors.Is(err, hsm.ErrModuleNotFound) {
			t.Fatalf("err = %v, want ErrModuleNotFound", err)
		}
	})
	t.Run("module fails to load", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "garbage.so")
		os.WriteFile(p, []byte("not a shared object"), 0o600)
		_, err := hsm.Open(p)
		if !errors.Is(err, hsm.ErrModuleLoad) {
			t.Fatalf("err = %v, want ErrModuleLoad", err)
		}
	})
	t.Run("no such token", func(t *testing.T) {
		mod := softhsmtest.NewToken(t, "Present", soPIN, userPIN)
		m, err := hsm.Open(mod)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if _, err := m.OpenToken(hsm.URI{Token: "Absent"}); !errors.Is(err, hsm.ErrTokenNotFound) {
			t.Fatalf("err = %v, want ErrTokenNotFound", err)
		}
	})
	t.Run("wrong PIN, then no second try unless allowed", func(t *testing.T) {
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
		err = tok.Login([]byte("wrong"))
		var pe *hsm.PINError
		if !errors.Is(err, hsm.ErrPINIncorrect) || !errors.As(err, &pe) {
			t.Fatalf("err = %v, want a PINError", err)
		}
		// SoftHSM now reports CKF_USER_PIN_COUNT_LOW, and this token already
		// refused a PIN: the next login is not tried, even with the right PIN.
		info, _ := tok.Info()
		if !info.UserPINCountLow {
			t.Fatalf("SoftHSM no longer reports few tries after a wrong PIN: %v", info.Flags())
		}
		var te *hsm.PINTriesError
		if err := tok.Login(userPIN); !errors.Is(err, hsm.ErrPINTriesLow) || !errors.As(err, &te) || !te.CountLow || !te.RefusedHere {
			t.Fatalf("second login after a wrong PIN: err = %v, want a PINTriesError", err)
		}
		// A person who checked the PIN allows one more try; the right PIN
		// resets the counter, and logging in twice is tolerated.
		tok.AllowOneMoreTry(false)
		if err := tok.Login(userPIN); err != nil {
			t.Fatal(err)
		}
		if info, _ := tok.Info(); info.UserPINCountLow {
			t.Errorf("count still low after a good login: %v", info.Flags())
		}
		if err := tok.Login(userPIN); err != nil {
			t.Fatalf("second login: %v", err)
		}
	})
	t.Run("duplicate label", func(t *testing.T) {
		tok := newToken(t)
		ctx := context.Background()
		if _, err := tok.GenerateKey(ctx, hsm.KeySpec{Type: hsm.ECP256, Label: "dup"}); err != nil {
			t.Fatal(err)
		}
		if _, err := tok.GenerateKey(ctx, hsm.KeySpec{Type: hsm.AES256, Label: "dup"}); !errors.Is(err, hsm.ErrDuplicateKey) {
			t.Fatalf("err = %v, want ErrDuplicateKey", err)
		}
	})
	t.Run("unsupported mechanism named", func(t *testing.T) {
		tok := newToken(t)
		ctx := context.Background()
		target, err := tok.GenerateKey(ctx, hsm.KeySpec{Type: hsm.AES256, Label: "t", Extractable: true})
		if err != nil {
			t.Fatal(err)
		}
		wk := importWrappingKey(t, tok, 2048)
		_, err = tok.WrapKey(ctx, wk.key, target, hsm.RSAOAEPSHA256)
		var me *hsm.MechanismError
		if !errors.Is(err, hsm.ErrMechanismNotSupported) || !errors.As(err, &me) {
			t.Fatalf("err = %v, want a MechanismError", err)
		}
		if me.Token != "Test Token" || me.Mechanism == "" {
			t.Errorf("MechanismError does not name token and mechanism: %+v", me)
		}
		// Without permission for host steps, Wrap refuses the composition.
		if _, err := tok.Wrap(ctx, wk.key, target, hsm.RSAOAEPSHA256, hsm.WrapOptions{}); !errors.Is(err, hsm.ErrMechanismNotSupported) {
			t.Fatalf("Wrap without host steps: err = %v, want ErrMechanismNotSupported", err)
		}
	})
	t.Run("non-extractable key cannot be wrapped", func(t *testing.T) {
		tok := newToken(t)
		ctx := context.Background()
		target, err := tok.GenerateKey(ctx, hsm.KeySpec{Type: hsm.AES256, Label: "locked"})
		if err != nil {
			t.Fatal(err)
		}
		wk := importWrappingKey(t, tok, 2048)
		if _, err := tok.WrapKey(ctx, wk.key, target, hsm.RSAOAEPSHA1); err == nil {
			t.Fatal("a non-extractable key was wrapped")
		}
	})
}
