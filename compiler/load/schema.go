package load

import "github.com/hashicorp/hcl/v2"

// Block types of the policy language, in the order they are documented.
const (
	TypePolicy   = "policy"
	TypeVariable = "variable"
	TypeLocals   = "locals"
	TypeZone     = "zone"
	TypeAgents   = "agents"
	TypeProvider = "provider"
	TypeRelay    = "relay"
	TypePlatform = "platform"
	TypeRule     = "rule"
	// TypeDevice is a `device "TARGET"` block: where a target's output sits
	// on a box that already holds a configuration. Its attributes are the
	// target's parameters (any names: the target checks them).
	TypeDevice = "device"
	TypeQoS    = "qos"
	TypeClass  = "class" // a qos block's classes
)

// ReferenceableTypes are block types an expression can refer to as TYPE.NAME.
var ReferenceableTypes = []string{TypeZone, TypeAgents, TypeProvider, TypeRelay, TypePlatform}

var fileSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: TypePolicy, LabelNames: []string{"name"}},
		{Type: TypeVariable, LabelNames: []string{"name"}},
		{Type: TypeLocals},
		{Type: TypeZone, LabelNames: []string{"name"}},
		{Type: TypeAgents, LabelNames: []string{"name"}},
		{Type: TypeProvider, LabelNames: []string{"name"}},
		{Type: TypeRelay, LabelNames: []string{"name"}},
		{Type: TypePlatform, LabelNames: []string{"name"}},
		{Type: TypeRule, LabelNames: []string{"name"}},
		{Type: TypeDevice, LabelNames: []string{"target"}},
		{Type: TypeQoS},
	},
}

// qosSchema is a qos block's body: classes only.
var qosSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: TypeClass, LabelNames: []string{"name"}}}}

// blockSchemas holds each block type's body schema. One schema per type, beside
// the decode function that uses it.
var blockSchemas = map[string]*hcl.BodySchema{
	TypePolicy: {Attributes: []hcl.AttributeSchema{
		{Name: "description"}, {Name: "default_action"}, {Name: "log_default"},
		{Name: "acknowledge_default_allow"},
	}},
	TypeVariable: {Attributes: []hcl.AttributeSchema{
		{Name: "default"}, {Name: "type"}, {Name: "description"},
	}},
	TypeZone: {Attributes: []hcl.AttributeSchema{
		{Name: "interface", Required: true}, {Name: "description"},
	}},
	TypeAgents: {Attributes: []hcl.AttributeSchema{
		{Name: "zone", Required: true}, {Name: "subnets", Required: true},
		{Name: "description"}, {Name: "webrtc_only"},
	}},
	TypeProvider: {Attributes: []hcl.AttributeSchema{
		{Name: "zone", Required: true}, {Name: "ranges"}, {Name: "description"}, {Name: "agents"},
		{Name: "https"}, {Name: "turn"}, {Name: "media"}, {Name: "sip"},
		{Name: "stun_fqdns"}, {Name: "stun_addresses"}, {Name: "stun"},
	}},
	TypeRelay: {
		Attributes: []hcl.AttributeSchema{
			{Name: "zone", Required: true}, {Name: "addresses", Required: true}, {Name: "fqdn"},
			{Name: "realm", Required: true}, {Name: "relay_ports"}, {Name: "description"},
			{Name: "clients"}, {Name: "peers"}, {Name: "tcp_relay"}, {Name: "lab_only"},
			{Name: "tls_cert"}, {Name: "tls_key"}, {Name: "store"}, {Name: "alternates"},
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "listen"}},
	},
	"listen": {Attributes: []hcl.AttributeSchema{{Name: "udp"}, {Name: "tcp"}, {Name: "tls"}}},
	TypePlatform: {Attributes: []hcl.AttributeSchema{
		{Name: "use_turn"}, {Name: "preferred_transport"}, {Name: "ice_check_priority"},
		{Name: "tcp_fallback"}, {Name: "turn_server_override"}, {Name: "tenant_realm"},
		{Name: "description"},
	}},
	TypeClass: {Attributes: []hcl.AttributeSchema{
		{Name: "flows"}, {Name: "purposes"}, {Name: "dscp"}, {Name: "replies"}, {Name: "description"},
	}},
	TypeRule: {Attributes: []hcl.AttributeSchema{
		{Name: "from", Required: true}, {Name: "to", Required: true},
		{Name: "from_zone"}, {Name: "to_zone"},
		{Name: "udp"}, {Name: "tcp"}, {Name: "action"}, {Name: "log"}, {Name: "description"},
	}},
}
