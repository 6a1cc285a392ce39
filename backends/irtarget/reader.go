package irtarget

import (
	"encoding/json"
	"fmt"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

// Reader re-reads the JSON form. It lets the shared property test run on the
// IR target itself, which checks the test kit and the JSON round trip.
func (Backend) Reader() backends.Reader { return reader{} }

type reader struct{}

type config struct{ p *ir.Program }

func (reader) Read(files []backends.File) (backends.Config, error) {
	if len(files) != 1 {
		return nil, fmt.Errorf("expected one file, got %d", len(files))
	}
	var p ir.Program
	if err := json.Unmarshal(files[0].Data, &p); err != nil {
		return nil, fmt.Errorf("%s is not IR JSON: %v", files[0].Name, err)
	}
	p.Index()
	return config{&p}, nil
}

func (c config) Decide(pkt ir.Packet) backends.Decision {
	v := c.p.Allows(pkt)
	d := backends.Decision{Action: v.Action}
	if v.Rule != nil {
		d.Rule, d.Source = v.Rule.Name, v.Rule.Origin.Source.String()
	}
	return d
}
