//go:build unix

package ceremony

import (
	"os"
	"path/filepath"
	"syscall"
)

// freeBytes is the space available to this user in dir, or in its nearest
// existing parent when dir is yet to be created.
func freeBytes(dir string) (uint64, error) {
	for {
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}
