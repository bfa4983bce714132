package hsm_test

import (
	"context"
	"testing"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/internal/textpages"
)

// The share files' KDF runs with the executable's code pages released
// (internal/textpages) in the middle of a ceremony, with the PKCS#11 module
// loaded. The calls into the module go through the binary's relocated,
// read-only data (its GOT): releasing those pages too once made the next
// call, Destroy at the end of the ceremony, jump to address zero. After a
// release the token must still generate a key and the module close, on
// every implementation (each module has its own relocated data).
func TestTokenWorksAfterTheCodePagesAreReleased(t *testing.T) {
	forEach(t, func(t *testing.T, impl implementation) {
		tok := impl.token(t, "Released")
		if _, err := textpages.Release(); err != nil {
			t.Fatal(err)
		}
		key, err := tok.GenerateKey(context.Background(), hsm.KeySpec{Type: hsm.ECP256, Label: "after-release"})
		if err != nil {
			t.Fatalf("generate after the release: %v", err)
		}
		if _, err := textpages.Release(); err != nil {
			t.Fatal(err)
		}
		if key.Label() != "after-release" {
			t.Errorf("label %q", key.Label())
		}
		if err := tok.Module().Close(); err != nil {
			t.Fatalf("close the module after the release: %v", err)
		}
	})
}
