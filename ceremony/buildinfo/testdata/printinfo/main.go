// Command printinfo prints buildinfo.Read as JSON; TestStampedBuild builds it.
package main

import (
	"encoding/json"
	"os"

	"github.com/keyceremony/keyceremony/ceremony/buildinfo"

	// Linked only so the module list has a third-party module to check.
	_ "gopkg.in/yaml.v3"
)

func main() {
	in, err := buildinfo.Read()
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(in)
}
