package ceremony

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/transcript"
)

// Transcripts written before resume state was typed (up to commit 561d7ad:
// see testdata/legacy) recorded it as prose details such as "key id" and
// "tbs sha256". These decoders read that form, each for one state type, so
// such a ceremony still resumes. Unlike the old code they refuse a detail
// that is missing or malformed instead of reading it as empty.

// legacyDetails reads prose details of an entry, remembering the first
// problem so a decoder reads every field and checks once.
type legacyDetails struct {
	en  transcript.Entry
	err error
}

// get returns the detail's value; a missing one is an error unless optional.
func (d *legacyDetails) get(key string, optional bool) (string, bool) {
	for _, x := range d.en.Details {
		if x.Key == key {
			return x.Value, true
		}
	}
	if !optional && d.err == nil {
		d.err = fmt.Errorf("the detail %q is missing", key)
	}
	return "", false
}

func (d *legacyDetails) text(key string) string {
	v, _ := d.get(key, false)
	return v
}

func (d *legacyDetails) hex(key string) []byte {
	v, ok := d.get(key, false)
	b, err := hex.DecodeString(v)
	if ok && (err != nil || len(b) == 0) && d.err == nil {
		d.err = fmt.Errorf("the detail %q is not a hexadecimal value: %q", key, v)
	}
	return b
}

func (d *legacyDetails) time(key string, optional bool) time.Time {
	v, ok := d.get(key, optional)
	if !ok {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil && d.err == nil {
		d.err = fmt.Errorf("the detail %q is not a time: %q", key, v)
	}
	return t
}

func (k *keyRef) fromDetails(en transcript.Entry) error {
	d := &legacyDetails{en: en}
	k.Label, k.ID = d.text("key label"), d.hex("key id")
	return d.err
}

func (g *generatedKey) fromDetails(en transcript.Entry) error {
	if err := g.Key.fromDetails(en); err != nil {
		return err
	}
	d := &legacyDetails{en: en}
	g.PublicKeySHA256 = d.hex("public key sha256")
	return d.err
}

// The root's lint step recorded no issue time (the root's validity comes
// from the script); the subordinate's and the cross-certificate's did.
func (c *certLint) fromDetails(en transcript.Entry) error {
	d := &legacyDetails{en: en}
	c.Serial, c.IssuedAt, c.TBSSHA256 = d.hex("serial"), d.time("issued at", true), d.text("tbs sha256")
	if c.TBSSHA256 == "" && d.err == nil {
		d.err = fmt.Errorf("no to-be-signed hash is recorded")
	}
	return d.err
}

func (c *crlLint) fromDetails(en transcript.Entry) error {
	d := &legacyDetails{en: en}
	n := d.text("crl number")
	c.ThisUpdate, c.NextUpdate, c.TBSSHA256 = d.time("this update", false), d.time("next update", false), d.text("tbs sha256")
	if d.err != nil {
		return d.err
	}
	num, ok := new(big.Int).SetString(n, 10)
	if !ok {
		return fmt.Errorf("the detail %q is not a number: %q", "crl number", n)
	}
	c.Number = bigInt{num}
	if c.TBSSHA256 == "" {
		return fmt.Errorf("no to-be-signed hash is recorded")
	}
	return nil
}

// A sign step recorded the SHA-256 of what it signed as "certificate sha256"
// or "crl sha256".
func (s *signedState) fromDetails(en transcript.Entry, noun string) error {
	d := &legacyDetails{en: en}
	s.SHA256 = d.hex(noun + " sha256")
	return d.err
}

// The token step recorded the serial it found (perhaps empty: a blank token).
func (t *tokenState) fromDetails(en transcript.Entry) error {
	d := &legacyDetails{en: en}
	t.Serial = d.text("token serial")
	return d.err
}

// The enrolment recorded a token serial and label only when it initialised
// the token (which gives it a new serial); change-pin recorded neither.
func (t *enrolState) fromDetails(en transcript.Entry) error {
	d := &legacyDetails{en: en}
	t.Serial, _ = d.get("token serial", true)
	t.Label, _ = d.get("token label", true)
	return d.err
}

// The BYOK inputs step recorded the material's expiry when it had one.
func (b *byokInputs) fromDetails(en transcript.Entry) error {
	d := &legacyDetails{en: en}
	if t := d.time("material valid to", true); !t.IsZero() {
		b.MaterialValidTo = &t
	}
	return d.err
}

// The wrapping plan was recorded as JSON already, under "plan (json)".
func (p *wrapPlan) fromDetails(en transcript.Entry) error {
	d := &legacyDetails{en: en}
	raw := d.text("plan (json)")
	if d.err != nil {
		return d.err
	}
	if err := json.Unmarshal([]byte(raw), &p.Plan); err != nil {
		return fmt.Errorf("the detail %q: %w", "plan (json)", err)
	}
	if len(p.Plan) == 0 {
		return fmt.Errorf("the detail %q holds no step", "plan (json)")
	}
	return nil
}
