//go:build windows

package ceremony

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/windows"
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
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return 0, err
	}
	var avail, total, free uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &total, &free); err != nil {
		return 0, err
	}
	return avail, nil
}
