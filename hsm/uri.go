package hsm

import (
	"fmt"
	"strconv"
	"strings"
)

// URI is an RFC 7512 PKCS#11 URI naming a token and optionally an object, e.g.
// pkcs11:token=Root%20CA;object=root-2026;type=private.
// PIN attributes (pin-value, pin-source) are refused: secrets never travel in
// a URI, because URIs end up in scripts, transcripts and shell history.
type URI struct {
	Token        string
	Manufacturer string
	Serial       string
	Model        string
	// SlotDescription and SlotManufacturer select by what C_GetSlotInfo
	// says; some modules (tpm2-pkcs11) repeat the serial in every slot and
	// describe each slot by its token instead.
	SlotDescription  string
	SlotManufacturer string
	SlotID           *uint
	Object           string
	ID               []byte
	Type             string // private, public, secret-key, cert, data
	ModulePath       string // query attribute module-path
}

var uriTypes = map[string]bool{"private": true, "public": true, "secret-key": true, "cert": true, "data": true}

// ParseURI parses a PKCS#11 URI. Unknown path attributes are errors (RFC 7512
// lets a consumer refuse them, and a typo must not select a different token).
func ParseURI(s string) (URI, error) {
	var u URI
	rest, ok := strings.CutPrefix(s, "pkcs11:")
	if !ok {
		return u, fmt.Errorf("%w %q: must start with \"pkcs11:\"", ErrInvalidURI, s)
	}
	path, query, _ := strings.Cut(rest, "?")
	seen := map[string]bool{}
	for _, attr := range splitNonEmpty(path, ";") {
		k, v, ok := strings.Cut(attr, "=")
		if !ok {
			return u, fmt.Errorf("%w %q: attribute %q has no value", ErrInvalidURI, s, attr)
		}
		if seen[k] {
			return u, fmt.Errorf("%w %q: attribute %q given twice", ErrInvalidURI, s, k)
		}
		seen[k] = true
		val, err := pctDecode(v)
		if err != nil {
			return u, fmt.Errorf("%w %q: attribute %s: %v", ErrInvalidURI, s, k, err)
		}
		switch k {
		case "token":
			u.Token = string(val)
		case "manufacturer":
			u.Manufacturer = string(val)
		case "serial":
			u.Serial = string(val)
		case "model":
			u.Model = string(val)
		case "object":
			u.Object = string(val)
		case "id":
			u.ID = val
		case "type":
			if !uriTypes[string(val)] {
				return u, fmt.Errorf("%w %q: type %q is not one of private, public, secret-key, cert, data", ErrInvalidURI, s, val)
			}
			u.Type = string(val)
		case "slot-id":
			n, err := strconv.ParseUint(string(val), 10, 0)
			if err != nil {
				return u, fmt.Errorf("%w %q: slot-id %q is not a number", ErrInvalidURI, s, val)
			}
			id := uint(n)
			u.SlotID = &id
		case "slot-description":
			u.SlotDescription = string(val)
		case "slot-manufacturer":
			u.SlotManufacturer = string(val)
		case "library-manufacturer", "library-description", "library-version":
			// Accepted and ignored: they describe the module, which is chosen separately.
		case "pin-value", "pin-source":
			return u, fmt.Errorf("%w: PINs are never given in a URI; enter them when asked", ErrInvalidURI)
		default:
			return u, fmt.Errorf("%w %q: unknown attribute %q", ErrInvalidURI, s, k)
		}
	}
	for _, attr := range splitNonEmpty(query, "&") {
		k, v, _ := strings.Cut(attr, "=")
		val, err := pctDecode(v)
		if err != nil {
			return u, fmt.Errorf("%w %q: query %s: %v", ErrInvalidURI, s, k, err)
		}
		switch k {
		case "module-path":
			u.ModulePath = string(val)
		case "pin-value", "pin-source":
			return u, fmt.Errorf("%w: PINs are never given in a URI; enter them when asked", ErrInvalidURI)
		case "module-name":
		default:
			return u, fmt.Errorf("%w %q: unknown query attribute %q", ErrInvalidURI, s, k)
		}
	}
	return u, nil
}

func splitNonEmpty(s, sep string) []string {
	var out []string
	for _, p := range strings.Split(s, sep) {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

func pctDecode(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			out = append(out, s[i])
			continue
		}
		if i+2 >= len(s) {
			return nil, fmt.Errorf("truncated percent escape")
		}
		b, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("bad percent escape %q", s[i:i+3])
		}
		out = append(out, byte(b))
		i += 2
	}
	return out, nil
}

// pctEncode escapes everything but RFC 3986 unreserved characters; id values
// are always fully escaped as RFC 7512 recommends for binary data.
func pctEncode(b []byte, all bool) string {
	var sb strings.Builder
	for _, c := range b {
		if !all && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			sb.WriteByte(c)
			continue
		}
		fmt.Fprintf(&sb, "%%%02X", c)
	}
	return sb.String()
}

// String prints the URI in a canonical attribute order.
func (u URI) String() string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+pctEncode([]byte(v), false))
		}
	}
	add("token", u.Token)
	add("manufacturer", u.Manufacturer)
	add("serial", u.Serial)
	add("model", u.Model)
	add("slot-description", u.SlotDescription)
	add("slot-manufacturer", u.SlotManufacturer)
	if u.SlotID != nil {
		parts = append(parts, "slot-id="+strconv.FormatUint(uint64(*u.SlotID), 10))
	}
	add("object", u.Object)
	if len(u.ID) > 0 {
		parts = append(parts, "id="+pctEncode(u.ID, true))
	}
	add("type", u.Type)
	s := "pkcs11:" + strings.Join(parts, ";")
	if u.ModulePath != "" {
		s += "?module-path=" + pctEncode([]byte(u.ModulePath), false)
	}
	return s
}

// Matches reports whether the URI's token and slot attributes select the
// token in slot s. A URI without any selects every token.
func (u URI) Matches(s Slot) bool {
	if s.Token == nil || u.SlotID != nil && *u.SlotID != s.ID {
		return false
	}
	ti := s.Token
	return (u.Token == "" || u.Token == ti.Label) &&
		(u.Serial == "" || u.Serial == ti.Serial) &&
		(u.Manufacturer == "" || u.Manufacturer == ti.Manufacturer) &&
		(u.Model == "" || u.Model == ti.Model) &&
		(u.SlotDescription == "" || u.SlotDescription == s.Description) &&
		(u.SlotManufacturer == "" || u.SlotManufacturer == s.Manufacturer)
}

// TokenAttributes is the URI without its object and module attributes: what
// selects the token.
func (u URI) TokenAttributes() URI {
	return URI{Token: u.Token, Manufacturer: u.Manufacturer, Serial: u.Serial, Model: u.Model,
		SlotDescription: u.SlotDescription, SlotManufacturer: u.SlotManufacturer, SlotID: u.SlotID}
}

// KeyFilter turns the URI's object attributes into a Filter.
func (u URI) KeyFilter() Filter {
	f := Filter{Label: u.Object, ID: u.ID}
	switch u.Type {
	case "private":
		f.Class = ClassPrivateKey
	case "public":
		f.Class = ClassPublicKey
	case "secret-key":
		f.Class = ClassSecretKey
	}
	return f
}
