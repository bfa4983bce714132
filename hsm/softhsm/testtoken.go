package softhsm

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/keyceremony/keyceremony/hsm"
)

// NewTestToken gives a test its own SoftHSM2 token store: a temporary
// directory with a fresh configuration ($SOFTHSM2_CONF set with t.Setenv, so
// the test cannot run in parallel with others that use SoftHSM), and one
// token initialised with label, soPIN and userPIN. It returns the module path.
func NewTestToken(t testing.TB, label string, soPIN, userPIN []byte) string {
	t.Helper()
	mod := NewTestStore(t)
	InitToken(t, mod, label, soPIN, userPIN)
	return mod
}

// NewTestStore sets up an empty SoftHSM2 token store for the test.
func NewTestStore(t testing.TB) string {
	t.Helper()
	mod, err := ModulePath()
	if err != nil {
		t.Fatalf("SoftHSM2 is required for this test (make test installs it): %v", err)
	}
	conf, err := WriteConfig(filepath.Join(t.TempDir(), "softhsm"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvConf, conf)
	return mod
}

// InitToken initialises one more token in the test's store (SoftHSM always
// offers a free slot) and sets its user PIN.
func InitToken(t testing.TB, modulePath, label string, soPIN, userPIN []byte) {
	t.Helper()
	if os.Getenv(EnvConf) == "" {
		t.Fatal("InitToken: call NewTestStore first")
	}
	m, err := hsm.Open(modulePath)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := SetupToken(m, label, soPIN, userPIN); err != nil {
		t.Fatal(err)
	}
}

// SetupToken initialises the first uninitialised slot of a SoftHSM module with
// label and both PINs. Rehearsals use it on a throwaway store.
func SetupToken(m *hsm.Module, label string, soPIN, userPIN []byte) error {
	slots, err := m.Slots()
	if err != nil {
		return err
	}
	var slot *hsm.Slot
	for i := range slots {
		if slots[i].Token != nil && !slots[i].Token.Initialized {
			slot = &slots[i]
			break
		}
	}
	if slot == nil {
		return hsm.ErrTokenNotFound
	}
	if err := m.InitToken(slot.ID, soPIN, label); err != nil {
		return err
	}
	tok, err := m.OpenToken(hsm.URI{Token: label})
	if err != nil {
		return err
	}
	defer tok.Close()
	if err := tok.LoginSO(soPIN); err != nil {
		return err
	}
	if err := tok.InitPIN(userPIN); err != nil {
		return err
	}
	return tok.Logout()
}
