package hsm

import (
	"fmt"
	"sort"
	"strings"

	"github.com/miekg/pkcs11"
)

// Capabilities is what a token says it can do, read without logging in:
// every mechanism with its flags and key-size range (C_GetMechanismInfo), and
// which optional functions the module implements at all. Plans for key
// generation, signing and wrapping are derived from it, so what a plan says
// is what the token said, not a guess from the mechanism's name.
type Capabilities struct {
	Token string // the token's label, for messages
	mechs map[uint]mechInfo
	// Functions the module does not implement, found by calling them with
	// arguments that cannot create anything (tpm2-pkcs11 lists
	// CKM_AES_KEY_GEN with CKF_GENERATE but answers C_GenerateKey with
	// CKR_FUNCTION_NOT_SUPPORTED).
	missingFuncs map[string]bool
	// probed is false when no session could be opened to probe functions
	// (some modules refuse sessions on a blank token).
	probed bool
	// library is the module's C_GetInfo, to look up knownDefects.
	library ModuleInfo
}

// defect is what a module version does wrong that its mechanism
// information does not show.
type defect struct {
	manufacturer, version string // the module's C_GetInfo
	keyType               KeyType
	why                   string
}

// knownDefects were found by the tests against each implementation
// (hsm/tpm2_test.go): plans name them before a ceremony instead of a
// ceremony failing after the unlock. A key generation also proves every new
// signing key by signing with it, so a defect not listed here is caught at
// generation, and the key destroyed.
var knownDefects = []defect{
	{"tpm2-software.github.io", "1.9", ECP521,
		"tpm2-pkcs11 1.9 stores a P-521 public point with a length that is not DER, and then cannot sign with the key (CKR_HOST_MEMORY)"},
}

type mechInfo struct {
	min, max uint
	flags    uint
}

// The functions Capabilities probes.
const (
	FuncGenerateKey = "C_GenerateKey"
	FuncWrapKey     = "C_WrapKey"
	FuncUnwrapKey   = "C_UnwrapKey"
)

// CapabilityError says that a token cannot do an operation, and why: the
// mechanism it does not list, the flag the mechanism lacks, the key size
// outside its range, or the function the module does not implement.
type CapabilityError struct {
	Token     string
	Operation string // "generate an rsa-4096 key"
	Mechanism string // CKM_RSA_PKCS_KEY_PAIR_GEN
	Missing   string // what is missing, for people
}

func (e *CapabilityError) Error() string {
	return fmt.Sprintf("token %q cannot %s: %s", e.Token, e.Operation, e.Missing)
}

func (e *CapabilityError) Unwrap() error { return ErrMechanismNotSupported }

// Capabilities reads what the token in slotID can do.
func (m *Module) Capabilities(slotID uint) (*Capabilities, error) {
	c := &Capabilities{mechs: map[uint]mechInfo{}, missingFuncs: map[string]bool{}}
	c.library, _ = m.Info()
	if ti, err := m.ctx().GetTokenInfo(slotID); err == nil {
		c.Token = strings.TrimRight(ti.Label, " \x00")
	}
	list, err := m.ctx().GetMechanismList(slotID)
	if err != nil {
		return nil, fmt.Errorf("list mechanisms of slot %d: %w", slotID, err)
	}
	for _, mech := range list {
		mi, err := m.ctx().GetMechanismInfo(slotID, []*pkcs11.Mechanism{mech})
		if err != nil {
			return nil, fmt.Errorf("mechanism %s info: %w", MechanismName(mech.Mechanism), err)
		}
		c.mechs[mech.Mechanism] = mechInfo{min: mi.MinKeySize, max: mi.MaxKeySize, flags: mi.Flags}
	}
	c.probeFunctions(m, slotID)
	return c, nil
}

// probeFunctions calls C_GenerateKey, C_WrapKey and C_UnwrapKey in a way that
// cannot create or reveal anything (no key handles, a template without a
// length), on a session of its own without logging in: a module that does
// not implement a function answers CKR_FUNCTION_NOT_SUPPORTED before looking
// at the arguments; one that does answers with an argument error.
func (c *Capabilities) probeFunctions(m *Module, slotID uint) {
	sh, err := m.ctx().OpenSession(slotID, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return
	}
	defer m.ctx().CloseSession(sh)
	c.probed = true
	aesGen := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}
	h, err := m.ctx().GenerateKey(sh, aesGen, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false)})
	if err == nil {
		// A module that made a key of a default length anyway: a session
		// object, destroyed at once.
		_ = m.ctx().DestroyObject(sh, h)
	}
	c.missingFuncs[FuncGenerateKey] = rv(err) == pkcs11.CKR_FUNCTION_NOT_SUPPORTED
	kwp := []*pkcs11.Mechanism{pkcs11.NewMechanism(ckmAESKeyWrapPad, nil)}
	_, err = m.ctx().WrapKey(sh, kwp, 0, 0)
	c.missingFuncs[FuncWrapKey] = rv(err) == pkcs11.CKR_FUNCTION_NOT_SUPPORTED
	_, err = m.ctx().UnwrapKey(sh, kwp, 0, []byte{0}, nil)
	c.missingFuncs[FuncUnwrapKey] = rv(err) == pkcs11.CKR_FUNCTION_NOT_SUPPORTED
}

// Capabilities reads (once) what the open token can do.
func (t *Token) Capabilities() (*Capabilities, error) {
	t.capsMu.Lock()
	defer t.capsMu.Unlock()
	if t.caps != nil {
		return t.caps, nil
	}
	c, err := t.m.Capabilities(t.slot)
	if err != nil {
		return nil, err
	}
	if c.Token == "" {
		c.Token = t.label
	}
	t.caps = c
	return c, nil
}

// Has reports whether the token lists mechanism m.
func (c *Capabilities) Has(m uint) bool {
	_, ok := c.mechs[m]
	return ok
}

// Implements reports whether the module implements the function (one of
// FuncGenerateKey, FuncWrapKey, FuncUnwrapKey), as far as the probe could tell.
func (c *Capabilities) Implements(fn string) bool { return !c.missingFuncs[fn] }

// Mechanisms lists the mechanisms with their flags, by name.
func (c *Capabilities) Mechanisms() []MechanismInfo {
	out := make([]MechanismInfo, 0, len(c.mechs))
	for m, mi := range c.mechs {
		out = append(out, MechanismInfo{Type: m, Name: MechanismName(m), MinKeySize: mi.min, MaxKeySize: mi.max, Flags: mechanismFlags(mi.flags)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

var flagNames = map[uint]string{
	pkcs11.CKF_ENCRYPT: "CKF_ENCRYPT", pkcs11.CKF_DECRYPT: "CKF_DECRYPT", pkcs11.CKF_SIGN: "CKF_SIGN",
	pkcs11.CKF_VERIFY: "CKF_VERIFY", pkcs11.CKF_GENERATE: "CKF_GENERATE", pkcs11.CKF_GENERATE_KEY_PAIR: "CKF_GENERATE_KEY_PAIR",
	pkcs11.CKF_WRAP: "CKF_WRAP", pkcs11.CKF_UNWRAP: "CKF_UNWRAP", pkcs11.CKF_DERIVE: "CKF_DERIVE",
}

// keySize is a key size to check against a mechanism's range, in the unit
// PKCS#11 uses for its family: bits for RSA and EC, bytes for AES (some
// vendors give AES in bits: a range reaching 128 or more is read as bits).
type keySize struct {
	bits  int
	bytes bool // the range is in bytes unless it reaches 128
}

// Require checks that the token lists mech with flag and, when size.bits is
// not 0, a key-size range that contains it. op says what it is for.
func (c *Capabilities) Require(op string, mech, flag uint, size keySize) error {
	name := MechanismName(mech)
	mi, ok := c.mechs[mech]
	if !ok {
		return &CapabilityError{Token: c.Token, Operation: op, Mechanism: name, Missing: name + " is not among the token's mechanisms"}
	}
	if flag != 0 && mi.flags&flag == 0 {
		return &CapabilityError{Token: c.Token, Operation: op, Mechanism: name,
			Missing: fmt.Sprintf("the token lists %s without %s (it says: %s)", name, flagNames[flag], strings.Join(mechanismFlags(mi.flags), ", "))}
	}
	if size.bits > 0 && mi.max > 0 {
		want, unit := uint(size.bits), "bits"
		if size.bytes && mi.max < 128 {
			want, unit = uint(size.bits/8), "bytes"
		}
		if want < mi.min || want > mi.max {
			return &CapabilityError{Token: c.Token, Operation: op, Mechanism: name,
				Missing: fmt.Sprintf("%s takes keys of %d to %d %s, not %d", name, mi.min, mi.max, unit, want)}
		}
	}
	return nil
}

// requireFunc checks that the module implements fn.
func (c *Capabilities) requireFunc(op, fn string) error {
	if c.missingFuncs[fn] {
		return &CapabilityError{Token: c.Token, Operation: op, Mechanism: fn,
			Missing: fn + " is not implemented by the module (it answers CKR_FUNCTION_NOT_SUPPORTED), whatever mechanisms it lists"}
	}
	return nil
}

// generation returns the mechanism and key size that generate kt.
func generationOf(kt KeyType) (mech, flag uint, size keySize, ok bool) {
	switch {
	case kt == AES128 || kt == AES256:
		return pkcs11.CKM_AES_KEY_GEN, pkcs11.CKF_GENERATE, keySize{bits: kt.secretLen() * 8, bytes: true}, true
	case kt.Symmetric() && kt != GenericSecret:
		// The unit of CKM_GENERIC_SECRET_KEY_GEN's range differs between
		// tokens, so its size is not checked.
		return pkcs11.CKM_GENERIC_SECRET_KEY_GEN, pkcs11.CKF_GENERATE, keySize{}, true
	case kt.IsRSA() && kt.rsaBits() > 0:
		return pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, pkcs11.CKF_GENERATE_KEY_PAIR, keySize{bits: kt.rsaBits()}, true
	case kt.IsEC():
		return pkcs11.CKM_EC_KEY_PAIR_GEN, pkcs11.CKF_GENERATE_KEY_PAIR, keySize{bits: kt.curveBits()}, true
	case kt == Ed25519:
		return ckmECEdwardsKeyPairGen, pkcs11.CKF_GENERATE_KEY_PAIR, keySize{}, true
	}
	return 0, 0, keySize{}, false
}

// CanGenerate says whether the token can generate a key of type kt, and if
// not, which capability it lacks.
func (c *Capabilities) CanGenerate(kt KeyType) error {
	op := "generate a " + kt.String() + " key"
	mech, flag, size, ok := generationOf(kt)
	if !ok {
		return fmt.Errorf("key type %s cannot be generated", kt)
	}
	if err := c.Require(op, mech, flag, size); err != nil {
		return err
	}
	if kt.Symmetric() {
		return c.requireFunc(op, FuncGenerateKey)
	}
	return nil
}

// signingOf is the mechanism Key.Signer uses for kt (PKCS#1 v1.5 for RSA
// unless pss), and the key size to check.
func signingOf(kt KeyType, pss bool) (uint, keySize) {
	switch {
	case kt.IsRSA() && pss:
		return pkcs11.CKM_RSA_PKCS_PSS, keySize{bits: kt.rsaBits()}
	case kt.IsRSA():
		return pkcs11.CKM_RSA_PKCS, keySize{bits: kt.rsaBits()}
	case kt.IsEC():
		return pkcs11.CKM_ECDSA, keySize{bits: kt.curveBits()}
	case kt == Ed25519:
		return ckmEdDSA, keySize{}
	}
	return 0, keySize{}
}

// CanSign says whether the token can sign with a key of type kt the way
// Key.Signer does (RSA-PSS when pss is true).
func (c *Capabilities) CanSign(kt KeyType, pss bool) error {
	mech, size := signingOf(kt, pss)
	if mech == 0 {
		return fmt.Errorf("a %s key does not sign", kt)
	}
	what := kt.String()
	if pss {
		what += " RSA-PSS"
	}
	op := "sign with a " + what + " key"
	if err := c.Require(op, mech, pkcs11.CKF_SIGN, size); err != nil {
		return err
	}
	for _, d := range knownDefects {
		if d.keyType == kt && d.manufacturer == c.library.Manufacturer && d.version == c.library.LibraryVersion {
			return &CapabilityError{Token: c.Token, Operation: op, Mechanism: MechanismName(mech), Missing: d.why}
		}
	}
	return nil
}

// curveBits is the size of an EC key's curve, as PKCS#11 ranges count it.
func (k KeyType) curveBits() int {
	switch k {
	case ECP256:
		return 256
	case ECP384:
		return 384
	case ECP521:
		return 521
	}
	return 0
}

// SigningKeyTypes are the key types the token can generate and sign with,
// for messages that say what to choose instead.
func (c *Capabilities) SigningKeyTypes() []KeyType {
	var out []KeyType
	for _, name := range KeyTypes() {
		kt, _ := ParseKeyType(name)
		if !kt.Symmetric() && c.CanGenerate(kt) == nil && c.CanSign(kt, false) == nil {
			out = append(out, kt)
		}
	}
	return out
}

// CanWrapKWP says whether the token can wrap a key under an AES key with
// CKM_AES_KEY_WRAP_PAD (backups).
func (c *Capabilities) CanWrapKWP() error {
	op := "wrap a key with CKM_AES_KEY_WRAP_PAD"
	return firstErr(c.Require(op, ckmAESKeyWrapPad, pkcs11.CKF_WRAP, keySize{}), c.requireFunc(op, FuncWrapKey))
}

// CanUnwrapKWP says whether the token can unwrap a key wrapped with
// CKM_AES_KEY_WRAP_PAD (restores).
func (c *Capabilities) CanUnwrapKWP() error {
	op := "unwrap a key with CKM_AES_KEY_WRAP_PAD"
	return firstErr(c.Require(op, ckmAESKeyWrapPad, pkcs11.CKF_UNWRAP, keySize{}), c.requireFunc(op, FuncUnwrapKey))
}
