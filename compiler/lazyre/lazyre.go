// Package lazyre holds regular expressions that are compiled on first use
// instead of at program start: every turnwall command starts the one binary,
// and compiling each package's patterns at init cost every command,
// `validate` and `compile` included, more than some of their own work.
package lazyre

import (
	"regexp"
	"sync"
)

// Regexp is a regular expression compiled on its first use, once, for any
// number of goroutines.
type Regexp struct {
	expr string
	once sync.Once
	re   *regexp.Regexp
}

// New returns the expression, to be compiled when first used. A bad
// expression panics then, as regexp.MustCompile does (tests that use it
// find it).
func New(expr string) *Regexp { return &Regexp{expr: expr} }

// Regexp returns the compiled expression.
func (r *Regexp) Regexp() *regexp.Regexp {
	r.once.Do(func() { r.re = regexp.MustCompile(r.expr) })
	return r.re
}

// MatchString reports whether s matches the expression.
func (r *Regexp) MatchString(s string) bool { return r.Regexp().MatchString(s) }

// String returns the expression's source text.
func (r *Regexp) String() string { return r.expr }
