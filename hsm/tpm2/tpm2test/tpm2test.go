// Package tpm2test gives a test its own software TPM (swtpm) and the
// tpm2-pkcs11 module over it: the second PKCS#11 implementation the tests
// run against, which differs from SoftHSM the way real tokens do (every
// slot reports the same serial, RSA stops at 3072 bits, no wrap or unwrap
// mechanism at all, C_GenerateKey not implemented, a non-DER P-521 point).
//
// It imports the testing package, so only tests may import it: the release
// binary must not link testing (test/e2e checks that it does not).
package tpm2test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/tpm2"
)

// TPM is one running swtpm with a tpm2-pkcs11 store of its own.
type TPM struct {
	// Module is the tpm2-pkcs11 library path.
	Module string
	// Env is the environment that selects this TPM and store, for child
	// processes (the keyceremony binary, pkcs11-tool).
	Env []string
	dir string
}

// Start starts a software TPM for the test, with the TPM2 access broker and
// resource manager (tpm2-abrmd) in front of it, as on a laptop, where the
// kernel's /dev/tpmrm0 manages the TPM's few object slots (without one,
// tpm2-pkcs11 fails after the first key with "out of memory for object
// contexts"). tpm2-abrmd talks over D-Bus, so a private session bus runs
// too. tpm2-pkcs11 is pointed at it through t.Setenv (so the test cannot run
// in parallel with others that use the module). Everything listens on Unix
// sockets in a directory of its own, so tests never compete for ports; the
// three processes are stopped, and reaped, when the test ends.
func Start(t testing.TB) *TPM {
	t.Helper()
	mod, err := tpm2.ModulePath()
	if err != nil {
		t.Fatalf("tpm2-pkcs11 is required for this test (make test installs libtpm2-pkcs11-1): %v", err)
	}
	// A short directory: a Unix socket path is limited to 107 bytes, and
	// t.TempDir() names can be longer.
	dir, err := os.MkdirTemp("", "kc-swtpm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"state", "store"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(dir, "tpm.sock")
	// The swtpm TCTI finds the control channel at the server path + ".ctrl".
	startDaemon(t, "swtpm", []string{"socket", "--tpm2",
		"--tpmstate", "dir=" + filepath.Join(dir, "state"),
		"--server", "type=unixio,path=" + sock,
		"--ctrl", "type=unixio,path=" + sock + ".ctrl",
		"--flags", "not-need-init,startup-clear"}, nil,
		func() error { return dialAll(sock, sock+".ctrl") })
	bus := "unix:path=" + filepath.Join(dir, "bus")
	startDaemon(t, "dbus-daemon", []string{"--session", "--nofork", "--address=" + bus}, nil,
		func() error { return dialAll(filepath.Join(dir, "bus")) })
	busEnv := []string{"DBUS_SESSION_BUS_ADDRESS=" + bus}
	args := []string{"--session", "--dbus-name=" + busName, "--tcti=swtpm:path=" + sock, "--flush-all"}
	if os.Geteuid() == 0 {
		args = append(args, "--allow-root")
	}
	startDaemon(t, "tpm2-abrmd", args, busEnv, func() error { return nameOwned(busEnv, busName) })

	tpm := &TPM{Module: mod, dir: dir}
	vars := [][2]string{
		{"DBUS_SESSION_BUS_ADDRESS", bus},
		{tpm2.EnvTCTI, "tabrmd:bus_type=session,bus_name=" + busName},
		{tpm2.EnvStore, filepath.Join(dir, "store")},
		// The TSS and the module log to stderr by default.
		{"TSS2_LOG", "all+NONE"},
		{"TPM2_PKCS11_LOG_LEVEL", "0"},
	}
	tpm.Env = os.Environ()
	for _, kv := range vars {
		t.Setenv(kv[0], kv[1])
		tpm.Env = append(tpm.Env, kv[0]+"="+kv[1])
	}
	return tpm
}

// busName is the D-Bus name tpm2-abrmd takes on the test's private bus.
const busName = "com.intel.tss2.Tabrmd"

// startDaemon runs name in the foreground as the test's child, in a process
// group of its own, until ready reports nil; the test's cleanup stops it
// (SIGTERM, then SIGKILL after 10 s) and waits for it.
func startDaemon(t testing.TB, name string, args, env []string, ready func() error) {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is required for this test (make test installs it): %v", name, err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		stop(cmd, false)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			stop(cmd, true)
			<-exited
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			t.Fatalf("%s exited at start: %v\n%s", name, err, logs.String())
		default:
		}
		err := ready()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 30 s: %v\n%s", name, err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dialAll succeeds once every Unix socket accepts a connection (daemons
// create the socket file before they listen).
func dialAll(socks ...string) error {
	for _, p := range socks {
		c, err := net.Dial("unix", p)
		if err != nil {
			return err
		}
		c.Close()
	}
	return nil
}

// nameOwned succeeds once a client owns name on the session bus env names.
func nameOwned(env []string, name string) error {
	cmd := exec.Command("dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
		"/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", "string:"+name)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("dbus-send: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "boolean true") {
		return errors.New(name + " not on the bus yet")
	}
	return nil
}

// InitToken initialises the first blank slot with label and the two PINs
// (C_InitToken, then C_InitPIN as the security officer) and returns the slot
// it used. tpm2-pkcs11 then offers a new blank slot.
func (p *TPM) InitToken(t testing.TB, label string, soPIN, userPIN []byte) uint {
	t.Helper()
	m, err := hsm.Open(p.Module)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	slot := BlankSlot(t, m)
	tok, err := m.InitTokenWithPINs(slot, label, soPIN, userPIN)
	if err != nil {
		t.Fatalf("initialise TPM token %q in slot %d: %v", label, slot, err)
	}
	tok.Close()
	return slot
}

// BlankSlot is the ID of the first slot holding an uninitialised token.
func BlankSlot(t testing.TB, m *hsm.Module) uint {
	t.Helper()
	slots, err := m.Slots()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		if s.Token != nil && !s.Token.Initialized {
			return s.ID
		}
	}
	t.Fatalf("no blank slot on the TPM: %+v", slots)
	return 0
}

// LoggedIn gives the test a TPM of its own with one token labelled label,
// open and logged in as the user; module and token close when the test ends.
func LoggedIn(t testing.TB, label string) (*TPM, *hsm.Token) {
	t.Helper()
	p := Start(t)
	user := []byte("user-pin-" + label)
	slot := p.InitToken(t, label, []byte("so-pin-"+label), user)
	m, err := hsm.Open(p.Module)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	tok, err := m.OpenToken(hsm.URI{SlotID: &slot})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tok.Close() })
	if err := tok.Login(user); err != nil {
		t.Fatal(err)
	}
	return p, tok
}

// PKCS11Tool runs OpenSC's pkcs11-tool against this TPM's module and returns
// its combined output and error.
func (p *TPM) PKCS11Tool(args ...string) (string, error) {
	cmd := exec.Command("pkcs11-tool", append([]string{"--module", p.Module}, args...)...)
	cmd.Env = p.Env
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
