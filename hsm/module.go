// Package hsm is Key Ceremony's layer over PKCS#11 tokens (USB HSMs,
// smartcards, SoftHSM2) through github.com/miekg/pkcs11.
//
// The API keeps key material inside the token: keys are generated there with
// safe defaults (sensitive, non-extractable unless asked), used through
// crypto.Signer, and leave the token only wrapped. Where a token lacks a
// wrapping mechanism and a composition has to run a step in host memory, the
// result says so (see Wrapped.Steps) so a ceremony transcript can record it.
package hsm

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/miekg/pkcs11"
)

// Module is a loaded and initialised PKCS#11 library.
type Module struct {
	path string
	lib  *loaded
	once sync.Once
}

// loaded is one dlopen'ed library. PKCS#11 allows one C_Initialize per process
// and library, so Modules opened on the same path share it, reference counted.
type loaded struct {
	ctx  *pkcs11.Ctx
	refs int
	// env is the modules' configuration variables (SOFTHSM2_CONF, ...) when
	// it was initialised: modules read them only then, so a second Open under
	// other values would silently reach the first configuration's tokens.
	env string
}

// confEnv are the variables modules read their token store from when they are
// initialised: SoftHSM2's configuration, tpm2-pkcs11's TPM and store.
var confEnv = []string{"SOFTHSM2_CONF", "TPM2_PKCS11_TCTI", "TPM2_PKCS11_STORE"}

// moduleEnv describes the current values of confEnv, for comparison and messages.
func moduleEnv() string {
	var parts []string
	for _, k := range confEnv {
		if v, ok := os.LookupEnv(k); ok {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

// ErrModuleBusy means the module is already loaded with another configuration.
var ErrModuleBusy = errors.New("PKCS#11 module already loaded with another configuration")

var (
	libsMu sync.Mutex
	libs   = map[string]*loaded{}
)

// Open loads the PKCS#11 library at path and initialises it.
func Open(path string) (*Module, error) {
	if path == "" {
		return nil, fmt.Errorf("open PKCS#11 module: %w: no path given", ErrModuleNotFound)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open PKCS#11 module %s: %w (install its package or give the right path)", path, ErrModuleNotFound)
	}
	libsMu.Lock()
	defer libsMu.Unlock()
	if l, ok := libs[path]; ok {
		if env := moduleEnv(); l.env != env {
			return nil, fmt.Errorf("open PKCS#11 module %s: %w (it was initialised with %q, now %q): close what uses it first", path, ErrModuleBusy, l.env, env)
		}
		l.refs++
		return &Module{path: path, lib: l}, nil
	}
	ctx := pkcs11.New(path)
	if ctx == nil {
		return nil, fmt.Errorf("open PKCS#11 module %s: %w (not a PKCS#11 library for this system, or a dependency is missing)", path, ErrModuleLoad)
	}
	if err := ctx.Initialize(); err != nil && rv(err) != pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED {
		ctx.Destroy()
		return nil, fmt.Errorf("initialise PKCS#11 module %s: %w: %v", path, ErrModuleLoad, err)
	}
	l := &loaded{ctx: ctx, refs: 1, env: moduleEnv()}
	libs[path] = l
	return &Module{path: path, lib: l}, nil
}

// Path is the library path the module was opened from.
func (m *Module) Path() string { return m.path }

func (m *Module) ctx() *pkcs11.Ctx { return m.lib.ctx }

// Close releases the module; the library is finalised when its last Module closes.
func (m *Module) Close() error {
	var err error
	m.once.Do(func() {
		libsMu.Lock()
		defer libsMu.Unlock()
		m.lib.refs--
		if m.lib.refs > 0 {
			return
		}
		delete(libs, m.path)
		if e := m.lib.ctx.Finalize(); e != nil {
			err = fmt.Errorf("finalise PKCS#11 module %s: %w", m.path, e)
		}
		m.lib.ctx.Destroy()
	})
	return err
}

// ModuleInfo describes the library itself.
type ModuleInfo struct {
	Manufacturer   string
	Description    string
	CryptokiMajor  int
	CryptokiMinor  int
	LibraryVersion string
}

// Info returns the library's C_GetInfo.
func (m *Module) Info() (ModuleInfo, error) {
	i, err := m.ctx().GetInfo()
	if err != nil {
		return ModuleInfo{}, fmt.Errorf("module %s info: %w", m.path, err)
	}
	return ModuleInfo{
		Manufacturer:   strings.TrimSpace(i.ManufacturerID),
		Description:    strings.TrimSpace(i.LibraryDescription),
		CryptokiMajor:  int(i.CryptokiVersion.Major),
		CryptokiMinor:  int(i.CryptokiVersion.Minor),
		LibraryVersion: fmt.Sprintf("%d.%d", i.LibraryVersion.Major, i.LibraryVersion.Minor),
	}, nil
}

// Slot is a reader or virtual slot, with its token when one is present.
type Slot struct {
	ID           uint       `json:"id"`
	Description  string     `json:"description"`
	Manufacturer string     `json:"manufacturer"`
	TokenPresent bool       `json:"tokenPresent"`
	Removable    bool       `json:"removable"`
	Hardware     bool       `json:"hardware"`
	Token        *TokenInfo `json:"token,omitempty"`
}

// TokenInfo is what C_GetTokenInfo says about a token, with its flags spelled out.
type TokenInfo struct {
	Label        string `json:"label"`
	Manufacturer string `json:"manufacturer"`
	Model        string `json:"model"`
	Serial       string `json:"serial"`

	Initialized        bool `json:"initialized"`
	LoginRequired      bool `json:"loginRequired"`
	UserPINInitialized bool `json:"userPinInitialized"`
	UserPINCountLow    bool `json:"userPinCountLow"`
	UserPINFinalTry    bool `json:"userPinFinalTry"`
	UserPINLocked      bool `json:"userPinLocked"`
	UserPINToBeChanged bool `json:"userPinToBeChanged"`
	SOPINCountLow      bool `json:"soPinCountLow"`
	SOPINFinalTry      bool `json:"soPinFinalTry"`
	SOPINLocked        bool `json:"soPinLocked"`
	WriteProtected     bool `json:"writeProtected"`
	HasRNG             bool `json:"rng"`
	ProtectedAuthPath  bool `json:"protectedAuthPath"`

	MinPINLen int `json:"minPinLen"`
	MaxPINLen int `json:"maxPinLen"`
}

// Flags lists the set flags by name, for display.
func (ti TokenInfo) Flags() []string {
	var f []string
	add := func(ok bool, name string) {
		if ok {
			f = append(f, name)
		}
	}
	add(ti.Initialized, "initialized")
	add(!ti.Initialized, "NOT initialized")
	add(ti.LoginRequired, "login-required")
	add(ti.UserPINInitialized, "user-PIN-initialized")
	add(ti.UserPINCountLow, "user-PIN-count-low")
	add(ti.UserPINFinalTry, "user-PIN-final-try")
	add(ti.UserPINLocked, "user-PIN-LOCKED")
	add(ti.UserPINToBeChanged, "user-PIN-to-be-changed")
	add(ti.SOPINCountLow, "SO-PIN-count-low")
	add(ti.SOPINFinalTry, "SO-PIN-final-try")
	add(ti.SOPINLocked, "SO-PIN-LOCKED")
	add(ti.WriteProtected, "write-protected")
	add(ti.HasRNG, "rng")
	add(ti.ProtectedAuthPath, "protected-auth-path")
	return f
}

func tokenInfo(ti pkcs11.TokenInfo) TokenInfo {
	has := func(f uint) bool { return ti.Flags&f != 0 }
	return TokenInfo{
		Label:              strings.TrimRight(ti.Label, " \x00"),
		Manufacturer:       strings.TrimRight(ti.ManufacturerID, " \x00"),
		Model:              strings.TrimRight(ti.Model, " \x00"),
		Serial:             strings.TrimRight(ti.SerialNumber, " \x00"),
		Initialized:        has(pkcs11.CKF_TOKEN_INITIALIZED),
		LoginRequired:      has(pkcs11.CKF_LOGIN_REQUIRED),
		UserPINInitialized: has(pkcs11.CKF_USER_PIN_INITIALIZED),
		UserPINCountLow:    has(pkcs11.CKF_USER_PIN_COUNT_LOW),
		UserPINFinalTry:    has(pkcs11.CKF_USER_PIN_FINAL_TRY),
		UserPINLocked:      has(pkcs11.CKF_USER_PIN_LOCKED),
		UserPINToBeChanged: has(pkcs11.CKF_USER_PIN_TO_BE_CHANGED),
		SOPINCountLow:      has(pkcs11.CKF_SO_PIN_COUNT_LOW),
		SOPINFinalTry:      has(pkcs11.CKF_SO_PIN_FINAL_TRY),
		SOPINLocked:        has(pkcs11.CKF_SO_PIN_LOCKED),
		WriteProtected:     has(pkcs11.CKF_WRITE_PROTECTED),
		HasRNG:             has(pkcs11.CKF_RNG),
		ProtectedAuthPath:  has(pkcs11.CKF_PROTECTED_AUTHENTICATION_PATH),
		MinPINLen:          int(ti.MinPinLen),
		MaxPINLen:          int(ti.MaxPinLen),
	}
}

// Slots lists every slot of the module, with token information where a token is present.
func (m *Module) Slots() ([]Slot, error) {
	ids, err := m.ctx().GetSlotList(false)
	if err != nil {
		return nil, fmt.Errorf("list slots of %s: %w", m.path, err)
	}
	slots := make([]Slot, 0, len(ids))
	for _, id := range ids {
		si, err := m.ctx().GetSlotInfo(id)
		if err != nil {
			return nil, fmt.Errorf("slot %d info: %w", id, err)
		}
		s := Slot{
			ID:           id,
			Description:  strings.TrimRight(si.SlotDescription, " \x00"),
			Manufacturer: strings.TrimRight(si.ManufacturerID, " \x00"),
			TokenPresent: si.Flags&pkcs11.CKF_TOKEN_PRESENT != 0,
			Removable:    si.Flags&pkcs11.CKF_REMOVABLE_DEVICE != 0,
			Hardware:     si.Flags&pkcs11.CKF_HW_SLOT != 0,
		}
		if s.TokenPresent {
			ti, err := m.ctx().GetTokenInfo(id)
			if err != nil && !isRemoved(err) {
				return nil, fmt.Errorf("slot %d token info: %w", id, err)
			}
			if err == nil {
				info := tokenInfo(ti)
				s.Token = &info
			} else {
				s.TokenPresent = false
			}
		}
		slots = append(slots, s)
	}
	return slots, nil
}

// MechanismInfo is one mechanism a slot's token supports.
type MechanismInfo struct {
	Type       uint     `json:"type"`
	Name       string   `json:"name"`
	MinKeySize uint     `json:"minKeySize"`
	MaxKeySize uint     `json:"maxKeySize"`
	Flags      []string `json:"flags"`
}

// Mechanisms lists the mechanisms of the token in slot, sorted by name.
func (m *Module) Mechanisms(slotID uint) ([]MechanismInfo, error) {
	list, err := m.ctx().GetMechanismList(slotID)
	if err != nil {
		return nil, fmt.Errorf("list mechanisms of slot %d: %w", slotID, err)
	}
	out := make([]MechanismInfo, 0, len(list))
	for _, mech := range list {
		mi, err := m.ctx().GetMechanismInfo(slotID, []*pkcs11.Mechanism{mech})
		if err != nil {
			return nil, fmt.Errorf("mechanism %s info: %w", MechanismName(mech.Mechanism), err)
		}
		out = append(out, MechanismInfo{
			Type:       mech.Mechanism,
			Name:       MechanismName(mech.Mechanism),
			MinKeySize: mi.MinKeySize,
			MaxKeySize: mi.MaxKeySize,
			Flags:      mechanismFlags(mi.Flags),
		})
	}
	// Named mechanisms first, alphabetically; vendor or unknown ones (hex) after.
	sort.Slice(out, func(i, j int) bool {
		hi, hj := strings.HasPrefix(out[i].Name, "CKM_0x"), strings.HasPrefix(out[j].Name, "CKM_0x")
		if hi != hj {
			return hj
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

func mechanismFlags(f uint) []string {
	names := []struct {
		bit  uint
		name string
	}{
		{pkcs11.CKF_HW, "hw"}, {pkcs11.CKF_ENCRYPT, "encrypt"}, {pkcs11.CKF_DECRYPT, "decrypt"},
		{pkcs11.CKF_DIGEST, "digest"}, {pkcs11.CKF_SIGN, "sign"}, {pkcs11.CKF_VERIFY, "verify"},
		{pkcs11.CKF_GENERATE, "generate"}, {pkcs11.CKF_GENERATE_KEY_PAIR, "generate-key-pair"},
		{pkcs11.CKF_WRAP, "wrap"}, {pkcs11.CKF_UNWRAP, "unwrap"}, {pkcs11.CKF_DERIVE, "derive"},
	}
	var out []string
	for _, n := range names {
		if f&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

// InitToken initialises (erases) the token in slotID with an SO PIN and
// label, and returns the slot the token is in afterwards. Only a ceremony (or
// 'token init') should call this: it destroys every object on the token.
//
// Modules differ in where the token is afterwards: SoftHSM gives it a new
// serial and a new slot, tpm2-pkcs11 keeps slot and serial (the same serial
// as every other token) and offers a new blank slot. So the token is found
// as the one initialised token labelled label that was not there, as it is
// now, before; else, for a re-initialised token that kept everything, in
// slotID.
func (m *Module) InitToken(slotID uint, soPIN []byte, label string) (Slot, error) {
	if len(label) > 32 {
		return Slot{}, fmt.Errorf("initialise token in slot %d: label %q longer than 32 bytes", slotID, label)
	}
	type seen struct {
		slot uint
		id   TokenIdentity
	}
	before := map[seen]bool{}
	slots, err := m.Slots()
	if err != nil {
		return Slot{}, err
	}
	for _, s := range slots {
		if s.Token != nil && s.Token.Initialized {
			before[seen{s.ID, s.Identity()}] = true
		}
	}
	if err := m.ctx().InitToken(slotID, pinString(soPIN), label); err != nil {
		if rv(err) == pkcs11.CKR_PIN_INCORRECT {
			return Slot{}, fmt.Errorf("initialise token in slot %d: %w", slotID, &PINError{Role: "security officer"})
		}
		return Slot{}, fmt.Errorf("initialise token in slot %d: %w", slotID, err)
	}
	if slots, err = m.Slots(); err != nil {
		return Slot{}, err
	}
	var found []Slot
	var same *Slot
	for i, s := range slots {
		if s.Token == nil || !s.Token.Initialized || s.Token.Label != label {
			continue
		}
		if !before[seen{s.ID, s.Identity()}] {
			found = append(found, s)
		} else if s.ID == slotID {
			same = &slots[i]
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) == 0 && same != nil:
		return *same, nil
	}
	return Slot{}, fmt.Errorf("after initialising the token in slot %d, %d new tokens labelled %q appeared; expected exactly one", slotID, len(found), label)
}

// InitTokenWithPINs initialises the token in slotID with soPIN and label
// (C_InitToken) and, logged in as the security officer, sets its user PIN
// (C_InitPIN). It returns the token, open and logged out; the caller closes it.
func (m *Module) InitTokenWithPINs(slotID uint, label string, soPIN, userPIN []byte) (*Token, error) {
	slot, err := m.InitToken(slotID, soPIN, label)
	if err != nil {
		return nil, err
	}
	tok, err := newToken(m, slot)
	if err != nil {
		return nil, err
	}
	err = tok.LoginSO(soPIN)
	if err == nil {
		err = tok.InitPIN(userPIN)
		if lerr := tok.Logout(); err == nil {
			err = lerr
		}
	}
	if err != nil {
		tok.Close()
		return nil, fmt.Errorf("set the user PIN of token %q: %w", label, err)
	}
	return tok, nil
}

// OpenSlot opens the token in slot (found with FindToken or FindIdentity).
func (m *Module) OpenSlot(slot Slot) (*Token, error) {
	if slot.Token == nil {
		return nil, fmt.Errorf("slot %d holds no token: %w", slot.ID, ErrTokenNotFound)
	}
	return newToken(m, slot)
}

// OpenToken opens the token sel selects: a pool of sessions sharing one login.
func (m *Module) OpenToken(sel URI) (*Token, error) {
	slot, err := m.FindToken(sel)
	if err != nil {
		return nil, err
	}
	return newToken(m, slot)
}

var errClosed = errors.New("token closed")
