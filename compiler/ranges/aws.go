package ranges

// AWS publishes https://ip-ranges.amazonaws.com/ip-ranges.json:
//
//	{"syncToken": "<epoch>", "createDate": "YY-MM-DD-hh-mm-ss",
//	 "prefixes":      [{"ip_prefix": "...",   "region": "...", "service": "...", "network_border_group": "..."}],
//	 "ipv6_prefixes": [{"ipv6_prefix": "...", "region": "...", "service": "...", "network_border_group": "..."}]}
//
// Every prefix appears once under service AMAZON and again under its specific
// service (AMAZON_CONNECT, EC2, CLOUDFRONT...); region is an AWS region or
// GLOBAL. Filters: --service, --region.

func parseAWS(c *collector) error {
	root, err := parseJSON(c.data)
	if err != nil {
		return err
	}
	if root.kind != jsonObject {
		return c.fatal(root.off, "$", "expected an AWS ip-ranges.json object with prefixes and ipv6_prefixes, found %s", root.kind)
	}
	lists := []struct {
		key, field string
		fam        family
	}{
		{"prefixes", "ip_prefix", ipv4Only},
		{"ipv6_prefixes", "ipv6_prefix", ipv6Only},
	}
	found := false
	for _, l := range lists {
		list := root.get(l.key)
		if list == nil {
			continue
		}
		found = true
		path := jsonPath("$", l.key)
		if list.kind != jsonArray {
			return c.fatal(list.off, path, "expected an array of prefix entries, found %s", list.kind)
		}
		for i, entry := range list.elems {
			c.res.Read++
			awsEntry(c, entry, i, jsonPath(path, i), l.field, l.fam)
		}
	}
	if !found {
		return c.fatal(root.off, "$", "no prefixes or ipv6_prefixes: this is not an AWS ip-ranges.json")
	}
	return nil
}

func awsEntry(c *collector, entry *jsonValue, index int, path, field string, fam family) {
	if entry.kind != jsonObject {
		c.problem(entry.off, index, path, false, "expected a prefix entry object, found %s", entry.kind)
		return
	}
	ok := true
	fields := map[string]string{}
	for _, f := range []struct{ key, field string }{{"service", FieldService}, {"region", FieldRegion}} {
		value, good := c.stringField(entry, f.key, index, path)
		if good {
			fields[f.field] = value
			c.see(f.field, value)
		}
		ok = ok && good
	}
	v := entry.get(field)
	if v == nil {
		c.problem(entry.off, index, path, false, "the entry has no %q", field)
		return
	}
	prefix, good := c.prefixField(v, index, jsonPath(path, field), fam)
	if !ok || !good || !c.selects(fields) {
		return
	}
	c.res.Matched++
	c.add(prefix)
}
