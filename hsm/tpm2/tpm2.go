// Package tpm2 finds tpm2-pkcs11, the PKCS#11 module over a TPM 2.0 (a
// laptop's own TPM, or the swtpm software TPM the tests start), and names
// the variables it reads its TPM and store from.
package tpm2

import (
	"errors"

	"github.com/keyceremony/keyceremony/hsm"
)

// The variables tpm2-pkcs11 reads when it is initialised: the TSS
// transmission interface (which TPM: "device:/dev/tpmrm0",
// "swtpm:path=SOCKET") and the directory of its SQLite store.
const (
	EnvTCTI  = "TPM2_PKCS11_TCTI"
	EnvStore = "TPM2_PKCS11_STORE"
)

// Name is the name hsm.DiscoverModules gives the module.
const Name = "TPM 2.0 (tpm2-pkcs11)"

// ErrNotInstalled means no libtpm2_pkcs11 was found.
var ErrNotInstalled = errors.New("tpm2-pkcs11 is not installed (Debian/Ubuntu: apt-get install libtpm2-pkcs11-1)")

// ModulePath finds libtpm2_pkcs11.
func ModulePath() (string, error) {
	for _, c := range hsm.DiscoverModules() {
		if c.Name == Name {
			return c.Path, nil
		}
	}
	return "", ErrNotInstalled
}
