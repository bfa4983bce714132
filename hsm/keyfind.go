package hsm

import (
	"context"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// Filter selects keys. Empty fields match anything.
type Filter struct {
	Label string
	ID    []byte
	Class KeyClass
}

func (t *Token) findObjects(f Filter) ([]pkcs11.ObjectHandle, error) {
	var tmpl []*pkcs11.Attribute
	if f.Label != "" {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_LABEL, f.Label))
	}
	if len(f.ID) > 0 {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_ID, f.ID))
	}
	if c, ok := f.Class.cko(); ok {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_CLASS, c))
	}
	var out []pkcs11.ObjectHandle
	err := t.withSession(context.Background(), func(sh pkcs11.SessionHandle) error {
		if err := t.ctx().FindObjectsInit(sh, tmpl); err != nil {
			return t.classify("find objects", err)
		}
		defer t.ctx().FindObjectsFinal(sh)
		for {
			hs, _, err := t.ctx().FindObjects(sh, 64)
			if err != nil {
				return t.classify("find objects", err)
			}
			if len(hs) == 0 {
				return nil
			}
			out = append(out, hs...)
		}
	})
	return out, err
}

// FindKeys returns the keys matching f: secret and private keys (paired with
// their public half by CKA_ID) and public keys that have no private half. A
// key whose attributes cannot be read (a malformed public point, say) does
// not hide the others: it is returned with Problem set, so it can be listed
// with a warning and destroyed.
func (t *Token) FindKeys(f Filter) ([]*Key, error) {
	hs, err := t.findObjects(f)
	if err != nil {
		return nil, err
	}
	type obj struct {
		h     pkcs11.ObjectHandle
		class uint
		id    []byte
	}
	var objs []obj
	for _, h := range hs {
		attrs, err := t.attrs(h, pkcs11.CKA_CLASS, pkcs11.CKA_ID)
		if err != nil {
			return nil, err
		}
		c := bytesToUint(attrs[pkcs11.CKA_CLASS])
		if c != pkcs11.CKO_PRIVATE_KEY && c != pkcs11.CKO_PUBLIC_KEY && c != pkcs11.CKO_SECRET_KEY {
			continue
		}
		objs = append(objs, obj{h, c, attrs[pkcs11.CKA_ID]})
	}
	// Public halves are found by ID even when the filter selected private keys only.
	pubByID := map[string]pkcs11.ObjectHandle{}
	if f.Class == ClassPrivateKey || f.Class == ClassAny {
		all := objs
		if f.Class == ClassPrivateKey {
			pf := f
			pf.Class, pf.Label = ClassPublicKey, ""
			phs, err := t.findObjects(pf)
			if err != nil {
				return nil, err
			}
			for _, h := range phs {
				a, err := t.attrs(h, pkcs11.CKA_ID)
				if err != nil {
					return nil, err
				}
				all = append(all, obj{h, pkcs11.CKO_PUBLIC_KEY, a[pkcs11.CKA_ID]})
			}
		}
		for _, o := range all {
			if o.class == pkcs11.CKO_PUBLIC_KEY && len(o.id) > 0 {
				pubByID[string(o.id)] = o.h
			}
		}
	}
	hasPrivate := map[string]bool{}
	for _, o := range objs {
		if o.class == pkcs11.CKO_PRIVATE_KEY {
			hasPrivate[string(o.id)] = true
		}
	}
	var keys []*Key
	for _, o := range objs {
		var k *Key
		switch o.class {
		case pkcs11.CKO_PUBLIC_KEY:
			if f.Class == ClassAny && len(o.id) > 0 && hasPrivate[string(o.id)] {
				continue // reported with its private half
			}
			k, err = t.loadKey(0, o.h)
		case pkcs11.CKO_PRIVATE_KEY:
			k, err = t.loadKey(o.h, pubByID[string(o.id)])
		default:
			k, err = t.loadKey(o.h, 0)
		}
		if err != nil {
			if isRemoved(err) || errors.Is(err, ErrNotLoggedIn) {
				return nil, err
			}
			k = t.unreadableKey(o.h, o.class, o.id, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// unreadableKey stands for an object whose key attributes could not be read.
func (t *Token) unreadableKey(h pkcs11.ObjectHandle, class uint, id []byte, err error) *Key {
	k := &Key{t: t, handle: h, id: id, problem: err, class: map[uint]KeyClass{pkcs11.CKO_PRIVATE_KEY: ClassPrivateKey, pkcs11.CKO_SECRET_KEY: ClassSecretKey}[class]}
	if k.class == ClassAny {
		k.class = ClassPublicKey
	}
	if a, aerr := t.attrs(h, pkcs11.CKA_LABEL); aerr == nil {
		k.label = string(a[pkcs11.CKA_LABEL])
	}
	return k
}

// FindKey returns the one key matching f.
func (t *Token) FindKey(f Filter) (*Key, error) {
	keys, err := t.FindKeys(f)
	if err != nil {
		return nil, err
	}
	desc := fmt.Sprintf("label=%q id=%x class=%s", f.Label, f.ID, f.Class)
	switch len(keys) {
	case 0:
		return nil, fmt.Errorf("find key %s on token %q: %w", desc, t.label, ErrKeyNotFound)
	case 1:
		return keys[0], nil
	}
	return nil, fmt.Errorf("find key %s on token %q: %w (%d keys; add id= or type= to the URI)", desc, t.label, ErrAmbiguous, len(keys))
}
