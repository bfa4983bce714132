package ceremony

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"strings"

	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/hsm"
)

// stateKey is the detail under which a step records, as one JSON value of a
// type of its own, the state later steps need after a resume. The other
// details of the entry are for people; resume reads only this one (or, in a
// transcript of an earlier version, the prose details: legacystate.go).
const stateKey = "resume state (json)"

// recordState records v as the step's resume state.
func (r *stepRun) recordState(v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("record the resume state of step %s: %w", r.st.id, err)
	}
	r.detail(stateKey, string(raw))
	return nil
}

// loadState decodes the resume state en recorded into v, strictly: a field
// v's type does not have, or a field it has that the entry lacks (at any
// depth), is an error naming the entry and its step. An entry written before
// resume state was typed has no such detail; then legacy reads v from the
// entry's prose details.
func loadState(en transcript.Entry, v any, legacy func(transcript.Entry) error) error {
	raw, ok := stateDetail(en)
	if !ok {
		if legacy == nil {
			return fmt.Errorf("entry %d (step %s) records no resume state", en.Seq, en.Step)
		}
		if err := legacy(en); err != nil {
			return fmt.Errorf("entry %d (step %s), written by an earlier version: %w", en.Seq, en.Step, err)
		}
		return nil
	}
	if err := decodeStrict([]byte(raw), v); err != nil {
		return fmt.Errorf("entry %d (step %s): resume state: %w", en.Seq, en.Step, err)
	}
	return nil
}

func stateDetail(en transcript.Entry) (string, bool) {
	for _, d := range en.Details {
		if d.Key == stateKey {
			return d.Value, true
		}
	}
	return "", false
}

// decodeStrict decodes raw into v, refusing unknown fields and fields of v's
// type that raw lacks (a field tagged omitempty or omitzero may be absent).
func decodeStrict(raw []byte, v any) error {
	var decoded any
	if err := json.Unmarshal(raw, &decoded); err != nil {
		return err
	}
	if err := requireFields(decoded, reflect.TypeOf(v), ""); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// requireFields checks that the decoded JSON value has every field the
// struct type t names, recursively through pointers, slices and structs.
func requireFields(val any, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice:
		if list, ok := val.([]any); ok && t.Elem().Kind() != reflect.Uint8 {
			for i, el := range list {
				if err := requireFields(el, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
		return nil
	case reflect.Struct:
	default:
		return nil
	}
	if _, ok := reflect.New(t).Interface().(json.Unmarshaler); ok {
		return nil // a value with its own encoding, such as a time
	}
	obj, ok := val.(map[string]any)
	if !ok {
		if val == nil {
			return nil
		}
		if path == "" {
			return fmt.Errorf("not a JSON object: %s", val)
		}
		return fmt.Errorf("field %q is not a JSON object", strings.TrimPrefix(path, "."))
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		v, present := obj[name]
		if !present {
			if strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero") {
				continue
			}
			return fmt.Errorf("field %q is missing", strings.TrimPrefix(path+"."+name, "."))
		}
		if err := requireFields(v, f.Type, path+"."+name); err != nil {
			return err
		}
	}
	return nil
}

// hexBytes is a byte string recorded in hexadecimal: key IDs, serials, hashes.
type hexBytes []byte

func (h hexBytes) MarshalJSON() ([]byte, error) { return json.Marshal(hex.EncodeToString(h)) }

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("not hexadecimal: %q", s)
	}
	*h = d
	return nil
}

// bigInt is a number recorded in decimal (a CRL number).
type bigInt struct{ *big.Int }

func (b bigInt) MarshalJSON() ([]byte, error) {
	if b.Int == nil {
		return []byte("null"), nil
	}
	return json.Marshal(b.Int.String())
}

func (b *bigInt) UnmarshalJSON(raw []byte) error {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return fmt.Errorf("not a decimal number: %q", s)
	}
	b.Int = n
	return nil
}

// keyRef names a key on the token as the step that made or found it
// recorded it: the root key (generated or restored), the root key a signing
// ceremony found, the key whose material a BYOK ceremony wraps.
type keyRef struct {
	Label string   `json:"label"`
	ID    hexBytes `json:"id"`
}

func refOf(k *hsm.Key) keyRef { return keyRef{Label: k.Label(), ID: k.ID()} }

// filter selects the key's objects of class on a token.
func (k keyRef) filter(class hsm.KeyClass) hsm.Filter {
	return hsm.Filter{Label: k.Label, ID: k.ID, Class: class}
}

// findKey returns the one key of class that ref names on the (logged-in) token.
func (e *Engine) findKey(ref keyRef, class hsm.KeyClass) (*hsm.Key, error) {
	tok, err := e.token()
	if err != nil {
		return nil, err
	}
	return tok.FindKey(ref.filter(class))
}

// restore reads the reference a step recorded: its typed state, or the
// "key label" and "key id" details of an earlier version.
func (k *keyRef) restore(en transcript.Entry) error {
	if err := loadState(en, k, k.fromDetails); err != nil {
		return err
	}
	if len(k.ID) == 0 {
		return fmt.Errorf("entry %d (step %s) records a key without ID", en.Seq, en.Step)
	}
	return nil
}

// record records the reference as the step's resume state.
func (k keyRef) record(r *stepRun) error { return r.recordState(k) }
