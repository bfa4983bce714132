package hsm

import (
	"crypto/rand"
	"fmt"
)

// RandomMixed returns n random bytes that are as good as the better of two
// independent sources: the host's (crypto/rand) XOR the token's RNG
// (C_GenerateRandom). A token whose RNG is weak or backdoored cannot predict
// the result, nor can a host whose RNG is; key IDs, certificate serials and
// challenges are drawn this way. The token's bytes are drawn first, so the
// token never sees the host's.
func (t *Token) RandomMixed(n int) ([]byte, error) {
	tok, err := t.Random(n)
	if err != nil {
		return nil, err
	}
	host := make([]byte, n)
	if _, err := rand.Read(host); err != nil {
		return nil, fmt.Errorf("host random bytes: %w", err)
	}
	for i := range tok {
		tok[i] ^= host[i]
	}
	return tok, nil
}
