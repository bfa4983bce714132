package hsm

import (
	"os"
	"path/filepath"
)

// ModuleCandidate is a PKCS#11 library found at a well-known path.
type ModuleCandidate struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

// DiscoverModules returns the PKCS#11 libraries present on this machine, in
// the order above and without duplicates (symlinks resolved).
func DiscoverModules() []ModuleCandidate {
	var out []ModuleCandidate
	seen := map[string]bool{}
	for _, c := range knownModules {
		// Windows paths name their roots by environment variable
		// (${ProgramFiles}, ${SystemRoot}): installs are not always on C:.
		matches, _ := filepath.Glob(os.ExpandEnv(c.Path))
		for _, p := range matches {
			real, err := filepath.EvalSymlinks(p)
			if err != nil {
				continue
			}
			if st, err := os.Stat(real); err != nil || st.IsDir() || seen[real] {
				continue
			}
			seen[real] = true
			out = append(out, ModuleCandidate{Name: c.Name, Path: p})
		}
	}
	return out
}
