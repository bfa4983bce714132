package hsm

import (
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

// KeySpec says what GenerateKey makes. The zero values are the safe ones:
// a persistent, private, sensitive, non-extractable key.
type KeySpec struct {
	Type  KeyType
	Label string
	// ID is the CKA_ID; when empty, 16 bytes from the token's RNG.
	ID []byte
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
	return nil
}

// common attributes for the secret or private half.
func (s KeySpec) privateAttrs(class uint, id []byte) []*pkcs11.Attribute {
	a := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, !s.Session),
		// A trusted KEK is made by the security officer, who may not create
		// private objects (PKCS#11 section 4.1.6); it stays sensitive and
		// non-extractable, so being visible without login reveals nothing.
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, !s.Trusted),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, !s.NotSensitive),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, s.Extractable),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	}
	if s.Label != "" {
		a = append(a, pkcs11.NewAttribute(pkcs11.CKA_LABEL, s.Label))
	}
	if s.WrapWithTrusted {
		a = append(a, pkcs11.NewAttribute(pkcs11.CKA_WRAP_WITH_TRUSTED, true))
	}
	return a
}

// keyAttrs is the template of the secret or private half of a key of s's
// type: class, key type and use, the same whether the key is generated,
// imported or unwrapped (generation and import add the value or its length).
func (s KeySpec) keyAttrs(id []byte) ([]*pkcs11.Attribute, error) {
	switch {
	case s.Type == AES128 || s.Type == AES256:
		a := append(s.privateAttrs(pkcs11.CKO_SECRET_KEY, id),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
			pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true),
		)
		if s.Trusted {
			a = append(a, pkcs11.NewAttribute(pkcs11.CKA_TRUSTED, true))
		}
		return a, nil
	case s.Type.Symmetric():
		return append(s.privateAttrs(pkcs11.CKO_SECRET_KEY, id),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		), nil
	case s.Type.IsRSA():
		return append(s.privateAttrs(pkcs11.CKO_PRIVATE_KEY, id), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA), pkcs11.NewAttribute(pkcs11.CKA_SIGN, true)), nil
	case s.Type.IsEC():
		return append(s.privateAttrs(pkcs11.CKO_PRIVATE_KEY, id), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC), pkcs11.NewAttribute(pkcs11.CKA_SIGN, true)), nil
	case s.Type == Ed25519:
		return append(s.privateAttrs(pkcs11.CKO_PRIVATE_KEY, id), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, ckkECEdwards), pkcs11.NewAttribute(pkcs11.CKA_SIGN, true)), nil
	}
	return nil, fmt.Errorf("no key template for a %s key", s.Type)
}

func (s KeySpec) publicAttrs(id []byte) []*pkcs11.Attribute {
	a := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, !s.Session),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
	}
	if s.Label != "" {
		a = append(a, pkcs11.NewAttribute(pkcs11.CKA_LABEL, s.Label))
	}
	return a
}
