//go:build !windows

package outfile

import (
	"fmt"
	"os"
)

// SyncDir flushes a directory, so that the files just created in it survive
// a power loss together with their contents.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("flush directory %s: %w", dir, err)
	}
	return nil
}
