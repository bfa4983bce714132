package report

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrExists means an output file is already there and --force was not given.
var ErrExists = errors.New("output file exists")

// CheckOutput fails early, before a report is computed, when path exists
// and force is false, or when its directory is missing.
func CheckOutput(path string, force bool) error {
	if path == "" {
		return nil
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return fmt.Errorf("output directory for %s does not exist", path)
	}
	if _, err := os.Lstat(path); err == nil && !force {
		return fmt.Errorf("%w: %s (choose another name, or pass --force to replace it)", ErrExists, path)
	}
	return nil
}

// WriteFile writes a report file with mode 0600. The content goes to a
// temporary file in the same directory first, so a failed render never
// leaves a half-written report under the real name; an existing file is
// refused unless force.
func WriteFile(path string, force bool, write func(io.Writer) error) (err error) {
	if err := CheckOutput(path, force); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	name := tmp.Name()
	defer os.Remove(name) // after a rename or link this removes nothing of value
	defer func() {
		if tmp != nil {
			tmp.Close()
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := write(tmp); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp = nil
	if force {
		if err := os.Rename(name, path); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	}
	// A hard link fails if path appeared meanwhile: never overwrite.
	if err := os.Link(name, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s (choose another name, or pass --force to replace it)", ErrExists, path)
		}
		return copyExcl(name, path)
	}
	return nil
}

// copyExcl is WriteFile's fallback on file systems without hard links.
func copyExcl(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s (choose another name, or pass --force to replace it)", ErrExists, dst)
		}
		return fmt.Errorf("write %s: %w", dst, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return out.Close()
}
