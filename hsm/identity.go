package hsm

import (
	"fmt"
	"strings"
)

// TokenIdentity is everything PKCS#11 says to tell one token from another:
// C_GetTokenInfo's manufacturer, model, serial and label, and C_GetSlotInfo's
// description and manufacturer. A serial alone is not enough: tpm2-pkcs11
// reports 0000000000000000 in every slot, and several USB tokens and HSM
// partitions repeat or blank theirs.
type TokenIdentity struct {
	Manufacturer     string `json:"manufacturer"`
	Model            string `json:"model"`
	Serial           string `json:"serial"`
	Label            string `json:"label"`
	SlotDescription  string `json:"slotDescription"`
	SlotManufacturer string `json:"slotManufacturer"`
}

// Identity is the identity of the token in the slot (zero when there is none).
func (s Slot) Identity() TokenIdentity {
	if s.Token == nil {
		return TokenIdentity{}
	}
	return TokenIdentity{Manufacturer: s.Token.Manufacturer, Model: s.Token.Model, Serial: s.Token.Serial,
		Label: s.Token.Label, SlotDescription: s.Description, SlotManufacturer: s.Manufacturer}
}

// URI selects the token by every attribute of its identity that is not empty.
func (id TokenIdentity) URI() URI {
	return URI{Token: id.Label, Manufacturer: id.Manufacturer, Serial: id.Serial, Model: id.Model,
		SlotDescription: id.SlotDescription, SlotManufacturer: id.SlotManufacturer}
}

func (id TokenIdentity) String() string {
	return fmt.Sprintf("%q (%s %s, serial %s, slot %q)", id.Label, id.Manufacturer, id.Model, id.Serial, id.SlotDescription)
}

// identityAttrs are the URI attributes of an identity, in the order the
// engine suggests them to tell tokens apart: the label first (the one a
// person sets), the slot's own manufacturer last.
func (id TokenIdentity) identityAttrs() [][2]string {
	return [][2]string{
		{"token", id.Label}, {"serial", id.Serial}, {"slot-description", id.SlotDescription},
		{"model", id.Model}, {"manufacturer", id.Manufacturer}, {"slot-manufacturer", id.SlotManufacturer},
	}
}

// AmbiguousTokenError says that a URI selects more than one token, names
// every candidate, and what to add to the URI to choose each one.
type AmbiguousTokenError struct {
	URI        URI
	Module     string
	Candidates []Slot
}

func (e *AmbiguousTokenError) Error() string {
	var cands, adds []string
	for _, c := range e.Candidates {
		cands = append(cands, fmt.Sprintf("slot %d %s", c.ID, c.Identity()))
		if attr, ok := distinguishing(c, e.Candidates); ok {
			adds = append(adds, fmt.Sprintf("%s (slot %d)", attr, c.ID))
		}
	}
	msg := fmt.Sprintf("find token %s in %s: %d tokens match: %s", e.URI, e.Module, len(e.Candidates), strings.Join(cands, "; "))
	if len(adds) == 0 {
		return msg + ". They are indistinguishable (same manufacturer, model, serial, label and slot): " +
			"give each token its own label, or remove the others, so the ceremony cannot reach the wrong one"
	}
	msg += ". Add to the URI " + strings.Join(adds, " or ")
	if len(adds) < len(e.Candidates) {
		msg += "; the others are indistinguishable (same manufacturer, model, serial, label and slot): give them their own labels"
	}
	return msg
}

func (e *AmbiguousTokenError) Unwrap() error { return ErrAmbiguous }

// distinguishing is the first attribute (as attr=value) whose value in s
// differs from its value in every other candidate. An empty value selects
// nothing, so a blank token (no label yet) is chosen by its slot-id: slot
// IDs can change when tokens come and go, but a blank token is initialised
// in the same ceremony step that chose it.
func distinguishing(s Slot, all []Slot) (string, bool) {
	if s.Token != nil && !s.Token.Initialized {
		return fmt.Sprintf("slot-id=%d", s.ID), true
	}
	mine := s.Identity().identityAttrs()
	for i, a := range mine {
		if a[1] == "" {
			continue
		}
		unique := true
		for _, o := range all {
			if o.ID != s.ID && o.Identity().identityAttrs()[i][1] == a[1] {
				unique = false
				break
			}
		}
		if unique {
			return a[0] + "=" + pctEncode([]byte(a[1]), false), true
		}
	}
	return "", false
}

// IndistinguishableError says that a token's whole identity is shared by
// another token of the module, so it cannot be found again for certain.
type IndistinguishableError struct {
	Identity TokenIdentity
	Slots    []uint
}

func (e *IndistinguishableError) Error() string {
	return fmt.Sprintf("the tokens in slots %v are indistinguishable: both are %s. A ceremony must find its token again after every step; "+
		"give each token its own label, or remove the other token", e.Slots, e.Identity)
}

func (e *IndistinguishableError) Unwrap() error { return ErrAmbiguous }

// FindToken returns the slot holding the token sel selects. A URI that
// selects several tokens is refused with an *AmbiguousTokenError.
func (m *Module) FindToken(sel URI) (Slot, error) {
	found, err := m.slotsWhere(sel.Matches)
	if err != nil || len(found) == 1 {
		return first(found), err
	}
	if len(found) == 0 {
		return Slot{}, fmt.Errorf("find token %s in %s: %w (is it inserted? 'keyceremony token list' shows what is there)", sel.String(), m.path, ErrTokenNotFound)
	}
	return Slot{}, &AmbiguousTokenError{URI: sel, Module: m.path, Candidates: found}
}

// FindIdentity returns the slot of the token with exactly this identity, and
// refuses when another token shares it (an *IndistinguishableError): a
// ceremony that finds its token again by identity must find one token.
func (m *Module) FindIdentity(id TokenIdentity) (Slot, error) {
	found, err := m.slotsWhere(func(s Slot) bool { return s.Token != nil && s.Identity() == id })
	if err != nil || len(found) == 1 {
		return first(found), err
	}
	if len(found) == 0 {
		return Slot{}, fmt.Errorf("find token %s in %s: %w (is it inserted? 'keyceremony token list' shows what is there)", id, m.path, ErrTokenNotFound)
	}
	ids := make([]uint, len(found))
	for i, s := range found {
		ids[i] = s.ID
	}
	return Slot{}, &IndistinguishableError{Identity: id, Slots: ids}
}

// slotsWhere lists the slots for which match is true.
func (m *Module) slotsWhere(match func(Slot) bool) ([]Slot, error) {
	slots, err := m.Slots()
	if err != nil {
		return nil, err
	}
	var found []Slot
	for _, s := range slots {
		if match(s) {
			found = append(found, s)
		}
	}
	return found, nil
}

func first(slots []Slot) Slot {
	if len(slots) == 0 {
		return Slot{}
	}
	return slots[0]
}
