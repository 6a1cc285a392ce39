package ranges

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// jsonKind is the type of a JSON value.
type jsonKind int

const (
	jsonNull jsonKind = iota
	jsonBool
	jsonNumber
	jsonString
	jsonArray
	jsonObject
)

func (k jsonKind) String() string {
	return [...]string{"null", "a boolean", "a number", "a string", "an array", "an object"}[k]
}

// jsonValue is a decoded JSON value that remembers where it starts in the
// input, so that a problem with an entry can name its line and column.
type jsonValue struct {
	kind  jsonKind
	off   int    // byte offset of the value's first byte
	text  string // a string's value, a number or boolean as written
	elems []*jsonValue
	keys  []string // object keys in input order, with vals
	vals  []*jsonValue
}

// get returns an object's member (the last one when a key repeats, as
// encoding/json does), or nil.
func (v *jsonValue) get(key string) *jsonValue {
	if v == nil || v.kind != jsonObject {
		return nil
	}
	for i := len(v.keys) - 1; i >= 0; i-- {
		if v.keys[i] == key {
			return v.vals[i]
		}
	}
	return nil
}

// maxJSONDepth bounds nesting: the provider formats are three levels deep, and
// a hostile file of a million '[' must fail with a message, not exhaust the stack.
const maxJSONDepth = 32

// parseJSON decodes data into a tree of positioned values. Syntax errors are
// *Problem with the position encoding/json reports.
func parseJSON(data []byte) (*jsonValue, error) {
	lines := newLineIndex(data)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	p := &jsonParser{data: data, dec: dec}
	root, err := p.value(0)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = fmt.Errorf("unexpected data after the JSON value")
			if terr != nil && !errors.Is(terr, io.EOF) {
				err = terr
			}
			p.errOff = p.next()
		}
	}
	if err != nil {
		off := p.errOff
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			off = int(syn.Offset)
			if off > 0 {
				off-- // the offset is just past the offending byte
			}
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			off = len(data)
			err = fmt.Errorf("the JSON ends early (truncated download?)")
		}
		line, col := lines.pos(off)
		return nil, &Problem{Line: line, Col: col, Index: -1, Message: "invalid JSON: " + err.Error()}
	}
	return root, nil
}

type jsonParser struct {
	data   []byte
	dec    *json.Decoder
	errOff int
}

// next is the offset of the next token: the decoder's offset is the end of the
// previous token, before any white space, comma or colon.
func (p *jsonParser) next() int {
	off := int(p.dec.InputOffset())
	for off < len(p.data) {
		switch p.data[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
			continue
		}
		break
	}
	return off
}

func (p *jsonParser) value(depth int) (*jsonValue, error) {
	off := p.next()
	p.errOff = off
	if depth > maxJSONDepth {
		return nil, fmt.Errorf("nested more than %d levels deep", maxJSONDepth)
	}
	tok, err := p.dec.Token()
	if err != nil {
		return nil, err
	}
	v := &jsonValue{off: off}
	switch t := tok.(type) {
	case nil:
		v.kind = jsonNull
	case bool:
		v.kind, v.text = jsonBool, strconv.FormatBool(t)
	case json.Number:
		v.kind, v.text = jsonNumber, t.String()
	case string:
		v.kind, v.text = jsonString, t
	case json.Delim:
		switch t {
		case '[':
			v.kind = jsonArray
			for p.dec.More() {
				e, err := p.value(depth + 1)
				if err != nil {
					return nil, err
				}
				v.elems = append(v.elems, e)
			}
		case '{':
			v.kind = jsonObject
			for p.dec.More() {
				p.errOff = p.next()
				k, err := p.dec.Token()
				if err != nil {
					return nil, err
				}
				key, _ := k.(string)
				e, err := p.value(depth + 1)
				if err != nil {
					return nil, err
				}
				v.keys = append(v.keys, key)
				v.vals = append(v.vals, e)
			}
		default:
			return nil, fmt.Errorf("unexpected %q", rune(t))
		}
		p.errOff = p.next()
		if _, err := p.dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
	}
	return v, nil
}

// lineIndex turns byte offsets into 1-based lines and byte columns, as the
// compiler's diagnostics count them.
type lineIndex struct {
	starts []int // offset of each line's first byte
}

func newLineIndex(data []byte) lineIndex {
	starts := []int{0}
	for i, b := range data {
		if b == '\n' {
			starts = append(starts, i+1)
		}
	}
	return lineIndex{starts}
}

func (l lineIndex) pos(off int) (line, col int) {
	lo, hi := 0, len(l.starts)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if l.starts[mid] <= off {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo + 1, off - l.starts[lo] + 1
}
