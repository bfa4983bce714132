package ceremony

import (
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/ceremony/transcript"
)

// wineInterfaces is what net.Interfaces returns under Wine 10.
func wineInterfaces() ([]net.Interface, error) {
	return nil, errors.New("route ip+net: getadaptersaddresses: Invalid data")
}

// withInterfaces makes the air-gap check read list for the rest of the test.
func withInterfaces(t *testing.T, list func() ([]net.Interface, error)) {
	orig := listInterfaces
	listInterfaces = list
	t.Cleanup(func() { listInterfaces = orig })
}

// TestAirGapPreflight runs the first steps of a root ceremony (air_gap:
// block, as the shipped template says) against each answer the system can
// give about its network interfaces, and stops it at the clock step. A list
// that cannot be read neither passes nor stops the ceremony: the people in
// the room are asked to check by hand, and the transcript says who did; a
// refusal stops the ceremony there.
func TestAirGapPreflight(t *testing.T) {
	loopbackOnly := func() ([]net.Interface, error) {
		return []net.Interface{{Index: 1, Name: "lo", Flags: net.FlagUp | net.FlagLoopback}}, nil
	}
	connected := func() ([]net.Interface, error) {
		return []net.Interface{{Index: 1, Name: "lo", Flags: net.FlagUp | net.FlagLoopback}, {Index: 99, Name: "eth7", Flags: net.FlagUp}}, nil
	}
	tests := []struct {
		name    string
		list    func() ([]net.Interface, error)
		decline string
		// The air-gap entry: result, details and whether people confirmed it.
		ok        bool
		details   map[string]string
		confirmed bool
		log       []string // in the prompter's account of what it was shown and asked
		err       string   // how the run ends
	}{
		{name: "unreadable, confirmed by hand", list: wineInterfaces, decline: "clock",
			ok: true, confirmed: true,
			details: map[string]string{"mode": "block",
				"interfaces up": "unknown: list network interfaces: route ip+net: getadaptersaddresses: Invalid data",
				"checked by":    "people in the room, by hand (the system could not list its network interfaces)"},
			log: []string{"-- Network interfaces cannot be listed",
				"WARNING: This system cannot list its network interfaces (list network interfaces: route ip+net: getadaptersaddresses: Invalid data)",
				"confirmed by 2: " + manualAirGapCheck},
			err: "answers file declines step clock"},
		{name: "unreadable, refused", list: wineInterfaces, decline: "air-gap",
			ok:      false,
			details: map[string]string{"checked by": "people in the room, by hand (the system could not list its network interfaces)"},
			log:     []string{"-- Network interfaces cannot be listed", "declined by"},
			err:     "answers file declines step air-gap"},
		{name: "loopback only", list: loopbackOnly, decline: "clock",
			ok: true, confirmed: true,
			details: map[string]string{"interfaces up": "none besides loopback", "checked by": ""},
			log:     []string{"confirmed by 2: The laptop has no network connection."},
			err:     "answers file declines step clock"},
		{name: "connected, blocked", list: connected, decline: "clock",
			ok:      false,
			details: map[string]string{"interface up": "eth7", "checked by": ""},
			err:     "the laptop is not air-gapped: eth7 is up"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			withInterfaces(t, tc.list)
			w := newWorld(t, "Root 2026")
			out := filepath.Join(w.dir, "out")
			s := w.writeScript("root.yaml", "root-generation.yaml", "pkcs11:serial="+w.serial, out, "air_gap: warn", "air_gap: block")
			a := w.answers("x")
			a.Decline = []string{tc.decline}
			_, err := w.run(s, a, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("run: %v, want %q", err, tc.err)
			}
			rep, err := transcript.Verify(filepath.Join(out, "example-root-2026.transcript.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			var gap *transcript.Entry
			for i := range rep.Entries {
				if rep.Entries[i].Step == "air-gap" {
					gap = &rep.Entries[i]
				}
			}
			if gap == nil {
				t.Fatalf("no air-gap entry in the transcript")
			}
			if gap.OK() != tc.ok {
				t.Fatalf("air-gap entry: result %s (%s), want ok=%v", gap.Result, gap.Error, tc.ok)
			}
			for k, v := range tc.details {
				if got := gap.Detail(k); got != v {
					t.Errorf("detail %q = %q, want %q", k, got, v)
				}
			}
			if got := len(gap.Actors) > 0; got != tc.confirmed {
				t.Errorf("air-gap confirmed by %v, want confirmed=%v", gap.Actors, tc.confirmed)
			}
			for _, l := range tc.log {
				if !strings.Contains(w.log.String(), l) {
					t.Errorf("the prompter was not shown %q:\n%s", l, w.log.String())
				}
			}
		})
	}
}

// TestNetworkInterfacesUpUnreadable: the Home page's view of the same check
// reports an unreadable list as an error, never as "air-gapped".
func TestNetworkInterfacesUpUnreadable(t *testing.T) {
	withInterfaces(t, wineInterfaces)
	up, err := NetworkInterfacesUp()
	if err == nil || len(up) != 0 || !strings.Contains(err.Error(), "Invalid data") {
		t.Fatalf("NetworkInterfacesUp = %q, %v", up, err)
	}
}
