//go:build !unix && !windows

package ceremony

func freeBytes(dir string) (uint64, error) { return 0, errNoSpaceInfo }
