package hsm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"

	"github.com/miekg/pkcs11"
)

// KeyClass is the PKCS#11 object class of a key.
type KeyClass int

const (
	ClassAny KeyClass = iota
	ClassPrivateKey
	ClassPublicKey
	ClassSecretKey
)

func (c KeyClass) String() string {
	switch c {
	case ClassPrivateKey:
		return "private"
	case ClassPublicKey:
		return "public"
	case ClassSecretKey:
		return "secret-key"
	}
	return "any"
}

func (c KeyClass) cko() (uint, bool) {
	switch c {
	case ClassPrivateKey:
		return pkcs11.CKO_PRIVATE_KEY, true
	case ClassPublicKey:
		return pkcs11.CKO_PUBLIC_KEY, true
	case ClassSecretKey:
		return pkcs11.CKO_SECRET_KEY, true
	}
	return 0, false
}

// Key is a key on the token: a secret key, a private key with its public half
// when the token has one, or a lone public key (e.g. an imported wrapping key).
type Key struct {
	t           *Token
	handle      pkcs11.ObjectHandle // secret or private key; the public key for a lone public key
	pubHandle   pkcs11.ObjectHandle // 0 when absent
	class       KeyClass
	typ         KeyType
	label       string
	id          []byte
	sensitive   bool
	extractable bool
	session     bool
	pub         crypto.PublicKey
	uses        []string         // read back: what the key may do
	checks      []AttributeCheck // set when this process made the key
	problem     error            // the key's attributes could not be read
}

// Problem is why the key's attributes could not be read, or nil. Such a key
// is listed (with its label, ID and class) so the others stay usable and it
// can be destroyed; it cannot sign.
func (k *Key) Problem() error { return k.problem }

func (k *Key) Label() string            { return k.label }
func (k *Key) ID() []byte               { return bytes.Clone(k.id) }
func (k *Key) Class() KeyClass          { return k.class }
func (k *Key) Type() KeyType            { return k.typ }
func (k *Key) Sensitive() bool          { return k.sensitive }
func (k *Key) Extractable() bool        { return k.extractable }
func (k *Key) Token() *Token            { return k.t }
func (k *Key) Public() crypto.PublicKey { return k.pub }

// URI names the key on its token.
func (k *Key) URI() URI {
	u := k.t.URI()
	u.Object, u.ID, u.Type = k.label, k.ID(), k.class.String()
	return u
}

// Fingerprint is the SHA-256 of the public key's SubjectPublicKeyInfo, or nil
// for secret keys (their value never leaves the token to be hashed).
func (k *Key) Fingerprint() []byte {
	if k.pub == nil {
		return nil
	}
	der, err := x509.MarshalPKIXPublicKey(k.pub)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(der)
	return sum[:]
}

// String describes the key for logs and listings; it contains no secret.
func (k *Key) String() string {
	s := fmt.Sprintf("%s %s %q id=%s", k.class, k.typ, k.label, hex.EncodeToString(k.id))
	if k.problem != nil {
		s += " (UNREADABLE: " + k.problem.Error() + ")"
	}
	return s
}

// DestroyKey deletes the key and its public half from the token.
func (t *Token) DestroyKey(k *Key) error {
	return t.withSession(context.Background(), func(sh pkcs11.SessionHandle) error {
		if err := t.ctx().DestroyObject(sh, k.handle); err != nil {
			return t.classify(fmt.Sprintf("destroy key %q", k.label), err)
		}
		if k.pubHandle != 0 && k.pubHandle != k.handle {
			if err := t.ctx().DestroyObject(sh, k.pubHandle); err != nil {
				return t.classify(fmt.Sprintf("destroy public key %q", k.label), err)
			}
		}
		return nil
	})
}
