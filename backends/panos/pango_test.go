package panos

import (
	"encoding/xml"
	"fmt"
	"io"
	"log"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/PaloAltoNetworks/pango"
	"github.com/PaloAltoNetworks/pango/objs/addr"
	"github.com/PaloAltoNetworks/pango/objs/addrgrp"
	"github.com/PaloAltoNetworks/pango/objs/edl"
	"github.com/PaloAltoNetworks/pango/objs/srvc"
	"github.com/PaloAltoNetworks/pango/objs/srvcgrp"
	pdecryption "github.com/PaloAltoNetworks/pango/poli/decryption"
	"github.com/PaloAltoNetworks/pango/poli/security"
	"github.com/PaloAltoNetworks/pango/util"
	"github.com/PaloAltoNetworks/pango/version"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/backendtest"
)

// offline is a pango client that answers configuration reads from a
// loaded document instead of a firewall: pango's own namespaces (their
// xpaths and their versioned XML schema structs) then parse turnwall's XML,
// as they would parse the same configuration read from a PAN-OS 10.1 box.
// pango v0.10.2 reads an offline config tree itself only for some
// namespaces (AllFromPanosConfig, not for addresses, groups or services);
// Show answered from the tree serves every namespace the same way.
type offline struct {
	*pango.Client
}

func (o offline) Show(path, _, _ interface{}) ([]byte, error) {
	p, ok := path.([]string)
	if !ok {
		return nil, fmt.Errorf("unexpected path %T", path)
	}
	node := util.FindXmlNodeInTree(p, o.ConfigTree())
	if node == nil {
		return nil, fmt.Errorf("No such node")
	}
	// The node's inner XML only: marshalling a util.XmlNode writes its
	// inner XML and its parsed children both, which doubles every child
	// (pango's own AllFromPanosConfig does that in v0.10.2, so it is not
	// used here).
	data, err := xml.Marshal(util.XmlNode{XMLName: node.XMLName, Attributes: node.Attributes, Text: node.Text})
	if err != nil {
		return nil, err
	}
	return []byte(`<response status="success"><result>` + string(data) + `</result></response>`), nil
}

func (o offline) Get(path, extras, ans interface{}) ([]byte, error) { return o.Show(path, extras, ans) }

// pangoRead parses turnwall's XML with pango and renders what it understood
// in the same canonical form as fromReader renders turnwall's own reader.
func pangoRead(t *testing.T, data []byte, vsys string) string {
	t.Helper()
	cl := &pango.Client{Version: version.Number{Major: 10, Minor: 1}, Logging: pango.LogQuiet}
	log.SetOutput(io.Discard) // LoadPanosConfig logs with the log package
	defer log.SetOutput(os.Stderr)
	if err := cl.LoadPanosConfig(data); err != nil {
		t.Fatalf("pango does not load the XML: %v", err)
	}
	c := offline{cl}
	var out []string
	addrs, err := addr.FirewallNamespace(c).ShowAll(vsys)
	if err != nil {
		t.Fatalf("pango addresses: %v", err)
	}
	for _, a := range addrs {
		out = append(out, fmt.Sprintf("address %s %s %s", a.Name, a.Type, a.Value))
	}
	edls, err := edl.FirewallNamespace(c).ShowAll(vsys)
	if err != nil {
		t.Fatalf("pango external lists: %v", err)
	}
	for _, e := range edls {
		out = append(out, fmt.Sprintf("external-list %s %s %s %s", e.Name, e.Type, e.Source, e.Repeat))
	}
	groups, err := addrgrp.FirewallNamespace(c).ShowAll(vsys)
	if err != nil {
		t.Fatalf("pango address groups: %v", err)
	}
	for _, g := range groups {
		out = append(out, fmt.Sprintf("address-group %s %s", g.Name, sorted(g.StaticAddresses)))
	}
	svcs, err := srvc.FirewallNamespace(c).ShowAll(vsys)
	if err != nil {
		t.Fatalf("pango services: %v", err)
	}
	for _, s := range svcs {
		out = append(out, fmt.Sprintf("service %s %s %s %s", s.Name, s.Protocol, s.DestinationPort, s.SourcePort))
	}
	sgs, err := srvcgrp.FirewallNamespace(c).ShowAll(vsys)
	if err != nil {
		t.Fatalf("pango service groups: %v", err)
	}
	for _, g := range sgs {
		out = append(out, fmt.Sprintf("service-group %s %s", g.Name, sorted(g.Services)))
	}
	rules, err := security.FirewallNamespace(c).ShowAll(vsys)
	if err != nil {
		t.Fatalf("pango security rules: %v", err)
	}
	for i, r := range rules {
		out = append(out, fmt.Sprintf("security %d %s from %s to %s source %s destination %s service %s application %s action %s log-end %v type %s description %q",
			i, r.Name, sorted(r.SourceZones), sorted(r.DestinationZones), sorted(r.SourceAddresses), sorted(r.DestinationAddresses),
			sorted(r.Services), sorted(r.Applications), r.Action, r.LogEnd, r.Type, r.Description))
	}
	decs, err := pdecryption.FirewallNamespace(c).ShowAll(vsys)
	if err != nil {
		t.Fatalf("pango decryption rules: %v", err)
	}
	for _, d := range decs {
		out = append(out, fmt.Sprintf("decryption %s destination %s action %s type %s", d.Name, sorted(d.DestinationAddresses), d.Action, d.DecryptionType))
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// fromReader renders turnwall's own reading of the same file.
func fromReader(t *testing.T, files []backends.File) string {
	t.Helper()
	d, err := parseXML(files[0].Name, files[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for n, a := range d.addresses {
		if a.fqdn != "" {
			out = append(out, fmt.Sprintf("address %s fqdn %s", n, a.fqdn))
		} else {
			out = append(out, fmt.Sprintf("address %s ip-netmask %s", n, a.prefix))
		}
	}
	for n, e := range d.edls {
		out = append(out, fmt.Sprintf("external-list %s ip %s %s", n, e.url, e.refresh))
	}
	for n, g := range d.groups {
		out = append(out, fmt.Sprintf("address-group %s %s", n, sorted(g.members)))
	}
	for n, s := range d.services {
		out = append(out, fmt.Sprintf("service %s %s %s %s", n, s.proto, s.port, s.sourcePort))
	}
	for n, g := range d.svcGroups {
		out = append(out, fmt.Sprintf("service-group %s %s", n, sorted(g.members)))
	}
	for i, r := range d.security.order {
		out = append(out, fmt.Sprintf("security %d %s from %s to %s source %s destination %s service %s application %s action %s log-end %v type %s description %q",
			i, r.name, sorted(r.lists["from"]), sorted(r.lists["to"]), sorted(r.lists["source"]), sorted(r.lists["destination"]),
			sorted(r.lists["service"]), sorted(r.lists["application"]), r.action, r.flags["log-end"], r.ruleType, r.description))
	}
	for _, r := range d.decryption.order {
		out = append(out, fmt.Sprintf("decryption %s destination %s action %s type %s", r.name, sorted(r.lists["destination"]), r.action, r.decryptType))
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func sorted(s []string) string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return "[" + strings.Join(c, " ") + "]"
}

// TestPangoAcceptsXML: Palo Alto's Go SDK parses the XML of every example
// and case (default placement, the snapshot, and with a feed) into its
// structs, and understands every object, group, service, list and rule as
// turnwall's reader does.
func TestPangoAcceptsXML(t *testing.T) {
	type variant struct {
		name   string
		params map[string]string
	}
	variants := []variant{
		{"default", nil},
		{"snapshot", snapshot},
		{"feed", map[string]string{"feed-above": "3", "feed-url": "https://feeds.example.com/tw"}},
		{"vsys2", map[string]string{"vsys": "vsys2"}},
	}
	checked := 0
	for _, c := range backendtest.Cases(t) {
		for _, v := range variants {
			opts := backends.Options{Format: FormatXML, Params: v.params}
			files, err := Backend{}.Emit(c.Program, opts)
			if err != nil {
				if v.name == "feed" && strings.Contains(err.Error(), "domain names") {
					continue // a set with FQDNs is never a feed
				}
				t.Fatalf("%s %s: %v", c.Name, v.name, err)
			}
			vsys := "vsys1"
			if v.params["vsys"] != "" {
				vsys = v.params["vsys"]
			}
			got, want := pangoRead(t, files[0].Data, vsys), fromReader(t, files)
			if got != want {
				t.Errorf("%s %s: pango reads\n%s\nturnwall's reader\n%s", c.Name, v.name, got, want)
			}
			if !strings.Contains(got, "security 0 ") {
				t.Errorf("%s %s: pango found no security rule", c.Name, v.name)
			}
			checked++
		}
	}
	t.Logf("pango parsed %d XML outputs", checked)
}
