package hsm

import (
	"os"
	"path/filepath"
)

// ModuleCandidate is a PKCS#11 library found at a well-known path.
type ModuleCandidate struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

// knownModules are the usual install locations on Debian/Ubuntu (multiarch),
// Fedora/RHEL, and macOS (Homebrew, vendor installers). Globs allowed.
var knownModules = []ModuleCandidate{
	{"SoftHSM2", "/usr/lib/softhsm/libsofthsm2.so"},
	{"SoftHSM2", "/usr/lib/*-linux-gnu/softhsm/libsofthsm2.so"},
	{"SoftHSM2", "/usr/lib64/pkcs11/libsofthsm2.so"},
	{"SoftHSM2", "/usr/lib64/softhsm/libsofthsm2.so"},
	{"SoftHSM2", "/usr/local/lib/softhsm/libsofthsm2.so"},
	{"SoftHSM2", "/opt/homebrew/lib/softhsm/libsofthsm2.so"},
	{"SoftHSM2", "/usr/local/opt/softhsm/lib/softhsm/libsofthsm2.so"},
	// OpenSC covers PIV/OpenPGP cards and SmartCard-HSM / Nitrokey HSM (sc-hsm).
	{"OpenSC (smartcards, Nitrokey HSM, SmartCard-HSM)", "/usr/lib/*-linux-gnu/opensc-pkcs11.so"},
	{"OpenSC (smartcards, Nitrokey HSM, SmartCard-HSM)", "/usr/lib/*-linux-gnu/pkcs11/opensc-pkcs11.so"},
	{"OpenSC (smartcards, Nitrokey HSM, SmartCard-HSM)", "/usr/lib64/opensc-pkcs11.so"},
	{"OpenSC (smartcards, Nitrokey HSM, SmartCard-HSM)", "/usr/lib64/pkcs11/opensc-pkcs11.so"},
	{"OpenSC (smartcards, Nitrokey HSM, SmartCard-HSM)", "/Library/OpenSC/lib/opensc-pkcs11.so"},
	{"OpenSC (smartcards, Nitrokey HSM, SmartCard-HSM)", "/opt/homebrew/lib/opensc-pkcs11.so"},
	{"p11-kit proxy", "/usr/lib/*-linux-gnu/p11-kit-proxy.so"},
	{"p11-kit proxy", "/usr/lib64/p11-kit-proxy.so"},
	{"YubiHSM 2", "/usr/lib/*-linux-gnu/pkcs11/yubihsm_pkcs11.so"},
	{"YubiHSM 2", "/usr/lib/pkcs11/yubihsm_pkcs11.so"},
	{"YubiHSM 2", "/usr/lib64/pkcs11/yubihsm_pkcs11.so"},
	{"YubiHSM 2", "/usr/local/lib/pkcs11/yubihsm_pkcs11.so"},
	{"YubiHSM 2", "/usr/local/lib/pkcs11/yubihsm_pkcs11.dylib"},
	{"YubiKey PIV (ykcs11)", "/usr/lib/*-linux-gnu/libykcs11.so"},
	{"YubiKey PIV (ykcs11)", "/usr/local/lib/libykcs11.dylib"},
	{"Thales Luna", "/usr/safenet/lunaclient/lib/libCryptoki2_64.so"},
	{"Thales Luna", "/usr/lib/libCryptoki2_64.so"},
	{"Thales ProtectServer", "/opt/safenet/protecttoolkit5/ptk/lib/libcryptoki.so"},
	{"Thales SafeNet eToken", "/usr/lib/libeTPkcs11.so"},
	{"Entrust nShield", "/opt/nfast/toolkits/pkcs11/libcknfast.so"},
}

// DiscoverModules returns the PKCS#11 libraries present on this machine, in
// the order above and without duplicates (symlinks resolved).
func DiscoverModules() []ModuleCandidate {
	var out []ModuleCandidate
	seen := map[string]bool{}
	for _, c := range knownModules {
		matches, _ := filepath.Glob(c.Path)
		for _, p := range matches {
			real, err := filepath.EvalSymlinks(p)
			if err != nil {
				continue
			}
			if st, err := os.Stat(real); err != nil || st.IsDir() || seen[real] {
				continue
			}
			seen[real] = true
			out = append(out, ModuleCandidate{Name: c.Name, Path: p})
		}
	}
	return out
}
