package apply

import (
	"net"
	"sort"
	"strings"

	"github.com/turnwall/turnwall/compiler/ir"
)

// MissingInterface is a zone interface the gateway does not have: the
// zone's rules match no packet there.
type MissingInterface struct {
	Zone      string
	Interface string
	// Wildcard: the interface is a pattern ("vlan*") that no interface
	// name starts with.
	Wildcard bool
	// Source is the zone's policy location.
	Source ir.Source
}

// Interfaces lists the network interfaces of the target's namespace,
// sorted.
func Interfaces(t Target) ([]string, error) {
	var names []string
	_, err := inNetNS(t.nsPath(), func() (int, error) {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		return -1, err
	})
	sort.Strings(names)
	return names, err
}

// MissingInterfaces checks the zones' interfaces against those of the
// target's namespace; a pattern ending in '*' (as nft reads it) is there
// when any interface name starts with what comes before the '*'. It returns
// the missing ones in zone order, and the interfaces found.
func MissingInterfaces(t Target, zones []ir.Zone) ([]MissingInterface, []string, error) {
	have, err := Interfaces(t)
	if err != nil {
		return nil, nil, err
	}
	return missingInterfaces(zones, have), have, nil
}

func missingInterfaces(zones []ir.Zone, have []string) []MissingInterface {
	var out []MissingInterface
	for _, z := range zones {
		for _, want := range z.Interfaces {
			prefix, wildcard := strings.CutSuffix(want, "*")
			found := false
			for _, h := range have {
				if h == want || (wildcard && strings.HasPrefix(h, prefix)) {
					found = true
					break
				}
			}
			if !found {
				out = append(out, MissingInterface{Zone: z.Name, Interface: want, Wildcard: wildcard, Source: z.Source})
			}
		}
	}
	return out
}
