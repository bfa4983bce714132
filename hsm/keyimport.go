package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"math/big"

	"github.com/miekg/pkcs11"
)

// ImportPublicKey stores a public key on the token (RSA, EC or Ed25519), for
// example the public half of a restored key taken from its certificate, or an
// RSA wrapping key (spec.Usage UseWrapPublic: CKA_WRAP and CKA_ENCRYPT;
// otherwise the key verifies only).
func (t *Token) ImportPublicKey(ctx context.Context, pub crypto.PublicKey, spec KeySpec) (*Key, error) {
	// No duplicate check: the public half joins the private key of the same
	// label and ID (a restored key's public key comes from its certificate).
	id, err := t.keyID(spec)
	if err != nil {
		return nil, fmt.Errorf("import public key: %w", err)
	}
	if spec.Usage == UseWrapPublic {
		if _, ok := pub.(*rsa.PublicKey); !ok {
			return nil, fmt.Errorf("import public key: only RSA public keys wrap, not %T", pub)
		}
	}
	tmpl := spec.publicAttrs(id)
	var attrs []*pkcs11.Attribute
	switch p := pub.(type) {
	case *rsa.PublicKey:
		attrs = append(attrs,
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, p.N.Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, big.NewInt(int64(p.E)).Bytes()),
		)
	case *ecdsa.PublicKey:
		kt := map[string]KeyType{"P-256": ECP256, "P-384": ECP384, "P-521": ECP521}[p.Curve.Params().Name]
		raw, err := p.Bytes()
		if err != nil || kt == KeyTypeUnknown {
			return nil, fmt.Errorf("import EC public key: unsupported curve")
		}
		point, _ := asn1.Marshal(raw)
		attrs = append(attrs,
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, kt.ecParams()),
			pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, point),
		)
	case ed25519.PublicKey:
		point, _ := asn1.Marshal([]byte(p))
		attrs = append(attrs,
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, ckkECEdwards),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, Ed25519.ecParams()),
			pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, point),
		)
	default:
		return nil, fmt.Errorf("import public key: unsupported type %T", pub)
	}
	var h pkcs11.ObjectHandle
	err = t.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		var err error
		h, err = t.ctx().CreateObject(sh, tmpl.with(attrs...).all())
		return t.classify("import public key", err)
	})
	if err != nil {
		return nil, err
	}
	return t.loadKey(0, h)
}

// ImportWrappingKey imports an RSA public key given as DER SubjectPublicKeyInfo
// (what AWS KMS GetParametersForImport returns) as a session wrapping key.
func (t *Token) ImportWrappingKey(ctx context.Context, spkiDER []byte) (*Key, error) {
	pub, err := x509.ParsePKIXPublicKey(spkiDER)
	if err != nil {
		return nil, fmt.Errorf("import wrapping key: not a DER SubjectPublicKeyInfo: %w", err)
	}
	rk, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("import wrapping key: the wrapping key must be RSA; this one is %s", DescribePublicKey(pub))
	}
	return t.ImportPublicKey(ctx, rk, KeySpec{Type: RSAOther, Session: true, Label: "wrapping-key", Usage: UseWrapPublic})
}

// ImportSecretKey creates an AES key with a value the caller knows (a KEK
// derived from a quorum secret, say), sensitive and non-extractable like a
// generated one. Use spec.Session for a key that must never persist on the
// token. The caller clears value afterwards.
func (t *Token) ImportSecretKey(ctx context.Context, value []byte, spec KeySpec) (*Key, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	if (spec.Type != AES128 && spec.Type != AES256) || len(value) != spec.Type.secretLen() {
		return nil, fmt.Errorf("import secret key %q: want an AES-128 or AES-256 value of the right length", spec.Label)
	}
	id, err := t.newKeyID(spec)
	if err != nil {
		return nil, fmt.Errorf("import secret key %q: %w", spec.Label, err)
	}
	tmpl, err := spec.keyAttrs(id)
	if err != nil {
		return nil, fmt.Errorf("import secret key %q: %w", spec.Label, err)
	}
	attrs := tmpl.with(pkcs11.NewAttribute(pkcs11.CKA_VALUE, value)).all()
	var h pkcs11.ObjectHandle
	err = t.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		var err error
		h, err = t.ctx().CreateObject(sh, attrs)
		return t.classify(fmt.Sprintf("import secret key %q", spec.Label), err)
	})
	if err != nil {
		return nil, err
	}
	return t.loadKey(h, 0)
}

// DescribePublicKey names a public key's algorithm and size for messages
// ("a 1024-bit RSA key", "an EC key on P-256"), never a Go type.
func DescribePublicKey(pub any) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "an EC key on " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "an Ed25519 key"
	case *rsa.PublicKey:
		return fmt.Sprintf("a %d-bit RSA key", k.N.BitLen())
	}
	return "a key of an unknown kind"
}
