package hsm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"

	"github.com/miekg/pkcs11"
)

// KeyClass is the PKCS#11 object class of a key.
type KeyClass int

const (
	ClassAny KeyClass = iota
	ClassPrivateKey
	ClassPublicKey
	ClassSecretKey
)

func (c KeyClass) String() string {
	switch c {
	case ClassPrivateKey:
		return "private"
	case ClassPublicKey:
		return "public"
	case ClassSecretKey:
		return "secret-key"
	}
	return "any"
}

func (c KeyClass) cko() (uint, bool) {
	switch c {
	case ClassPrivateKey:
		return pkcs11.CKO_PRIVATE_KEY, true
	case ClassPublicKey:
		return pkcs11.CKO_PUBLIC_KEY, true
	case ClassSecretKey:
		return pkcs11.CKO_SECRET_KEY, true
	}
	return 0, false
}

// Key is a key on the token: a secret key, a private key with its public half
// when the token has one, or a lone public key (e.g. an imported wrapping key).
type Key struct {
	t           *Token
	handle      pkcs11.ObjectHandle // secret or private key; the public key for a lone public key
	pubHandle   pkcs11.ObjectHandle // 0 when absent
	class       KeyClass
	typ         KeyType
	label       string
	id          []byte
	sensitive   bool
	extractable bool
	session     bool
	pub         crypto.PublicKey
}

func (k *Key) Label() string            { return k.label }
func (k *Key) ID() []byte               { return bytes.Clone(k.id) }
func (k *Key) Class() KeyClass          { return k.class }
func (k *Key) Type() KeyType            { return k.typ }
func (k *Key) Sensitive() bool          { return k.sensitive }
func (k *Key) Extractable() bool        { return k.extractable }
func (k *Key) Token() *Token            { return k.t }
func (k *Key) Public() crypto.PublicKey { return k.pub }

// URI names the key on its token.
func (k *Key) URI() URI {
	u := k.t.URI()
	u.Object, u.ID, u.Type = k.label, k.ID(), k.class.String()
	return u
}

// Fingerprint is the SHA-256 of the public key's SubjectPublicKeyInfo, or nil
// for secret keys (their value never leaves the token to be hashed).
func (k *Key) Fingerprint() []byte {
	if k.pub == nil {
		return nil
	}
	der, err := x509.MarshalPKIXPublicKey(k.pub)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(der)
	return sum[:]
}

// String describes the key for logs and listings; it contains no secret.
func (k *Key) String() string {
	return fmt.Sprintf("%s %s %q id=%s", k.class, k.typ, k.label, hex.EncodeToString(k.id))
}

// GenerateKey creates a key inside the token. It refuses a label or ID that
// already names a key, so a ceremony can never silently shadow an existing key.
func (t *Token) GenerateKey(ctx context.Context, spec KeySpec) (*Key, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	what := fmt.Sprintf("generate %s key %q on token %q", spec.Type, spec.Label, t.label)
	if !spec.Session {
		if err := t.refuseDuplicate(spec.Label, spec.ID); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	id := bytes.Clone(spec.ID)
	if len(id) == 0 {
		r, err := t.Random(16)
		if err != nil {
			return nil, fmt.Errorf("%s: key ID: %w", what, err)
		}
		id = r
	}

	var priv, pub pkcs11.ObjectHandle
	err := t.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		var err error
		switch {
		case spec.Type == AES128 || spec.Type == AES256:
			attrs := append(spec.privateAttrs(pkcs11.CKO_SECRET_KEY, id),
				pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
				pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, spec.Type.secretLen()),
				pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
				pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
				pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
				pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true),
			)
			if spec.Trusted {
				attrs = append(attrs, pkcs11.NewAttribute(pkcs11.CKA_TRUSTED, true))
			}
			priv, err = t.ctx().GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, attrs)
			if err != nil {
				return t.mechError(err, "CKM_AES_KEY_GEN")
			}
		case spec.Type.Symmetric():
			attrs := append(spec.privateAttrs(pkcs11.CKO_SECRET_KEY, id),
				pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
				pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, spec.Type.secretLen()),
				pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
				pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
			)
			priv, err = t.ctx().GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_GENERIC_SECRET_KEY_GEN, nil)}, attrs)
			if err != nil {
				return t.mechError(err, "CKM_GENERIC_SECRET_KEY_GEN")
			}
		case spec.Type.IsRSA():
			pubA := append(spec.publicAttrs(id),
				pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
				pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, spec.Type.rsaBits()),
				pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, big.NewInt(defaultRSAPublicExpBits).Bytes()),
			)
			privA := append(spec.privateAttrs(pkcs11.CKO_PRIVATE_KEY, id),
				pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
				pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			)
			pub, priv, err = t.ctx().GenerateKeyPair(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)}, pubA, privA)
			if err != nil {
				return t.mechError(err, "CKM_RSA_PKCS_KEY_PAIR_GEN")
			}
		case spec.Type.IsEC() || spec.Type == Ed25519:
			kt, mech, name := uint(pkcs11.CKK_EC), uint(pkcs11.CKM_EC_KEY_PAIR_GEN), "CKM_EC_KEY_PAIR_GEN"
			if spec.Type == Ed25519 {
				kt, mech, name = ckkECEdwards, ckmECEdwardsKeyPairGen, "CKM_EC_EDWARDS_KEY_PAIR_GEN"
			}
			pubA := append(spec.publicAttrs(id),
				pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, kt),
				pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, spec.Type.ecParams()),
			)
			privA := append(spec.privateAttrs(pkcs11.CKO_PRIVATE_KEY, id),
				pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, kt),
				pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			)
			pub, priv, err = t.ctx().GenerateKeyPair(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, pubA, privA)
			if err != nil {
				return t.mechError(err, name)
			}
		default:
			return fmt.Errorf("key type %s cannot be generated", spec.Type)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	k, err := t.loadKey(priv, pub)
	if err != nil {
		return nil, fmt.Errorf("%s: read back: %w", what, err)
	}
	return k, nil
}

// mechError turns "mechanism invalid" into a MechanismError naming the mechanism.
func (t *Token) mechError(err error, mech string) error {
	switch rv(err) {
	case pkcs11.CKR_MECHANISM_INVALID, pkcs11.CKR_MECHANISM_PARAM_INVALID:
		return &MechanismError{Mechanism: mech, Token: t.label}
	}
	return t.classify(mech, err)
}

func (t *Token) refuseDuplicate(label string, id []byte) error {
	if label != "" {
		hs, err := t.findObjects(Filter{Label: label})
		if err != nil {
			return err
		}
		if len(hs) > 0 {
			return fmt.Errorf("%w: label %q is taken", ErrDuplicateKey, label)
		}
	}
	if len(id) > 0 {
		hs, err := t.findObjects(Filter{ID: id})
		if err != nil {
			return err
		}
		if len(hs) > 0 {
			return fmt.Errorf("%w: id %x is taken", ErrDuplicateKey, id)
		}
	}
	return nil
}

// Filter selects keys. Empty fields match anything.
type Filter struct {
	Label string
	ID    []byte
	Class KeyClass
}

func (t *Token) findObjects(f Filter) ([]pkcs11.ObjectHandle, error) {
	var tmpl []*pkcs11.Attribute
	if f.Label != "" {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_LABEL, f.Label))
	}
	if len(f.ID) > 0 {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_ID, f.ID))
	}
	if c, ok := f.Class.cko(); ok {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_CLASS, c))
	}
	var out []pkcs11.ObjectHandle
	err := t.withSession(context.Background(), func(sh pkcs11.SessionHandle) error {
		if err := t.ctx().FindObjectsInit(sh, tmpl); err != nil {
			return t.classify("find objects", err)
		}
		defer t.ctx().FindObjectsFinal(sh)
		for {
			hs, _, err := t.ctx().FindObjects(sh, 64)
			if err != nil {
				return t.classify("find objects", err)
			}
			if len(hs) == 0 {
				return nil
			}
			out = append(out, hs...)
		}
	})
	return out, err
}

// FindKeys returns the keys matching f: secret and private keys (paired with
// their public half by CKA_ID) and public keys that have no private half.
func (t *Token) FindKeys(f Filter) ([]*Key, error) {
	hs, err := t.findObjects(f)
	if err != nil {
		return nil, err
	}
	type obj struct {
		h     pkcs11.ObjectHandle
		class uint
		id    []byte
	}
	var objs []obj
	for _, h := range hs {
		attrs, err := t.attrs(h, pkcs11.CKA_CLASS, pkcs11.CKA_ID)
		if err != nil {
			return nil, err
		}
		c := bytesToUint(attrs[pkcs11.CKA_CLASS])
		if c != pkcs11.CKO_PRIVATE_KEY && c != pkcs11.CKO_PUBLIC_KEY && c != pkcs11.CKO_SECRET_KEY {
			continue
		}
		objs = append(objs, obj{h, c, attrs[pkcs11.CKA_ID]})
	}
	// Public halves are found by ID even when the filter selected private keys only.
	pubByID := map[string]pkcs11.ObjectHandle{}
	if f.Class == ClassPrivateKey || f.Class == ClassAny {
		all := objs
		if f.Class == ClassPrivateKey {
			pf := f
			pf.Class, pf.Label = ClassPublicKey, ""
			phs, err := t.findObjects(pf)
			if err != nil {
				return nil, err
			}
			for _, h := range phs {
				a, err := t.attrs(h, pkcs11.CKA_ID)
				if err != nil {
					return nil, err
				}
				all = append(all, obj{h, pkcs11.CKO_PUBLIC_KEY, a[pkcs11.CKA_ID]})
			}
		}
		for _, o := range all {
			if o.class == pkcs11.CKO_PUBLIC_KEY && len(o.id) > 0 {
				pubByID[string(o.id)] = o.h
			}
		}
	}
	hasPrivate := map[string]bool{}
	for _, o := range objs {
		if o.class == pkcs11.CKO_PRIVATE_KEY {
			hasPrivate[string(o.id)] = true
		}
	}
	var keys []*Key
	for _, o := range objs {
		var k *Key
		switch o.class {
		case pkcs11.CKO_PUBLIC_KEY:
			if f.Class == ClassAny && len(o.id) > 0 && hasPrivate[string(o.id)] {
				continue // reported with its private half
			}
			k, err = t.loadKey(0, o.h)
		case pkcs11.CKO_PRIVATE_KEY:
			k, err = t.loadKey(o.h, pubByID[string(o.id)])
		default:
			k, err = t.loadKey(o.h, 0)
		}
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// FindKey returns the one key matching f.
func (t *Token) FindKey(f Filter) (*Key, error) {
	keys, err := t.FindKeys(f)
	if err != nil {
		return nil, err
	}
	desc := fmt.Sprintf("label=%q id=%x class=%s", f.Label, f.ID, f.Class)
	switch len(keys) {
	case 0:
		return nil, fmt.Errorf("find key %s on token %q: %w", desc, t.label, ErrKeyNotFound)
	case 1:
		return keys[0], nil
	}
	return nil, fmt.Errorf("find key %s on token %q: %w (%d keys; add id= or type= to the URI)", desc, t.label, ErrAmbiguous, len(keys))
}

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
// (PKCS#11 2.20+), or the raw point from older tokens.
func ecPublicKey(kt KeyType, point []byte) (crypto.PublicKey, error) {
	raw := point
	var inner []byte
	if rest, err := asn1.Unmarshal(point, &inner); err == nil && len(rest) == 0 {
		raw = inner
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

// DestroyKey deletes the key and its public half from the token.
func (t *Token) DestroyKey(k *Key) error {
	return t.withSession(context.Background(), func(sh pkcs11.SessionHandle) error {
		if err := t.ctx().DestroyObject(sh, k.handle); err != nil {
			return t.classify(fmt.Sprintf("destroy key %q", k.label), err)
		}
		if k.pubHandle != 0 && k.pubHandle != k.handle {
			if err := t.ctx().DestroyObject(sh, k.pubHandle); err != nil {
				return t.classify(fmt.Sprintf("destroy public key %q", k.label), err)
			}
		}
		return nil
	})
}

// ImportPublicKey stores a public key on the token (RSA, EC or Ed25519), for
// example the public half of a restored key taken from its certificate, or an
// RSA wrapping key. Wrapping keys get CKA_WRAP and CKA_ENCRYPT.
func (t *Token) ImportPublicKey(ctx context.Context, pub crypto.PublicKey, spec KeySpec) (*Key, error) {
	id := spec.ID
	if len(id) == 0 {
		r, err := t.Random(16)
		if err != nil {
			return nil, err
		}
		id = r
	}
	attrs := spec.publicAttrs(id)
	switch p := pub.(type) {
	case *rsa.PublicKey:
		attrs = append(attrs,
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, p.N.Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, big.NewInt(int64(p.E)).Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
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
	err := t.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		var err error
		h, err = t.ctx().CreateObject(sh, attrs)
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
		return nil, fmt.Errorf("import wrapping key: %T is not an RSA key", pub)
	}
	return t.ImportPublicKey(ctx, rk, KeySpec{Type: RSAOther, Session: true, Label: "wrapping-key"})
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
	if !spec.Session {
		if err := t.refuseDuplicate(spec.Label, spec.ID); err != nil {
			return nil, fmt.Errorf("import secret key %q: %w", spec.Label, err)
		}
	}
	id := spec.ID
	if len(id) == 0 {
		r, err := t.Random(16)
		if err != nil {
			return nil, err
		}
		id = r
	}
	attrs := append(spec.privateAttrs(pkcs11.CKO_SECRET_KEY, id),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, value),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true),
	)
	if spec.Trusted {
		attrs = append(attrs, pkcs11.NewAttribute(pkcs11.CKA_TRUSTED, true))
	}
	var h pkcs11.ObjectHandle
	err := t.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		var err error
		h, err = t.ctx().CreateObject(sh, attrs)
		return t.classify(fmt.Sprintf("import secret key %q", spec.Label), err)
	})
	if err != nil {
		return nil, err
	}
	return t.loadKey(h, 0)
}
