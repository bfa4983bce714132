package ui

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
)

func removeFile(path string) error { return os.Remove(path) }

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
