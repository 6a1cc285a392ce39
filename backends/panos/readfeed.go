package panos

import (
	"fmt"
	"net/netip"
	"path"
	"strings"
)

// rEDL is an External Dynamic List of type ip as read: where the firewall
// fetches it from.
type rEDL struct {
	line    int
	url     string
	refresh string
}

// setExternalList reads `set external-list NAME type ip url URL recurring R`.
func (p *setParser) setExternalList() error {
	name, err := p.name("external list name")
	if err != nil {
		return err
	}
	e := p.dev.edls[name]
	if e == nil {
		e = &rEDL{line: p.line}
		p.dev.edls[name] = e
	}
	if _, err := p.keyword("type"); err != nil {
		return err
	}
	if _, err := p.keyword("ip"); err != nil {
		return err
	}
	for p.more() {
		key, err := p.keyword("url", "recurring")
		if err != nil {
			return err
		}
		if key == "url" {
			if e.url, err = p.single("url"); err != nil {
				return err
			}
			continue
		}
		if e.refresh, err = p.keyword("five-minute", "hourly", "daily", "weekly", "monthly"); err != nil {
			return err
		}
	}
	return nil
}

// parseFeedFile reads a feed as the firewall does for type ip: one address
// or prefix per line. Blank lines are skipped; anything else is an error
// naming the line (the firewall skips such lines; turnwall never writes
// them).
func parseFeedFile(file string, data []byte) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		pf, err := netip.ParsePrefix(line)
		if err != nil {
			a, err2 := netip.ParseAddr(line)
			if err2 != nil {
				return nil, fmt.Errorf("%s:%d: %q is not an IP address or prefix", file, i+1, line)
			}
			pf = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, pf.Masked())
	}
	return out, nil
}

// feedPrefixes are the addresses of an External Dynamic List: the feed
// file its URL names, as given to the reader or the model.
func (d *device) feedPrefixes(name string, e *rEDL) ([]netip.Prefix, error) {
	file := path.Base(e.url)
	pfs, ok := d.feedData[file]
	if !ok {
		return nil, fmt.Errorf("external list %q: its feed %s was not given", name, file)
	}
	return pfs, nil
}
