package ceremony

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/softhsm"
)

// rehearsal is a throwaway SoftHSM token store that stands in for the
// script's token. It lives in a temporary directory removed afterwards.
type rehearsal struct {
	dir, module    string
	prevConf       string
	hadConf        bool
	soPIN, userPIN []byte
}

// setupRehearsal creates the throwaway store and points the engine at it: a
// blank slot when the script initialises its token, otherwise a token
// initialised with random PINs that the engine itself enters as "current".
func (e *Engine) setupRehearsal() error {
	mod, err := softhsm.ModulePath()
	if err != nil {
		return fmt.Errorf("rehearsal: %w", err)
	}
	dir, err := os.MkdirTemp("", "keyceremony-rehearsal-")
	if err != nil {
		return fmt.Errorf("rehearsal: %w", err)
	}
	r := &rehearsal{dir: dir, module: mod}
	r.prevConf, r.hadConf = os.LookupEnv(softhsm.EnvConf)
	e.rehearsal = r
	conf, err := softhsm.WriteConfig(dir)
	if err != nil {
		return fmt.Errorf("rehearsal: %w", err)
	}
	// SoftHSM reads its configuration when the module is initialised, so
	// the variable must point at the throwaway store before that.
	if err := os.Setenv(softhsm.EnvConf, conf); err != nil {
		return err
	}
	m, err := hsm.Open(mod)
	if err != nil {
		return fmt.Errorf("rehearsal: %w", err)
	}
	defer m.Close()
	if e.s.Token.Enrol == script.EnrolInitialize {
		slots, err := m.Slots()
		if err != nil {
			return err
		}
		for _, s := range slots {
			if s.Token != nil && !s.Token.Initialized {
				id := s.ID
				e.tokenSel = hsm.URI{SlotID: &id}
				return nil
			}
		}
		return fmt.Errorf("rehearsal: SoftHSM offers no blank slot")
	}
	r.soPIN, r.userPIN = randomPIN(), randomPIN()
	label := "REHEARSAL " + e.s.ID
	if len(label) > 32 {
		label = label[:32]
	}
	if err := softhsm.SetupToken(m, label, r.soPIN, r.userPIN); err != nil {
		return fmt.Errorf("rehearsal: set up the throwaway token: %w", err)
	}
	e.tokenSel = hsm.URI{Token: label}
	return nil
}

func randomPIN() []byte {
	b := make([]byte, 12)
	rand.Read(b)
	out := []byte(hex.EncodeToString(b))
	clear(b)
	return out
}

// currentPIN hands the throwaway token's PIN to the change-pin enrolment.
// The caller wipes the copy.
func (r *rehearsal) currentPIN(role string) []byte {
	if role == "so" {
		return append([]byte(nil), r.soPIN...)
	}
	return append([]byte(nil), r.userPIN...)
}

// close removes the throwaway store and restores the caller's SoftHSM configuration.
func (r *rehearsal) close() {
	clear(r.soPIN)
	clear(r.userPIN)
	if r.hadConf {
		os.Setenv(softhsm.EnvConf, r.prevConf)
	} else {
		os.Unsetenv(softhsm.EnvConf)
	}
	os.RemoveAll(r.dir)
}
