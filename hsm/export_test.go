package hsm

import (
	"context"

	"github.com/miekg/pkcs11"
)

// CreateObjectForTest stores an object with exactly the attributes given,
// to put on a real token what a faulty module or another tool leaves there.
func (t *Token) CreateObjectForTest(attrs []*pkcs11.Attribute) error {
	return t.withSession(context.Background(), func(sh pkcs11.SessionHandle) error {
		_, err := t.ctx().CreateObject(sh, attrs)
		return err
	})
}

// ObjectsWithLabelForTest counts the objects labelled label, of any class,
// readable or not: what a failed generation must not leave.
func (t *Token) ObjectsWithLabelForTest(label string) (int, error) {
	hs, err := t.findObjects(Filter{Label: label})
	return len(hs), err
}

// WithoutKnownDefectsForTest runs f as if no module defect were known, so a
// test can show what the generation's own signature check catches.
func WithoutKnownDefectsForTest(f func()) {
	saved := knownDefects
	knownDefects = nil
	defer func() { knownDefects = saved }()
	f()
}
