package softhsm

import "github.com/keyceremony/keyceremony/hsm"

// SetupToken initialises the first uninitialised slot of a SoftHSM module with
// label and both PINs: the throwaway token of a rehearsal (and, through
// package softhsmtest, of tests).
func SetupToken(m *hsm.Module, label string, soPIN, userPIN []byte) error {
	slots, err := m.Slots()
	if err != nil {
		return err
	}
	var slot *hsm.Slot
	for i := range slots {
		if slots[i].Token != nil && !slots[i].Token.Initialized {
			slot = &slots[i]
			break
		}
	}
	if slot == nil {
		return hsm.ErrTokenNotFound
	}
	tok, err := m.InitTokenWithPINs(slot.ID, label, soPIN, userPIN)
	if err != nil {
		return err
	}
	return tok.Close()
}
