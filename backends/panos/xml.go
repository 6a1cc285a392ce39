package panos

import (
	"bytes"
	"encoding/xml"
	"github.com/turnwall/turnwall/backends/naming"
	"github.com/turnwall/turnwall/compiler/version"
	"strings"
)

// renderXML writes the plan as the XML PAN-OS keeps under
// /config/devices/entry[@name='localhost.localdomain']/vsys/entry[@name='VSYS']
// (the vsys location of pan-os-codegen's specs for address, address-group,
// service, service-group and the security and decryption rulebases; element
// names as in the XML API's Set Configuration example for a security rule,
// https://docs.paloaltonetworks.com/pan-os/10-1/pan-os-panorama-api/pan-os-xml-api-request-types/configuration-api/set-configuration).
// Rules are listed in rulebase order. The file can be imported and merged
// node by node with `load config partial from FILE from-xpath ... to-xpath
// ... mode merge`; entries merged into an existing rulebase do not move, so
// the header comment asks for the moves the set form makes itself (XML API
// action=move, where=top|bottom|before|after,
// https://docs.paloaltonetworks.com/pan-os/10-1/pan-os-panorama-api/pan-os-xml-api-request-types/configuration-api/move-configuration).
//
// encoding/xml escapes every text and attribute value; descriptions are
// cleaned as for the set form anyway, so both forms carry the same text.
func renderXML(pl *plan) ([]byte, error) {
	v := xVsys{Name: pl.vsys}
	for _, a := range pl.addresses {
		e := xAddress{Name: a.name}
		if a.kind == "fqdn" {
			e.FQDN = a.value
		} else {
			e.IPNetmask = a.value
		}
		v.Address = append(v.Address, e)
	}
	for _, f := range pl.feeds {
		e := xExternalList{Name: f.name}
		e.Type.IP.URL = f.url
		e.Type.IP.Recurring = xRecurring{XMLName: xml.Name{Local: "recurring"}, Every: xml.Name{Local: f.refresh}}
		if v.ExternalList == nil {
			v.ExternalList = &xExternalLists{}
		}
		v.ExternalList.Entries = append(v.ExternalList.Entries, e)
	}
	for _, g := range pl.groups {
		v.AddressGroup = append(v.AddressGroup, xAddressGroup{Name: g.name, Static: g.members})
	}
	for _, s := range pl.services {
		ports := &xPorts{Port: s.port, SourcePort: s.sourcePort}
		e := xService{Name: s.name}
		if s.proto == "tcp" {
			e.Protocol.TCP = ports
		} else {
			e.Protocol.UDP = ports
		}
		v.Service = append(v.Service, e)
	}
	for _, g := range pl.svcGroups {
		v.ServiceGroup = append(v.ServiceGroup, xServiceGroup{Name: g.name, Members: g.members})
	}
	for _, r := range pl.rules {
		v.Rulebase.Security.Rules = append(v.Rulebase.Security.Rules, xSecurityRule{
			Name: r.name, From: []string{r.from}, To: []string{r.to},
			Source: []string{r.source}, Destination: []string{r.destination},
			SourceUser: []string{"any"}, Application: []string{"any"}, Service: []string{r.service},
			Action: r.action, LogEnd: yesNo(r.logEnd), RuleType: "universal",
			Description: r.description, QoS: ruleQoSXML(r),
		})
	}
	if d := pl.decrypt; d != nil {
		v.Rulebase.Decryption = &xDecryption{Rules: []xDecryptionRule{{
			Name: d.name, From: []string{"any"}, To: []string{"any"},
			Source: []string{"any"}, Destination: d.destinations,
			Service: []string{"any"}, Category: []string{"any"},
			Action: "no-decrypt", Description: d.description,
		}}}
	}
	doc := xConfig{Devices: xDevices{Entry: xDevice{Name: "localhost.localdomain", Vsys: xVsysList{Entry: v}}}}
	renderQoSXML(pl, &doc.Devices.Entry, &v.Rulebase)
	doc.Devices.Entry.Vsys.Entry = v

	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	// The version that wrote the file (never a time); "--" cannot stand in
	// an XML comment.
	buf.WriteString("<!-- written by turnwall " + strings.ReplaceAll(naming.Comment(version.String(), "", 60), "--", "-") + " -->\n")
	buf.WriteString("<!-- turnwall panos: objects and rules for one vsys. Merge with load config partial (mode merge);\n" +
		"     merged entries keep the position they land in, so then move the no-decrypt rule to the top of the\n" +
		"     decryption rulebase and keep these security rules, in this order, above any broader rule\n" +
		"     (CLI move, or XML API action=move); review with show config diff, then commit. -->\n")
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	buf.WriteString("\n")
	return buf.Bytes(), nil
}

type xConfig struct {
	XMLName xml.Name `xml:"config"`
	Devices xDevices `xml:"devices"`
}

type xDevices struct {
	Entry xDevice `xml:"entry"`
}

type xDevice struct {
	Name    string    `xml:"name,attr"`
	Vsys    xVsysList `xml:"vsys"`
	Network *xNetwork `xml:"network,omitempty"` // QoS profile and interfaces (qos.go)
}

type xVsysList struct {
	Entry xVsys `xml:"entry"`
}

type xVsys struct {
	Name         string          `xml:"name,attr"`
	Address      []xAddress      `xml:"address>entry,omitempty"`
	ExternalList *xExternalLists `xml:"external-list,omitempty"`
	AddressGroup []xAddressGroup `xml:"address-group>entry,omitempty"`
	Service      []xService      `xml:"service>entry,omitempty"`
	ServiceGroup []xServiceGroup `xml:"service-group>entry,omitempty"`
	Rulebase     xRulebase       `xml:"rulebase"`
}

type xAddress struct {
	Name      string `xml:"name,attr"`
	IPNetmask string `xml:"ip-netmask,omitempty"`
	FQDN      string `xml:"fqdn,omitempty"`
}

type xAddressGroup struct {
	Name   string   `xml:"name,attr"`
	Static []string `xml:"static>member"`
}

type xService struct {
	Name     string    `xml:"name,attr"`
	Protocol xProtocol `xml:"protocol"`
}

type xProtocol struct {
	TCP *xPorts `xml:"tcp,omitempty"`
	UDP *xPorts `xml:"udp,omitempty"`
}

type xPorts struct {
	Port       string `xml:"port"`
	SourcePort string `xml:"source-port,omitempty"`
}

type xServiceGroup struct {
	Name    string   `xml:"name,attr"`
	Members []string `xml:"members>member"`
}

type xRulebase struct {
	Security   xSecurity    `xml:"security"`
	Decryption *xDecryption `xml:"decryption,omitempty"`
	QoS        *xQoSRules   `xml:"qos,omitempty"` // qos.go
}

type xSecurity struct {
	Rules []xSecurityRule `xml:"rules>entry"`
}

type xSecurityRule struct {
	Name        string    `xml:"name,attr"`
	From        []string  `xml:"from>member"`
	To          []string  `xml:"to>member"`
	Source      []string  `xml:"source>member"`
	Destination []string  `xml:"destination>member"`
	SourceUser  []string  `xml:"source-user>member"`
	Application []string  `xml:"application>member"`
	Service     []string  `xml:"service>member"`
	Action      string    `xml:"action"`
	LogEnd      string    `xml:"log-end"`
	RuleType    string    `xml:"rule-type"`
	Description string    `xml:"description"`
	QoS         *xRuleQoS `xml:"qos,omitempty"` // DSCP marking (qos.go)
}

type xDecryption struct {
	Rules []xDecryptionRule `xml:"rules>entry"`
}

type xDecryptionRule struct {
	Name        string          `xml:"name,attr"`
	From        []string        `xml:"from>member"`
	To          []string        `xml:"to>member"`
	Source      []string        `xml:"source>member"`
	Destination []string        `xml:"destination>member"`
	Service     []string        `xml:"service>member"`
	Category    []string        `xml:"category>member"`
	Action      string          `xml:"action"`
	Type        xDecryptionType `xml:"type"`
	Description string          `xml:"description"`
}

// xDecryptionType selects SSL forward proxy: <type><ssl-forward-proxy/></type>.
type xDecryptionType struct {
	SSLForwardProxy struct{} `xml:"ssl-forward-proxy"`
}

type xExternalLists struct {
	Entries []xExternalList `xml:"entry"`
}

// xExternalList is an External Dynamic List of type ip:
// <type><ip><recurring><hourly/></recurring><url>URL</url></ip></type>.
type xExternalList struct {
	Name string `xml:"name,attr"`
	Type struct {
		IP struct {
			Recurring xRecurring `xml:"recurring"`
			URL       string     `xml:"url"`
		} `xml:"ip"`
	} `xml:"type"`
}

// xRecurring holds one empty element named after the refresh interval.
type xRecurring struct {
	XMLName xml.Name
	Every   xml.Name
}

func (r xRecurring) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	inner := xml.StartElement{Name: r.Every}
	if err := e.EncodeToken(inner); err != nil {
		return err
	}
	if err := e.EncodeToken(inner.End()); err != nil {
		return err
	}
	return e.EncodeToken(start.End())
}
