//go:build !windows

package hsm

// knownModules are the usual install locations on Debian/Ubuntu (multiarch),
// Fedora/RHEL, and macOS (Homebrew, vendor installers). Globs allowed.
// discover_windows.go has the Windows list.
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
	// tpm2-pkcs11: the laptop's own TPM 2.0 (hsm/tpm2 names it by this name).
	{"TPM 2.0 (tpm2-pkcs11)", "/usr/lib/*-linux-gnu/pkcs11/libtpm2_pkcs11.so"},
	{"TPM 2.0 (tpm2-pkcs11)", "/usr/lib64/pkcs11/libtpm2_pkcs11.so"},
	{"TPM 2.0 (tpm2-pkcs11)", "/usr/local/lib/pkcs11/libtpm2_pkcs11.so"},
}
