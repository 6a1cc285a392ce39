package lazyre

import (
	"sync"
	"testing"
)

func TestMatchString(t *testing.T) {
	r := New(`^[a-z]{1,3}$`)
	if r.re != nil {
		t.Fatal("compiled before first use")
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if !r.MatchString("abc") || r.MatchString("abcd") || r.MatchString("A") {
				t.Error("wrong match")
			}
		})
	}
	wg.Wait()
	if r.String() != `^[a-z]{1,3}$` || r.Regexp().String() != r.String() {
		t.Fatal("String differs from the expression")
	}
}

func TestBadExpressionPanicsOnUse(t *testing.T) {
	r := New(`(`)
	defer func() {
		if recover() == nil {
			t.Fatal("a bad expression did not panic")
		}
	}()
	r.MatchString("x")
}
