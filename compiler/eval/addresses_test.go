package eval

import (
	"fmt"
	"testing"

	"github.com/turnwall/turnwall/compiler/diag"
)

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in      string
		want    string // prefixes, space-separated
		code    diag.Code
		warning bool
	}{
		{"10.20.0.0/16", "[10.20.0.0/16]", "", false},
		{" 10.20.0.0/16 ", "[10.20.0.0/16]", "", false},
		{"192.0.2.7", "[192.0.2.7/32]", "", false},
		{"2001:db8::10", "[2001:db8::10/128]", "", false},
		{"fd00:20::/48", "[fd00:20::/48]", "", false},
		{"10.20.1.5/16", "[10.20.0.0/16]", diag.HostBitsSet, true},
		{"fd00:20::1/48", "[fd00:20::/48]", diag.HostBitsSet, true},
		{"10.0.0.0-10.0.0.255", "[10.0.0.0/24]", "", false},
		{"10.0.0.1-10.0.0.6", "[10.0.0.1/32 10.0.0.2/31 10.0.0.4/31 10.0.0.6/32]", "", false},
		{"0.0.0.0-255.255.255.255", "[0.0.0.0/0]", "", false},
		{"2001:db8::-2001:db8::ff", "[2001:db8::/120]", "", false},
		{"10.0.0.9-10.0.0.1", "", diag.InvertedRange, false},
		{"10.0.0.1-2001:db8::1", "", diag.FamilyMismatch, false},
		{"10.0.0.0/33", "", diag.InvalidAddress, false},
		{"10.0.0/8", "", diag.InvalidAddress, false},
		{"256.1.1.1", "", diag.InvalidAddress, false},
		{"example.com", "", diag.InvalidAddress, false},
		{"", "", diag.InvalidAddress, false},
		{"fe80::1%eth0", "", diag.InvalidAddress, false},
		{"10.0.0.1-", "", diag.InvalidAddress, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, problem := ParseAddress(tt.in)
			if tt.code == "" {
				if problem != nil {
					t.Fatalf("unexpected problem %+v", problem)
				}
			} else {
				if problem == nil || problem.Code != tt.code || problem.Warning != tt.warning {
					t.Fatalf("problem = %+v, want code %s warning %t", problem, tt.code, tt.warning)
				}
				if problem.Detail == "" {
					t.Fatal("problem has no detail telling what to do")
				}
			}
			if tt.want != "" && fmt.Sprint(got) != tt.want {
				t.Fatalf("prefixes = %v, want %s", got, tt.want)
			}
		})
	}
}

func TestParsePort(t *testing.T) {
	tests := []struct {
		in   string
		want string
		code diag.Code
	}{
		{"443", "443", ""},
		{"1", "1", ""},
		{"65535", "65535", ""},
		{"16384-65535", "16384-65535", ""},
		{" 3478 - 3481 ", "3478-3481", ""},
		{"0", "", diag.InvalidPort},
		{"65536", "", diag.InvalidPort},
		{"-1", "", diag.InvalidPort},
		{"https", "", diag.InvalidPort},
		{"5000-4000", "", diag.InvertedRange},
		{"1-2-3", "", diag.InvalidPort},
		{"", "", diag.InvalidPort},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, problem := ParsePort(tt.in)
			if tt.code != "" {
				if problem == nil || problem.Code != tt.code {
					t.Fatalf("problem = %+v, want %s", problem, tt.code)
				}
				return
			}
			if problem != nil {
				t.Fatalf("unexpected problem %+v", problem)
			}
			if got.String() != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}
