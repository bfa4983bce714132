// Package buildinfo names the running binary: its version, the commit it was
// built from, the Go toolchain, every module linked in, and the SHA-256 of the
// executable file itself. Ceremonies record it so that a transcript says
// exactly which software produced it, and a witness can compare the hash read
// aloud with the published SHA256SUMS of the release.
//
// Version and commit are stamped by the Makefile with -ldflags -X (release
// builds use -buildvcs=false so two clones of one commit build identical
// bytes); a plain `go build` falls back to what the Go toolchain recorded.
package buildinfo

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"sync"
)

// stamp is set at link time by the release build:
//
//	-X github.com/keyceremony/keyceremony/ceremony/buildinfo.stamp=keyceremony-stamp:v1:<version>:<commit>:end
//
// One marked string rather than two plain ones because Go does not record
// -ldflags in the build information of a -trimpath build: the marker lets
// WriteSBOM find the version and commit in any binary file, including a
// Windows .exe read on Linux.
var stamp string

var stampRE = regexp.MustCompile(`keyceremony-stamp:v1:([0-9A-Za-z.+~_-]+):([0-9a-f]{7,64}(?:-dirty)?|unknown):end`)

// parseStamp returns the version and commit of a stamp found in b.
func parseStamp(b []byte) (version, commit string, ok bool) {
	m := stampRE.FindSubmatch(b)
	if m == nil {
		return "", "", false
	}
	return string(m[1]), string(m[2]), true
}

// Module is one Go module linked into the binary, as the toolchain recorded
// it: path, version and the go.sum checksum of its content.
type Module struct {
	Path    string  `json:"path"`
	Version string  `json:"version"`
	Sum     string  `json:"sum,omitempty"`
	Replace *Module `json:"replace,omitempty"`
}

// Info describes the running binary.
type Info struct {
	Version    string   `json:"version"`
	Commit     string   `json:"commit"`
	GoVersion  string   `json:"go_version"`
	Platform   string   `json:"platform"`
	MainModule string   `json:"main_module"`
	Settings   []string `json:"build_settings,omitempty"`
	Modules    []Module `json:"modules"`
	Executable string   `json:"executable"`
	SHA256     string   `json:"sha256"`
}

// Version is the stamped version, or "dev" for an unstamped build.
func Version() string {
	if v, _, ok := parseStamp([]byte(stamp)); ok {
		return v
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Commit is the stamped commit, else the VCS revision the toolchain recorded
// (with "-dirty" for a modified tree), else "unknown".
func Commit() string {
	if _, c, ok := parseStamp([]byte(stamp)); ok {
		return c
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			if dirty {
				rev += "-dirty"
			}
			return rev
		}
	}
	return "unknown"
}

var (
	exeOnce sync.Once
	exePath string
	exeSum  string
	exeErr  error
)

// Executable returns the path and SHA-256 (hex) of the running executable
// file. It is hashed once per process: the file a process started from does
// not change under it on any platform we run on (Windows locks it; on Unix a
// replacement is a new inode, and /proc/self/exe keeps the old one).
func Executable() (path, sha256hex string, err error) {
	exeOnce.Do(func() {
		exePath, exeErr = os.Executable()
		if exeErr != nil {
			exeErr = fmt.Errorf("locate the running executable: %w", exeErr)
			return
		}
		if p, err := filepath.EvalSymlinks(exePath); err == nil {
			exePath = p
		}
		exeSum, exeErr = hashFile(fileToHash(runtime.GOOS, exePath))
		if exeErr != nil {
			exeErr = fmt.Errorf("hash the running executable %s: %w", exePath, exeErr)
		}
	})
	return exePath, exeSum, exeErr
}

// fileToHash is the file that holds the running program on goos, given the
// resolved path it was started from. On Linux /proc/self/exe still opens
// that file even if the path was replaced since (when /proc is mounted: a
// chroot may lack it). Nowhere else: under Wine a Windows program sees the
// Unix /proc too, and there /proc/self/exe is the wineserver, not the .exe;
// macOS and Windows have no /proc at all.
func fileToHash(goos, started string) string {
	if goos == "linux" {
		if _, err := os.Stat("/proc/self/exe"); err == nil {
			return "/proc/self/exe"
		}
	}
	return started
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Read returns everything known about the running binary. The executable
// hash is the only part that can fail; Info is filled as far as possible
// either way.
func Read() (Info, error) {
	in := Info{
		Version:   Version(),
		Commit:    Commit(),
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		in.MainModule = bi.Main.Path
		for _, s := range bi.Settings {
			in.Settings = append(in.Settings, s.Key+"="+s.Value)
		}
		for _, d := range bi.Deps {
			in.Modules = append(in.Modules, module(d))
		}
	}
	var err error
	in.Executable, in.SHA256, err = Executable()
	return in, err
}

func module(d *debug.Module) Module {
	m := Module{Path: d.Path, Version: d.Version, Sum: d.Sum}
	if d.Replace != nil {
		r := module(d.Replace)
		m.Replace = &r
	}
	return m
}
