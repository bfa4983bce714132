//go:build !unix && !windows

package store

import (
	"errors"
	"os"
)

// tryLock: no file locks on this platform; a run cannot be told alive
// from interrupted, and runAlive errs.
func tryLock(*os.File) (bool, error) {
	return false, errors.New("file locks are not supported on this platform")
}

func unlock(*os.File) {}
