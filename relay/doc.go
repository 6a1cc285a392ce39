// Package relay will hold turnwall's bundled TURN relay (built on pion/turn/v5)
// and its probe, used to prove compiled rule sets end to end in network
// namespaces. The policy language already describes relays (listeners, realm,
// relay port range, peers, TLS); the IR's ir.Relay is what this package will run.
package relay
