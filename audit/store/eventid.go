package store

import (
	"encoding/hex"
	"fmt"
)

// EventIDValue is how an eventID is stored: a canonical lower-case UUID as
// its 16 bytes (less than half the index space of the text), anything else
// as text. The two never compare equal, so uniqueness is preserved.
func EventIDValue(id string) any {
	u, ok := uuid16(id)
	if !ok {
		return id
	}
	return u[:]
}

// uuid16 parses a canonical lower-case UUID.
func uuid16(id string) (b [16]byte, ok bool) {
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
		return b, false
	}
	j := 0
	for i := 0; i < 36; i += 2 {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i--
			continue
		}
		hi, ok1 := lowerHex(id[i])
		lo, ok2 := lowerHex(id[i+1])
		if !ok1 || !ok2 {
			return b, false
		}
		b[j] = hi<<4 | lo
		j++
	}
	return b, true
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// EventIDString turns the stored event_id value back into its text.
func EventIDString(v any) string {
	switch x := v.(type) {
	case []byte:
		if len(x) == 16 {
			h := hex.EncodeToString(x)
			return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
		}
		return string(x)
	case string:
		return x
	}
	return fmt.Sprint(v)
}
