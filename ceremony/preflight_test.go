package ceremony

import (
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/softhsm/softhsmtest"
)

func TestUpInterfaces(t *testing.T) {
	ifaces := []net.Interface{
		{Name: "lo", Flags: net.FlagUp | net.FlagLoopback},
		{Name: "eth0", Flags: net.FlagUp | net.FlagBroadcast},
		{Name: "wlan0", Flags: net.FlagBroadcast}, // down
		{Name: "usb0", Flags: net.FlagUp},
	}
	addrs := map[string][]string{"eth0": {"192.0.2.2/24"}}
	got := upInterfaces(ifaces, func(i net.Interface) []string { return addrs[i.Name] })
	if strings.Join(got, "|") != "eth0 (192.0.2.2/24)|usb0" {
		t.Fatalf("up interfaces = %q", got)
	}
	if got := upInterfaces(ifaces[:1], nil); len(got) != 0 {
		t.Fatalf("loopback only: %q", got)
	}
}

// TestPreflightStops: a preflight check that fails stops the ceremony before
// the quorum or the token is touched, with a message saying what to do, and
// the failure is recorded.
func TestPreflightStops(t *testing.T) {
	tests := []struct {
		name, step, want string
		uri              func(w *world) string
		edits            []string
	}{
		{"wrong serial", "token", "no such token",
			func(w *world) string { return "pkcs11:serial=0000000000000000" }, nil},
		{"not enough space", "free-space", "the script requires 100000000 MB: use a larger medium",
			func(w *world) string { return "pkcs11:serial=" + w.serial }, []string{"min_free_mb: 16", "min_free_mb: 100000000"}},
		{"initialize on an initialised token", "token", "is already initialised, but the script says enrol: initialize",
			func(w *world) string { return "pkcs11:serial=" + w.serial }, []string{"enrol: change-pin", "enrol: initialize\n  label: X"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, "Root 2026")
			out := filepath.Join(w.dir, "out")
			s := w.writeScript("root.yaml", "root-generation.yaml", tc.uri(w), out, tc.edits...)
			_, err := w.run(s, w.answers("x"), Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			rep, verr := transcript.Verify(filepath.Join(out, "example-root-2026.transcript.jsonl"))
			if verr != nil {
				t.Fatal(verr)
			}
			last := rep.Last()
			if last.Step != tc.step || last.OK() || !strings.Contains(last.Error, tc.want) {
				t.Fatalf("last entry = %s %s %q", last.Step, last.Result, last.Error)
			}
		})
	}
}

// TestSameLabelTokens: two SoftHSM tokens labelled alike (the script pins
// the serial, so its URI is not ambiguous: the refusal of an ambiguous URI
// is TestTPMCeremonies', where every token has the same serial). The
// ceremony finds its token by its whole identity after every step although
// the twin is present, and leaves the twin alone.
func TestSameLabelTokens(t *testing.T) {
	w := newWorld(t, "Root 2026")
	twinUser := []byte("twin-user-pin")
	softhsmtest.InitToken(t, w.module, "Root 2026", []byte("twin-so-pin"), twinUser)
	w.uri = "pkcs11:token=Root%202026;serial=" + w.serial
	f := newRootFixtureIn(t, w)
	opensslVerify(t, f.cert, f.cert)

	m, err := hsm.Open(w.module)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.FindToken(hsm.URI{Token: "Root 2026"}); !errors.Is(err, hsm.ErrAmbiguous) {
		t.Fatalf("the twin is gone or relabelled: %v", err)
	}
	slots, _ := m.Slots()
	for _, sl := range slots {
		if sl.Token == nil || sl.Token.Label != "Root 2026" || sl.Token.Serial == w.serial {
			continue
		}
		twin, err := m.OpenSlot(sl)
		if err != nil {
			t.Fatal(err)
		}
		defer twin.Close()
		if err := twin.Login(twinUser); err != nil {
			t.Fatalf("the twin's PIN changed: %v", err)
		}
		if keys, _ := twin.FindKeys(hsm.Filter{}); len(keys) != 0 {
			t.Errorf("the ceremony put keys on the twin: %v", keys)
		}
	}
}
