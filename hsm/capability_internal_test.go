package hsm

import (
	"errors"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"
)

// The capability rules on a token description a real module would not
// give: each rule must name what is missing on its own (the TPM, for one,
// fails several at once, so the real-token tests cannot tell them apart).
func TestCapabilityRules(t *testing.T) {
	caps := &Capabilities{Token: "Example", missingFuncs: map[string]bool{}, mechs: map[uint]mechInfo{
		pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN: {min: 2048, max: 3072, flags: pkcs11.CKF_GENERATE_KEY_PAIR},
		pkcs11.CKM_RSA_PKCS:              {min: 2048, max: 4096, flags: pkcs11.CKF_SIGN},
		pkcs11.CKM_EC_KEY_PAIR_GEN:       {min: 256, max: 384, flags: pkcs11.CKF_GENERATE}, // the wrong flag
		pkcs11.CKM_AES_KEY_GEN:           {min: 16, max: 32, flags: pkcs11.CKF_GENERATE},
		ckmAESKeyWrapPad:                 {min: 16, max: 32, flags: pkcs11.CKF_ENCRYPT}, // no CKF_WRAP
	}}
	tests := []struct {
		err  error
		want string // "" for no error
	}{
		{caps.CanGenerate(RSA2048), ""},
		{caps.CanGenerate(RSA4096), "CKM_RSA_PKCS_KEY_PAIR_GEN takes keys of 2048 to 3072 bits, not 4096"},
		{caps.CanGenerate(ECP256), "lists CKM_EC_KEY_PAIR_GEN without CKF_GENERATE_KEY_PAIR"},
		{caps.CanGenerate(Ed25519), "CKM_EC_EDWARDS_KEY_PAIR_GEN is not among the token's mechanisms"},
		{caps.CanGenerate(AES256), ""},
		{caps.CanSign(RSA2048, false), ""},
		{caps.CanSign(RSA2048, true), "CKM_RSA_PKCS_PSS is not among"},
		{caps.CanWrapKWP(), "lists CKM_AES_KEY_WRAP_PAD without CKF_WRAP"},
	}
	for i, tc := range tests {
		switch {
		case tc.want == "" && tc.err != nil:
			t.Errorf("%d: unexpected %v", i, tc.err)
		case tc.want != "" && (tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) || !errors.Is(tc.err, ErrMechanismNotSupported)):
			t.Errorf("%d: err = %v, want %q", i, tc.err, tc.want)
		}
	}
	// AES key sizes are in bytes unless the range reaches 128 (bits).
	caps.mechs[pkcs11.CKM_AES_KEY_GEN] = mechInfo{min: 128, max: 128, flags: pkcs11.CKF_GENERATE}
	if err := caps.CanGenerate(AES256); err == nil || !strings.Contains(err.Error(), "128 to 128 bits, not 256") {
		t.Errorf("AES range in bits: %v", err)
	}
	// A module that lists the mechanism but does not implement the function.
	caps.mechs[pkcs11.CKM_AES_KEY_GEN] = mechInfo{min: 16, max: 32, flags: pkcs11.CKF_GENERATE}
	caps.missingFuncs[FuncGenerateKey] = true
	if err := caps.CanGenerate(AES128); err == nil || !strings.Contains(err.Error(), "C_GenerateKey is not implemented") {
		t.Errorf("C_GenerateKey missing: %v", err)
	}
	if err := caps.CanGenerate(RSA2048); err != nil {
		t.Errorf("key pairs do not need C_GenerateKey: %v", err)
	}
}
