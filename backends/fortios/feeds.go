package fortios

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

// Feeds: a provider with thousands of ranges does not fit a FortiGate's
// address tables; FortiOS takes it as an external threat feed instead
// (`config system external-resource`, `set type address`, a URL the box
// fetches every refresh-rate minutes, one address, range or subnet a line),
// which a policy names in srcaddr/dstaddr like an address
// (https://docs.fortinet.com/document/fortigate/8.0.0/cli-reference/549356530).
// turnwall writes the feed files beside the configuration; serving them at
// the URL is the operator's part.
var (
	paramFeedAbove = backends.Param{
		Name:    "feed-above",
		Default: "0",
		Help: "N: address sets with more than N prefixes (in one family) become threat feeds (system external-resource type address) " +
			"instead of address objects and groups; 0 never. Needs feed-url.",
	}
	paramFeedURL = backends.Param{
		Name:    "feed-url",
		Default: "",
		Help:    "https://HOST/PATH/: where the box fetches the feed files (FILE is appended); must be https.",
	}
	paramFeedRefresh = backends.Param{
		Name:    "feed-refresh",
		Default: "60",
		Help:    "Minutes between the box's fetches of a feed (1-43200).",
	}
)

// feedDir is the folder of the feed files among the output files.
const feedDir = "feeds/"

type feed struct {
	name     string // external-resource name
	set      string // IR set
	file     string // file name under feedDir
	url      string
	prefixes []netip.Prefix // aggregated, one family
}

type feedSettings struct {
	above   int
	url     string
	refresh int
}

func parseFeeds(opts backends.Options, s *settings) error {
	above, err := strconv.Atoi(strings.TrimSpace(opts.Get(paramFeedAbove)))
	if err != nil || above < 0 {
		return fmt.Errorf("feed-above %q: expected a number of prefixes (0 for no feeds)", opts.Get(paramFeedAbove))
	}
	s.feeds.above = above
	refresh, err := strconv.Atoi(strings.TrimSpace(opts.Get(paramFeedRefresh)))
	if err != nil || refresh < 1 || refresh > 43200 {
		return fmt.Errorf("feed-refresh %q: expected minutes, 1-43200", opts.Get(paramFeedRefresh))
	}
	s.feeds.refresh = refresh
	raw := strings.TrimSpace(opts.Get(paramFeedURL))
	if raw == "" {
		if above > 0 {
			return fmt.Errorf("feed-above=%d needs feed-url=https://HOST/PATH/ (where the box fetches the feed files)", above)
		}
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("feed-url %q: expected an https URL without user, query or fragment, for example https://feeds.example.com/turnwall/", raw)
	}
	if strings.ContainsAny(raw, "\"'\\?$ \t") || strings.IndexFunc(raw, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
		return fmt.Errorf("feed-url %q: only printable ASCII without quotes, spaces, '\\', '?' or '$'", raw)
	}
	if !strings.HasSuffix(raw, "/") {
		raw += "/"
	}
	s.feeds.url = raw
	return nil
}

// isFeed: the set goes to feeds (FQDN members cannot: a threat feed of
// type address holds addresses only).
func (fs feedSettings) isFeed(set *ir.AddressSet) bool {
	return fs.above > 0 && len(set.FQDNs) == 0 && (len(set.V4) > fs.above || len(set.V6) > fs.above)
}

// aggregated returns the set's prefixes of one family, merged.
func aggregated(set *ir.AddressSet, v4 bool) []netip.Prefix {
	var out []netip.Prefix
	for _, pr := range set.IPSet().Prefixes() {
		if pr.Addr().Is4() == v4 {
			out = append(out, pr)
		}
	}
	return out
}

// feedFiles renders the feed files: one prefix a line.
func feedFiles(feeds []feed) []backends.File {
	var out []backends.File
	for _, f := range feeds {
		var b strings.Builder
		for _, pr := range f.prefixes {
			b.WriteString(pr.String())
			b.WriteByte('\n')
		}
		out = append(out, backends.File{Name: feedDir + f.file, Data: []byte(b.String())})
	}
	return out
}

// ReadFeeds maps each feed URL of a configuration written with feed-url
// base to the prefixes of its file among files (for the box model).
func ReadFeeds(base string, files []backends.File) (map[string][]netip.Prefix, error) {
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	out := map[string][]netip.Prefix{}
	for _, f := range files {
		name, ok := strings.CutPrefix(f.Name, feedDir)
		if !ok {
			continue
		}
		var list []netip.Prefix
		for i, line := range strings.Split(strings.TrimSuffix(string(f.Data), "\n"), "\n") {
			if line == "" {
				continue
			}
			pr, err := netip.ParsePrefix(line)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %q is not a prefix", f.Name, i+1, line)
			}
			list = append(list, pr)
		}
		out[base+name] = list
	}
	return out, nil
}
