package readiness

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Store keeps agents' results. The default is an embedded bbolt file that
// survives restarts; a memory store serves tests and --db "".
type Store interface {
	Add(Record) error
	// List returns records at or after since, oldest first, at most limit.
	List(since time.Time, limit int) ([]Record, error)
	Close() error
}

// DefaultMaxRecords bounds a store: the oldest records go first.
const DefaultMaxRecords = 100000

var bucket = []byte("results")

// BoltStore is a Store in one bbolt file.
type BoltStore struct {
	db  *bolt.DB
	max int
	mu  sync.Mutex
	seq uint32
}

// OpenBolt opens (or creates) a result store file. A file that is not a
// bbolt database, or is locked by another process for a second, is an
// error.
func OpenBolt(path string, maxRecords int) (*BoltStore, error) {
	if maxRecords <= 0 {
		maxRecords = DefaultMaxRecords
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("result store %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("result store %s: %w", path, err)
	}
	return &BoltStore{db: db, max: maxRecords}, nil
}

// key orders records by time: 8 bytes of nanoseconds, 4 of a sequence.
func (s *BoltStore) key(at time.Time) []byte {
	s.mu.Lock()
	s.seq++
	seq := s.seq
	s.mu.Unlock()
	k := make([]byte, 12)
	binary.BigEndian.PutUint64(k, uint64(at.UnixNano()))
	binary.BigEndian.PutUint32(k[8:], seq)
	return k
}

// Add stores a record and drops the oldest beyond the store's bound.
func (s *BoltStore) Add(r Record) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if err := b.Put(s.key(r.At), v); err != nil {
			return err
		}
		for n := b.Stats().KeyN + 1 - s.max; n > 0; n-- {
			c := b.Cursor()
			k, _ := c.First()
			if k == nil {
				break
			}
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// List returns records at or after since, oldest first.
func (s *BoltStore) List(since time.Time, limit int) ([]Record, error) {
	var out []Record
	start := make([]byte, 8)
	if !since.IsZero() {
		binary.BigEndian.PutUint64(start, uint64(since.UnixNano()))
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		for k, v := c.Seek(start); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return errors.New("result store holds a record that is not JSON")
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// Close closes the file.
func (s *BoltStore) Close() error { return s.db.Close() }

// MemStore is a Store in memory.
type MemStore struct {
	mu   sync.Mutex
	recs []Record
	max  int
}

// NewMemStore returns an empty memory store.
func NewMemStore(maxRecords int) *MemStore {
	if maxRecords <= 0 {
		maxRecords = DefaultMaxRecords
	}
	return &MemStore{max: maxRecords}
}

func (m *MemStore) Add(r Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = append(m.recs, r)
	if len(m.recs) > m.max {
		m.recs = append([]Record(nil), m.recs[len(m.recs)-m.max:]...)
	}
	return nil
}

func (m *MemStore) List(since time.Time, limit int) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Record
	for _, r := range m.recs {
		if !r.At.Before(since) && (limit <= 0 || len(out) < limit) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *MemStore) Close() error { return nil }
