package outfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCreate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out.bin")
	if err := Create(p, []byte("first"), "use another directory"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v: %v", fi.Mode(), err)
	}
	err = Create(p, []byte("second"), "use another directory")
	if !errors.Is(err, os.ErrExist) || !strings.Contains(err.Error(), "already exists; use another directory") {
		t.Errorf("overwrite: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "first" {
		t.Errorf("the file was changed to %q", b)
	}
	if err := Create(filepath.Join(p, "x"), nil, ""); err == nil {
		t.Error("created a file below a file")
	}
}
