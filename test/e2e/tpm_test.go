package e2e

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/tpm2/tpm2test"
)

// The real binary against the second PKCS#11 implementation, tpm2-pkcs11
// over a software TPM: token list shows two tokens with one serial; key
// generate makes every type the TPM supports and refuses every other one
// naming what the token lacks, leaving nothing behind; key list lists them;
// token capabilities says what the token can do with the app.
func TestTPMTokenCommands(t *testing.T) {
	tpm := tpm2test.Start(t)
	tpm.InitToken(t, "E2E TPM", []byte("so-pin-e2e"), []byte("user-pin-e2e"))
	tpm.InitToken(t, "E2E TPM 2", []byte("so-pin-e2e2"), []byte("user-pin-e2e2"))
	home := t.TempDir()
	env := append(append([]string{}, tpm.Env...), "LANG=C.UTF-8", "LANGUAGE=en", "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, "config"))
	pinFile := filepath.Join(home, "pin")
	if err := os.WriteFile(pinFile, []byte("user-pin-e2e\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	out := mustRun(t, env, binary, "token", "list", "--module", tpm.Module, "--json")
	var listed struct {
		Slots []hsm.Slot `json:"slots"`
	}
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	serials := map[string][]string{}
	for _, s := range listed.Slots {
		if s.Token != nil && s.Token.Initialized {
			serials[s.Token.Serial] = append(serials[s.Token.Serial], s.Token.Label)
		}
	}
	if len(serials["0000000000000000"]) != 2 {
		t.Fatalf("token list does not show both TPM tokens with the shared serial:\n%s", out)
	}

	uri := "pkcs11:token=E2E%20TPM;serial=0000000000000000"
	refused := map[string]string{
		"rsa-4096": "takes keys of 1024 to 3072 bits, not 4096", "ed25519": "CKM_EC_EDWARDS_KEY_PAIR_GEN is not among",
		"ec-p521": "cannot sign with the key", "aes-128": "C_GenerateKey is not implemented", "aes-256": "C_GenerateKey is not implemented",
		"hmac-sha224": "CKM_GENERIC_SECRET_KEY_GEN is not among", "hmac-sha256": "CKM_GENERIC_SECRET_KEY_GEN is not among",
		"hmac-sha384": "CKM_GENERIC_SECRET_KEY_GEN is not among", "hmac-sha512": "CKM_GENERIC_SECRET_KEY_GEN is not among",
	}
	var made []string
	for _, typ := range hsm.KeyTypes() {
		args := []string{"key", "generate", "--module", tpm.Module, "--token", uri, "--type", typ, "--label", "e2e-" + typ, "--pin-file", pinFile}
		if want, ok := refused[typ]; ok {
			cmd := exec.Command(binary, args...)
			cmd.Env = env
			b, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(b), want) {
				t.Errorf("key generate --type %s: %v, want exit 1 naming %q:\n%s", typ, err, want, b)
			}
			continue
		}
		mustRun(t, env, binary, args...)
		made = append(made, "e2e-"+typ)
	}
	out = mustRun(t, env, binary, "key", "list", "--module", tpm.Module, "--token", uri, "--pin-file", pinFile, "--json")
	var keys []struct {
		Label   string   `json:"label"`
		Uses    []string `json:"uses"`
		Problem string   `json:"problem"`
	}
	if err := json.Unmarshal([]byte(out), &keys); err != nil {
		t.Fatalf("key list --json: %v\n%s", err, out)
	}
	var labels []string
	for _, k := range keys {
		labels = append(labels, k.Label)
		if k.Problem != "" {
			t.Errorf("key %s unreadable: %s", k.Label, k.Problem)
		}
	}
	sort.Strings(labels)
	sort.Strings(made)
	if strings.Join(labels, ",") != strings.Join(made, ",") {
		t.Errorf("key list shows %v, generated %v (and nothing of the refused types)", labels, made)
	}

	out = mustRun(t, env, binary, "token", "capabilities", "--module", tpm.Module, "--token", uri)
	for _, want := range []string{"TPM2.0 Cryptoki", "ec-p256, ec-p384, rsa-2048, rsa-3072", "none: the module does not implement C_WrapKey"} {
		if !strings.Contains(out, want) {
			t.Errorf("token capabilities lacks %q:\n%s", want, out)
		}
	}
}
