package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/hsm/softhsm/softhsmtest"
)

// run executes one command line in-process with the given standard input.
func run(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb}
	err = Run(context.Background(), args, env)
	return out.String(), errb.String(), err
}

func writePIN(t *testing.T, pin string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(p, []byte(pin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTokenInitListAndKeys(t *testing.T) {
	mod := softhsmtest.NewStore(t)
	so, user := writePIN(t, "so-secret-1"), writePIN(t, "user-secret-1")

	out, _, err := run(t, "", "token", "init", "--module", mod, "--label", "CLI Token", "--so-pin-file", so, "--pin-file", user)
	if err != nil {
		t.Fatalf("token init: %v", err)
	}
	if !strings.Contains(out, `Initialised token "CLI Token"`) {
		t.Errorf("token init output: %q", out)
	}

	out, _, err = run(t, "", "token", "list", "--module", mod, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var listed tokenListOutput
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("token list --json is not JSON: %v\n%s", err, out)
	}
	var serial string
	for _, s := range listed.Slots {
		if s.Token != nil && s.Token.Label == "CLI Token" {
			serial = s.Token.Serial
			if !s.Token.UserPINInitialized {
				t.Error("user PIN not initialised by token init")
			}
		}
	}
	if serial == "" {
		t.Fatalf("initialised token not listed: %s", out)
	}

	uri := "pkcs11:token=CLI%20Token"
	// The PIN may also come on standard input (scripts); it never appears in output.
	out, errOut, err := run(t, "user-secret-1\n", "key", "generate", "--module", mod, "--token", uri, "--type", "ec-p256", "--label", "signing-1", "--json")
	if err != nil {
		t.Fatalf("key generate: %v", err)
	}
	if strings.Contains(out+errOut, "user-secret-1") {
		t.Fatal("the PIN was echoed")
	}
	var keys []keyJSON
	if err := json.Unmarshal([]byte(out), &keys); err != nil || len(keys) != 1 {
		t.Fatalf("key generate --json: %v %s", err, out)
	}
	if keys[0].Type != "ec-p256" || !keys[0].Sensitive || keys[0].Extractable || len(keys[0].Fingerprint) != 64 {
		t.Errorf("generated key %+v", keys[0])
	}

	if _, _, err := run(t, "", "key", "generate", "--module", mod, "--token", uri, "--type", "aes-256", "--label", "signing-1", "--pin-file", user); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("duplicate label: err = %v", err)
	}

	out, _, err = run(t, "", "key", "list", "--module", mod, "--token", uri, "--pin-file", user)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "signing-1") || !strings.Contains(out, keys[0].Fingerprint) {
		t.Errorf("key list does not show the key:\n%s", out)
	}

	if _, _, err := run(t, "", "key", "list", "--module", mod, "--token", uri, "--pin-file", writePIN(t, "wrong")); err == nil || !strings.Contains(err.Error(), "PIN incorrect") {
		t.Errorf("wrong PIN: err = %v", err)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"nosuch"},
		{"token"},
		{"token", "frobnicate"},
		{"token", "init"},
		{"key", "generate", "--token", "pkcs11:token=x"},
		{"key", "generate", "--token", "token=x", "--label", "l"},
		{"key", "generate", "--token", "pkcs11:token=x", "--label", "l", "--type", "rsa-1024"},
	} {
		_, _, err := run(t, "", args...)
		if !errors.Is(err, ErrUsage) {
			t.Errorf("%v: err = %v, want a usage error", args, err)
		}
	}
	if code := Main([]string{"nosuch"}, &Env{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}); code != 2 {
		t.Errorf("exit code for a usage error = %d, want 2", code)
	}
}

func TestMissingModuleIsClear(t *testing.T) {
	_, _, err := run(t, "", "token", "list", "--module", "/nonexistent/lib.so")
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("err = %v", err)
	}
}

func TestReorderKnowsBoolFlags(t *testing.T) {
	fs := newFlags(&Env{Stderr: &bytes.Buffer{}}, "x")
	fs.String("out", "", "")
	fs.Bool("rehearse", false, "")
	got := strings.Join(reorder(fs, []string{"script.yaml", "--rehearse", "extra", "--out", "dir", "--out=d2"}), " ")
	if got != "--rehearse --out dir --out=d2 script.yaml extra" {
		t.Fatalf("reorder = %q", got)
	}
}
