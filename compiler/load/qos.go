package load

import "github.com/hashicorp/hcl/v2"

// addQoS keeps the classes of a qos block. A policy may hold several qos
// blocks (one per file, say); their classes form one list, and class names
// are unique across all of them.
func (cfg *Config) addQoS(hb *hcl.Block) hcl.Diagnostics {
	content, diags := hb.Body.Content(qosSchema)
	for _, cb := range content.Blocks {
		b, d := decodeBlock(cb)
		diags = append(diags, d...)
		if b != nil {
			cfg.QoS = append(cfg.QoS, b)
		}
	}
	return diags
}
