package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/miekg/pkcs11"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Signer returns a crypto.Signer over the token's private key, accepted by
// x509.CreateCertificate and x509.CreateRevocationList. The rand argument of
// Sign is ignored: randomness comes from the token.
func (k *Key) Signer() (crypto.Signer, error) {
	if k.problem != nil {
		return nil, fmt.Errorf("key %q cannot be used: %w", k.label, k.problem)
	}
	if k.class != ClassPrivateKey {
		return nil, fmt.Errorf("key %q is a %s key, not a private key", k.label, k.class)
	}
	if k.pub == nil {
		return nil, fmt.Errorf("key %q has no public key on the token; import it (e.g. from the certificate) first", k.label)
	}
	return &signer{k: k}, nil
}

type signer struct{ k *Key }

func (s *signer) Public() crypto.PublicKey { return s.k.pub }

// DigestInfo prefixes for PKCS#1 v1.5 (RFC 8017 section 9.2 note 1).
var digestInfoPrefix = map[crypto.Hash][]byte{
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

var pkcs11Hash = map[crypto.Hash]struct{ ckm, mgf uint }{
	crypto.SHA1:   {pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1},
	crypto.SHA256: {pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256},
	crypto.SHA384: {pkcs11.CKM_SHA384, pkcs11.CKG_MGF1_SHA384},
	crypto.SHA512: {pkcs11.CKM_SHA512, pkcs11.CKG_MGF1_SHA512},
}

func (s *signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	k := s.k
	var mech *pkcs11.Mechanism
	var name string
	data := digest
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		h := opts.HashFunc()
		if len(digest) != h.Size() {
			return nil, fmt.Errorf("sign with %q: digest is %d bytes, %v wants %d", k.label, len(digest), h, h.Size())
		}
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			hp, ok := pkcs11Hash[h]
			if !ok || h == crypto.SHA1 {
				return nil, fmt.Errorf("sign with %q: RSA-PSS with %v is not supported", k.label, h)
			}
			salt := pss.SaltLength
			switch salt {
			case rsa.PSSSaltLengthEqualsHash, rsa.PSSSaltLengthAuto:
				// Auto would mean "as long as fits"; tokens need an explicit length and
				// verifiers (and the CA/B Forum) expect the hash length.
				salt = h.Size()
			}
			mech, name = pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_PSS, pkcs11.NewPSSParams(hp.ckm, hp.mgf, uint(salt))), "CKM_RSA_PKCS_PSS"
		} else {
			prefix, ok := digestInfoPrefix[h]
			if !ok {
				return nil, fmt.Errorf("sign with %q: RSA PKCS#1 v1.5 with %v is not supported (use SHA-256/384/512)", k.label, h)
			}
			data = append(append([]byte{}, prefix...), digest...)
			mech, name = pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil), "CKM_RSA_PKCS"
		}
		_ = pub
	case *ecdsa.PublicKey:
		mech, name = pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil), "CKM_ECDSA"
	case ed25519.PublicKey:
		if opts.HashFunc() != crypto.Hash(0) {
			return nil, fmt.Errorf("sign with %q: Ed25519ph is not supported; sign the message itself", k.label)
		}
		mech, name = pkcs11.NewMechanism(ckmEdDSA, nil), "CKM_EDDSA"
	default:
		return nil, fmt.Errorf("sign with %q: unsupported key type %T", k.label, k.pub)
	}

	var sig []byte
	err := k.t.withSession(context.Background(), func(sh pkcs11.SessionHandle) error {
		if err := k.t.ctx().SignInit(sh, []*pkcs11.Mechanism{mech}, k.handle); err != nil {
			return k.t.mechError(err, name)
		}
		out, err := k.t.ctx().Sign(sh, data)
		if err != nil {
			return k.t.classify(name, err)
		}
		sig = out
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sign with key %q: %w", k.label, err)
	}
	if _, ok := k.pub.(*ecdsa.PublicKey); ok {
		return ecdsaDER(sig)
	}
	return sig, nil
}

// proveSigning signs a random message with the key and verifies the
// signature with its public key: a new signing key is accepted only once it
// has signed.
func (k *Key) proveSigning() error {
	s, err := k.Signer()
	if err != nil {
		return err
	}
	msg := make([]byte, 32)
	if _, err := rand.Read(msg); err != nil {
		return err
	}
	digest := sha256.Sum256(msg)
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		sig, err := s.Sign(nil, digest[:], crypto.SHA256)
		if err != nil {
			return err
		}
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
	case *ecdsa.PublicKey:
		sig, err := s.Sign(nil, digest[:], crypto.SHA256)
		if err != nil {
			return err
		}
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			return errors.New("its ECDSA signature does not verify with its public key")
		}
		return nil
	case ed25519.PublicKey:
		sig, err := s.Sign(nil, msg, crypto.Hash(0))
		if err != nil {
			return err
		}
		if !ed25519.Verify(pub, msg, sig) {
			return errors.New("its Ed25519 signature does not verify with its public key")
		}
		return nil
	}
	return fmt.Errorf("no signature check for %T", k.pub)
}

// ecdsaDER converts PKCS#11's raw r||s to the ASN.1 form Go and X.509 use.
func ecdsaDER(raw []byte) ([]byte, error) {
	if len(raw) == 0 || len(raw)%2 != 0 {
		return nil, fmt.Errorf("token returned an ECDSA signature of odd length %d", len(raw))
	}
	r := new(big.Int).SetBytes(raw[:len(raw)/2])
	s := new(big.Int).SetBytes(raw[len(raw)/2:])
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(r)
		b.AddASN1BigInt(s)
	})
	return b.Bytes()
}

// MAC computes an HMAC with a secret key inside the token; the hash follows
// the key type (HMACSHA256 uses CKM_SHA256_HMAC, ...).
func (k *Key) MAC(data []byte) ([]byte, error) {
	mechs := map[KeyType]struct {
		m    uint
		name string
	}{
		HMACSHA224: {pkcs11.CKM_SHA224_HMAC, "CKM_SHA224_HMAC"},
		HMACSHA256: {pkcs11.CKM_SHA256_HMAC, "CKM_SHA256_HMAC"},
		HMACSHA384: {pkcs11.CKM_SHA384_HMAC, "CKM_SHA384_HMAC"},
		HMACSHA512: {pkcs11.CKM_SHA512_HMAC, "CKM_SHA512_HMAC"},
	}
	m, ok := mechs[k.typ]
	if !ok {
		return nil, fmt.Errorf("MAC with key %q: %s is not an HMAC key", k.label, k.typ)
	}
	var out []byte
	err := k.t.withSession(context.Background(), func(sh pkcs11.SessionHandle) error {
		if err := k.t.ctx().SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(m.m, nil)}, k.handle); err != nil {
			return k.t.mechError(err, m.name)
		}
		var err error
		out, err = k.t.ctx().Sign(sh, data)
		return k.t.classify(m.name, err)
	})
	if err != nil {
		return nil, fmt.Errorf("MAC with key %q: %w", k.label, err)
	}
	return out, nil
}

// EncryptBlock encrypts one 16-byte block with an AES key in ECB mode. It
// exists to prove which AES key a wrapped copy holds (same ciphertext for a
// known block), not for protecting data.
func (k *Key) EncryptBlock(block []byte) ([]byte, error) {
	if k.typ != AES128 && k.typ != AES256 {
		return nil, fmt.Errorf("encrypt with key %q: %s is not an AES key", k.label, k.typ)
	}
	if len(block) != 16 {
		return nil, fmt.Errorf("encrypt with key %q: block must be 16 bytes", k.label)
	}
	var out []byte
	err := k.t.withSession(context.Background(), func(sh pkcs11.SessionHandle) error {
		if err := k.t.ctx().EncryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_ECB, nil)}, k.handle); err != nil {
			return k.t.mechError(err, "CKM_AES_ECB")
		}
		var err error
		out, err = k.t.ctx().Encrypt(sh, block)
		return k.t.classify("CKM_AES_ECB", err)
	})
	if err != nil {
		return nil, fmt.Errorf("encrypt with key %q: %w", k.label, err)
	}
	return out, nil
}
