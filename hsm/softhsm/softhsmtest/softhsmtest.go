// Package softhsmtest gives tests their own SoftHSM2 token store. It imports
// the testing package, so only tests may import it: the release binary must
// not link testing (test/e2e checks that it does not).
package softhsmtest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/softhsm"
)

// NewToken gives a test its own SoftHSM2 token store: a temporary directory
// with a fresh configuration ($SOFTHSM2_CONF set with t.Setenv, so the test
// cannot run in parallel with others that use SoftHSM), and one token
// initialised with label, soPIN and userPIN. It returns the module path.
func NewToken(t testing.TB, label string, soPIN, userPIN []byte) string {
	t.Helper()
	mod := NewStore(t)
	InitToken(t, mod, label, soPIN, userPIN)
	return mod
}

// NewStore sets up an empty SoftHSM2 token store for the test.
func NewStore(t testing.TB) string {
	t.Helper()
	mod, err := softhsm.ModulePath()
	if err != nil {
		t.Fatalf("SoftHSM2 is required for this test (make test installs it): %v", err)
	}
	conf, err := softhsm.WriteConfig(filepath.Join(t.TempDir(), "softhsm"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(softhsm.EnvConf, conf)
	return mod
}

// InitToken initialises one more token in the test's store (SoftHSM always
// offers a free slot) and sets its user PIN.
func InitToken(t testing.TB, modulePath, label string, soPIN, userPIN []byte) {
	t.Helper()
	if os.Getenv(softhsm.EnvConf) == "" {
		t.Fatal("InitToken: call NewStore first")
	}
	m, err := hsm.Open(modulePath)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := softhsm.SetupToken(m, label, soPIN, userPIN); err != nil {
		t.Fatal(err)
	}
}

// LoggedIn gives the test a token of its own labelled label (NewToken with
// throwaway PINs), open and logged in as the user; module and token close
// when the test ends.
func LoggedIn(t testing.TB, label string) *hsm.Token {
	t.Helper()
	user := []byte("user-pin-" + label)
	mod := NewToken(t, label, []byte("so-pin-"+label), user)
	m, err := hsm.Open(mod)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	tok, err := m.OpenToken(hsm.URI{Token: label})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tok.Close() })
	if err := tok.Login(user); err != nil {
		t.Fatal(err)
	}
	return tok
}
