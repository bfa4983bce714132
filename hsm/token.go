package hsm

import (
	"context"
	"crypto"
	"fmt"
	"sync"
	"unsafe"

	"github.com/miekg/pkcs11"
)

// poolSize bounds the sessions a Token opens for concurrent work. Tokens have
// few session slots (some USB tokens allow 4-16), so keep this small.
const poolSize = 4

// Token is an open token: one long-lived session that holds the login (PKCS#11
// login state belongs to the application, so every session shares it) and a
// small pool of extra sessions for concurrent operations such as signing.
type Token struct {
	m     *Module
	slot  uint
	label string
	id    TokenIdentity // as it was when opened

	mu       sync.Mutex // guards closed and the session bookkeeping
	closed   bool
	main     pkcs11.SessionHandle
	idle     []pkcs11.SessionHandle
	open     int           // sessions out of the pool plus idle ones, besides main
	sem      chan struct{} // limits concurrent pooled sessions
	loggedIn bool
	refused  map[uint]bool // roles (CKU_*) whose PIN the token refused in this process
	allowTry map[uint]bool // roles allowed one more try (AllowOneMoreTry)

	capsMu    sync.Mutex
	caps      *Capabilities
	probeMu   sync.Mutex
	oaepProbe map[crypto.Hash]bool // which OAEP hashes the token really accepts
	kwpProbed bool
	kwpOK     bool // the token's CKM_AES_KEY_WRAP_PAD follows RFC 5649
}

func newToken(m *Module, slot Slot) (*Token, error) {
	sh, err := m.ctx().OpenSession(slot.ID, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		if isRemoved(err) {
			return nil, fmt.Errorf("open session on token %q: %w", slot.Token.Label, ErrTokenRemoved)
		}
		return nil, fmt.Errorf("open session on token %q: %w", slot.Token.Label, err)
	}
	return &Token{m: m, slot: slot.ID, label: slot.Token.Label, id: slot.Identity(), main: sh, sem: make(chan struct{}, poolSize),
		refused: map[uint]bool{}, allowTry: map[uint]bool{}}, nil
}

// Identity is the token's identity as it was when opened.
func (t *Token) Identity() TokenIdentity { return t.id }

// Label is the token's label as it was when opened.
func (t *Token) Label() string { return t.label }

// SlotID is the slot the token sits in.
func (t *Token) SlotID() uint { return t.slot }

// Module is the module the token belongs to.
func (t *Token) Module() *Module { return t.m }

func (t *Token) ctx() *pkcs11.Ctx { return t.m.ctx() }

// Info reads the token's current information (flags change after a wrong PIN).
func (t *Token) Info() (TokenInfo, error) {
	ti, err := t.ctx().GetTokenInfo(t.slot)
	if err != nil {
		return TokenInfo{}, t.classify("read token info", err)
	}
	return tokenInfo(ti), nil
}

// URI names the token for scripts and the CLI.
func (t *Token) URI() URI {
	info, err := t.Info()
	u := URI{Token: t.label}
	if err == nil {
		u.Serial, u.Manufacturer, u.Model = info.Serial, info.Manufacturer, info.Model
	}
	return u
}

// pinString lets a PIN held in a []byte reach miekg/pkcs11's string API without
// a copy the caller could not wipe: the string shares the slice's memory, so
// zeroing the slice afterwards clears it. The string must not outlive the call.
func pinString(pin []byte) string {
	if len(pin) == 0 {
		return ""
	}
	return unsafe.String(&pin[0], len(pin))
}

// Login logs the user in. Logging in again while already logged in is not
// an error. See login for the PIN-counter rules no caller can skip.
func (t *Token) Login(pin []byte) error { return t.login(pkcs11.CKU_USER, "user", pin) }

// LoginSO logs the security officer in (for InitPIN and SO PIN changes).
func (t *Token) LoginSO(pin []byte) error { return t.login(pkcs11.CKU_SO, "security officer", pin) }

// AllowOneMoreTry lets the next login of the role (so: the security officer)
// go ahead although the token reports few tries left, or a PIN of that role
// was already refused on this token: for a person who has checked why and
// accepts spending one try. A token on its final try is never tried.
func (t *Token) AllowOneMoreTry(so bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.allowTry[userTypeOf(so)] = true
}

func userTypeOf(so bool) uint {
	if so {
		return pkcs11.CKU_SO
	}
	return pkcs11.CKU_USER
}

// login logs a role in, protecting the PIN counter: it does not try at all
// when the token reports the role's final try (the next wrong PIN locks the
// token), nor, unless AllowOneMoreTry was called, when the token reports few
// tries left or a PIN of the role was already refused on this token in this
// process. A PIN derived from a quorum that fails once means a wrong quorum
// or a wrong token; spending a second try could only lock it.
func (t *Token) login(userType uint, role string, pin []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errClosed
	}
	allowed := t.allowTry[userType]
	delete(t.allowTry, userType)
	te := &PINTriesError{Role: role, Token: t.label, RefusedHere: t.refused[userType]}
	if ti, err := t.ctx().GetTokenInfo(t.slot); err == nil {
		if userType == pkcs11.CKU_SO {
			te.CountLow, te.FinalTry = ti.Flags&pkcs11.CKF_SO_PIN_COUNT_LOW != 0, ti.Flags&pkcs11.CKF_SO_PIN_FINAL_TRY != 0
		} else {
			te.CountLow, te.FinalTry = ti.Flags&pkcs11.CKF_USER_PIN_COUNT_LOW != 0, ti.Flags&pkcs11.CKF_USER_PIN_FINAL_TRY != 0
		}
	}
	if te.FinalTry || (te.CountLow || te.RefusedHere) && !allowed {
		return fmt.Errorf("log in %s to token %q: %w", role, t.label, te)
	}
	err := t.ctx().Login(t.main, userType, pinString(pin))
	switch {
	case err == nil, rv(err) == pkcs11.CKR_USER_ALREADY_LOGGED_IN:
		t.loggedIn = true
		delete(t.refused, userType)
		return nil
	case rv(err) == pkcs11.CKR_PIN_INCORRECT:
		t.refused[userType] = true
		pe := &PINError{Role: role}
		if ti, ierr := t.ctx().GetTokenInfo(t.slot); ierr == nil {
			if userType == pkcs11.CKU_SO {
				pe.TriesLow, pe.FinalTry = ti.Flags&pkcs11.CKF_SO_PIN_COUNT_LOW != 0, ti.Flags&pkcs11.CKF_SO_PIN_FINAL_TRY != 0
			} else {
				pe.TriesLow, pe.FinalTry = ti.Flags&pkcs11.CKF_USER_PIN_COUNT_LOW != 0, ti.Flags&pkcs11.CKF_USER_PIN_FINAL_TRY != 0
			}
		}
		return fmt.Errorf("log in to token %q: %w", t.label, pe)
	case rv(err) == pkcs11.CKR_USER_ANOTHER_ALREADY_LOGGED_IN:
		return fmt.Errorf("log in %s to token %q: another role is logged in; log out first", role, t.label)
	case rv(err) == pkcs11.CKR_USER_PIN_NOT_INITIALIZED:
		return fmt.Errorf("log in to token %q: the user PIN is not initialised yet (a ceremony sets it)", t.label)
	}
	return t.classify(fmt.Sprintf("log in %s to token %q", role, t.label), err)
}

// Logout ends the login of whichever role is logged in.
func (t *Token) Logout() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errClosed
	}
	err := t.ctx().Logout(t.main)
	t.loggedIn = false
	if err != nil && rv(err) != pkcs11.CKR_USER_NOT_LOGGED_IN {
		return t.classify("log out", err)
	}
	return nil
}

// InitPIN sets the user PIN; the security officer must be logged in.
func (t *Token) InitPIN(userPIN []byte) error {
	return t.withMain(func(sh pkcs11.SessionHandle) error {
		return t.classify(fmt.Sprintf("initialise user PIN of token %q", t.label), t.ctx().InitPIN(sh, pinString(userPIN)))
	})
}

// SetPIN changes the PIN of the role currently logged in.
func (t *Token) SetPIN(oldPIN, newPIN []byte) error {
	return t.withMain(func(sh pkcs11.SessionHandle) error {
		err := t.ctx().SetPIN(sh, pinString(oldPIN), pinString(newPIN))
		if rv(err) == pkcs11.CKR_PIN_INCORRECT {
			return fmt.Errorf("change PIN of token %q: %w", t.label, &PINError{Role: "current"})
		}
		if rv(err) == pkcs11.CKR_PIN_LEN_RANGE {
			return fmt.Errorf("change PIN of token %q: the new PIN's length is outside the token's range", t.label)
		}
		return t.classify(fmt.Sprintf("change PIN of token %q", t.label), err)
	})
}

// Random returns n bytes from the token's random number generator.
func (t *Token) Random(n int) ([]byte, error) {
	var out []byte
	err := t.withSession(context.Background(), func(sh pkcs11.SessionHandle) error {
		b, err := t.ctx().GenerateRandom(sh, n)
		if err != nil {
			return t.classify("generate random bytes in token", err)
		}
		if len(b) != n {
			return fmt.Errorf("token %q returned %d random bytes, want %d", t.label, len(b), n)
		}
		out = b
		return nil
	})
	return out, err
}

// withMain runs f on the session that holds the login, serialised.
func (t *Token) withMain(f func(pkcs11.SessionHandle) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errClosed
	}
	return f(t.main)
}

// withSession runs f on a pooled session. Sessions that fail with a
// removed-token error are closed instead of returned to the pool.
func (t *Token) withSession(ctx context.Context, f func(pkcs11.SessionHandle) error) error {
	select {
	case t.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-t.sem }()

	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return errClosed
	}
	var sh pkcs11.SessionHandle
	if n := len(t.idle); n > 0 {
		sh, t.idle = t.idle[n-1], t.idle[:n-1]
	} else {
		s, err := t.ctx().OpenSession(t.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			t.mu.Unlock()
			return t.classify("open session", err)
		}
		sh = s
		t.open++
	}
	t.mu.Unlock()

	err := f(sh)

	t.mu.Lock()
	defer t.mu.Unlock()
	// Only a session that is gone is closed: closing a session destroys the
	// session objects it created (an imported wrapping key, say), which other
	// sessions may still use.
	if t.closed || (err != nil && isRemoved(err)) {
		_ = t.ctx().CloseSession(sh)
		t.open--
		return err
	}
	t.idle = append(t.idle, sh)
	return err
}

// Close logs out and closes every session. Safe to call twice.
func (t *Token) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	if t.loggedIn {
		_ = t.ctx().Logout(t.main)
	}
	for _, sh := range t.idle {
		_ = t.ctx().CloseSession(sh)
	}
	t.idle = nil
	if err := t.ctx().CloseSession(t.main); err != nil && !isRemoved(err) {
		return fmt.Errorf("close token %q: %w", t.label, err)
	}
	return nil
}
