package cloudtrailgen

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// CopyDaysFrom copies the files of a generated tree whose day is on or
// after cut (YYYY-MM-DD) into dst, in the same layout, and returns how many
// it copied: the later days, for a test that loads them first (the calls
// that name only an alias then cannot be resolved until the earlier days,
// which hold the alias changes, are loaded).
func CopyDaysFrom(tree, dst, cut string) (int, error) {
	n := 0
	err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(tree, p)
		if err != nil {
			return err
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		// AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/file
		if len(parts) < 8 || strings.Join(parts[4:7], "-") < cut {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(out, b, 0o600); err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("copy the days from %s of %s: %w", cut, tree, err)
	}
	return n, nil
}
