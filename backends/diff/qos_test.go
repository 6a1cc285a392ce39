package diff_test

import (
	"reflect"
	"testing"

	"github.com/turnwall/turnwall/backends/diff"
	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/ir"
)

func TestSummaryQoS(t *testing.T) {
	compile := func() *ir.Program {
		res := compiler.Compile("../../testdata/golden/cases/qos.hcl", compiler.Options{})
		if res.HasErrors() {
			t.Fatal(res.Diags)
		}
		return res.Program
	}
	oldP, newP := compile(), compile()
	if s := diff.Summarize(oldP, newP, nil, nil); !s.Empty() {
		t.Fatalf("same policy, summary %+v", s)
	}
	audio, video := newP.QoS[0], newP.QoS[1]
	audio.Rules = audio.Rules[1:]
	video.DSCP, video.Replies = 26, false
	newP.QoS = []ir.QoSClass{video, audio, {Name: "bulk", DSCP: 8, Rules: []string{"web"}}}
	got := diff.Summarize(oldP, newP, nil, nil).Policy
	want := []string{
		"qos class video: dscp AF41(34) -> AF31(26)",
		"qos class video: replies true -> false",
		"qos class video: position 2 -> 1",
		"qos class audio: position 1 -> 2",
		"qos class audio: rules -" + oldP.QoS[0].Rules[0],
		"qos class bulk added: dscp CS1(8), replies false, 1 rules",
		"qos class signalling removed (dscp CS5(40))",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}
