package ir

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// writePrefixes writes one "  PREFIX" line per prefix, appended rather than
// formatted: a big set's lines are most of the output.
func writePrefixes(bw *bufio.Writer, ps []netip.Prefix) {
	var line []byte
	for _, pf := range ps {
		line = append(line[:0], "  "...)
		if pf.IsValid() {
			line = pf.AppendTo(line)
		} else {
			line = append(line, pf.String()...) // as %s writes it
		}
		line = append(line, '\n')
		bw.Write(line)
	}
}

// WriteText renders the program in turnwall's readable IR form. The output is
// deterministic; every user-supplied string is quoted, so it cannot start a line.
func (p *Program) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# turnwall IR v%d\n", Version)
	pol := p.Policy
	fmt.Fprintf(bw, "policy %s default=%s log-default=%t  # %s\n", strconv.Quote(pol.Name), pol.DefaultAction, pol.LogDefault, pol.Source)
	if pol.Description != "" {
		fmt.Fprintf(bw, "  description %s\n", strconv.Quote(pol.Description))
	}
	bw.WriteString("\n")
	for _, z := range p.Zones {
		fmt.Fprintf(bw, "zone %s interfaces=%s  # %s\n", z.Name, quoteList(z.Interfaces), z.Source)
	}
	for i := range p.AddressSets {
		s := &p.AddressSets[i]
		fmt.Fprintf(bw, "\naddresses %s  # %s\n", s.Name, s.Origin)
		writePrefixes(bw, s.V4)
		writePrefixes(bw, s.V6)
		for _, f := range s.FQDNs {
			fmt.Fprintf(bw, "  fqdn %s\n", strconv.Quote(f))
		}
		if s.Empty() {
			bw.WriteString("  # empty\n")
		}
	}
	for _, s := range p.Services {
		fmt.Fprintf(bw, "\nservice %s\n", s.Name)
		for _, e := range s.Entries {
			fmt.Fprintf(bw, "  %s\n", e)
		}
	}
	bw.WriteString("\n")
	for _, r := range p.Rules {
		fmt.Fprintf(bw, "rule %s %s %s: %s -> %s, %s -> %s, service %s", r.Name, r.Purpose, r.Action,
			zoneName(r.FromZone), zoneName(r.ToZone), r.Src, r.Dst, r.Service)
		if r.Log {
			bw.WriteString(", log")
		}
		fmt.Fprintf(bw, "  # %s\n", r.Origin)
		if r.Comment != "" {
			fmt.Fprintf(bw, "  comment %s\n", strconv.Quote(r.Comment))
		}
	}
	for _, r := range p.Relays {
		fmt.Fprintf(bw, "\nrelay %s zone=%s addresses=%s realm=%s relay-ports=%s  # %s\n",
			r.Name, r.Zone, r.Addresses, strconv.Quote(r.Realm), r.RelayPorts, r.Origin.Source)
		if r.FQDN != "" {
			fmt.Fprintf(bw, "  fqdn %s\n", strconv.Quote(r.FQDN))
		}
		fmt.Fprintf(bw, "  listen udp=%s tcp=%s tls=%s\n", portList(r.Listen.UDP), portList(r.Listen.TCP), portList(r.Listen.TLS))
		if r.TLS.Cert != "" {
			fmt.Fprintf(bw, "  tls cert=%s key=%s self-signed=%t\n", strconv.Quote(r.TLS.Cert), strconv.Quote(r.TLS.Key), r.TLS.SelfSigned)
		}
		fmt.Fprintf(bw, "  clients=%s peers=%s tcp-relay=%t lab-only=%t\n", quoteList(r.Clients), orNone(r.Peers), r.TCPRelay, r.LabOnly)
	}
	for _, pl := range p.Platforms {
		fmt.Fprintf(bw, "\nplatform %s use-turn=%t preferred-transport=%s ice-check-priority=%d tcp-fallback=%t  # %s\n",
			strconv.Quote(pl.Name), pl.UseTURN, pl.PreferredTransport, pl.ICECheckPriority, pl.TCPFallback, pl.Origin.Source)
		if pl.TURNServerOverride != "" {
			fmt.Fprintf(bw, "  turn-server-override %s\n", strconv.Quote(pl.TURNServerOverride))
		}
		if pl.TenantRealm != "" {
			fmt.Fprintf(bw, "  tenant-realm %s\n", strconv.Quote(pl.TenantRealm))
		}
	}
	for _, d := range p.Devices {
		fmt.Fprintf(bw, "\ndevice %s  # %s\n", strconv.Quote(d.Target), d.Origin.Source)
		keys := make([]string, 0, len(d.Settings))
		for k := range d.Settings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(bw, "  %s %s\n", k, strconv.Quote(d.Settings[k]))
		}
	}
	p.writeQoSText(bw)
	return bw.Flush()
}

// WriteJSON renders the program as indented JSON with a schema version.
func (p *Program) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Version int `json:"turnwall_ir"`
		*Program
	}{Version, p})
}

// String renders "udp 3478" or "udp sport 49152-65535 dport 1024-65535".
func (e ServiceEntry) String() string {
	var b strings.Builder
	b.WriteString(string(e.Proto))
	if len(e.SrcPorts) > 0 {
		b.WriteString(" sport ")
		b.WriteString(PortRanges(e.SrcPorts))
	}
	if len(e.SrcPorts) > 0 {
		b.WriteString(" dport")
	}
	if len(e.Ports) > 0 {
		b.WriteString(" ")
		b.WriteString(PortRanges(e.Ports))
	} else {
		b.WriteString(" any")
	}
	return b.String()
}

// PortRanges renders a list of ranges comma-separated.
func PortRanges(rs []PortRange) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

func portList(ports []uint16) string {
	if len(ports) == 0 {
		return "-"
	}
	parts := make([]string, len(ports))
	for i, p := range ports {
		parts[i] = strconv.Itoa(int(p))
	}
	return strings.Join(parts, ",")
}

func quoteList(ss []string) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func zoneName(z string) string {
	if z == "" {
		return "any"
	}
	return z
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
