package apply

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"sync/atomic"

	"go4.org/netipx"
	"golang.org/x/sys/unix"
)

// forEachElement streams the elements of a set: fn gets each element's key
// (valid during the call only) and whether it ends an interval.
func forEachElement(s *sock, table, set string, fn func(key []byte, end bool)) error {
	var a attrs
	a.str(unix.NFTA_SET_ELEM_LIST_TABLE, table)
	a.str(unix.NFTA_SET_ELEM_LIST_SET, set)
	notOwned := &NotOwnedError{Table: table, What: fmt.Sprintf("set %s with elements carrying data, timeouts, expressions or concatenated ranges", set)}
	err := s.each(msgType(unix.NFT_MSG_GETSETELEM), unix.NLM_F_DUMP, unix.NFPROTO_INET, a.b, func(m message) error {
		if len(m.data) < nfgenHeaderLen {
			return nil
		}
		return walkAttrs(m.data[nfgenHeaderLen:], func(typ uint16, list []byte) error {
			if typ != unix.NFTA_SET_ELEM_LIST_ELEMENTS {
				return nil
			}
			return walkAttrs(list, func(_ uint16, item []byte) error {
				var key []byte
				end := false
				err := walkAttrs(item, func(typ uint16, v []byte) error {
					switch typ {
					case unix.NFTA_SET_ELEM_KEY:
						return walkAttrs(v, func(typ uint16, v []byte) error {
							if typ == unix.NFTA_DATA_VALUE {
								key = v
							}
							return nil
						})
					case unix.NFTA_SET_ELEM_FLAGS:
						end = be32(v)&unix.NFT_SET_ELEM_INTERVAL_END != 0
					case unix.NFTA_SET_ELEM_DATA, unix.NFTA_SET_ELEM_TIMEOUT, unix.NFTA_SET_ELEM_EXPIRATION, unix.NFTA_SET_ELEM_EXPR, nftaSetElemObjref, nftaSetElemKeyEnd, nftaSetElemExprs:
						return notOwned
					}
					return nil
				})
				if err != nil {
					return err
				}
				if key == nil {
					return fmt.Errorf("set %s: element without a key", set)
				}
				fn(key, end)
				return nil
			})
		})
	})
	if err != nil && !errors.As(err, new(*NotOwnedError)) && !errors.Is(err, errInterrupted) {
		return fmt.Errorf("reading the elements of set %s: %w", set, err)
	}
	return err
}

// readElements collects a (small) set's elements.
func readElements(s *sock, table, set string) ([]element, error) {
	var out []element
	err := forEachElement(s, table, set, func(key []byte, end bool) {
		out = append(out, element{key: append([]byte(nil), key...), end: end})
	})
	return out, err
}

// setReads counts the address sets whose elements were read, for the tests
// of planning from a record.
var setReads atomic.Int64

type addrSetResult struct {
	ranges []netipx.IPRange
	marker bool
}

// readAddrSets reads the elements of address sets. (The kernel walks an
// interval set from its first element again for each 32 KiB dump message,
// so reading a set of 200,000 elements takes about half a second of kernel
// time; reading sets in parallel does not help.)
func readAddrSets(s *sock, table string, sets []liveSet) ([]addrSetResult, error) {
	setReads.Add(int64(len(sets)))
	out := make([]addrSetResult, len(sets))
	readOne := func(s *sock, i int) error {
		ls := sets[i]
		var elems []addrElem
		var bad error
		err := forEachElement(s, table, ls.name, func(key []byte, end bool) {
			a, ok := netip.AddrFromSlice(key)
			if !ok || len(key) != int(ls.keyLen) {
				bad = &NotOwnedError{Table: table, What: fmt.Sprintf("set %s with an element of %d bytes", ls.name, len(key))}
				return
			}
			elems = append(elems, addrElem{a, end})
		})
		if err == nil {
			err = bad
		}
		if err != nil {
			return err
		}
		ranges, marker, err := addrRanges(elems)
		if err != nil {
			return &NotOwnedError{Table: table, What: fmt.Sprintf("set %s with %v", ls.name, err)}
		}
		out[i] = addrSetResult{ranges, marker}
		return nil
	}
	for i := range sets {
		if err := readOne(s, i); err != nil {
			return nil, err
		}
	}
	return out, nil
}

type addrElem struct {
	addr netip.Addr
	end  bool
}

func (a addrElem) compare(b addrElem) int {
	if c := a.addr.Compare(b.addr); c != 0 {
		return c
	}
	switch { // an end closes an interval before a start opens the next
	case a.end == b.end:
		return 0
	case a.end:
		return -1
	}
	return 1
}

// addrRanges turns an address set's elements into its intervals (see
// elemRanges). The kernel dumps elements in descending order.
func addrRanges(elems []addrElem) ([]netipx.IPRange, bool, error) {
	if !slices.IsSortedFunc(elems, addrElem.compare) {
		slices.Reverse(elems)
		if !slices.IsSortedFunc(elems, addrElem.compare) {
			slices.SortFunc(elems, addrElem.compare)
		}
	}
	var out []netipx.IPRange
	var open netip.Addr
	marker := false
	for i, e := range elems {
		switch {
		case !e.end && open.IsValid():
			return nil, false, fmt.Errorf("overlapping intervals at %v", e.addr)
		case !e.end:
			open = e.addr
		case open.IsValid():
			to := e.addr.Prev()
			if !to.IsValid() || to.Less(open) {
				return nil, false, fmt.Errorf("an empty interval at %v", e.addr)
			}
			out = append(out, netipx.IPRangeFrom(open, to))
			open = netip.Addr{}
		case i == 0 && e.addr.IsUnspecified():
			marker = true
		default:
			return nil, false, fmt.Errorf("an interval end without a start at %v", e.addr)
		}
	}
	if open.IsValid() {
		top := netip.MustParseAddr("255.255.255.255")
		if open.Is6() {
			top = netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
		}
		out = append(out, netipx.IPRangeFrom(open, top))
	}
	return out, marker, nil
}

// keyRange is an inclusive range of big-endian keys.
type keyRange struct{ from, to []byte }

// elemRanges turns interval set elements into ranges. nft writes an end
// element at the zero key before a first range that does not start there;
// it is reported as marker.
func elemRanges(elems []element, keyLen int) (ranges []keyRange, marker bool, err error) {
	sorted := append([]element(nil), elems...)
	sort.Slice(sorted, func(i, j int) bool {
		if c := bytes.Compare(sorted[i].key, sorted[j].key); c != 0 {
			return c < 0
		}
		return sorted[i].end && !sorted[j].end // an end closes before a start opens
	})
	var open []byte
	for i, e := range sorted {
		if len(e.key) != keyLen {
			return nil, false, fmt.Errorf("an element of %d bytes in a set of %d-byte keys", len(e.key), keyLen)
		}
		switch {
		case !e.end && open != nil:
			return nil, false, fmt.Errorf("overlapping intervals at %x", e.key)
		case !e.end:
			open = e.key
		case open != nil:
			to, ok := decrement(e.key)
			if !ok || bytes.Compare(to, open) < 0 {
				return nil, false, fmt.Errorf("an empty interval at %x", e.key)
			}
			ranges = append(ranges, keyRange{open, to})
			open = nil
		case i == 0 && isZero(e.key):
			marker = true
		default:
			return nil, false, fmt.Errorf("an interval end without a start at %x", e.key)
		}
	}
	if open != nil {
		top := bytes.Repeat([]byte{0xff}, keyLen)
		ranges = append(ranges, keyRange{open, top})
	}
	return ranges, marker, nil
}

func decrement(k []byte) ([]byte, bool) {
	out := append([]byte(nil), k...)
	for i := len(out) - 1; i >= 0; i-- {
		if out[i] > 0 {
			out[i]--
			return out, true
		}
		out[i] = 0xff
	}
	return nil, false
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
