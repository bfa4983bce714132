package newfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.json")
	if err := Write(path, []byte("first\n"), "choose another name"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	// Never over an existing file: the error says what to do, the content stays.
	err = Write(path, []byte("second\n"), "choose another name")
	if err == nil || err.Error() != path+" already exists: choose another name" {
		t.Fatalf("second write: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "first\n" {
		t.Fatalf("content %q", b)
	}
	// A directory that does not exist: an error, nothing created.
	missing := filepath.Join(dir, "no", "such.json")
	if err := Write(missing, []byte("x"), "hint"); err == nil || strings.Contains(err.Error(), "already exists") {
		t.Fatalf("missing directory: %v", err)
	}
}
