package hsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/miekg/pkcs11"
)

// GenerateKey creates a key inside the token. It checks first that the token
// says it can (mechanism, flag, key size: a *CapabilityError names what is
// missing), refuses a label or ID that already names a key, so a ceremony
// can never silently shadow an existing key, sets every use attribute
// explicitly (KeySpec.Usage) and reads them back (Key.AttributeChecks). A
// generation that does not complete leaves nothing behind: whatever the
// token created is destroyed, and the *IncompleteKeyError says so.
func (t *Token) GenerateKey(ctx context.Context, spec KeySpec) (*Key, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	what := fmt.Sprintf("generate %s key %q on token %q", spec.Type, spec.Label, t.label)
	caps, err := t.Capabilities()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := caps.CanGenerate(spec.Type); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if spec.signs() {
		if err := caps.CanSign(spec.Type, false); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	id, err := t.newKeyID(spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	g, err := keyGeneration(spec, id)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	made, err := t.generate(ctx, g)
	if err == nil {
		var k *Key
		if k, err = t.checkGenerated(ctx, spec, g, made); err == nil {
			return k, nil
		}
	} else {
		err = t.explainGenerate(err, spec, g)
	}
	return nil, fmt.Errorf("%s: %w", what, t.destroyIncomplete(err, spec, id, made))
}

// generation is how the token makes a key of one type: the mechanism and the
// templates of the secret or private half and, for key pairs, the public half.
type generation struct {
	mechanism uint
	name      string
	private   template
	public    *template // nil for a secret key
}

// keyGeneration is the generation of spec's type, one case per family.
func keyGeneration(spec KeySpec, id []byte) (generation, error) {
	private, err := spec.keyAttrs(id)
	if err != nil {
		return generation{}, err
	}
	pub := spec.publicAttrs(id)
	switch {
	case spec.Type == AES128 || spec.Type == AES256:
		private = private.with(pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, spec.Type.secretLen()))
		return generation{mechanism: pkcs11.CKM_AES_KEY_GEN, name: "CKM_AES_KEY_GEN", private: private}, nil
	case spec.Type.Symmetric():
		private = private.with(pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, spec.Type.secretLen()))
		return generation{mechanism: pkcs11.CKM_GENERIC_SECRET_KEY_GEN, name: "CKM_GENERIC_SECRET_KEY_GEN", private: private}, nil
	case spec.Type.IsRSA():
		pub = pub.with(
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, spec.Type.rsaBits()),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, big.NewInt(defaultRSAPublicExpBits).Bytes()))
		return generation{mechanism: pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, name: "CKM_RSA_PKCS_KEY_PAIR_GEN", private: private, public: &pub}, nil
	case spec.Type.IsEC():
		pub = pub.with(
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, spec.Type.ecParams()))
		return generation{mechanism: pkcs11.CKM_EC_KEY_PAIR_GEN, name: "CKM_EC_KEY_PAIR_GEN", private: private, public: &pub}, nil
	case spec.Type == Ed25519:
		pub = pub.with(
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, ckkECEdwards),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, spec.Type.ecParams()))
		return generation{mechanism: ckmECEdwardsKeyPairGen, name: "CKM_EC_EDWARDS_KEY_PAIR_GEN", private: private, public: &pub}, nil
	}
	return generation{}, fmt.Errorf("key type %s cannot be generated", spec.Type)
}

// generated is what the token created: the handles, and the restrictions it
// refused in the template (the key was made without them).
type generated struct {
	priv, pub pkcs11.ObjectHandle
	refused   map[uint]bool
}

// dropOrder is the order in which restrictions a token refuses are given up,
// each step keeping the ones before it dropped: first the one TPMs refuse
// (a TPM key that signs can also decrypt), then the PKCS#11 2.40 attributes
// older tokens do not know, then every restriction.
var dropOrder = [][]uint{
	{pkcs11.CKA_DECRYPT, pkcs11.CKA_ENCRYPT},
	{pkcs11.CKA_COPYABLE},
	{pkcs11.CKA_MODIFIABLE},
	nil, // all the rest
}

// generate calls C_GenerateKey(Pair), first with every restriction, then,
// while the token refuses the template, without the restrictions in dropOrder.
func (t *Token) generate(ctx context.Context, g generation) (generated, error) {
	restrictions := map[uint]bool{}
	for _, a := range g.private.restrictions {
		restrictions[a.Type] = true
	}
	if g.public != nil {
		for _, a := range g.public.restrictions {
			restrictions[a.Type] = true
		}
	}
	// The attempts: each drops more restrictions than the one before.
	attempts := []map[uint]bool{{}}
	for _, drop := range dropOrder {
		next := map[uint]bool{}
		for typ := range attempts[len(attempts)-1] {
			next[typ] = true
		}
		changed := false
		for typ := range restrictions {
			if !next[typ] && (drop == nil || slices.Contains(drop, typ)) {
				next[typ], changed = true, true
			}
		}
		if changed {
			attempts = append(attempts, next)
		}
	}
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(g.mechanism, nil)}
	var made generated
	var err error
	for _, refused := range attempts {
		made = generated{refused: refused}
		err = t.withSession(ctx, func(sh pkcs11.SessionHandle) error {
			var err error
			if g.public == nil {
				made.priv, err = t.ctx().GenerateKey(sh, mech, g.private.without(refused))
			} else {
				made.pub, made.priv, err = t.ctx().GenerateKeyPair(sh, mech, g.public.without(refused), g.private.without(refused))
			}
			return err
		})
		if err == nil || !templateRefused(err) {
			return made, err
		}
	}
	return made, err
}

// templateRefused reports whether err is a token refusing a template's
// attributes (tpm2-pkcs11 answers CKR_GENERAL_ERROR to a restriction its
// TPM objects cannot express).
func templateRefused(err error) bool {
	switch rv(err) {
	case pkcs11.CKR_ATTRIBUTE_VALUE_INVALID, pkcs11.CKR_ATTRIBUTE_TYPE_INVALID, pkcs11.CKR_TEMPLATE_INCONSISTENT,
		pkcs11.CKR_ATTRIBUTE_READ_ONLY, pkcs11.CKR_GENERAL_ERROR:
		return true
	}
	return false
}

// checkGenerated reads the new key back and checks that the token made what
// was asked: every required attribute as given; the restrictions are
// recorded, held or not.
func (t *Token) checkGenerated(ctx context.Context, spec KeySpec, g generation, made generated) (*Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("cancelled before the key was read back: %w", err)
	}
	k, err := t.loadKey(made.priv, made.pub)
	if err != nil {
		return nil, fmt.Errorf("read back: %w", err)
	}
	if k.typ != spec.Type {
		return nil, fmt.Errorf("the token made a %s key, not %s", k.typ, spec.Type)
	}
	checks, err := t.checkAttributes(made.priv, "private", g.private, made.refused)
	if err == nil && g.public != nil {
		var pub []AttributeCheck
		pub, err = t.checkAttributes(made.pub, "public", *g.public, made.refused)
		checks = append(checks, pub...)
	}
	if err != nil {
		return nil, err
	}
	if k.class == ClassSecretKey {
		for i := range checks {
			checks[i].Object = "secret"
		}
	}
	k.checks = checks
	if spec.signs() {
		if err := k.proveSigning(); err != nil {
			return nil, &CapabilityError{Token: t.label, Operation: "sign with a " + spec.Type.String() + " key", Mechanism: g.name,
				Missing: "the token made the key but does not sign with it: " + err.Error()}
		}
	}
	return k, nil
}

// signs reports whether the key made from spec is a signing key pair.
func (s KeySpec) signs() bool { return !s.Type.Symmetric() && s.Usage == UseByType }

// IncompleteKeyError is a key generation that did not complete. Whatever the
// token had created by then was destroyed (Destroyed lists it), unless
// destroying failed too (Leftover says what is left, to destroy by hand).
type IncompleteKeyError struct {
	Err       error
	Destroyed []string
	Leftover  string
}

func (e *IncompleteKeyError) Error() string {
	msg := e.Err.Error()
	switch {
	case e.Leftover != "" && len(e.Destroyed) > 0:
		msg += fmt.Sprintf("; of the incomplete key, %s were destroyed, but %s", strings.Join(e.Destroyed, ", "), e.Leftover)
	case e.Leftover != "":
		msg += "; " + e.Leftover
	case len(e.Destroyed) > 0:
		msg += fmt.Sprintf("; the incomplete key was destroyed (%s), nothing is left on the token", strings.Join(e.Destroyed, ", "))
	}
	return msg
}

func (e *IncompleteKeyError) Unwrap() error { return e.Err }

// destroyIncomplete destroys what a failed generation left: the handles the
// token returned, and any object with the new key's ID (which no other object
// had: newKeyID refuses taken IDs). It wraps err in an *IncompleteKeyError
// when there was something to destroy.
func (t *Token) destroyIncomplete(err error, spec KeySpec, id []byte, made generated) error {
	// Private and secret halves first: tpm2-pkcs11 cannot destroy a private
	// key whose public half is gone (CKR_FUNCTION_FAILED).
	var handles []pkcs11.ObjectHandle
	add := func(h pkcs11.ObjectHandle) {
		if h != 0 && !slices.Contains(handles, h) {
			handles = append(handles, h)
		}
	}
	add(made.priv)
	if len(id) > 0 {
		found, ferr := t.findObjects(Filter{ID: id})
		if ferr != nil && made.priv == 0 && made.pub == 0 {
			return &IncompleteKeyError{Err: err, Leftover: fmt.Sprintf("the token could not be searched for what the attempt left (%v): look for objects with ID %x and destroy them", ferr, id)}
		}
		for _, h := range found {
			if a, aerr := t.attrs(h, pkcs11.CKA_CLASS); aerr == nil && bytesToUint(a[pkcs11.CKA_CLASS]) != pkcs11.CKO_PUBLIC_KEY {
				add(h)
			}
		}
		for _, h := range found {
			add(h)
		}
	}
	add(made.pub)
	if len(handles) == 0 {
		return err
	}
	ie := &IncompleteKeyError{Err: err}
	for _, h := range handles {
		what := fmt.Sprintf("object %d", h)
		if a, aerr := t.attrs(h, pkcs11.CKA_CLASS); aerr == nil {
			what = map[uint]string{pkcs11.CKO_PRIVATE_KEY: "private key", pkcs11.CKO_PUBLIC_KEY: "public key", pkcs11.CKO_SECRET_KEY: "secret key"}[bytesToUint(a[pkcs11.CKA_CLASS])]
		}
		derr := t.withSession(context.Background(), func(sh pkcs11.SessionHandle) error { return t.ctx().DestroyObject(sh, h) })
		if derr != nil && rv(derr) != pkcs11.CKR_OBJECT_HANDLE_INVALID {
			ie.Leftover = fmt.Sprintf("destroying the incomplete key failed (%v): destroy the objects labelled %q with ID %x by hand", derr, spec.Label, id)
			continue
		}
		ie.Destroyed = append(ie.Destroyed, fmt.Sprintf("%s %q id %x", what, spec.Label, id))
	}
	return ie
}

// explainGenerate says what a failed C_GenerateKey(Pair) means for this key.
func (t *Token) explainGenerate(err error, spec KeySpec, g generation) error {
	code := rv(err)
	switch code {
	case pkcs11.CKR_MECHANISM_INVALID, pkcs11.CKR_MECHANISM_PARAM_INVALID:
		return &MechanismError{Mechanism: g.name, Token: t.label}
	case pkcs11.CKR_FUNCTION_NOT_SUPPORTED:
		return &CapabilityError{Token: t.label, Operation: "generate a " + spec.Type.String() + " key", Mechanism: g.name,
			Missing: "the module does not implement the generation of this kind of key (" + g.name + ": CKR_FUNCTION_NOT_SUPPORTED), although it may list the mechanism"}
	case pkcs11.CKR_KEY_SIZE_RANGE:
		return &CapabilityError{Token: t.label, Operation: "generate a " + spec.Type.String() + " key", Mechanism: g.name,
			Missing: "the token does not make keys of this size (CKR_KEY_SIZE_RANGE)"}
	case pkcs11.CKR_CURVE_NOT_SUPPORTED, pkcs11.CKR_DOMAIN_PARAMS_INVALID:
		return &CapabilityError{Token: t.label, Operation: "generate a " + spec.Type.String() + " key", Mechanism: g.name,
			Missing: "the token does not support this curve (" + pkcs11.Error(code).Error() + ")"}
	case pkcs11.CKR_DEVICE_MEMORY:
		return fmt.Errorf("the token has no room for another key (CKR_DEVICE_MEMORY): destroy keys it no longer needs, or use another token")
	case pkcs11.CKR_TOKEN_WRITE_PROTECTED, pkcs11.CKR_SESSION_READ_ONLY:
		return fmt.Errorf("the token is write-protected (%v): it cannot store a new key", err)
	}
	if templateRefused(err) {
		var why []string
		if spec.Extractable {
			why = append(why, "a key both sensitive and extractable (needed to back it up or export it wrapped): tpm2-pkcs11, for one, makes only non-extractable keys")
		}
		if spec.WrapWithTrusted || spec.Trusted {
			why = append(why, "CKA_WRAP_WITH_TRUSTED or CKA_TRUSTED")
		}
		msg := fmt.Sprintf("the token refused the key's attributes, even without the optional restrictions (%v)", err)
		if len(why) > 0 {
			msg += "; this token may not support " + strings.Join(why, "; ")
		}
		return errors.New(msg)
	}
	return t.classify(g.name, err)
}

// newKeyID is the CKA_ID of a key about to be created (generated, imported or
// unwrapped): spec.ID, or 16 random bytes when it is empty.
// A persistent key may not take a label or ID that already names an object.
func (t *Token) newKeyID(spec KeySpec) ([]byte, error) {
	if !spec.Session {
		if err := t.refuseDuplicate(spec.Label, spec.ID); err != nil {
			return nil, err
		}
	}
	return t.keyID(spec)
}

// keyID is spec.ID, or 16 random bytes (RandomMixed) when it is empty.
func (t *Token) keyID(spec KeySpec) ([]byte, error) {
	if len(spec.ID) > 0 {
		return bytes.Clone(spec.ID), nil
	}
	id, err := t.RandomMixed(16)
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
