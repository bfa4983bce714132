package e2e

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// The token made by softhsm2-util, not by us, is listed with its label and serial.
func TestTokenListJSONShowsSoftHSMToken(t *testing.T) {
	env := softhsmStore(t)
	mustRun(t, env, "softhsm2-util", "--init-token", "--free", "--label", "E2E Root", "--so-pin", "11112222", "--pin", "33334444")
	show := mustRun(t, env, "softhsm2-util", "--show-slots")
	// softhsm2-util prints one block per slot; take the serial of ours.
	var serial string
	for _, block := range strings.Split(show, "\nSlot ") {
		if regexp.MustCompile(`Label:\s+E2E Root\s*\n`).MatchString(block + "\n") {
			if m := regexp.MustCompile(`Serial number:\s+(\S+)`).FindStringSubmatch(block); m != nil {
				serial = m[1]
			}
		}
	}
	if serial == "" {
		t.Fatalf("softhsm2-util does not show the token:\n%s", show)
	}

	out := mustRun(t, env, binary, "token", "list", "--json")
	var listed struct {
		Slots []struct {
			Token *struct {
				Label  string `json:"label"`
				Serial string `json:"serial"`
			} `json:"token"`
		} `json:"slots"`
	}
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	found := false
	for _, s := range listed.Slots {
		if s.Token != nil && s.Token.Label == "E2E Root" && s.Token.Serial == serial {
			found = true
		}
	}
	if !found {
		t.Fatalf("token list --json lacks label %q serial %q:\n%s", "E2E Root", serial, out)
	}
}
