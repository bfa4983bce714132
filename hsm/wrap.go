package hsm

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"

	"github.com/keyceremony/keyceremony/hsm/kwp"
	"github.com/miekg/pkcs11"
)

// WrapMechanism is a way of wrapping one key under another.
type WrapMechanism int

const (
	WrapUnknown WrapMechanism = iota
	// AESKeyWrapPad is CKM_AES_KEY_WRAP_PAD, RFC 5649 (backups, and the
	// second half of RSA-AES key wrap).
	AESKeyWrapPad
	// RSAOAEPSHA1 / RSAOAEPSHA256 are CKM_RSA_PKCS_OAEP with the hash and MGF1
	// hash equal (AWS KMS RSAES_OAEP_SHA_1 / RSAES_OAEP_SHA_256).
	RSAOAEPSHA1
	RSAOAEPSHA256
	// RSAAESKeyWrapSHA1 / SHA256 are CKM_RSA_AES_KEY_WRAP: an ephemeral AES-256
	// key wrapped with RSA-OAEP, followed by the target wrapped with that key
	// using RFC 5649 (AWS KMS RSA_AES_KEY_WRAP_SHA_1 / _SHA_256).
	RSAAESKeyWrapSHA1
	RSAAESKeyWrapSHA256
)

var wrapNames = map[WrapMechanism]string{
	AESKeyWrapPad:       "AES-KWP (RFC 5649)",
	RSAOAEPSHA1:         "RSAES-OAEP SHA-1",
	RSAOAEPSHA256:       "RSAES-OAEP SHA-256",
	RSAAESKeyWrapSHA1:   "RSA-AES key wrap SHA-1",
	RSAAESKeyWrapSHA256: "RSA-AES key wrap SHA-256",
}

func (w WrapMechanism) String() string {
	if s, ok := wrapNames[w]; ok {
		return s
	}
	return "unknown wrap mechanism"
}

func (w WrapMechanism) oaepHash() crypto.Hash {
	switch w {
	case RSAOAEPSHA1, RSAAESKeyWrapSHA1:
		return crypto.SHA1
	case RSAOAEPSHA256, RSAAESKeyWrapSHA256:
		return crypto.SHA256
	}
	return 0
}

func oaepMechanism(h crypto.Hash) *pkcs11.Mechanism {
	hp := pkcs11Hash[h]
	return pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_OAEP, pkcs11.NewOAEPParams(hp.ckm, hp.mgf, pkcs11.CKZ_DATA_SPECIFIED, nil))
}

func (w WrapMechanism) pkcs11() (*pkcs11.Mechanism, string) {
	switch w {
	case AESKeyWrapPad:
		return pkcs11.NewMechanism(ckmAESKeyWrapPad, nil), "CKM_AES_KEY_WRAP_PAD"
	case RSAOAEPSHA1:
		return oaepMechanism(crypto.SHA1), "CKM_RSA_PKCS_OAEP(SHA-1)"
	case RSAOAEPSHA256:
		return oaepMechanism(crypto.SHA256), "CKM_RSA_PKCS_OAEP(SHA-256)"
	case RSAAESKeyWrapSHA1, RSAAESKeyWrapSHA256:
		h := w.oaepHash()
		hp := pkcs11Hash[h]
		p := &pkcs11.RSAAESKeyWrapParams{AESKeyBits: 256, OAEPParams: pkcs11.OAEPParams{HashAlg: hp.ckm, MGF: hp.mgf, SourceType: pkcs11.CKZ_DATA_SPECIFIED}}
		return pkcs11.NewMechanism(ckmRSAAESKeyWrap, p), fmt.Sprintf("CKM_RSA_AES_KEY_WRAP(%s)", hashName(h))
	}
	return nil, ""
}

func hashName(h crypto.Hash) string {
	if h == crypto.SHA1 {
		return "SHA-1"
	}
	return h.String()
}

// WrapKey wraps target under wrapping with mech, entirely inside the token.
// A token that cannot do it returns a *MechanismError; nothing is composed.
func (t *Token) WrapKey(ctx context.Context, wrapping, target *Key, mech WrapMechanism) ([]byte, error) {
	m, name := mech.pkcs11()
	if m == nil {
		return nil, fmt.Errorf("wrap key %q: unknown mechanism %d", target.label, mech)
	}
	var out []byte
	err := t.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		var err error
		out, err = t.ctx().WrapKey(sh, []*pkcs11.Mechanism{m}, wrapping.handle, target.handle)
		if err != nil {
			switch rv(err) {
			case pkcs11.CKR_MECHANISM_INVALID, pkcs11.CKR_MECHANISM_PARAM_INVALID, pkcs11.CKR_ARGUMENTS_BAD:
				// SoftHSM 2.6 answers CKR_ARGUMENTS_BAD for OAEP with SHA-256.
				return &MechanismError{Mechanism: name, Token: t.label, Detail: err.Error()}
			case pkcs11.CKR_KEY_UNEXTRACTABLE:
				return fmt.Errorf("key %q is not extractable: only keys created for export or backup can be wrapped", target.label)
			case pkcs11.CKR_KEY_NOT_WRAPPABLE:
				return fmt.Errorf("the token will not wrap key %q this way (CKR_KEY_NOT_WRAPPABLE: a private key under an RSA key, or a key marked CKA_WRAP_WITH_TRUSTED under an untrusted key)", target.label)
			}
			return t.classify(name, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("wrap key %q with %s: %w", target.label, name, err)
	}
	return out, nil
}

// UnwrapKey unwraps wrapped into a new key described by spec (its type,
// label, extractability). The unwrapped key is sensitive.
func (t *Token) UnwrapKey(ctx context.Context, unwrapping *Key, wrapped []byte, mech WrapMechanism, spec KeySpec) (*Key, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	m, name := mech.pkcs11()
	if m == nil {
		return nil, fmt.Errorf("unwrap key %q: unknown mechanism %d", spec.Label, mech)
	}
	id, err := t.newKeyID(spec)
	if err != nil {
		return nil, fmt.Errorf("unwrap key %q: %w", spec.Label, err)
	}
	attrs, err := spec.keyAttrs(id)
	if err != nil {
		return nil, fmt.Errorf("unwrap key %q: cannot unwrap a %s key", spec.Label, spec.Type)
	}
	var h pkcs11.ObjectHandle
	err = t.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		var err error
		h, err = t.ctx().UnwrapKey(sh, []*pkcs11.Mechanism{m}, unwrapping.handle, wrapped, attrs)
		if err != nil {
			switch rv(err) {
			case pkcs11.CKR_WRAPPED_KEY_INVALID, pkcs11.CKR_ENCRYPTED_DATA_INVALID, pkcs11.CKR_WRAPPED_KEY_LEN_RANGE,
				pkcs11.CKR_GENERAL_ERROR: // SoftHSM reports a failed RFC 5649 integrity check this way
				return fmt.Errorf("the wrapped key does not unwrap under key %q: wrong key or damaged backup file (%v)", unwrapping.label, err)
			}
			return t.mechError(err, name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("unwrap key %q with %s: %w", spec.Label, name, err)
	}
	return t.loadKey(h, 0)
}

// WrapStep is one part of a wrap, and where it ran.
type WrapStep struct {
	Action    string `json:"action"`
	Mechanism string `json:"mechanism"`
	InToken   bool   `json:"inToken"`
}

// Wrapped is a wrapped key and how it was made.
type Wrapped struct {
	Ciphertext []byte
	Mechanism  WrapMechanism
	// Composed is true when the token lacked the mechanism and Steps built it
	// from others.
	Composed bool
	Steps    []WrapStep
}

// HostSteps are the steps that ran in host software.
func (w *Wrapped) HostSteps() []WrapStep {
	var out []WrapStep
	for _, s := range w.Steps {
		if !s.InToken {
			out = append(out, s)
		}
	}
	return out
}

// MaterialInHost reports whether plaintext key material (or the ephemeral key
// protecting it) was present in host memory.
func (w *Wrapped) MaterialInHost() bool { return len(w.HostSteps()) > 0 }

// WrapOptions controls compositions when the token lacks a mechanism.
type WrapOptions struct {
	// AllowHostSteps permits a composition in which a step runs in host
	// software. Without it Wrap fails rather than let material reach host memory.
	AllowHostSteps bool
}

// WrapPlan says how Wrap would wrap a key of type target with mech on this
// token, without doing it, so the operator can be shown the host steps before
// confirming.
func (t *Token) WrapPlan(mech WrapMechanism, target KeyType) []WrapStep {
	_, name := mech.pkcs11()
	// kwpRepair: the token's RFC 5649 output must be fixed in host memory
	// because the token pads the material itself (see kwpCompliant).
	// A token without CKM_AES_KEY_WRAP_PAD needs no repair: it cannot compose
	// at all, and only its native mechanisms (if any) apply.
	kwpRepair := t.HasMechanism(ckmAESKeyWrapPad) && !t.kwpCompliant() && !(target.secretLen() > 0 && target.secretLen()%8 == 0)
	kwpSteps := []WrapStep{
		{"generate an ephemeral AES-256 key", "CKM_AES_KEY_GEN", true},
		{"wrap the key material with the ephemeral key", "CKM_AES_KEY_WRAP_PAD", true},
	}
	if kwpRepair {
		kwpSteps = append(kwpSteps,
			WrapStep{"unwrap the key material into host memory to remove the token's non-standard RFC 5649 padding", "AES-KWP (host)", false},
			WrapStep{"wrap the key material again with the ephemeral key", "AES-KWP (host)", false})
	}
	switch mech {
	case AESKeyWrapPad:
		return []WrapStep{{"wrap the key material", name, true}}
	case RSAOAEPSHA1, RSAOAEPSHA256:
		// PKCS#11 tokens wrap only secret keys under RSA-OAEP; a private key
		// (ECC material for AWS) always needs the composition.
		if target.Symmetric() && t.oaepNative(mech.oaepHash()) {
			return []WrapStep{{"RSA-OAEP encrypt the key material", name, true}}
		}
		return []WrapStep{
			{"generate an ephemeral AES-256 key", "CKM_AES_KEY_GEN", true},
			{"wrap the key material with the ephemeral key", "CKM_AES_KEY_WRAP_PAD", true},
			{"unwrap the key material into host memory", "AES-KWP (host)", false},
			{"RSA-OAEP encrypt the key material", fmt.Sprintf("RSA-OAEP %s (host)", hashName(mech.oaepHash())), false},
		}
	case RSAAESKeyWrapSHA1, RSAAESKeyWrapSHA256:
		if t.HasMechanism(ckmRSAAESKeyWrap) && !kwpRepair {
			return []WrapStep{{"RSA-AES key wrap the key material", name, true}}
		}
		steps := kwpSteps
		if t.oaepNative(mech.oaepHash()) && !kwpRepair {
			return append(steps, WrapStep{"RSA-OAEP wrap the ephemeral key", fmt.Sprintf("CKM_RSA_PKCS_OAEP(%s)", hashName(mech.oaepHash())), true})
		}
		return append(steps,
			WrapStep{"read the ephemeral AES key into host memory", "C_GetAttributeValue (host)", false},
			WrapStep{"RSA-OAEP encrypt the ephemeral key", fmt.Sprintf("RSA-OAEP %s (host)", hashName(mech.oaepHash())), false})
	}
	return nil
}

// kwpCompliant probes once whether the token's CKM_AES_KEY_WRAP_PAD follows
// RFC 5649 for material whose length is not a multiple of 8. SoftHSM 2.6
// zero-pads the material first and records the padded length, so a 28-byte
// HMAC key unwraps as 32 bytes and a PKCS#8 key gains trailing zeros; AWS KMS
// would reject or misread either. The probe uses throwaway, non-sensitive
// session keys only.
func (t *Token) kwpCompliant() bool {
	t.probeMu.Lock()
	defer t.probeMu.Unlock()
	if t.kwpProbed {
		return t.kwpOK
	}
	t.kwpProbed = true
	t.kwpOK = t.probeKWP()
	return t.kwpOK
}

func (t *Token) probeKWP() bool {
	ctx := context.Background()
	kek, err := t.GenerateKey(ctx, KeySpec{Type: AES256, Session: true, Extractable: true, NotSensitive: true})
	if err != nil {
		return false
	}
	defer t.DestroyKey(kek)
	var h pkcs11.ObjectHandle
	err = t.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		var err error
		h, err = t.ctx().GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_GENERIC_SECRET_KEY_GEN, nil)}, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 20),
		})
		return err
	})
	if err != nil {
		return false
	}
	probe := &Key{t: t, handle: h, label: "kwp-probe", session: true}
	defer t.DestroyKey(probe)
	wrapped, err := t.WrapKey(ctx, kek, probe, AESKeyWrapPad)
	if err != nil {
		return false
	}
	kekValue, err := t.secretValue(kek)
	if err != nil {
		return false
	}
	defer clear(kekValue)
	pt, err := kwp.Unwrap(kekValue, wrapped)
	return err == nil && len(pt) == 20
}

// oaepNative probes whether the token does RSA-OAEP with hash h (tokens list
// CKM_RSA_PKCS_OAEP but may refuse some hashes: SoftHSM 2.6 takes SHA-1 only).
func (t *Token) oaepNative(h crypto.Hash) bool {
	if !t.HasMechanism(ckmRSAPKCSOAEP) {
		return false
	}
	if h == crypto.SHA1 {
		return true
	}
	t.probeMu.Lock()
	defer t.probeMu.Unlock()
	if v, ok := t.oaepProbe[h]; ok {
		return v
	}
	ok := t.probeOAEP(h)
	if t.oaepProbe == nil {
		t.oaepProbe = map[crypto.Hash]bool{}
	}
	t.oaepProbe[h] = ok
	return ok
}

// probeOAEP encrypts a dummy block with a session copy of a throwaway RSA
// public key; nothing secret is involved.
func (t *Token) probeOAEP(h crypto.Hash) bool {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return false
	}
	pk, err := t.ImportPublicKey(context.Background(), &priv.PublicKey, KeySpec{Type: RSA2048, Session: true})
	if err != nil {
		return false
	}
	defer t.DestroyKey(pk)
	err = t.withSession(context.Background(), func(sh pkcs11.SessionHandle) error {
		if err := t.ctx().EncryptInit(sh, []*pkcs11.Mechanism{oaepMechanism(h)}, pk.handle); err != nil {
			return err
		}
		_, err := t.ctx().Encrypt(sh, make([]byte, 16))
		return err
	})
	return err == nil
}

// Wrap wraps target for export under wrapping (an RSA public key for the RSA
// mechanisms, an AES key for AESKeyWrapPad). It uses the token's own
// mechanism when it has one; otherwise it composes the same algorithm from
// what the token has, and the result's Steps say exactly which parts ran in
// host software. The algorithm is never downgraded: SHA-256 stays SHA-256.
func (t *Token) Wrap(ctx context.Context, wrapping, target *Key, mech WrapMechanism, opts WrapOptions) (*Wrapped, error) {
	what := fmt.Sprintf("wrap key %q with %s", target.label, mech)
	if mech.oaepHash() != 0 {
		rk, ok := wrapping.pub.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%s: the wrapping key is not an RSA public key", what)
		}
		if mech == RSAOAEPSHA1 || mech == RSAOAEPSHA256 {
			if n, ok := target.materialLen(); ok {
				if max := OAEPCapacity(rk.Size(), mech.oaepHash()); n > max {
					return nil, fmt.Errorf("%s: %d bytes of key material exceed what RSA-OAEP %s with a %d-bit key can carry (%d bytes); use RSA-AES key wrap", what, n, hashName(mech.oaepHash()), rk.N.BitLen(), max)
				}
			}
		}
	}
	plan := t.WrapPlan(mech, target.typ)
	hostSteps := false
	for _, st := range plan {
		if !st.InToken {
			hostSteps = true
		}
	}
	if hostSteps && !opts.AllowHostSteps {
		for _, st := range plan {
			if !st.InToken {
				_, name := mech.pkcs11()
				return nil, fmt.Errorf("%s: %w", what, &MechanismError{Mechanism: name, Token: t.label,
					Detail: "doing it correctly would need a step in host memory (" + st.Action + "); allow host steps, or use a token that supports it"})
			}
		}
	}
	if len(plan) == 1 {
		ct, err := t.WrapKey(ctx, wrapping, target, mech)
		if err != nil {
			return nil, err
		}
		return &Wrapped{Ciphertext: ct, Mechanism: mech, Steps: plan}, nil
	}

	// Composition: an ephemeral AES-256 session key wraps the target with KWP.
	// It is readable only when a later step needs it in host memory.
	eph, err := t.GenerateKey(ctx, KeySpec{Type: AES256, Session: true, Extractable: true, NotSensitive: hostSteps})
	if err != nil {
		return nil, fmt.Errorf("%s: ephemeral key: %w", what, err)
	}
	defer t.DestroyKey(eph)
	wrappedTarget, err := t.WrapKey(ctx, eph, target, AESKeyWrapPad)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var ephValue, material []byte
	defer func() { clear(ephValue); clear(material) }()
	if hostSteps {
		if ephValue, err = t.secretValue(eph); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if material, err = kwp.Unwrap(ephValue, wrappedTarget); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if !t.kwpCompliant() {
			if material, err = trimTokenPadding(material, target.typ); err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
		}
	}
	rk := wrapping.pub.(*rsa.PublicKey)
	h := mech.oaepHash()
	switch mech {
	case RSAAESKeyWrapSHA1, RSAAESKeyWrapSHA256:
		var wrappedEph []byte
		if !hostSteps {
			wrappedEph, err = t.WrapKey(ctx, wrapping, eph, map[crypto.Hash]WrapMechanism{crypto.SHA1: RSAOAEPSHA1, crypto.SHA256: RSAOAEPSHA256}[h])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
		} else {
			if wrappedTarget, err = kwp.Wrap(ephValue, material); err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
			if wrappedEph, err = rsa.EncryptOAEP(newHash(h), rand.Reader, rk, ephValue, nil); err != nil {
				return nil, fmt.Errorf("%s: RSA-OAEP: %w", what, err)
			}
		}
		return &Wrapped{Ciphertext: append(wrappedEph, wrappedTarget...), Mechanism: mech, Composed: true, Steps: plan}, nil
	default: // RSA-OAEP of the material itself, in host memory
		ct, err := rsa.EncryptOAEP(newHash(h), rand.Reader, rk, material, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: RSA-OAEP: %w", what, err)
		}
		return &Wrapped{Ciphertext: ct, Mechanism: mech, Composed: true, Steps: plan}, nil
	}
}

// trimTokenPadding removes the zero padding a non-compliant token left inside
// the material: secret keys have a known length; a private key is one DER
// SEQUENCE whose header gives its length.
func trimTokenPadding(material []byte, kt KeyType) ([]byte, error) {
	if n := kt.secretLen(); n > 0 {
		if len(material) < n {
			return nil, fmt.Errorf("token returned %d bytes of %s material, want %d", len(material), kt, n)
		}
		for _, b := range material[n:] {
			if b != 0 {
				return nil, fmt.Errorf("unexpected data after %d bytes of %s material", n, kt)
			}
		}
		return material[:n], nil
	}
	var raw asn1.RawValue
	rest, err := asn1.Unmarshal(material, &raw)
	if err != nil {
		return nil, fmt.Errorf("wrapped private key is not DER: %w", err)
	}
	for _, b := range rest {
		if b != 0 {
			return nil, errors.New("unexpected data after the wrapped private key")
		}
	}
	return material[:len(material)-len(rest)], nil
}

func newHash(h crypto.Hash) hash.Hash {
	if h == crypto.SHA1 {
		return sha1.New()
	}
	return sha256.New()
}

// OAEPCapacity is the largest message RSA-OAEP with hash h can encrypt under
// a modulus of k bytes (RFC 8017: k - 2*hLen - 2).
func OAEPCapacity(k int, h crypto.Hash) int { return k - 2*h.Size() - 2 }

// materialLen is the length of a secret key's raw material, when known.
func (k *Key) materialLen() (int, bool) {
	if n := k.typ.secretLen(); n > 0 {
		return n, true
	}
	return 0, false
}

// secretValue reads CKA_VALUE of a non-sensitive session key.
func (t *Token) secretValue(k *Key) ([]byte, error) {
	if !k.session || k.sensitive {
		return nil, errors.New("refusing to read the value of a stored or sensitive key")
	}
	a, err := t.attrs(k.handle, pkcs11.CKA_VALUE)
	if err != nil {
		return nil, err
	}
	v, ok := a[pkcs11.CKA_VALUE]
	if !ok {
		return nil, errors.New("token did not return the ephemeral key's value")
	}
	return v, nil
}
