// Package outfile writes the files a ceremony leaves behind (its outputs,
// share cards and share files, import files): created new, never over an
// existing file, mode 0600, and flushed to disk together with their
// directory entry, so a step is recorded only after what it wrote is safe.
package outfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Create writes data to path, which must not exist. When it does, the error
// wraps os.ErrExist and ends with hint: what the operator should do.
func Create(path string, data []byte, hint string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s already exists; %s: %w", path, hint, os.ErrExist)
		}
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("flush %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}
