package e2e

import (
	"encoding/json"
	"testing"
)

// The token made by softhsm2-util, not by us, is listed with its label and serial.
func TestTokenListJSONShowsSoftHSMToken(t *testing.T) {
	env := softhsmStore(t)
	serial := tokenSerial(t, env, "E2E Root", "11112222", "33334444")

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
