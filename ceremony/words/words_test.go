package words

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func TestEncodeKnownVectors(t *testing.T) {
	tests := []struct {
		hex, words string
	}{
		// The example from the PGP word list's published description.
		{"E58294F2E9A227486E8B061B31CC528FD7FA3F19",
			"topmost Istanbul Pluto vagabond treadmill Pacific brackish dictator goldfish Medusa afflict bravado chatter revolver Dupont midsummer stopwatch whimsical cowbell bottomless"},
		{"00FF", "aardvark Yucatan"},
		{"FF00", "Zulu adroitness"},
		{"", ""},
	}
	for _, tc := range tests {
		data, _ := hex.DecodeString(tc.hex)
		if got := String(data); got != tc.words {
			t.Errorf("String(%s) = %q, want %q", tc.hex, got, tc.words)
		}
		back, err := Decode(tc.words)
		if err != nil {
			t.Fatalf("Decode(%q): %v", tc.words, err)
		}
		if !bytes.Equal(back, data) {
			t.Errorf("Decode(%q) = %x, want %s", tc.words, back, tc.hex)
		}
	}
}

// TestListsAreTheStandardLists pins the whole data table: a single changed word
// changes this digest. The digest was computed from the list after comparing it
// with two independent published copies.
func TestListsAreTheStandardLists(t *testing.T) {
	seen := map[string]bool{}
	for _, list := range [][256]string{even, odd} {
		for _, w := range list {
			lw := strings.ToLower(w)
			if seen[lw] {
				t.Fatalf("word %q appears twice", w)
			}
			seen[lw] = true
		}
	}
	sum := sha256.Sum256([]byte(strings.Join(even[:], " ") + "\n" + strings.Join(odd[:], " ")))
	const want = "3d76bd4f533b674121cec954d90947848fb33d630b0c22fce9bcfb929883daa0"
	if got := hex.EncodeToString(sum[:]); got != want {
		t.Errorf("word list digest = %s, want %s", got, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		in, wantErr string
	}{
		{"topmost topmost", `word 2 "topmost" is from the wrong list`},
		{"Istanbul", `word 1 "Istanbul" is from the wrong list`},
		{"topmost Istanbul pluto banana", `word 4 "banana" is not in the PGP word list`},
	}
	for _, tc := range tests {
		_, err := Decode(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("Decode(%q) error = %v, want %q", tc.in, err, tc.wantErr)
		}
	}
}

func TestLines(t *testing.T) {
	data := make([]byte, 10)
	got := Lines(data, 4)
	want := []string{
		" 1: aardvark adroitness aardvark adroitness",
		" 5: aardvark adroitness aardvark adroitness",
		" 9: aardvark adroitness",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Lines = %q, want %q", got, want)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("topmost Istanbul Pluto vagabond")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := Decode(s)
		if err != nil {
			return
		}
		if again, err := Decode(String(b)); err != nil || !bytes.Equal(again, b) {
			t.Fatalf("round trip of %q failed: %x %v", s, again, err)
		}
	})
}
