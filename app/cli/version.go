package cli

import (
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/keyceremony/keyceremony/ceremony/buildinfo"
	"github.com/keyceremony/keyceremony/ceremony/words"
)

// versionCommand prints what the binary is: the hash a witness compares with
// the release's SHA256SUMS, and the modules an auditor compares with the SBOM.
func versionCommand(env *Env, args []string) error {
	fs := newFlags(env, "version")
	asJSON := fs.Bool("json", false, "print JSON")
	sbom := fs.Bool("sbom", false, "print the CycloneDX SBOM of this binary, or of the Go binary named (any platform's)")
	if err := parseFlags(fs, reorder(fs, args)); err != nil {
		return err
	}
	if *sbom {
		if fs.NArg() > 1 {
			return usagef("keyceremony version --sbom [BINARY]")
		}
		target := fs.Arg(0)
		if target == "" {
			exe, _, err := buildinfo.Executable()
			if err != nil {
				return err
			}
			target = exe
		}
		return buildinfo.WriteSBOM(env.Stdout, target)
	}
	if fs.NArg() != 0 {
		return usagef("keyceremony version [--json] | version --sbom [BINARY]")
	}
	in, err := buildinfo.Read()
	if *asJSON {
		if err != nil {
			return err
		}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(in)
	}
	fmt.Fprintf(env.Stdout, "keyceremony %s\ncommit     %s\ngo         %s %s\n", in.Version, in.Commit, in.GoVersion, in.Platform)
	if err != nil {
		return err
	}
	sum, _ := hex.DecodeString(in.SHA256)
	fmt.Fprintf(env.Stdout, "executable %s\nsha256     %s\n           %s\n", in.Executable, in.SHA256, words.String(sum))
	fmt.Fprintf(env.Stdout, "modules    %d (keyceremony version --json lists them)\n", len(in.Modules))
	return nil
}
