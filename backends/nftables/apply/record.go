package apply

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"go4.org/netipx"
	"golang.org/x/sys/unix"

	"github.com/turnwall/turnwall/backends/nftables"
)

// The record of the last verified apply lets the next apply skip reading
// the sets' elements, which is the slow part of planning: the kernel's set
// element dump walks an interval set from its first element again for every
// 32 KiB message, so reading 200,000 elements takes seconds.
//
// After an apply whose read-back matched (or a plan that found nothing to
// change), the state directory keeps, per target, the ruleset generation the
// kernel then had, which kernel and network namespace it was (boot id and
// the namespace's cookie, which the kernel never reuses while it runs), a
// digest of the table's declarations, chains and rules, and every set's
// intervals. The kernel moves the generation on every committed change in
// the namespace, by any program. So when the next apply finds the same
// generation in the same namespace, nothing was committed since and the
// table holds exactly what was verified: the declarations, chains and rules
// are still read (a few messages), and the sets' intervals are taken from
// the record. When the generation moved, the record is ignored and the live
// table read in full, as without a record.
//
// The batch then carries the generation it was planned at, so a change that
// lands between this check and the commit makes the kernel refuse the whole
// batch; the apply plans again from a full read.

// recordMagic starts a record file (the version is part of it).
const recordMagic = "turnwall applied table v1\n"

// soNetnsCookie is SO_NETNS_COOKIE (asm-generic/socket.h): a 64-bit id of
// the socket's network namespace, unique until the kernel reboots (Linux
// 5.14 and later).
const soNetnsCookie = 71

// record is what the kernel held after the last verified apply of a target.
type record struct {
	BootID     string      `json:"boot_id"`
	Cookie     uint64      `json:"netns_cookie"`
	Generation uint32      `json:"generation"`
	Table      string      `json:"table"`
	Schema     string      `json:"schema"` // sha256 of the table's canonical text without elements
	Sets       []recordSet `json:"sets"`

	ranges map[string][]netipx.IPRange
}

type recordSet struct {
	Name      string `json:"name"`
	V6        bool   `json:"v6,omitempty"`
	Marker    bool   `json:"marker,omitempty"`
	Intervals int    `json:"intervals"`
}

func (st State) recordPath(t Target) string {
	return filepath.Join(st.Dir, "applied-"+key(t)+".bin")
}

// schemaDigest digests a table's declarations, chains and rules.
func schemaDigest(rs *nftables.Ruleset) string {
	sum := sha256.Sum256(canonical(rs, nil, false, nil).Text())
	return hex.EncodeToString(sum[:])
}

// netnsCookie is the cookie of the socket's network namespace.
func netnsCookie(s *sock) (uint64, error) {
	c, err := unix.GetsockoptUint64(s.fd, unix.SOL_SOCKET, soNetnsCookie)
	if err != nil {
		return 0, fmt.Errorf("network namespace cookie: %w", err)
	}
	return c, nil
}

// newRecord describes what the kernel holds after a verified apply of p at
// generation gen, or nil when that is not known exactly: sets a resolver
// fills hold addresses the read-back does not check.
func newRecord(s *sock, p *Plan, gen uint32) *record {
	if len(p.fqdn) > 0 || gen == 0 {
		return nil
	}
	cookie, err := netnsCookie(s)
	if err != nil {
		return nil
	}
	r := &record{BootID: bootID(), Cookie: cookie, Generation: gen, Table: p.Table, Schema: schemaDigest(p.want),
		ranges: map[string][]netipx.IPRange{}}
	if r.BootID == "" {
		return nil
	}
	for _, set := range p.want.Sets {
		rs := p.wantRanges[set.Name]
		r.Sets = append(r.Sets, recordSet{Name: set.Name, V6: set.V6, Marker: len(rs) > 0 && !isZeroAddr(rs[0].From()), Intervals: len(rs)})
		r.ranges[set.Name] = rs
	}
	return r
}

// encode writes the record: the magic, the length of the JSON header, the
// header, each set's intervals as first and last address, and a SHA-256 of
// all of it, so that a torn or altered file is never taken for a record.
func (r *record) encode() []byte {
	head, _ := json.Marshal(r)
	n := len(recordMagic) + 4 + len(head) + sha256.Size
	for _, s := range r.Sets {
		n += s.Intervals * 2 * keyLen(s.V6)
	}
	b := make([]byte, 0, n)
	b = append(b, recordMagic...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(head)))
	b = append(b, head...)
	for _, s := range r.Sets {
		for _, x := range r.ranges[s.Name] {
			b = append(b, x.From().AsSlice()...)
			b = append(b, x.To().AsSlice()...)
		}
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

func keyLen(v6 bool) int {
	if v6 {
		return 16
	}
	return 4
}

func decodeRecord(b []byte) (*record, error) {
	if len(b) < len(recordMagic)+4+sha256.Size || !bytes.HasPrefix(b, []byte(recordMagic)) {
		return nil, errors.New("not a record of an applied table")
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, errors.New("the record's checksum does not match")
	}
	body = body[len(recordMagic):]
	n := int(binary.BigEndian.Uint32(body))
	if n > len(body)-4 {
		return nil, errors.New("truncated record")
	}
	r := &record{}
	if err := json.Unmarshal(body[4:4+n], r); err != nil {
		return nil, err
	}
	body = body[4+n:]
	r.ranges = make(map[string][]netipx.IPRange, len(r.Sets))
	for _, s := range r.Sets {
		k := keyLen(s.V6)
		if s.Intervals < 0 || s.Intervals*2*k > len(body) {
			return nil, errors.New("truncated record")
		}
		rs := make([]netipx.IPRange, s.Intervals)
		for i := range rs {
			from, _ := netip.AddrFromSlice(body[:k])
			to, _ := netip.AddrFromSlice(body[k : 2*k])
			rs[i] = netipx.IPRangeFrom(from, to)
			body = body[2*k:]
		}
		r.ranges[s.Name] = rs
	}
	if len(body) != 0 {
		return nil, errors.New("trailing bytes in the record")
	}
	return r, nil
}

// readRecord returns the record of a target, nil when there is none or it
// cannot be used.
func (st State) readRecord(t Target) *record {
	if st.Dir == "" {
		return nil
	}
	data, err := os.ReadFile(st.recordPath(t))
	if err != nil {
		return nil
	}
	r, err := decodeRecord(data)
	if err != nil || r.Table != t.Table {
		return nil
	}
	return r
}

// writeRecord saves a record, or removes the old one when r is nil. The
// file is not synced: after a crash the boot id differs anyway, and the
// checksum rejects a torn file.
func (st State) writeRecord(t Target, r *record) error {
	if r == nil {
		return st.removeRecord(t)
	}
	if err := st.ensure(); err != nil {
		return err
	}
	path := st.recordPath(t)
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(r.encode())
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

func (st State) removeRecord(t Target) error {
	if st.Dir == "" {
		return nil
	}
	err := os.Remove(st.recordPath(t))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// fromRecord reads the live table without its sets' elements and fills them
// in from the record, when the record describes this kernel, this network
// namespace and the current generation, and the table's declarations,
// chains and rules are the recorded ones. It returns nil (and no error)
// when the record does not apply: the caller then reads everything.
func fromRecord(s *sock, table string, r *record) (*Snapshot, error) {
	if r == nil || r.Table != table || r.BootID != bootID() {
		return nil, nil
	}
	if cookie, err := netnsCookie(s); err != nil || cookie != r.Cookie {
		return nil, nil
	}
	g, err := genID(s)
	if err != nil {
		return nil, err
	}
	if g != r.Generation {
		return nil, nil
	}
	skip := make(map[string]bool, len(r.Sets))
	for _, set := range r.Sets {
		skip[set.Name] = true
	}
	snap, err := readExcept(s, table, skip)
	if err != nil {
		return nil, err
	}
	if snap.genID != r.Generation || !snap.Exists || schemaDigest(snap.Ruleset) != r.Schema || len(snap.Ruleset.Sets) != len(r.Sets) {
		return nil, nil
	}
	for i, set := range snap.Ruleset.Sets {
		rs := r.Sets[i]
		if set.Name != rs.Name || set.V6 != rs.V6 {
			return nil, nil
		}
		snap.Ranges[set.Name] = r.ranges[set.Name]
		snap.markers[set.Name] = rs.Marker
	}
	return snap, nil
}

// readWithRecord reads the live table, its sets' elements from the record
// when it still describes the kernel.
func readWithRecord(t Target, r *record) (*Snapshot, bool, error) {
	s, err := t.open()
	if err != nil {
		return nil, false, err
	}
	defer s.close()
	snap, err := fromRecord(s, t.Table, r)
	if err != nil || snap != nil {
		return snap, snap != nil, err
	}
	snap, err = read(s, t.Table)
	return snap, false, err
}

// PlanFor plans applying want as the package's PlanFor does, taking the sets'
// elements from the record of the last verified apply when it still
// describes the kernel (the ruleset generation has not moved).
func (st State) PlanFor(t Target, want *nftables.Ruleset) (*Plan, error) {
	live, _, err := readWithRecord(t, st.readRecord(t))
	if err != nil {
		return nil, err
	}
	return NewPlan(live, want)
}
