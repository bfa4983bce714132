package quorum

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"unsafe"

	"filippo.io/age"

	"github.com/keyceremony/keyceremony/internal/textpages"
)

// ScryptWorkFactor is the scrypt cost (log2 N) of share files: age's default,
// about a second on a laptop, which is what makes a weak passphrase expensive
// to guess.
const ScryptWorkFactor = 18

// kdfMemory brackets an scrypt run: the memory the process no longer uses
// is returned to the system before the run allocates its 256 MiB (work
// factor 2^18), and that block is returned right after. Without it the
// garbage collector keeps the blocks of several custodians' files at once
// (a root ceremony peaked at 554 MB, more with a recovery quorum); with it
// the peak is one block above what the process holds anyway. Before the
// run, the resident pages of the process's read-only file mappings (its
// code, its libraries') are unmapped too (internal/textpages: clean copies
// of files that fault back in on use), which takes the release binary's
// ceremony from 315 to 298 MiB (ceremony/README.md). The KDF is unchanged.
// Use: defer kdfMemory()().
func kdfMemory() func() {
	debug.FreeOSMemory()
	// Best effort: on failure the pages stay mapped and only the peak is higher.
	_, _ = textpages.Release()
	return debug.FreeOSMemory
}

// ErrPassphrase is returned when a share file does not open with the passphrase.
var ErrPassphrase = errors.New("the passphrase does not open this share file")

// passString shares the passphrase's memory instead of copying it, so that
// wiping the slice also clears the string handed to age. age itself copies
// the passphrase into memory this package cannot reach (see the README).
func passString(p []byte) string {
	if len(p) == 0 {
		return ""
	}
	return unsafe.String(&p[0], len(p))
}

// WriteFile encrypts the share's text to w with the custodian's passphrase
// (age, scrypt recipient). The file holds the same text as the share card.
func (s *Share) WriteFile(w io.Writer, passphrase []byte) error {
	if len(passphrase) == 0 {
		return errors.New("encrypt share: the passphrase is empty")
	}
	defer kdfMemory()()
	r, err := age.NewScryptRecipient(passString(passphrase))
	if err != nil {
		return fmt.Errorf("encrypt share: %w", err)
	}
	r.SetWorkFactor(ScryptWorkFactor)
	aw, err := age.Encrypt(w, r)
	if err != nil {
		return fmt.Errorf("encrypt share: %w", err)
	}
	text := s.Text()
	defer clear(text)
	if _, err := aw.Write(append(text, '\n')); err != nil {
		return fmt.Errorf("encrypt share: %w", err)
	}
	if err := aw.Close(); err != nil {
		return fmt.Errorf("encrypt share: %w", err)
	}
	return nil
}

// ReadFile decrypts a share file with the custodian's passphrase and parses
// the share in it.
func ReadFile(r io.Reader, passphrase []byte) (*Share, error) {
	defer kdfMemory()()
	id, err := age.NewScryptIdentity(passString(passphrase))
	if err != nil {
		return nil, fmt.Errorf("open share file: %w", err)
	}
	id.SetMaxWorkFactor(22)
	ar, err := age.Decrypt(r, id)
	if err != nil {
		var wrong *age.NoIdentityMatchError
		if errors.As(err, &wrong) {
			return nil, fmt.Errorf("open share file: %w", ErrPassphrase)
		}
		return nil, fmt.Errorf("open share file: not a share file encrypted with a passphrase (%v)", err)
	}
	var buf bytes.Buffer
	defer func() { clear(buf.Bytes()[:buf.Cap()]) }()
	buf.Grow(256)
	if _, err := io.Copy(&buf, io.LimitReader(ar, 256)); err != nil {
		return nil, fmt.Errorf("open share file: %w", err)
	}
	s, err := ParseShare(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("share file: %w", err)
	}
	return s, nil
}
