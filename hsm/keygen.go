package hsm

import (
	"bytes"
	"context"
	"fmt"
	"math/big"

	"github.com/miekg/pkcs11"
)

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
	id, err := t.newKeyID(spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	g, err := keyGeneration(spec, id)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var priv, pub pkcs11.ObjectHandle
	err = t.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(g.mechanism, nil)}
		var err error
		if g.public == nil {
			priv, err = t.ctx().GenerateKey(sh, mech, g.private)
		} else {
			pub, priv, err = t.ctx().GenerateKeyPair(sh, mech, g.public, g.private)
		}
		if err != nil {
			return t.mechError(err, g.name)
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

// generation is how the token makes a key of one type: the mechanism and the
// templates of the secret or private half and, for key pairs, the public half.
type generation struct {
	mechanism uint
	name      string
	private   []*pkcs11.Attribute
	public    []*pkcs11.Attribute // nil for a secret key
}

// keyGeneration is the generation of spec's type, one case per family.
func keyGeneration(spec KeySpec, id []byte) (generation, error) {
	private, err := spec.keyAttrs(id)
	if err != nil {
		return generation{}, err
	}
	switch {
	case spec.Type == AES128 || spec.Type == AES256:
		return generation{mechanism: pkcs11.CKM_AES_KEY_GEN, name: "CKM_AES_KEY_GEN",
			private: append(private, pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, spec.Type.secretLen()))}, nil
	case spec.Type.Symmetric():
		return generation{mechanism: pkcs11.CKM_GENERIC_SECRET_KEY_GEN, name: "CKM_GENERIC_SECRET_KEY_GEN",
			private: append(private, pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, spec.Type.secretLen()))}, nil
	case spec.Type.IsRSA():
		return generation{mechanism: pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, name: "CKM_RSA_PKCS_KEY_PAIR_GEN", private: private,
			public: append(spec.publicAttrs(id),
				pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
				pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, spec.Type.rsaBits()),
				pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, big.NewInt(defaultRSAPublicExpBits).Bytes()),
			)}, nil
	case spec.Type.IsEC():
		return generation{mechanism: pkcs11.CKM_EC_KEY_PAIR_GEN, name: "CKM_EC_KEY_PAIR_GEN", private: private,
			public: append(spec.publicAttrs(id),
				pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
				pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, spec.Type.ecParams()),
			)}, nil
	case spec.Type == Ed25519:
		return generation{mechanism: ckmECEdwardsKeyPairGen, name: "CKM_EC_EDWARDS_KEY_PAIR_GEN", private: private,
			public: append(spec.publicAttrs(id),
				pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, ckkECEdwards),
				pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, spec.Type.ecParams()),
			)}, nil
	}
	return generation{}, fmt.Errorf("key type %s cannot be generated", spec.Type)
}

// mechError turns "mechanism invalid" into a MechanismError naming the mechanism.
func (t *Token) mechError(err error, mech string) error {
	switch rv(err) {
	case pkcs11.CKR_MECHANISM_INVALID, pkcs11.CKR_MECHANISM_PARAM_INVALID:
		return &MechanismError{Mechanism: mech, Token: t.label}
	}
	return t.classify(mech, err)
}

// newKeyID is the CKA_ID of a key about to be created (generated, imported or
// unwrapped): spec.ID, or 16 bytes from the token's RNG when it is empty.
// A persistent key may not take a label or ID that already names an object.
func (t *Token) newKeyID(spec KeySpec) ([]byte, error) {
	if !spec.Session {
		if err := t.refuseDuplicate(spec.Label, spec.ID); err != nil {
			return nil, err
		}
	}
	return t.keyID(spec)
}

// keyID is spec.ID, or 16 bytes from the token's RNG when it is empty.
func (t *Token) keyID(spec KeySpec) ([]byte, error) {
	if len(spec.ID) > 0 {
		return bytes.Clone(spec.ID), nil
	}
	id, err := t.Random(16)
	if err != nil {
		return nil, fmt.Errorf("key ID: %w", err)
	}
	return id, nil
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
