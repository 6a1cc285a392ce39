package ir

import "testing"

// Every consumer reads the platforms' settings the same way: any platform
// can take TURN or its TCP/TLS fallback away; the first override counts.
func TestAgentICE(t *testing.T) {
	for _, tt := range []struct {
		name string
		pls  []Platform
		want AgentICE
	}{
		{"no platform", nil, AgentICE{UseTURN: true, TCPFallback: true}},
		{"one", []Platform{{UseTURN: true, TCPFallback: false, TURNServerOverride: "turn.a"}}, AgentICE{UseTURN: true, TCPFallback: false, Override: "turn.a"}},
		{"any takes TURN away", []Platform{{UseTURN: true, TCPFallback: true}, {UseTURN: false, TCPFallback: true}}, AgentICE{UseTURN: false, TCPFallback: true}},
		{"first override", []Platform{{UseTURN: true, TCPFallback: true}, {UseTURN: true, TCPFallback: true, TURNServerOverride: "turn.b"}, {UseTURN: true, TCPFallback: true, TURNServerOverride: "turn.c"}}, AgentICE{UseTURN: true, TCPFallback: true, Override: "turn.b"}},
	} {
		if got := (&Program{Platforms: tt.pls}).AgentICE(); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
