// Package words turns hashes and fingerprints into the PGP word list so that
// people in a ceremony room can read them aloud and compare them without
// misreading hex digits. Bytes at even offsets use two-syllable words and bytes
// at odd offsets three-syllable words, so a dropped, repeated or swapped word is
// heard as a change of rhythm and caught by Decode.
package words

import (
	"fmt"
	"strings"
)

// Encode returns one word per byte of data.
func Encode(data []byte) []string {
	out := make([]string, len(data))
	for i, b := range data {
		if i%2 == 0 {
			out[i] = even[b]
		} else {
			out[i] = odd[b]
		}
	}
	return out
}

// String returns the words for data separated by single spaces.
func String(data []byte) string {
	return strings.Join(Encode(data), " ")
}

// Lines returns the words for data in lines of perLine words, numbered by the
// offset of their first byte, which is how the ceremony shows long hashes.
func Lines(data []byte, perLine int) []string {
	if perLine <= 0 {
		perLine = 8
	}
	w := Encode(data)
	var lines []string
	for i := 0; i < len(w); i += perLine {
		end := min(i+perLine, len(w))
		lines = append(lines, fmt.Sprintf("%2d: %s", i+1, strings.Join(w[i:end], " ")))
	}
	return lines
}

var evenIndex, oddIndex = index(even[:]), index(odd[:])

func index(list []string) map[string]byte {
	m := make(map[string]byte, len(list))
	for i, w := range list {
		m[strings.ToLower(w)] = byte(i)
	}
	return m
}

// Decode parses words separated by white space (case-insensitive) back into
// bytes. A word in the wrong list names its position, which is what a listener
// needs to say "word 7 should have been three syllables".
func Decode(s string) ([]byte, error) {
	fields := strings.Fields(s)
	out := make([]byte, 0, len(fields))
	for i, f := range fields {
		w := strings.ToLower(f)
		own, other := evenIndex, oddIndex
		kind := "two-syllable (even)"
		if i%2 == 1 {
			own, other = oddIndex, evenIndex
			kind = "three-syllable (odd)"
		}
		b, ok := own[w]
		if !ok {
			if _, inOther := other[w]; inOther {
				return nil, fmt.Errorf("word %d %q is from the wrong list: a %s word was expected (a word was dropped, repeated or swapped)", i+1, f, kind)
			}
			return nil, fmt.Errorf("word %d %q is not in the PGP word list", i+1, f)
		}
		out = append(out, b)
	}
	return out, nil
}
