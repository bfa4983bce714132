package hsm

// knownModules are the usual install locations of PKCS#11 DLLs on Windows
// (64-bit builds: a 64-bit process cannot load a 32-bit DLL). Vendors install
// either under Program Files or into System32; globs allowed, environment
// variables expanded.
var knownModules = []ModuleCandidate{
	// SoftHSM2 for Windows (the disig/SoftHSM2-for-Windows installer).
	{"SoftHSM2", `C:\SoftHSM2\lib\softhsm2-x64.dll`},
	{"SoftHSM2", `${ProgramFiles}\SoftHSM2\lib\softhsm2-x64.dll`},
	{"OpenSC (smartcards, Nitrokey HSM, SmartCard-HSM)", `${ProgramFiles}\OpenSC Project\OpenSC\pkcs11\opensc-pkcs11.dll`},
	{"OpenSC (smartcards, Nitrokey HSM, SmartCard-HSM)", `${SystemRoot}\System32\opensc-pkcs11.dll`},
	{"Thales SafeNet eToken", `${SystemRoot}\System32\eTPKCS11.dll`},
	{"Thales Luna", `${ProgramFiles}\SafeNet\LunaClient\cryptoki.dll`},
	{"YubiHSM 2", `${ProgramFiles}\Yubico\YubiHSM Shell\bin\pkcs11\yubihsm_pkcs11.dll`},
	{"YubiKey PIV (ykcs11)", `${ProgramFiles}\Yubico\Yubico PIV Tool\bin\libykcs11.dll`},
	{"Entrust nShield", `${ProgramFiles}\nCipher\nfast\toolkits\pkcs11\cknfast.dll`},
	{"Utimaco CryptoServer", `${ProgramFiles}\Utimaco\CryptoServer\Lib\cs_pkcs11_R3.dll`},
}
