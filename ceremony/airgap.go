package ceremony

import (
	"context"
	"fmt"
	"net"
	"strings"
)

// listInterfaces reads the system's network interfaces. It is a variable so
// that a test can stand in for a system that cannot list them (Wine answers
// "getadaptersaddresses: Invalid data"); everything else goes through the
// same code as on a real laptop.
var listInterfaces = net.Interfaces

// NetworkInterfacesUp lists the network interfaces other than loopback that
// are up, with their addresses, as the air-gap check sees them. An empty list
// means the machine is air-gapped as far as its interfaces tell; an error
// means nothing can be told, and a person has to look.
func NetworkInterfacesUp() ([]string, error) {
	ifaces, err := listInterfaces()
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	return upInterfaces(ifaces, func(i net.Interface) []string {
		as, _ := i.Addrs()
		var s []string
		for _, a := range as {
			s = append(s, a.String())
		}
		return s
	}), nil
}

// upInterfaces lists interfaces other than loopback that are up, with their
// addresses: what an air-gapped laptop must not have.
func upInterfaces(ifaces []net.Interface, addrs func(net.Interface) []string) []string {
	var out []string
	for _, i := range ifaces {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		desc := i.Name
		if a := addrs(i); len(a) > 0 {
			desc += " (" + strings.Join(a, ", ") + ")"
		}
		out = append(out, desc)
	}
	return out
}

// manualAirGapCheck is what people confirm when the system cannot list its
// network interfaces.
const manualAirGapCheck = "We checked by hand: no network cable is plugged in, Wi-Fi and Bluetooth are off (or absent), and no mobile modem or USB network adapter is attached."

func runAirGap(ctx context.Context, r *stepRun) error {
	mode := r.e.s.Preflight.AirGap
	if r.e.opt.Rehearse && mode == "block" {
		mode = "warn"
		r.detail("rehearsal", "the air-gap check only warns in a rehearsal")
	}
	r.detail("mode", mode)
	up, err := NetworkInterfacesUp()
	if err != nil {
		// Neither pass nor fail on a question the software cannot answer:
		// the people in the room look, and the transcript says they did.
		r.detail("interfaces up", "unknown: "+err.Error())
		r.detail("checked by", "people in the room, by hand (the system could not list its network interfaces)")
		if err := r.e.p.Inform(ctx, Notice{Step: r.st.id, Title: "Network interfaces cannot be listed",
			Warning: "This system cannot list its network interfaces (" + err.Error() + "), so the software cannot tell whether the laptop is air-gapped. Check it by hand before confirming."}); err != nil {
			return err
		}
		return r.confirmStep(ctx, manualAirGapCheck, []Fact{{Label: "Network interfaces", Value: "cannot be listed: " + err.Error()}})
	}
	if len(up) == 0 {
		r.detail("interfaces up", "none besides loopback")
		return r.confirmStep(ctx, "The laptop has no network connection.", []Fact{{Label: "Network interfaces up", Value: "none besides loopback"}})
	}
	for _, u := range up {
		r.detail("interface up", u)
	}
	if mode == "block" {
		return fmt.Errorf("the laptop is not air-gapped: %s is up; disconnect or disable it (or remove the network card) and resume", strings.Join(up, "; "))
	}
	if err := r.e.p.Inform(ctx, Notice{Step: r.st.id, Title: "Network interfaces are up", Warning: "The laptop is connected: " + strings.Join(up, "; ")}); err != nil {
		return err
	}
	return r.confirmStep(ctx, "We continue although network interfaces are up (the script allows it).", []Fact{{Label: "Network interfaces up", Value: strings.Join(up, "; ")}})
}
