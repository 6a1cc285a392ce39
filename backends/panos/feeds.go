package panos

import (
	"bytes"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"go4.org/netipx"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/compiler/lazyre"
)

// Feed parameters: a big provider range list as a PAN-OS External Dynamic
// List (type ip) the firewall fetches itself, instead of one address object
// per range.
var (
	paramFeedAbove = backends.Param{Name: "feed-above", Default: "0",
		Help: "an address set with more than this many ranges becomes an External Dynamic List fed from a file turnwall writes (0: never)"}
	paramFeedSets = backends.Param{Name: "feed-sets", Default: "",
		Help: "address sets that become External Dynamic Lists whatever their size, as SET,SET,..."}
	paramFeedURL = backends.Param{Name: "feed-url", Default: "",
		Help: "https URL of the directory the feed files are published in; the firewall fetches URL/panos-feed-NAME.txt (required with feeds)"}
	paramFeedRefresh = backends.Param{Name: "feed-refresh", Default: "hourly",
		Help: "how often the firewall fetches a feed: five-minute, hourly or daily"}
)

// maxEDLName: "Enter a name to identify the external dynamic list (up to 32
// characters)" (PAN-OS 7.1 web interface help, Objects > External Dynamic
// Lists, https://docs.paloaltonetworks.com/pan-os/7-1/pan-os-web-interface-help/objects/objects-external-dynamic-lists.html).
const maxEDLName = 32

// feed is an External Dynamic List of type ip and the file it is fetched
// from.
type feed struct {
	name    string // the EDL, used in rules like an address group
	file    string // panos-feed-NAME.txt
	url     string
	refresh string
	set     string // IR address set
	data    []byte // one aggregated prefix per line
}

type feedPlace struct {
	above   int
	sets    map[string]bool
	url     string
	refresh string
}

var feedSetName = lazyre.New(`^[^,\s]+$`)

func parseFeeds(opts backends.Options) (feedPlace, error) {
	var fp feedPlace
	a := opts.Get(paramFeedAbove)
	n, err := strconv.Atoi(a)
	if err != nil || n < 0 {
		return fp, fmt.Errorf("--param panos.feed-above=%q: expected a number of ranges (0: never)", a)
	}
	fp.above = n
	if s := opts.Get(paramFeedSets); s != "" {
		fp.sets = map[string]bool{}
		for _, name := range strings.Split(s, ",") {
			if name = strings.TrimSpace(name); !feedSetName.MatchString(name) {
				return fp, fmt.Errorf("--param panos.feed-sets=%q: expected address set names separated by commas", s)
			}
			fp.sets[name] = true
		}
	}
	switch fp.refresh = opts.Get(paramFeedRefresh); fp.refresh {
	case "five-minute", "hourly", "daily":
	default:
		return fp, fmt.Errorf("--param panos.feed-refresh=%q: expected five-minute, hourly or daily", fp.refresh)
	}
	fp.url = opts.Get(paramFeedURL)
	if fp.url != "" || fp.above > 0 || fp.sets != nil {
		if err := checkFeedURL(fp.url); err != nil {
			return fp, err
		}
		fp.url = strings.TrimSuffix(fp.url, "/")
	}
	return fp, nil
}

// checkFeedURL accepts an https URL with a host and a path, no user
// information, query or fragment, in printable ASCII without quotes or
// spaces: it is written into the configuration as one token.
func checkFeedURL(u string) error {
	if u == "" {
		return fmt.Errorf("--param panos.feed-url is required with feeds: the https URL the firewall fetches the feed files from")
	}
	for _, r := range u {
		if r <= ' ' || r > '~' || strings.ContainsRune("\"'`\\<>[]{}", r) {
			return fmt.Errorf("--param panos.feed-url=%q: the URL has a character a configuration token cannot carry (%q)", u, r)
		}
	}
	p, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("--param panos.feed-url=%q: %v", u, err)
	}
	if p.Scheme != "https" {
		return fmt.Errorf("--param panos.feed-url=%q: the feed must be fetched over https (the firewall trusts what the list says)", u)
	}
	if p.Host == "" || p.User != nil || p.RawQuery != "" || p.Fragment != "" || p.Opaque != "" {
		return fmt.Errorf("--param panos.feed-url=%q: expected https://HOST/PATH without user, query or fragment", u)
	}
	return nil
}

// feeds reports whether an address set becomes a feed.
func (pl place) feeds(s *ir.AddressSet) bool {
	return pl.feed.sets[s.Name] || (pl.feed.above > 0 && len(s.V4)+len(s.V6) > pl.feed.above)
}

func newFeed(s *ir.AddressSet, name string, where place) (feed, error) {
	if len(s.FQDNs) > 0 {
		return feed{}, fmt.Errorf("address set %q (%s): it has domain names, which an External Dynamic List of type ip cannot hold; leave it out of panos.feed-sets or raise panos.feed-above", s.Name, s.Origin.Source)
	}
	if len(name) > maxEDLName {
		return feed{}, fmt.Errorf("address set %q (%s): the External Dynamic List name %q is longer than PAN-OS's %d characters; shorten the set's name or the object-prefix", s.Name, s.Origin.Source, name, maxEDLName)
	}
	var b netipx.IPSetBuilder
	for _, pf := range s.V4 {
		b.AddPrefix(pf)
	}
	for _, pf := range s.V6 {
		b.AddPrefix(pf)
	}
	set, err := b.IPSet()
	if err != nil {
		return feed{}, err
	}
	var data bytes.Buffer
	for _, pf := range set.Prefixes() {
		data.WriteString(pf.String())
		data.WriteByte('\n')
	}
	file := "panos-feed-" + name + ".txt"
	return feed{name: name, file: file, url: where.feed.url + "/" + file, refresh: where.feed.refresh, set: s.Name, data: data.Bytes()}, nil
}

// feedFiles are the feed files of a plan, written beside the configuration.
func feedFiles(pl *plan) []backends.File {
	var out []backends.File
	for _, f := range pl.feeds {
		out = append(out, backends.File{Name: f.file, Data: f.data})
	}
	return out
}

// feedArgs is an External Dynamic List after its name: `set external-list
// NAME type ip url URL recurring hourly` (type ip, source URL and a
// recurring refresh, as Objects > External Dynamic Lists describes).
func feedArgs(f feed) []string {
	return []string{"type", "ip", "url", f.url, "recurring", f.refresh}
}
