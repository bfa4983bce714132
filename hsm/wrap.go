package hsm

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
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
	tmpl, err := spec.keyAttrs(id)
	if err != nil {
		return nil, fmt.Errorf("unwrap key %q: cannot unwrap a %s key", spec.Label, spec.Type)
	}
	attrs := tmpl.all()
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
	k, err := t.loadKey(h, 0)
	if err == nil {
		object := map[bool]string{true: "secret", false: "private"}[spec.Type.Symmetric()]
		k.checks, err = t.checkAttributes(h, object, tmpl, nil)
	}
	if err != nil {
		_ = t.withSession(ctx, func(sh pkcs11.SessionHandle) error { return t.ctx().DestroyObject(sh, h) })
		return nil, fmt.Errorf("unwrap key %q: %w (the unwrapped key was destroyed)", spec.Label, err)
	}
	return k, nil
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
	// Trusted are wrapping keys the security officer made trusted
	// (PrepareTrustedWrap), for a target only trusted keys may wrap
	// (CKA_WRAP_WITH_TRUSTED): its ephemeral key replaces the one a
	// composition would make.
	Trusted *TrustedWrap
}

// TrustedWrap is what PrepareTrustedWrap made: the wrapping public key and,
// when the wrap is composed, the ephemeral AES-256 key, both session objects
// marked CKA_TRUSTED, so they may wrap keys made CKA_WRAP_WITH_TRUSTED.
type TrustedWrap struct {
	Wrapping  *Key
	Ephemeral *Key // nil when the token wraps in one mechanism
	t         *Token
}

// Destroy removes the trusted session keys (they also go when the token closes).
func (w *TrustedWrap) Destroy() {
	if w == nil {
		return
	}
	for _, k := range []*Key{w.Ephemeral, w.Wrapping} {
		if k != nil {
			_ = w.t.DestroyKey(k)
		}
	}
}

// PrepareTrustedWrap imports the RSA wrapping key spkiDER as a trusted
// session key and, when the plan for mech and target composes the wrap,
// generates the trusted ephemeral AES-256 key (readable only when the plan
// has steps in host memory). The security officer must be logged in: only
// the SO may set CKA_TRUSTED, and so the keys are public objects, which the
// user can use after the SO logs out and the user logs in.
func (t *Token) PrepareTrustedWrap(ctx context.Context, spkiDER []byte, mech WrapMechanism, target KeyType) (*TrustedWrap, error) {
	pub, err := x509.ParsePKIXPublicKey(spkiDER)
	if err != nil {
		return nil, fmt.Errorf("trusted wrapping key: not a DER SubjectPublicKeyInfo: %w", err)
	}
	rk, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("trusted wrapping key: the wrapping key must be RSA; this one is %s", DescribePublicKey(pub))
	}
	plan, err := t.WrapPlan(mech, target, rk.N.BitLen())
	if err != nil {
		return nil, err
	}
	w := &TrustedWrap{t: t}
	if w.Wrapping, err = t.ImportPublicKey(ctx, rk, KeySpec{Type: RSAOther, Session: true, Label: "trusted-wrapping-key", Usage: UseWrapPublic, Trusted: true}); err != nil {
		return nil, fmt.Errorf("import the wrapping key as trusted: %w", err)
	}
	if len(plan) > 1 {
		host := false
		for _, s := range plan {
			host = host || !s.InToken
		}
		w.Ephemeral, err = t.GenerateKey(ctx, KeySpec{Type: AES256, Session: true, Extractable: true, NotSensitive: host, Usage: UseWrap, Trusted: true})
		if err != nil {
			w.Destroy()
			return nil, fmt.Errorf("trusted ephemeral key: %w", err)
		}
	}
	return w, nil
}

// Wrap wraps target for export under wrapping (an RSA public key for the RSA
// mechanisms, an AES key for AESKeyWrapPad). It uses the token's own
// mechanism when it has one; otherwise it composes the same algorithm from
// what the token has, and the result's Steps say exactly which parts ran in
// host software. The algorithm is never downgraded: SHA-256 stays SHA-256.
func (t *Token) Wrap(ctx context.Context, wrapping, target *Key, mech WrapMechanism, opts WrapOptions) (*Wrapped, error) {
	what := fmt.Sprintf("wrap key %q with %s", target.label, mech)
	wrappingBits := 0
	if mech.oaepHash() != 0 {
		rk, ok := wrapping.pub.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%s: the wrapping key is not an RSA public key", what)
		}
		wrappingBits = rk.N.BitLen()
		if mech == RSAOAEPSHA1 || mech == RSAOAEPSHA256 {
			if n, ok := target.materialLen(); ok {
				if max := OAEPCapacity(rk.Size(), mech.oaepHash()); n > max {
					return nil, fmt.Errorf("%s: %d bytes of key material exceed what RSA-OAEP %s with a %d-bit key can carry (%d bytes); use RSA-AES key wrap", what, n, hashName(mech.oaepHash()), rk.N.BitLen(), max)
				}
			}
		}
	}
	plan, err := t.WrapPlan(mech, target.typ, wrappingBits)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
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
	var eph *Key
	if opts.Trusted != nil && opts.Trusted.Ephemeral != nil {
		eph = opts.Trusted.Ephemeral
		if eph.sensitive == hostSteps {
			return nil, fmt.Errorf("%s: the trusted ephemeral key was made for another plan", what)
		}
	} else {
		eph, err = t.GenerateKey(ctx, KeySpec{Type: AES256, Session: true, Extractable: true, NotSensitive: hostSteps, Usage: UseWrap})
		if err != nil {
			return nil, fmt.Errorf("%s: ephemeral key: %w", what, err)
		}
		defer t.DestroyKey(eph)
	}
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
