package ranges

import "strings"

// Genesys Cloud publishes its service ranges at GET /api/v2/ipranges:
//
//	{"entities": [{"cidr": "...", "service": "...", "region": "...", "direction": "outbound|inbound|both"}]}
//
// Services are api, data-actions, smtp, audiohook and so on; there is no media
// service (the media CIDRs are documented separately). Filters: --service,
// --region, --direction (inbound or outbound also select "both").

func parseGenesys(c *collector) error {
	root, err := parseJSON(c.data)
	if err != nil {
		return err
	}
	if root.kind != jsonObject {
		return c.fatal(root.off, "$", "expected a Genesys Cloud ipranges object with entities, found %s", root.kind)
	}
	list := root.get("entities")
	if list == nil {
		return c.fatal(root.off, "$", "no entities: this is not a Genesys Cloud /api/v2/ipranges response")
	}
	if list.kind != jsonArray {
		return c.fatal(list.off, "$.entities", "expected an array of entities, found %s", list.kind)
	}
	if next := root.get("nextUri"); next != nil && next.kind == jsonString && next.text != "" {
		c.problem(next.off, -1, "$.nextUri", true, "the response is one page of several (nextUri %s): import every page", quote(next.text))
	}
	for i, entry := range list.elems {
		c.res.Read++
		genesysEntry(c, entry, i, jsonPath("$.entities", i))
	}
	return nil
}

func genesysEntry(c *collector, entry *jsonValue, index int, path string) {
	if entry.kind != jsonObject {
		c.problem(entry.off, index, path, false, "expected an entity object, found %s", entry.kind)
		return
	}
	ok := true
	fields := map[string]string{}
	for _, f := range []struct{ key, field string }{{"service", FieldService}, {"region", FieldRegion}, {"direction", FieldDirection}} {
		value, good := c.stringField(entry, f.key, index, path)
		if good && f.field == FieldDirection && !isDirection(value) {
			c.problem(entry.get(f.key).off, index, path+".direction", false, "direction %s is not inbound, outbound or both", quote(value))
			good = false
		}
		if good {
			if f.field == FieldDirection {
				value = strings.ToLower(value)
			}
			fields[f.field] = value
			c.see(f.field, value)
		}
		ok = ok && good
	}
	v := entry.get("cidr")
	if v == nil {
		c.problem(entry.off, index, path, false, "the entity has no \"cidr\"")
		return
	}
	prefix, good := c.prefixField(v, index, path+".cidr", anyFamily)
	if !ok || !good || !c.selects(fields) {
		return
	}
	c.res.Matched++
	c.add(prefix)
}
