package hsm

import (
	"errors"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"
)

// The token-removed and PIN-state paths cannot be provoked on SoftHSM, so the
// mapping from the module's return values is checked directly.
func TestClassify(t *testing.T) {
	tok := &Token{label: "Root CA"}
	tests := []struct {
		rv   uint
		want error
	}{
		{pkcs11.CKR_DEVICE_REMOVED, ErrTokenRemoved},
		{pkcs11.CKR_TOKEN_NOT_PRESENT, ErrTokenRemoved},
		{pkcs11.CKR_SESSION_HANDLE_INVALID, ErrTokenRemoved},
		{pkcs11.CKR_USER_NOT_LOGGED_IN, ErrNotLoggedIn},
		{pkcs11.CKR_PIN_LOCKED, ErrPINLocked},
		{pkcs11.CKR_MECHANISM_INVALID, ErrMechanismNotSupported},
	}
	for _, tc := range tests {
		err := tok.classify("sign", pkcs11.Error(tc.rv))
		if !errors.Is(err, tc.want) {
			t.Errorf("classify(%#x) = %v, want %v", tc.rv, err, tc.want)
		}
	}
	if err := tok.classify("sign", pkcs11.Error(pkcs11.CKR_DEVICE_REMOVED)); !containsAll(err.Error(), "Root CA", "reinsert") {
		t.Errorf("removed-token message does not say what to do: %v", err)
	}
	if err := tok.mechError(pkcs11.Error(pkcs11.CKR_MECHANISM_INVALID), "CKM_EDDSA"); !containsAll(err.Error(), "CKM_EDDSA", "Root CA") {
		t.Errorf("mechanism error does not name mechanism and token: %v", err)
	}
	pe := &PINError{Role: "user", FinalTry: true}
	if !errors.Is(pe, ErrPINIncorrect) || !containsAll(pe.Error(), "one try left") {
		t.Errorf("final-try PIN error: %v", pe)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
