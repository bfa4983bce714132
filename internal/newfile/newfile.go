// Package newfile writes a file that must not exist yet: an output the
// operator named or a step's evidence, which is never written over an
// existing file and never left half-written.
package newfile

import (
	"errors"
	"fmt"
	"os"
)

// Write creates path (O_EXCL, mode 0600), writes data and syncs it. If
// path exists, the error says so and ends with hint (what the operator
// should do, e.g. "choose another file name"). A file that could not be
// written whole is removed: half an output must not pass for one.
func Write(path string, data []byte, hint string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s already exists: %s", path, hint)
		}
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
