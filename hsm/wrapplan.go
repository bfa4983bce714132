package hsm

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"strings"

	"github.com/keyceremony/keyceremony/hsm/kwp"
	"github.com/miekg/pkcs11"
)

// WrapPlan says how Wrap would wrap a key of type target with mech on this
// token, without doing it, so the operator can be shown the host steps before
// confirming. wrappingBits is the size of the RSA wrapping key (0 when not
// known yet). The plan is derived from what the token says it can do
// (Capabilities: mechanism flags, key sizes, functions) and from two probes
// with throwaway public session keys (which OAEP hashes the token really
// accepts, whether its AES-KWP follows RFC 5649), so it needs no login. A
// wrap the token cannot do at all is a *CapabilityError naming what is
// missing for each way of doing it.
func (t *Token) WrapPlan(mech WrapMechanism, target KeyType, wrappingBits int) ([]WrapStep, error) {
	caps, err := t.Capabilities()
	if err != nil {
		return nil, err
	}
	_, name := mech.pkcs11()
	op := fmt.Sprintf("wrap %s material with %s", target, mech)
	wrapFn := caps.requireFunc(op, FuncWrapKey)
	rsaSize := keySize{bits: wrappingBits}
	// Every composition starts in the token: an ephemeral AES-256 key wraps
	// the material with RFC 5649.
	composeErr := allErrs(wrapFn, caps.CanGenerate(AES256), caps.Require(op, ckmAESKeyWrapPad, pkcs11.CKF_WRAP, keySize{}))
	cannot := func(native, composed error) error {
		var why []string
		if native != nil {
			why = append(why, "in one mechanism: "+missing(native))
		}
		if composed != nil {
			why = append(why, "composed from an ephemeral AES key: "+missing(composed))
		}
		return &CapabilityError{Token: caps.Token, Operation: op, Mechanism: name, Missing: strings.Join(why, "; ")}
	}
	kwpSteps := []WrapStep{
		{"generate an ephemeral AES-256 key", "CKM_AES_KEY_GEN", true},
		{"wrap the key material with the ephemeral key", "CKM_AES_KEY_WRAP_PAD", true},
	}
	hash := hashName(mech.oaepHash())
	switch mech {
	case AESKeyWrapPad:
		if err := allErrs(wrapFn, caps.Require(op, ckmAESKeyWrapPad, pkcs11.CKF_WRAP, keySize{})); err != nil {
			return nil, err
		}
		return []WrapStep{{"wrap the key material", name, true}}, nil
	case RSAOAEPSHA1, RSAOAEPSHA256:
		// PKCS#11 tokens wrap only secret keys under RSA-OAEP; a private key
		// (ECC material for AWS) always needs the composition.
		native := allErrs(wrapFn, caps.Require(op, ckmRSAPKCSOAEP, pkcs11.CKF_WRAP, rsaSize))
		if native == nil && !target.Symmetric() {
			native = fmt.Errorf("PKCS#11 tokens wrap only secret keys under RSA-OAEP, and %s material is a private key", target)
		}
		if native == nil && !t.oaepNative(mech.oaepHash()) {
			native = fmt.Errorf("the token lists CKM_RSA_PKCS_OAEP but refuses it with %s", hash)
		}
		if native == nil {
			return []WrapStep{{"RSA-OAEP encrypt the key material", name, true}}, nil
		}
		if composeErr != nil {
			return nil, cannot(native, composeErr)
		}
		return append(kwpSteps,
			WrapStep{"unwrap the key material into host memory", "AES-KWP (host)", false},
			WrapStep{"RSA-OAEP encrypt the key material", fmt.Sprintf("RSA-OAEP %s (host)", hash), false}), nil
	case RSAAESKeyWrapSHA1, RSAAESKeyWrapSHA256:
		// kwpRepair: the token's RFC 5649 output must be fixed in host
		// memory because the token pads the material itself (kwpCompliant).
		kwpRepair := composeErr == nil && !(target.secretLen() > 0 && target.secretLen()%8 == 0) && !t.kwpCompliant()
		native := allErrs(wrapFn, caps.Require(op, ckmRSAAESKeyWrap, pkcs11.CKF_WRAP, rsaSize))
		if native == nil && kwpRepair {
			native = fmt.Errorf("the token's AES key wrap with padding is not RFC 5649 for %s material", target)
		}
		if native == nil {
			return []WrapStep{{"RSA-AES key wrap the key material", name, true}}, nil
		}
		if composeErr != nil {
			return nil, cannot(native, composeErr)
		}
		if kwpRepair {
			kwpSteps = append(kwpSteps,
				WrapStep{"unwrap the key material into host memory to remove the token's non-standard RFC 5649 padding", "AES-KWP (host)", false},
				WrapStep{"wrap the key material again with the ephemeral key", "AES-KWP (host)", false})
		}
		oaepIn := caps.Require(op, ckmRSAPKCSOAEP, pkcs11.CKF_WRAP, rsaSize)
		if oaepIn == nil && !kwpRepair && t.oaepNative(mech.oaepHash()) {
			return append(kwpSteps, WrapStep{"RSA-OAEP wrap the ephemeral key", fmt.Sprintf("CKM_RSA_PKCS_OAEP(%s)", hash), true}), nil
		}
		return append(kwpSteps,
			WrapStep{"read the ephemeral AES key into host memory", "C_GetAttributeValue (host)", false},
			WrapStep{"RSA-OAEP encrypt the ephemeral key", fmt.Sprintf("RSA-OAEP %s (host)", hash), false}), nil
	}
	return nil, fmt.Errorf("%s: unknown wrap mechanism", op)
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// allErrs joins every error that is not nil into one: a capability error
// whose Missing lists each, or nil.
func allErrs(errs ...error) error {
	var parts []string
	var first *CapabilityError
	for _, err := range errs {
		if err == nil {
			continue
		}
		if ce, ok := err.(*CapabilityError); ok && first == nil {
			first = ce
		}
		parts = append(parts, missing(err))
	}
	if len(parts) == 0 {
		return nil
	}
	out := &CapabilityError{Missing: strings.Join(parts, ", and ")}
	if first != nil {
		out.Token, out.Operation, out.Mechanism = first.Token, first.Operation, first.Mechanism
	}
	return out
}

// missing is what a capability error says is missing, without the operation.
func missing(err error) string {
	if ce, ok := err.(*CapabilityError); ok {
		return ce.Missing
	}
	return err.Error()
}

// KWPCompliant reports whether the token's CKM_AES_KEY_WRAP_PAD follows
// RFC 5649 for material whose length is not a multiple of 8 (see
// kwpCompliant), which key backups record: a backup made by a token that
// does not needs its padding repaired before a compliant token unwraps it.
func (t *Token) KWPCompliant() bool {
	caps, err := t.Capabilities()
	return err == nil && caps.CanWrapKWP() == nil && t.kwpCompliant()
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
	kek, err := t.GenerateKey(ctx, KeySpec{Type: AES256, Session: true, Extractable: true, NotSensitive: true, Public: true, Usage: UseWrap})
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
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
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
// The caller has checked that the token lists the mechanism.
func (t *Token) oaepNative(h crypto.Hash) bool {
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
	pk, err := t.ImportPublicKey(context.Background(), &priv.PublicKey, KeySpec{Type: RSA2048, Session: true, Usage: UseWrapPublic})
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
