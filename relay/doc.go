// Package relay is turnwall's bundled TURN relay (RFC 8656, RFC 6062 TCP
// allocations, RFC 6156 IPv6), built on pion/turn/v5, and configured from the
// same compiled policy as the firewall rules: listeners, realm, relayed port
// range, TLS certificate, lab-only flag and the peers the relay may reach.
//
// Around the pion/turn engine it adds what a relay needs to be safe to run:
//
//   - a peer filter (package peerfilter) on CreatePermission, ChannelBind and
//     Connect: IANA special-purpose ranges are refused, IPv4-mapped and
//     NAT64 addresses are judged by the IPv4 address they carry, and only the
//     policy's peers are reachable;
//   - authentication by static users and TURN REST API credentials with
//     several shared secrets at once (package creds), checked in the relay's
//     realm, with failures counted by reason;
//   - allocation quotas per user and in total, a lifetime cap and a
//     bandwidth cap per allocation;
//   - structured logs (log/slog) that clients cannot flood, Prometheus
//     metrics, graceful shutdown, and one SO_REUSEPORT UDP socket per CPU.
//
// Beside it under relay/: the client side (turnclient, probe), the namespace
// kit (netns) and `turnwall verify` (verify, with verify/call for WebRTC
// calls), the one package here that uses the firewall backends. This
// package imports none of them.
//
// See docs/relay.md.
package relay
