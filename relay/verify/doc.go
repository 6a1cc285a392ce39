// Package verify is `turnwall verify`: Run builds a policy's network in
// throwaway network namespaces, loads the compiled ruleset into the gateway
// with the code `turnwall apply` uses, proves it with real traffic and
// returns a Report (report.go renders it as text or JSON). Files by job:
//
//   - plan.go: topology planning, pure (from the IR to interfaces, transfer
//     networks, hosts and their addresses; no privileges needed);
//   - build.go: building a plan in namespaces, applying the ruleset,
//     source NAT;
//   - matrix.go: the flow matrix (real UDP and TCP per allowed flow, and
//     the flows that must be dropped);
//   - services.go, relays.go, coturn.go, stunservers.go, stun.go, labca.go:
//     the services of a call (the policy's relays, bundled or coturn; the
//     providers' TURN and STUN stand-ins; the lab's CA);
//   - checks.go: every ICE server the agents are given, tried from every
//     agents host;
//   - calls.go: WebRTC calls (package call) and what their failures mean
//     for agents; redirect.go: the 300 Try Alternate a call's TURN server
//     answers, followed once before pion gets the servers;
//   - pool.go: a relay run as two nodes sharing a store (--relay-pool 2);
//   - run.go, report.go: the orchestration and its report;
//   - cleanup.go: lab state that killed verifies left behind.
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
// overlaps). When every base overlaps some range, a base inside only wide
// ranges (shorter than /8 or /16, a deny to 0.0.0.0/0 say) that holds no
// host's address is taken; failing that, planning names the blocks in the
// way. The gateway is .1 / ::1, hosts .10, .11, ...; each host routes
// everything via the gateway with its policy address as the preferred
// source, and the gateway routes each host's policy addresses via that
// host's transfer address. Hosts behind the same interface reach each other
// directly. Packets are always sent from the policy addresses, never from
// the transfer addresses.
package verify
