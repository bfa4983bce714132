package hsm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/asn1"
	"fmt"
	"sort"
	"strings"

	"github.com/miekg/pkcs11"
)

// PKCS#11 3.0 values that miekg/pkcs11 v1.1 does not name.
const (
	ckkECEdwards            = 0x00000040
	ckmECEdwardsKeyPairGen  = 0x00001055
	ckmEdDSA                = 0x00001057
	ckmAESKeyWrap           = 0x00002109
	ckmAESKeyWrapPad        = pkcs11.CKM_AES_KEY_WRAP_PAD // 0x210A, what SoftHSM implements as RFC 5649
	ckmRSAAESKeyWrap        = pkcs11.CKM_RSA_AES_KEY_WRAP
	ckmRSAPKCSOAEP          = pkcs11.CKM_RSA_PKCS_OAEP
	defaultRSAPublicExpBits = 65537
)

// KeyType is a kind of key the token can generate.
type KeyType int

const (
	KeyTypeUnknown KeyType = iota
	AES128
	AES256
	HMACSHA224
	HMACSHA256
	HMACSHA384
	HMACSHA512
	RSA2048
	RSA3072
	RSA4096
	ECP256
	ECP384
	ECP521
	Ed25519
	GenericSecret // a secret of another length, e.g. one unwrapped from a backup
	RSAOther      // an RSA key of a size not listed above
)

var keyTypeNames = map[KeyType]string{
	AES128: "aes-128", AES256: "aes-256",
	HMACSHA224: "hmac-sha224", HMACSHA256: "hmac-sha256", HMACSHA384: "hmac-sha384", HMACSHA512: "hmac-sha512",
	RSA2048: "rsa-2048", RSA3072: "rsa-3072", RSA4096: "rsa-4096",
	ECP256: "ec-p256", ECP384: "ec-p384", ECP521: "ec-p521", Ed25519: "ed25519",
	GenericSecret: "generic-secret", RSAOther: "rsa",
}

func (k KeyType) String() string {
	if s, ok := keyTypeNames[k]; ok {
		return s
	}
	return "unknown"
}

// KeyTypes lists the types GenerateKey accepts, by name.
func KeyTypes() []string {
	var out []string
	for k, n := range keyTypeNames {
		if k != GenericSecret && k != RSAOther {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// ParseKeyType accepts the names KeyType.String prints ("ec-p384", "rsa-3072", ...).
func ParseKeyType(s string) (KeyType, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for k, n := range keyTypeNames {
		if n == s && k != GenericSecret && k != RSAOther {
			return k, nil
		}
	}
	return KeyTypeUnknown, fmt.Errorf("unknown key type %q (one of: %s)", s, strings.Join(KeyTypes(), ", "))
}

// Symmetric reports whether the key is a secret (AES or HMAC) key.
func (k KeyType) Symmetric() bool {
	switch k {
	case AES128, AES256, HMACSHA224, HMACSHA256, HMACSHA384, HMACSHA512, GenericSecret:
		return true
	}
	return false
}

// IsRSA, IsEC: families.
func (k KeyType) IsRSA() bool { return k == RSA2048 || k == RSA3072 || k == RSA4096 || k == RSAOther }
func (k KeyType) IsEC() bool  { return k == ECP256 || k == ECP384 || k == ECP521 }

// secretLen is the length of secret key material in bytes.
func (k KeyType) secretLen() int {
	switch k {
	case AES128:
		return 16
	case AES256:
		return 32
	case HMACSHA224:
		return 28
	case HMACSHA256:
		return 32
	case HMACSHA384:
		return 48
	case HMACSHA512:
		return 64
	}
	return 0
}

func (k KeyType) rsaBits() int {
	switch k {
	case RSA2048:
		return 2048
	case RSA3072:
		return 3072
	case RSA4096:
		return 4096
	}
	return 0
}

var (
	oidP256    = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidP384    = asn1.ObjectIdentifier{1, 3, 132, 0, 34}
	oidP521    = asn1.ObjectIdentifier{1, 3, 132, 0, 35}
	oidEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}
)

func (k KeyType) ecParams() []byte {
	var oid asn1.ObjectIdentifier
	switch k {
	case ECP256:
		oid = oidP256
	case ECP384:
		oid = oidP384
	case ECP521:
		oid = oidP521
	case Ed25519:
		oid = oidEd25519
	default:
		return nil
	}
	b, _ := asn1.Marshal(oid)
	return b
}

// Usage is what a key may do. Templates set every use attribute explicitly
// from it, true or false, and never leave one to the token's default
// (SoftHSM, for one, makes an RSA private key able to decrypt and unwrap
// unless told otherwise).
type Usage int

const (
	// UseByType: private keys sign only; AES keys encrypt, decrypt, wrap and
	// unwrap; HMAC keys sign and verify. Public halves verify only.
	UseByType Usage = iota
	// UseWrap: wrap and unwrap only (key-encryption keys, ephemeral keys).
	UseWrap
	// UseEscrow: key material kept to be exported wrapped (BYOK): no use but
	// computing its check value (AES encrypt, HMAC sign).
	UseEscrow
	// UseWrapPublic: an RSA public key that wraps and encrypts (an AWS KMS
	// wrapping key, a probe key).
	UseWrapPublic
)

// KeySpec says what GenerateKey makes. The zero values are the safe ones:
// a persistent, private, sensitive, non-extractable key.
type KeySpec struct {
	Type  KeyType
	Label string
	// ID is the CKA_ID; when empty, 16 random bytes (RandomMixed).
	ID []byte
	// Usage says which operations the key allows (UseByType by default).
	Usage Usage
	// Extractable lets the key leave the token wrapped. Only for keys a
	// ceremony script explicitly backs up or exports (BYOK).
	Extractable bool
	// WrapWithTrusted restricts wrapping to keys marked CKA_TRUSTED (backup KEKs).
	WrapWithTrusted bool
	// Trusted marks a wrapping key as trusted (CKA_TRUSTED). Only the security
	// officer may set it, so the SO must be logged in, and the key is created
	// as a public (CKA_PRIVATE=false) but sensitive, non-extractable object.
	Trusted bool
	// Session makes a session object that disappears when the token closes.
	Session bool
	// NotSensitive allows reading CKA_VALUE. Used only for ephemeral keys whose
	// value the caller must process in host software, never for stored keys.
	NotSensitive bool
	// Public makes a session key visible without login (CKA_PRIVATE false):
	// only for the throwaway keys of capability probes.
	Public bool
}

func (s KeySpec) validate() error {
	if s.Type == KeyTypeUnknown {
		return fmt.Errorf("key spec: no key type")
	}
	if s.Label == "" && !s.Session {
		return fmt.Errorf("key spec: a token key needs a label")
	}
	if s.NotSensitive && !s.Session {
		return fmt.Errorf("key spec %q: only session keys may be non-sensitive", s.Label)
	}
	if s.Public && !s.Session {
		return fmt.Errorf("key spec %q: only session keys may be public", s.Label)
	}
	return nil
}

// template is the attributes of one half of a key: those the key must have,
// and the restrictions that narrow what it can do beyond the token's
// defaults. A token that refuses a restriction (tpm2-pkcs11 makes every key
// able to decrypt, and refuses CKA_DECRYPT false) gets the key without it,
// and the read-back names what did not hold.
type template struct {
	required     []*pkcs11.Attribute
	restrictions []*pkcs11.Attribute
}

func (t template) all() []*pkcs11.Attribute {
	return t.without(nil)
}

// with is the template with more required attributes (a value, a length).
func (t template) with(attrs ...*pkcs11.Attribute) template {
	t.required = append(append([]*pkcs11.Attribute{}, t.required...), attrs...)
	return t
}

// without is the template less the restrictions of the given types, with
// CKA_MODIFIABLE last (see lifeRestrictions).
func (t template) without(types map[uint]bool) []*pkcs11.Attribute {
	out := append([]*pkcs11.Attribute{}, t.required...)
	var last *pkcs11.Attribute
	for _, a := range t.restrictions {
		switch {
		case types[a.Type]:
		case a.Type == pkcs11.CKA_MODIFIABLE:
			last = a
		default:
			out = append(out, a)
		}
	}
	if last != nil {
		out = append(out, last)
	}
	return out
}

func boolAttrs(v bool, types ...uint) []*pkcs11.Attribute {
	out := make([]*pkcs11.Attribute, len(types))
	for i, t := range types {
		out[i] = pkcs11.NewAttribute(t, v)
	}
	return out
}

// common attributes for the secret or private half.
func (s KeySpec) privateAttrs(class uint, id []byte) []*pkcs11.Attribute {
	a := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, !s.Session),
		// A trusted KEK is made by the security officer, who may not create
		// private objects (PKCS#11 section 4.1.6); it stays sensitive and
		// non-extractable, so being visible without login reveals nothing.
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, !s.Trusted && !s.Public),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, !s.NotSensitive),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, s.Extractable),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP_WITH_TRUSTED, s.WrapWithTrusted),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	}
	if s.Label != "" {
		a = append(a, pkcs11.NewAttribute(pkcs11.CKA_LABEL, s.Label))
	}
	return a
}

// lifeRestrictions keep a stored key as it was made: no copies with other
// attributes (PKCS#11 2.40 CKA_COPYABLE), no attribute changes. CKA_MODIFIABLE
// comes last in every template: SoftHSM applies a template in order, and
// refuses every attribute after CKA_MODIFIABLE false as read-only.
var lifeRestrictions = boolAttrs(false, pkcs11.CKA_COPYABLE, pkcs11.CKA_MODIFIABLE)

// secretUses is the use attributes of a secret key of type kt.
func (s KeySpec) secretUses() (allowed, denied []uint) {
	aes := s.Type == AES128 || s.Type == AES256
	switch {
	case s.Usage == UseWrap || s.Trusted:
		return []uint{pkcs11.CKA_WRAP, pkcs11.CKA_UNWRAP}, []uint{pkcs11.CKA_ENCRYPT, pkcs11.CKA_DECRYPT, pkcs11.CKA_SIGN, pkcs11.CKA_VERIFY, pkcs11.CKA_DERIVE}
	case s.Usage == UseEscrow && aes:
		return []uint{pkcs11.CKA_ENCRYPT}, []uint{pkcs11.CKA_DECRYPT, pkcs11.CKA_WRAP, pkcs11.CKA_UNWRAP, pkcs11.CKA_SIGN, pkcs11.CKA_VERIFY, pkcs11.CKA_DERIVE}
	case s.Usage == UseEscrow:
		return []uint{pkcs11.CKA_SIGN}, []uint{pkcs11.CKA_VERIFY, pkcs11.CKA_ENCRYPT, pkcs11.CKA_DECRYPT, pkcs11.CKA_WRAP, pkcs11.CKA_UNWRAP, pkcs11.CKA_DERIVE}
	case aes:
		return []uint{pkcs11.CKA_ENCRYPT, pkcs11.CKA_DECRYPT, pkcs11.CKA_WRAP, pkcs11.CKA_UNWRAP}, []uint{pkcs11.CKA_SIGN, pkcs11.CKA_VERIFY, pkcs11.CKA_DERIVE}
	}
	return []uint{pkcs11.CKA_SIGN, pkcs11.CKA_VERIFY}, []uint{pkcs11.CKA_ENCRYPT, pkcs11.CKA_DECRYPT, pkcs11.CKA_WRAP, pkcs11.CKA_UNWRAP, pkcs11.CKA_DERIVE}
}

// keyAttrs is the template of the secret or private half of a key of s's
// type: class, key type and use, the same whether the key is generated,
// imported or unwrapped (generation and import add the value or its length).
func (s KeySpec) keyAttrs(id []byte) (template, error) {
	var t template
	var life []*pkcs11.Attribute
	if !s.Session {
		life = lifeRestrictions
	}
	switch {
	case s.Type.Symmetric():
		kt := uint(pkcs11.CKK_GENERIC_SECRET)
		if s.Type == AES128 || s.Type == AES256 {
			kt = pkcs11.CKK_AES
		}
		allowed, denied := s.secretUses()
		t.required = append(s.privateAttrs(pkcs11.CKO_SECRET_KEY, id), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, kt))
		t.required = append(t.required, boolAttrs(true, allowed...)...)
		t.restrictions = append(boolAttrs(false, denied...), life...)
		if s.Trusted {
			t.required = append(t.required, pkcs11.NewAttribute(pkcs11.CKA_TRUSTED, true))
		}
		return t, nil
	case s.Type.IsRSA(), s.Type.IsEC(), s.Type == Ed25519:
		kt := uint(pkcs11.CKK_RSA)
		if s.Type.IsEC() {
			kt = pkcs11.CKK_EC
		} else if s.Type == Ed25519 {
			kt = ckkECEdwards
		}
		// Private keys sign, and only sign: a root key that could decrypt
		// or unwrap would be an oracle for whoever holds the user PIN.
		t.required = append(s.privateAttrs(pkcs11.CKO_PRIVATE_KEY, id), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, kt), pkcs11.NewAttribute(pkcs11.CKA_SIGN, true))
		t.restrictions = append(boolAttrs(false, pkcs11.CKA_DECRYPT, pkcs11.CKA_UNWRAP, pkcs11.CKA_SIGN_RECOVER, pkcs11.CKA_DERIVE), life...)
		return t, nil
	}
	return t, fmt.Errorf("no key template for a %s key", s.Type)
}

// publicAttrs is the template of the public half: it verifies only, unless
// the spec makes a wrapping public key.
func (s KeySpec) publicAttrs(id []byte) template {
	t := template{required: []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, !s.Session),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	}}
	if s.Label != "" {
		t.required = append(t.required, pkcs11.NewAttribute(pkcs11.CKA_LABEL, s.Label))
	}
	if s.Usage == UseWrapPublic {
		t.required = append(t.required, boolAttrs(true, pkcs11.CKA_WRAP, pkcs11.CKA_ENCRYPT)...)
		t.restrictions = boolAttrs(false, pkcs11.CKA_VERIFY, pkcs11.CKA_VERIFY_RECOVER, pkcs11.CKA_DERIVE)
		if s.Trusted {
			t.required = append(t.required, pkcs11.NewAttribute(pkcs11.CKA_TRUSTED, true))
		}
		return t
	}
	t.required = append(t.required, pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true))
	t.restrictions = boolAttrs(false, pkcs11.CKA_ENCRYPT, pkcs11.CKA_WRAP, pkcs11.CKA_VERIFY_RECOVER, pkcs11.CKA_DERIVE)
	if !s.Session {
		t.restrictions = append(t.restrictions, lifeRestrictions...)
	}
	return t
}

// KeyTypeOf is the key type of a public key (RSAOther for an RSA size not
// listed, KeyTypeUnknown for other algorithms and curves).
func KeyTypeOf(pub crypto.PublicKey) KeyType {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if kt, ok := map[int]KeyType{2048: RSA2048, 3072: RSA3072, 4096: RSA4096}[p.N.BitLen()]; ok {
			return kt
		}
		return RSAOther
	case *ecdsa.PublicKey:
		return map[string]KeyType{"P-256": ECP256, "P-384": ECP384, "P-521": ECP521}[p.Curve.Params().Name]
	case ed25519.PublicKey:
		return Ed25519
	}
	return KeyTypeUnknown
}
