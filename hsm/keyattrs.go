package hsm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/miekg/pkcs11"
)

func (t *Token) attrs(h pkcs11.ObjectHandle, types ...uint) (map[uint][]byte, error) {
	out := map[uint][]byte{}
	err := t.withSession(context.Background(), func(sh pkcs11.SessionHandle) error {
		for _, typ := range types {
			// One attribute per call: a missing attribute fails the whole call on some tokens.
			a, err := t.ctx().GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(typ, nil)})
			if err != nil {
				if rv(err) == pkcs11.CKR_ATTRIBUTE_TYPE_INVALID || rv(err) == pkcs11.CKR_ATTRIBUTE_SENSITIVE {
					continue
				}
				return t.classify("read key attributes", err)
			}
			out[typ] = a[0].Value
		}
		return nil
	})
	return out, err
}

func bytesToUint(b []byte) uint {
	// CK_ULONG values come back in host byte order (little-endian on the platforms we build for).
	var v uint
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint(b[i])
	}
	return v
}

func bytesToBool(b []byte) bool { return len(b) > 0 && b[0] != 0 }

// loadKey reads a key's attributes. priv may be 0 for a lone public key.
func (t *Token) loadKey(priv, pub pkcs11.ObjectHandle) (*Key, error) {
	k := &Key{t: t, handle: priv, pubHandle: pub}
	main := priv
	if priv == 0 {
		main, k.handle = pub, pub
	}
	a, err := t.attrs(main, pkcs11.CKA_CLASS, pkcs11.CKA_KEY_TYPE, pkcs11.CKA_LABEL, pkcs11.CKA_ID,
		pkcs11.CKA_SENSITIVE, pkcs11.CKA_EXTRACTABLE, pkcs11.CKA_TOKEN, pkcs11.CKA_VALUE_LEN, pkcs11.CKA_MODULUS, pkcs11.CKA_PUBLIC_EXPONENT, pkcs11.CKA_EC_PARAMS)
	if err != nil {
		return nil, err
	}
	k.label, k.id = string(a[pkcs11.CKA_LABEL]), a[pkcs11.CKA_ID]
	k.sensitive, k.extractable = bytesToBool(a[pkcs11.CKA_SENSITIVE]), bytesToBool(a[pkcs11.CKA_EXTRACTABLE])
	k.session = !bytesToBool(a[pkcs11.CKA_TOKEN])
	switch bytesToUint(a[pkcs11.CKA_CLASS]) {
	case pkcs11.CKO_SECRET_KEY:
		k.class = ClassSecretKey
	case pkcs11.CKO_PRIVATE_KEY:
		k.class = ClassPrivateKey
	default:
		k.class = ClassPublicKey
	}
	useTypes := make([]uint, len(useAttrs))
	for i, u := range useAttrs {
		useTypes[i] = u.typ
	}
	uses, err := t.attrs(main, useTypes...)
	if err != nil {
		return nil, err
	}
	for _, u := range useAttrs {
		if bytesToBool(uses[u.typ]) {
			k.uses = append(k.uses, u.name)
		}
	}
	kt := bytesToUint(a[pkcs11.CKA_KEY_TYPE])
	switch kt {
	case pkcs11.CKK_AES:
		k.typ = map[uint]KeyType{16: AES128, 32: AES256}[bytesToUint(a[pkcs11.CKA_VALUE_LEN])]
		if k.typ == KeyTypeUnknown {
			k.typ = GenericSecret
		}
	case pkcs11.CKK_GENERIC_SECRET, pkcs11.CKK_SHA224_HMAC, pkcs11.CKK_SHA256_HMAC, pkcs11.CKK_SHA384_HMAC, pkcs11.CKK_SHA512_HMAC:
		k.typ = map[uint]KeyType{28: HMACSHA224, 32: HMACSHA256, 48: HMACSHA384, 64: HMACSHA512}[bytesToUint(a[pkcs11.CKA_VALUE_LEN])]
		if k.typ == KeyTypeUnknown {
			k.typ = GenericSecret
		}
	case pkcs11.CKK_RSA:
		n, e := a[pkcs11.CKA_MODULUS], a[pkcs11.CKA_PUBLIC_EXPONENT]
		if len(n) == 0 && pub != 0 {
			pa, err := t.attrs(pub, pkcs11.CKA_MODULUS, pkcs11.CKA_PUBLIC_EXPONENT)
			if err != nil {
				return nil, err
			}
			n, e = pa[pkcs11.CKA_MODULUS], pa[pkcs11.CKA_PUBLIC_EXPONENT]
		}
		if len(n) > 0 {
			rk := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
			k.pub = rk
			k.typ = map[int]KeyType{2048: RSA2048, 3072: RSA3072, 4096: RSA4096}[rk.N.BitLen()]
		}
		if k.typ == KeyTypeUnknown {
			k.typ = RSAOther
		}
	case pkcs11.CKK_EC, ckkECEdwards:
		k.typ = ecKeyType(a[pkcs11.CKA_EC_PARAMS], kt == ckkECEdwards)
		if pub != 0 {
			pa, err := t.attrs(pub, pkcs11.CKA_EC_POINT)
			if err != nil {
				return nil, err
			}
			if p, err := ecPublicKey(k.typ, pa[pkcs11.CKA_EC_POINT]); err == nil {
				k.pub = p
			} else {
				return nil, fmt.Errorf("key %q: %w", k.label, err)
			}
		}
	}
	return k, nil
}

// pointLen is the length of an uncompressed point (or an Ed25519 key) on
// the curve of kt, or 0.
func (k KeyType) pointLen() int {
	switch k {
	case ECP256:
		return 65
	case ECP384:
		return 97
	case ECP521:
		return 133
	case Ed25519:
		return 32
	}
	return 0
}

func ecKeyType(params []byte, edwards bool) KeyType {
	var oid asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(params, &oid); err != nil {
		// SoftHSM also accepts the curve name as a PrintableString.
		var name string
		if _, err := asn1.Unmarshal(params, &name); err == nil && (name == "edwards25519") {
			return Ed25519
		}
		return KeyTypeUnknown
	}
	switch {
	case oid.Equal(oidP256):
		return ECP256
	case oid.Equal(oidP384):
		return ECP384
	case oid.Equal(oidP521):
		return ECP521
	case oid.Equal(oidEd25519):
		return Ed25519
	}
	return KeyTypeUnknown
}

// ecPublicKey decodes CKA_EC_POINT: a DER OCTET STRING around the point
// (PKCS#11 2.20+), or the raw point from older tokens. Where the curve fixes
// the point's length, an OCTET STRING whose length bytes are not DER is
// accepted too: tpm2-pkcs11 1.9 writes a P-521 point (133 bytes) as 04 85
// followed by the point, 0x85 being no valid short-form length.
func ecPublicKey(kt KeyType, point []byte) (crypto.PublicKey, error) {
	raw := point
	var inner []byte
	if rest, err := asn1.Unmarshal(point, &inner); err == nil && len(rest) == 0 {
		raw = inner
	} else if n := kt.pointLen(); n > 0 && len(point) > n && point[0] == 0x04 && len(point) <= n+4 {
		// Tag, then a length field of any form, then exactly the point.
		raw = point[len(point)-n:]
	}
	if kt == Ed25519 {
		if len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("Ed25519 point has %d bytes", len(raw))
		}
		return ed25519.PublicKey(bytes.Clone(raw)), nil
	}
	var curve elliptic.Curve
	switch kt {
	case ECP256:
		curve = elliptic.P256()
	case ECP384:
		curve = elliptic.P384()
	case ECP521:
		curve = elliptic.P521()
	default:
		return nil, errors.New("unsupported curve")
	}
	// Parse through crypto/ecdh-backed validation: ParseUncompressedPublicKey
	// checks the point is on the curve.
	pk, err := ecdsa.ParseUncompressedPublicKey(curve, raw)
	if err != nil {
		return nil, fmt.Errorf("EC point: %w", err)
	}
	return pk, nil
}

// boolAttrNames names the boolean attributes templates set and read back.
var boolAttrNames = map[uint]string{
	pkcs11.CKA_TOKEN: "CKA_TOKEN", pkcs11.CKA_PRIVATE: "CKA_PRIVATE", pkcs11.CKA_SENSITIVE: "CKA_SENSITIVE",
	pkcs11.CKA_EXTRACTABLE: "CKA_EXTRACTABLE", pkcs11.CKA_WRAP_WITH_TRUSTED: "CKA_WRAP_WITH_TRUSTED", pkcs11.CKA_TRUSTED: "CKA_TRUSTED",
	pkcs11.CKA_ENCRYPT: "CKA_ENCRYPT", pkcs11.CKA_DECRYPT: "CKA_DECRYPT", pkcs11.CKA_WRAP: "CKA_WRAP", pkcs11.CKA_UNWRAP: "CKA_UNWRAP",
	pkcs11.CKA_SIGN: "CKA_SIGN", pkcs11.CKA_SIGN_RECOVER: "CKA_SIGN_RECOVER", pkcs11.CKA_VERIFY: "CKA_VERIFY",
	pkcs11.CKA_VERIFY_RECOVER: "CKA_VERIFY_RECOVER", pkcs11.CKA_DERIVE: "CKA_DERIVE",
	pkcs11.CKA_MODIFIABLE: "CKA_MODIFIABLE", pkcs11.CKA_COPYABLE: "CKA_COPYABLE",
}

// AttributeCheck is one attribute asked of the token when a key was made,
// and what the token reports after.
type AttributeCheck struct {
	Object string `json:"object"` // "private", "public" or "secret"
	Name   string `json:"name"`   // CKA_DECRYPT
	Want   bool   `json:"want"`
	Got    *bool  `json:"got"` // nil: the token does not report it
	// Refused: the token refused the attribute in the template, and the key
	// was made without it.
	Refused bool `json:"refused,omitempty"`
}

// Held reports whether the token reports the attribute as asked.
func (c AttributeCheck) Held() bool { return c.Got != nil && *c.Got == c.Want }

func (c AttributeCheck) String() string {
	got := "not reported"
	if c.Got != nil {
		got = fmt.Sprint(*c.Got)
	}
	s := fmt.Sprintf("%s %s=%v: token reports %s", c.Object, c.Name, c.Want, got)
	if c.Refused {
		s += " (refused in the template)"
	}
	return s
}

// AttributeChecks are the attributes the key was made with and what the token
// reports now; empty for a key this process did not make.
func (k *Key) AttributeChecks() []AttributeCheck { return append([]AttributeCheck(nil), k.checks...) }

// Unmet are the attribute checks that did not hold: restrictions the token
// refused or ignored (a required attribute that does not hold fails the
// generation instead).
func (k *Key) Unmet() []AttributeCheck {
	var out []AttributeCheck
	for _, c := range k.checks {
		if !c.Held() {
			out = append(out, c)
		}
	}
	return out
}

// checkAttributes reads back the boolean attributes of tmpl from object h.
// A required attribute that does not hold as asked is an error (a token that
// does not report one asked false is tolerated); restrictions are recorded.
func (t *Token) checkAttributes(h pkcs11.ObjectHandle, object string, tmpl template, refused map[uint]bool) ([]AttributeCheck, error) {
	var checks []AttributeCheck
	for i, list := range [][]*pkcs11.Attribute{tmpl.required, tmpl.restrictions} {
		required := i == 0
		for _, a := range list {
			name, ok := boolAttrNames[a.Type]
			if !ok {
				continue
			}
			want := bytesToBool(a.Value)
			got, err := t.attrs(h, a.Type)
			if err != nil {
				return nil, fmt.Errorf("read back %s of the %s key: %w", name, object, err)
			}
			c := AttributeCheck{Object: object, Name: name, Want: want, Refused: refused[a.Type]}
			if v, ok := got[a.Type]; ok {
				b := bytesToBool(v)
				c.Got = &b
			}
			if required && !c.Held() && (c.Got != nil || want) {
				return nil, fmt.Errorf("the token made the %s key with %s not as asked (%s): refusing a key whose protection differs from the request", object, name, c)
			}
			checks = append(checks, c)
		}
	}
	return checks, nil
}

// useAttrs are the use attributes a listing shows, in this order.
var useAttrs = []struct {
	typ  uint
	name string
}{
	{pkcs11.CKA_SIGN, "sign"}, {pkcs11.CKA_VERIFY, "verify"}, {pkcs11.CKA_ENCRYPT, "encrypt"}, {pkcs11.CKA_DECRYPT, "decrypt"},
	{pkcs11.CKA_WRAP, "wrap"}, {pkcs11.CKA_UNWRAP, "unwrap"}, {pkcs11.CKA_DERIVE, "derive"}, {pkcs11.CKA_SIGN_RECOVER, "sign-recover"},
}

// Uses lists what the token says the key (its private or secret half) may
// do: "sign", "decrypt", ...
func (k *Key) Uses() []string { return append([]string(nil), k.uses...) }
