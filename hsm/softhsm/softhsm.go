// Package softhsm makes SoftHSM2 Key Ceremony's built-in default token: it
// finds the library and keeps a private configuration and token directory
// under the user's config directory, so nobody writes a softhsm2.conf by hand.
// It also sets up the throwaway token of a rehearsal (SetupToken); tests get
// their own token stores from package softhsmtest.
package softhsm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/keyceremony/keyceremony/hsm"
)

// EnvConf is the variable SoftHSM2 reads its configuration path from.
const EnvConf = "SOFTHSM2_CONF"

// EnvModule lets the user choose another PKCS#11 module for the whole app.
const EnvModule = "KEYCEREMONY_MODULE"

// ErrNotInstalled means no libsofthsm2 was found.
var ErrNotInstalled = errors.New("SoftHSM2 is not installed (Debian/Ubuntu: apt-get install softhsm2; macOS: brew install softhsm)")

// ModulePath finds libsofthsm2.
func ModulePath() (string, error) {
	for _, c := range hsm.DiscoverModules() {
		if c.Name == "SoftHSM2" {
			return c.Path, nil
		}
	}
	return "", ErrNotInstalled
}

// DefaultDir is os.UserConfigDir()/keyceremony/softhsm.
func DefaultDir() (string, error) {
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the user config directory: %w", err)
	}
	return filepath.Join(base, "keyceremony", "softhsm"), nil
}

// WriteConfig creates dir (0700) with a tokens directory and a softhsm2.conf
// (0600) pointing at it, unless the configuration already exists. It returns
// the configuration's path.
func WriteConfig(dir string) (string, error) {
	tokens := filepath.Join(dir, "tokens")
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		return "", fmt.Errorf("create SoftHSM token directory: %w", err)
	}
	// MkdirAll leaves existing directories alone; tighten ours in case a umask widened them.
	for _, d := range []string{dir, tokens} {
		if err := os.Chmod(d, 0o700); err != nil {
			return "", fmt.Errorf("restrict %s: %w", d, err)
		}
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	content := strings.Join([]string{
		"# Written by Key Ceremony: the built-in SoftHSM2 token store.",
		"directories.tokendir = " + tokens,
		"objectstore.backend = file",
		"log.level = ERROR",
		"slots.removable = false",
		"",
	}, "\n")
	f, err := os.OpenFile(conf, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return conf, nil
	}
	if err != nil {
		return "", fmt.Errorf("write %s: %w", conf, err)
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return "", fmt.Errorf("write %s: %w", conf, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write %s: %w", conf, err)
	}
	return conf, nil
}

// Resolve picks the PKCS#11 module the app uses: the explicit path if given,
// else $KEYCEREMONY_MODULE, else the built-in SoftHSM2. For the built-in one
// it makes sure SoftHSM reads a configuration: the caller's $SOFTHSM2_CONF if
// set, otherwise the private one under DefaultDir (created on first use).
// It must run before the module is opened: SoftHSM reads the variable then.
func Resolve(explicit string) (modulePath string, err error) {
	if explicit != "" {
		return explicit, nil
	}
	if env := os.Getenv(EnvModule); env != "" {
		return env, nil
	}
	path, err := ModulePath()
	if err != nil {
		return "", err
	}
	if os.Getenv(EnvConf) == "" {
		dir, err := DefaultDir()
		if err != nil {
			return "", err
		}
		conf, err := WriteConfig(dir)
		if err != nil {
			return "", err
		}
		if err := os.Setenv(EnvConf, conf); err != nil {
			return "", err
		}
	}
	return path, nil
}

// IsSoftHSM reports whether modulePath is a SoftHSM2 library.
func IsSoftHSM(modulePath string) bool {
	return strings.Contains(filepath.Base(modulePath), "softhsm2")
}
