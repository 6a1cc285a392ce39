// Command turnwall compiles WebRTC firewall policies into reviewable,
// testable firewall rule sets.
package main

import (
	"os"
	"runtime/debug"
)

func main() {
	// turnwall is a short batch job that builds large address sets: collect
	// garbage less often (a quarter of the GC work for about twice the heap).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
