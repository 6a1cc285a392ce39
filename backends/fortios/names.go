package fortios

import (
	"net/netip"
	"strings"

	"github.com/turnwall/turnwall/backends/naming"
)

// Name limits (FortiOS 7.x CLI reference): firewall address, address6,
// addrgrp, service custom and service group names hold 79 characters
// (https://docs.fortinet.com/document/fortigate/7.4.8/cli-reference/198499981,
// https://docs.fortinet.com/document/fortigate/7.2.13/cli-reference/137851815);
// a policy name holds 35 and must be unique in the VDOM
// (https://docs.fortinet.com/document/fortigate/6.4.9/cli-reference/319620).
const (
	objectNameMax = 79
	policyNameMax = 35
	// Policy comments hold 1023 characters
	// (https://docs.fortinet.com/document/fortigate/6.2.16/cli-reference/257620);
	// address group comments 255.
	policyCommentMax = 1023
	groupCommentMax  = 255
)

// defaultPolicyName is the name of the final catch-all policy; no rule may
// take it.
const defaultPolicyName = "tw-default"

// reserved are names FortiOS predefines or treats specially (the built-in
// address "all"/"all6"/"none", the schedule "always", the service "ALL", the
// interface "any"). The namers add a prefix, so these are a second line of
// defence should the prefix ever change.
var reserved = []string{"all", "all6", "none", "always", "any", defaultPolicyName}

// objectRules: everything turnwall names is ASCII letters, digits and . _ -,
// which FortiOS accepts in any object name and which never needs escaping
// inside double quotes.
func objectRules(prefix string, max int) naming.Rules {
	return naming.Rules{
		MaxLen:   max,
		Allowed:  naming.ASCIIWord("._-"),
		First:    naming.AlphaNum,
		Replace:  '-',
		Reserved: reserved,
		Prefix:   prefix,
	}
}

// namespace is one FortiOS namespace (v4 addresses and groups share one, v6
// addresses and groups another, custom services and service groups a
// third). A kind whose key another kind claimed is named from "KIND KEY",
// which the namer must change (a space is never allowed): it gets a hashed
// name.
type namespace = naming.Namespace

func newNamespace(prefix string, max int) *namespace {
	return naming.NewNamespace(objectRules(prefix, max), naming.Spelling{
		Other: func(kind, key string) string { return kind + " " + key },
		Key:   appendPrefixKey, Parse: parsePrefixKey,
	})
}

// prefixKey spells a prefix with name-safe characters: "10.20.0.0/16" ->
// "10.20.0.0_16", "fd00:20::/48" -> "fd00-20--_48". Neither '-' nor '_' occurs
// in a prefix's text, so the spelling is one-to-one.
func prefixKey(p netip.Prefix) string {
	return string(appendPrefixKey(nil, p))
}

// appendPrefixKey appends prefixKey(p) to b.
func appendPrefixKey(b []byte, p netip.Prefix) []byte {
	start := len(b)
	b = p.AppendTo(b)
	for i := start; i < len(b); i++ {
		switch b[i] {
		case ':':
			b[i] = '-'
		case '/':
			b[i] = '_'
		}
	}
	return b
}

// cliText makes user text safe inside a double-quoted FortiOS string on one
// line. Control characters (newline, tab, the Unicode line separators) become
// spaces through naming.Comment; these are dropped:
//   - '"' and '\”: the CLI takes both as quotes that must come in pairs, and
//     '\' escapes or, at the end of a line, continues it onto the next
//     (https://docs.fortinet.com/document/fortimanager/7.2.7/cli-reference/807765);
//   - '?' asks the console for help, even in a pasted script
//     (https://docs.fortinet.com/document/fortigate/6.0.0/cli-reference/799476/tips);
//   - '$' starts CLI variables such as $SerialNum.
func cliText(s string, max int) string {
	return naming.Comment(s, "\"'\\?$", max)
}

// encodeToken writes text that must come back exactly (a policy file name,
// a zone name) as one space-free token: bytes outside safe are written as
// %XX. The reader decodes it; the token is safe in a FortiOS string.
func encodeToken(s, safe string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x80 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(safe, c) >= 0) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// Token alphabets. A source token ends at a space; a zone token ends at the
// ':' after the destination zone and holds one '>' (in "from->to"), so zone
// names may not keep ':', '>' or '*' (the wildcard zone).
const (
	sourceSafe = "._/-:"
	zoneSafe   = "._-"
)

// parsePrefixKey reverses prefixKey.
func parsePrefixKey(key string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(strings.NewReplacer("-", ":", "_", "/").Replace(key))
	return p, err == nil
}
