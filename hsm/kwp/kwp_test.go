package kwp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// The two test vectors of RFC 5649 section 6.
func TestRFC5649Vectors(t *testing.T) {
	kek := unhex("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8")
	tests := []struct{ key, wrapped string }{
		{"c37b7e6492584340bed12207808941155068f738", "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"},
		{"466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"},
	}
	for _, tc := range tests {
		got, err := Wrap(kek, unhex(tc.key))
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(got) != tc.wrapped {
			t.Errorf("Wrap(%s) = %x, want %s", tc.key, got, tc.wrapped)
		}
		back, err := Unwrap(kek, got)
		if err != nil || !bytes.Equal(back, unhex(tc.key)) {
			t.Errorf("Unwrap = %x, %v; want %s", back, err, tc.key)
		}
	}
}

func TestUnwrapRejectsTampering(t *testing.T) {
	kek := bytes.Repeat([]byte{7}, 32)
	for _, size := range []int{1, 8, 9, 32, 1217} {
		pt := bytes.Repeat([]byte{0x5a}, size)
		w, err := Wrap(kek, pt)
		if err != nil {
			t.Fatal(err)
		}
		w[len(w)-1] ^= 1
		if _, err := Unwrap(kek, w); !errors.Is(err, ErrIntegrity) {
			t.Errorf("size %d: tampered unwrap error = %v, want ErrIntegrity", size, err)
		}
		w[len(w)-1] ^= 1
		wrongKEK := bytes.Repeat([]byte{8}, 32)
		if _, err := Unwrap(wrongKEK, w); !errors.Is(err, ErrIntegrity) {
			t.Errorf("size %d: wrong-KEK unwrap error = %v, want ErrIntegrity", size, err)
		}
	}
	if _, err := Unwrap(kek, []byte{1, 2, 3}); err == nil {
		t.Error("short input accepted")
	}
}
