package ranges

// The Microsoft 365 IP address and URL web service
// (https://endpoints.office.com/endpoints/worldwide?clientrequestid=GUID)
// returns a JSON array of endpoint sets:
//
//	[{"id": 11, "serviceArea": "Skype", "urls": [...], "ips": ["52.112.0.0/14", ...],
//	  "tcpPorts": "443", "udpPorts": "3478,3479,3480,3481", "category": "Optimize", "required": true}]
//
// Sets that list only URLs have no ips and contribute nothing. Filters:
// --category (Optimize, Allow, Default), --service-area (Exchange,
// SharePoint, Skype for Teams, Common).

func parseM365(c *collector) error {
	root, err := parseJSON(c.data)
	if err != nil {
		return err
	}
	if root.kind != jsonArray {
		return c.fatal(root.off, "$", "expected the Microsoft 365 endpoints JSON (an array of endpoint sets), found %s", root.kind)
	}
	for i, set := range root.elems {
		m365Set(c, set, i, jsonPath("$", i))
	}
	return nil
}

func m365Set(c *collector, set *jsonValue, index int, path string) {
	if set.kind != jsonObject {
		c.problem(set.off, index, path, false, "expected an endpoint set object, found %s", set.kind)
		return
	}
	ok := true
	fields := map[string]string{}
	for _, f := range []struct{ key, field string }{{"serviceArea", FieldServiceArea}, {"category", FieldCategory}} {
		value, good := c.stringField(set, f.key, index, path)
		if good {
			fields[f.field] = value
			c.see(f.field, value)
		}
		ok = ok && good
	}
	ips := set.get("ips")
	if ips == nil {
		return // a set of URLs only
	}
	ipsPath := path + ".ips"
	if ips.kind != jsonArray {
		c.problem(ips.off, index, ipsPath, false, "expected an array of CIDR prefixes, found %s", ips.kind)
		return
	}
	selected := ok && c.selects(fields)
	for j, ip := range ips.elems {
		c.res.Read++
		prefix, good := c.prefixField(ip, j, jsonPath(ipsPath, j), anyFamily)
		if good && selected {
			c.res.Matched++
			c.add(prefix)
		}
	}
}
