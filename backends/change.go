package backends

import "github.com/turnwall/turnwall/compiler/ir"

// Changer is a target for a box that already holds a configuration of its
// own (a firewall's rulebase): turnwall's part is merged into it, owns only
// what it created (every object and rule it emits carries the target's
// ownership mark), and changes from one version of the policy to the next
// by exact commands rather than a whole snapshot.
//
// Change returns the commands that take a box holding old's part to
// holding new's part, touching nothing turnwall did not create:
//
//   - the implementation script of a change is Change(old, new);
//   - its backout script is Change(new, old);
//   - the first install is Change(nil, new);
//   - the full removal is Change(old, nil).
//
// The commands are ordered so that no flow both versions allow is dropped
// at any step, and no flow both deny is allowed: new objects before the
// rules that use them, rules widened before narrowed, removals after
// nothing refers to what they remove. Placement on the box (zone and
// interface names, where the rules sit, the model's limits, feeds) comes
// from the target's parameters (opts), which a policy's `device` block
// gives and --param overrides. Output is deterministic.
type Changer interface {
	Backend
	Change(old, new *ir.Program, opts Options) ([]File, error)
}

// BoxModel is a target's model of a box's running configuration, with the
// vendor's own merge semantics, to prove change scripts: applying a script
// to a model must give the model of the other version, leave every
// configuration turnwall does not own byte for byte as it was, and at
// every step decide packets as both versions do where they agree.
type BoxModel interface {
	// Apply runs commands on the configuration, one at a time as the box
	// would; after each command it calls step (when not nil) so a test can
	// check the configuration in between.
	Apply(commands []byte, step func(Config)) error
	// Config is the running configuration now, as it decides packets.
	Config() Config
	// Foreign returns the configuration turnwall does not own, in a
	// canonical text form, so a test can see it untouched.
	Foreign() string
	// Owned returns turnwall's part, in a canonical text form, so a test can
	// compare running(OLD)+script with running(NEW).
	Owned() string
}
