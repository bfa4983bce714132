package hsm_test

import (
	"bytes"
	"context"
	"encoding/asn1"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/softhsm/softhsmtest"
)

// softHSM is SoftHSM 2.6 (Debian 12), the built-in token: every key type,
// every restriction honoured, a serial of its own for every token, and
// wrapping (AES-KWP, RSA-OAEP with SHA-1) in the token.
var softHSM = implementation{
	name: "SoftHSM2",
	token: func(t *testing.T, label string) *hsm.Token {
		return softhsmtest.LoggedIn(t, label)
	},
	addToken: func(t *testing.T, tok *hsm.Token, label string) {
		softhsmtest.InitToken(t, tok.Module().Path(), label, []byte("so-pin-"+label), userPINFor(label))
	},
	refuses:     map[hsm.KeyType]string{},
	privateUses: []string{"sign"},
	wraps:       true,
}

// An object another tool left with a public point no curve accepts does
// not hide the token's other keys: it is listed with its problem, cannot
// sign, and can be destroyed.
func TestSoftHSMListsAroundAnUnreadableKey(t *testing.T) {
	tok := softHSM.token(t, "Broken")
	if _, err := tok.GenerateKey(context.Background(), hsm.KeySpec{Type: hsm.ECP256, Label: "good"}); err != nil {
		t.Fatal(err)
	}
	params, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7})
	point, _ := asn1.Marshal(bytes.Repeat([]byte{0x04}, 65)) // not on P-256
	err := tok.CreateObjectForTest([]*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, "broken"),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte{0xba, 0xd0}),
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
		pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, point),
	})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := tok.FindKeys(hsm.Filter{})
	if err != nil {
		t.Fatalf("one bad object blocks the listing: %v", err)
	}
	var broken *hsm.Key
	for _, k := range keys {
		if k.Label() == "broken" {
			broken = k
		} else if k.Label() != "good" || k.Problem() != nil {
			t.Errorf("unexpected key %s", k)
		}
	}
	if len(keys) != 2 || broken == nil || broken.Problem() == nil || !strings.Contains(broken.String(), "UNREADABLE") {
		t.Fatalf("listed %v", keys)
	}
	if _, err := broken.Signer(); err == nil {
		t.Error("an unreadable key gave a signer")
	}
	if err := tok.DestroyKey(broken); err != nil {
		t.Fatal(err)
	}
	if n, _ := tok.ObjectsWithLabelForTest("broken"); n != 0 {
		t.Errorf("%d objects left", n)
	}
}
