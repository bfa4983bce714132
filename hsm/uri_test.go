package hsm_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/keyceremony/keyceremony/hsm"
)

func TestParseURI(t *testing.T) {
	slot := uint(3)
	tests := []struct {
		in   string
		want hsm.URI
		out  string // canonical form; "" means same as in
	}{
		{"pkcs11:token=Root%20CA;object=root-2026;type=private", hsm.URI{Token: "Root CA", Object: "root-2026", Type: "private"}, ""},
		{"pkcs11:object=k;token=T;serial=0123abcd;id=%01%02%ff", hsm.URI{Token: "T", Serial: "0123abcd", Object: "k", ID: []byte{1, 2, 0xff}}, "pkcs11:token=T;serial=0123abcd;object=k;id=%01%02%FF"},
		{"pkcs11:slot-id=3;type=secret-key", hsm.URI{SlotID: &slot, Type: "secret-key"}, ""},
		{"pkcs11:token=A?module-path=/usr/lib/softhsm/libsofthsm2.so", hsm.URI{Token: "A", ModulePath: "/usr/lib/softhsm/libsofthsm2.so"}, "pkcs11:token=A?module-path=%2Fusr%2Flib%2Fsofthsm%2Flibsofthsm2.so"},
		{"pkcs11:", hsm.URI{}, ""},
		{"pkcs11:serial=0000000000000000;slot-description=Root%20CA;slot-manufacturer=IBM", hsm.URI{Serial: "0000000000000000", SlotDescription: "Root CA", SlotManufacturer: "IBM"}, ""},
	}
	for _, tc := range tests {
		got, err := hsm.ParseURI(tc.in)
		if err != nil {
			t.Fatalf("ParseURI(%q): %v", tc.in, err)
		}
		if got.Token != tc.want.Token || got.Serial != tc.want.Serial || got.Object != tc.want.Object || got.Type != tc.want.Type ||
			!bytes.Equal(got.ID, tc.want.ID) || got.ModulePath != tc.want.ModulePath || (got.SlotID == nil) != (tc.want.SlotID == nil) ||
			got.SlotDescription != tc.want.SlotDescription || got.SlotManufacturer != tc.want.SlotManufacturer {
			t.Errorf("ParseURI(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		want := tc.out
		if want == "" {
			want = tc.in
		}
		if got.String() != want {
			t.Errorf("String() = %q, want %q", got.String(), want)
		}
		again, err := hsm.ParseURI(got.String())
		if err != nil || again.String() != got.String() {
			t.Errorf("round trip of %q: %q, %v", got.String(), again.String(), err)
		}
	}
}

func TestParseURIErrors(t *testing.T) {
	for _, in := range []string{
		"token=x",                       // no scheme
		"pkcs11:token=a;token=b",        // repeated
		"pkcs11:tokn=a",                 // typo must not select anything
		"pkcs11:type=secret",            // bad type
		"pkcs11:token=a%2",              // truncated escape
		"pkcs11:token=a;pin-value=1234", // secrets never in URIs
		"pkcs11:token=a?pin-source=file:/x",
		"pkcs11:slot-id=x",
	} {
		if _, err := hsm.ParseURI(in); !errors.Is(err, hsm.ErrInvalidURI) {
			t.Errorf("ParseURI(%q) err = %v, want ErrInvalidURI", in, err)
		}
	}
}
