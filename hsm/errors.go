package hsm

import (
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// Errors a caller can test with errors.Is. Every error returned by this package
// wraps one of these where one applies, and always names what was being done.
var (
	ErrModuleNotFound        = errors.New("PKCS#11 module not found")
	ErrModuleLoad            = errors.New("PKCS#11 module failed to load")
	ErrTokenNotFound         = errors.New("no such token")
	ErrTokenRemoved          = errors.New("token removed")
	ErrPINIncorrect          = errors.New("PIN incorrect")
	ErrPINLocked             = errors.New("PIN locked")
	ErrPINTriesLow           = errors.New("PIN not tried: a wrong PIN could lock the token")
	ErrNotLoggedIn           = errors.New("not logged in")
	ErrMechanismNotSupported = errors.New("mechanism not supported")
	ErrDuplicateKey          = errors.New("a key with this label or ID already exists")
	ErrKeyNotFound           = errors.New("key not found")
	ErrAmbiguous             = errors.New("more than one key matches")
	ErrInvalidURI            = errors.New("invalid PKCS#11 URI")
)

// PINError carries what the token says about the remaining tries after a
// wrong PIN, so the operator can stop before the PIN locks.
type PINError struct {
	Role     string // "user" or "security officer"
	TriesLow bool   // CKF_*_PIN_COUNT_LOW
	FinalTry bool   // CKF_*_PIN_FINAL_TRY: the next wrong PIN locks the token
}

func (e *PINError) Error() string {
	msg := fmt.Sprintf("%s PIN incorrect", e.Role)
	switch {
	case e.FinalTry:
		msg += ": one try left before the PIN locks; stop and check the PIN"
	case e.TriesLow:
		msg += ": few tries left before the PIN locks"
	}
	return msg
}

func (e *PINError) Unwrap() error { return ErrPINIncorrect }

// PINTriesError is a login that was not tried, because a wrong PIN now could
// lock the token: it reports few tries left or its final try, or the role's
// PIN was already refused on it in this process.
type PINTriesError struct {
	Role        string
	Token       string
	CountLow    bool // CKF_*_PIN_COUNT_LOW
	FinalTry    bool // CKF_*_PIN_FINAL_TRY
	RefusedHere bool // a PIN of this role was refused on this token in this process
}

func (e *PINTriesError) Error() string {
	switch {
	case e.FinalTry:
		return fmt.Sprintf("the %s PIN was not tried: token %q reports its final try (CKF_%s_PIN_FINAL_TRY): one more wrong PIN locks it for good. "+
			"Stop, find out who entered wrong PINs, and reset the counter only with the right PIN under the token's own procedure", e.Role, e.Token, e.flagRole())
	case e.CountLow:
		return fmt.Sprintf("the %s PIN was not tried: token %q reports few tries left (CKF_%s_PIN_COUNT_LOW): wrong PINs were entered since the last good one, and more could lock it. "+
			"Find out why; try again only when you are sure of the PIN (a PIN derived from the quorum that fails means the wrong shares or the wrong token)", e.Role, e.Token, e.flagRole())
	}
	return fmt.Sprintf("the %s PIN was not tried again: token %q already refused one in this session. A PIN derived from the quorum that fails once means the wrong shares or the wrong token; "+
		"a typed PIN, a typo: check it before spending another try", e.Role, e.Token)
}

func (e *PINTriesError) flagRole() string {
	if e.Role == "security officer" {
		return "SO"
	}
	return "USER"
}

func (e *PINTriesError) Unwrap() error { return ErrPINTriesLow }

// MechanismError names the mechanism and the token that lacks it.
type MechanismError struct {
	Mechanism string
	Token     string
	Detail    string
}

func (e *MechanismError) Error() string {
	s := fmt.Sprintf("mechanism %s not supported by token %q", e.Mechanism, e.Token)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func (e *MechanismError) Unwrap() error { return ErrMechanismNotSupported }

// rv returns the PKCS#11 return value inside err, or 0.
func rv(err error) uint {
	var e pkcs11.Error
	if errors.As(err, &e) {
		return uint(e)
	}
	return 0
}

// isRemoved reports whether err means the token or its session is gone.
func isRemoved(err error) bool {
	switch rv(err) {
	case pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_SESSION_HANDLE_INVALID,
		pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_TOKEN_NOT_RECOGNIZED, pkcs11.CKR_DEVICE_ERROR:
		return true
	}
	return false
}

// classify maps raw PKCS#11 errors to the package's errors, keeping the original
// for detail. what says what was being done ("sign with key \"root\"").
func (t *Token) classify(what string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case isRemoved(err):
		return fmt.Errorf("%s: %w (token %q: reinsert it and resume): %v", what, ErrTokenRemoved, t.label, err)
	case rv(err) == pkcs11.CKR_USER_NOT_LOGGED_IN:
		return fmt.Errorf("%s: %w to token %q", what, ErrNotLoggedIn, t.label)
	case rv(err) == pkcs11.CKR_PIN_LOCKED:
		return fmt.Errorf("%s: %w on token %q", what, ErrPINLocked, t.label)
	case rv(err) == pkcs11.CKR_MECHANISM_INVALID:
		return fmt.Errorf("%s: %w", what, &MechanismError{Mechanism: "(see operation)", Token: t.label})
	}
	return fmt.Errorf("%s: %w", what, err)
}

// mechError turns "mechanism invalid" into a MechanismError naming the mechanism.
func (t *Token) mechError(err error, mech string) error {
	switch rv(err) {
	case pkcs11.CKR_MECHANISM_INVALID, pkcs11.CKR_MECHANISM_PARAM_INVALID:
		return &MechanismError{Mechanism: mech, Token: t.label}
	}
	return t.classify(mech, err)
}
