package ceremony

import (
	"fmt"
	"net"
)

// NetworkInterfacesUp lists the network interfaces other than loopback that
// are up, with their addresses, as the air-gap check sees them. An empty list
// means the machine is air-gapped as far as its interfaces tell.
func NetworkInterfacesUp() ([]string, error) {
	ifaces, err := net.Interfaces()
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
