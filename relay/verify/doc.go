// Package lab is `turnwall verify`: it builds a policy's network in
// throwaway network namespaces, loads the compiled ruleset into the gateway
// and proves it with a flow matrix (matrix.go), the policy's relays and
// providers' STUN/TURN services (services.go, coturn.go) and real WebRTC
// calls (ice.go, package call).
//
// Topology. A gateway namespace has one veth per zone interface, named
// exactly as the policy names it, so the compiled ruleset applies unchanged.
// Every interface of a zone leads to its own bridge in the zone's switch
// namespace; the zone's hosts hang off the first interface's bridge, each in
// its own namespace with eth0, and every agents group gets one more host
// behind each further interface of its zone (Host.Via), which repeats the
// group's flows there.
//
// Addressing. Policy ranges are usually not on-link anywhere, so hosts carry
// their policy addresses as /32 (/128) on eth0, and each zone interface gets a
// small transfer network the gateway and its hosts share: 100.64.Z.0/24 and
// fd7e:7a11:0:Z::/64 (Z the zone's index for a first interface, numbers after
// every zone for further ones; other bases are tried when a policy range
// overlaps). The gateway is .1 / ::1, hosts .10, .11, ...; each host routes
// everything via the gateway with its policy address as the preferred
// source, and the gateway routes each host's policy addresses via that
// host's transfer address. Hosts behind the same interface reach each other
// directly. Packets are always sent from the policy addresses, never from
// the transfer addresses.
package verify
