package store

import (
	"hash/maphash"
	"math"
	"math/bits"
)

// uuidTable is the bulk load's set of UUID eventIDs with the fingerprint
// of the record stored under each: an open-addressing hash table (linear
// probing) in flat arrays of 24-byte slots with an occupancy bitmap.
//
// Why not a Go map: a map[[16]byte]uint64 made for ten million entries
// measured 53 bytes an entry (its groups are sized to powers of two and
// filled to between 7/16 and 7/8), 650 MB of the 800 MB the 10M-event
// load peaked at. This table fills its slots up to maxLoad: 33.5 bytes an
// entry when full, and a shard grows by half when it is.
//
// The slot is found by maphash with a seed of the process's own, not by
// the UUID's bits: whoever writes log files chooses their eventIDs, and
// ids made to share slots would turn every lookup into a walk of the
// table.
type uuidTable struct {
	shards [uuidShards]uuidShard
	seed   maphash.Seed
	n      int // entries in all shards (asked for at every insert)
}

// uuidShards: the table is split by the hash's top bits into shards that
// grow one at a time, so that growing never holds two copies of the whole
// table (at ten million entries, 660 MB for a moment instead of 400).
const uuidShards = 64

// uuidShard is one open-addressing table.
type uuidShard struct {
	slots []uuidSlot
	used  []uint64 // occupancy, one bit per slot
	n     int
}

type uuidSlot struct {
	id [16]byte
	fp uint64
}

// maxLoad is the share of slots a shard fills before it grows (by half):
// linear probing costs about 1/(1-load)² probes for an absent id (13 at
// 0.72, mostly in the same or the next cache line).
const (
	maxLoadNum, maxLoadDen = 18, 25 // 0.72
)

// uuidSlotBytes is what one slot costs, with its occupancy bit.
const uuidSlotBytes = 24

// newUUIDTable makes a table that holds entries ids without growing: each
// shard sized for its share and four standard deviations more (the ids
// fall into shards at random).
func newUUIDTable(entries int) *uuidTable {
	t := &uuidTable{seed: maphash.MakeSeed()}
	share := float64(entries) / uuidShards
	per := int((share + 4*math.Sqrt(share)) * maxLoadDen / maxLoadNum)
	for i := range t.shards {
		t.shards[i].alloc(max(per+1, 64))
	}
	return t
}

func (s *uuidShard) alloc(size int) {
	s.slots = make([]uuidSlot, size)
	s.used = make([]uint64, (size+63)/64)
	s.n = 0
}

// bytes is the memory the table holds.
func (t *uuidTable) bytes() int64 {
	var b int64
	for i := range t.shards {
		b += int64(len(t.shards[i].slots))*uuidSlotBytes + int64(len(t.shards[i].used))*8
	}
	return b
}

func (t *uuidTable) len() int { return t.n }

// locate hashes id: its shard (the top bits) and the hash its slot in the
// shard comes from (the other bits).
func (t *uuidTable) locate(id *[16]byte) (*uuidShard, uint64) {
	h := maphash.Comparable(t.seed, *id)
	return &t.shards[h>>58], h << 6
}

// home is the slot a probe starts at: the hash scaled to the shard's size
// (no power of two needed).
func (s *uuidShard) home(h uint64) int {
	hi, _ := bits.Mul64(h, uint64(len(s.slots)))
	return int(hi)
}

func (s *uuidShard) isUsed(i int) bool { return s.used[i>>6]&(1<<(i&63)) != 0 }

// find returns the slot holding id, or the empty slot where it would go.
func (s *uuidShard) find(id *[16]byte, h uint64) (int, bool) {
	i := s.home(h)
	for {
		if !s.isUsed(i) {
			return i, false
		}
		if s.slots[i].id == *id {
			return i, true
		}
		if i++; i == len(s.slots) {
			i = 0
		}
	}
}

func (t *uuidTable) get(id [16]byte) (uint64, bool) {
	s, h := t.locate(&id)
	i, ok := s.find(&id, h)
	if !ok {
		return 0, false
	}
	return s.slots[i].fp, true
}

// put stores id with fp (replacing the fingerprint of an id stored).
func (t *uuidTable) put(id [16]byte, fp uint64) {
	s, h := t.locate(&id)
	i, ok := s.find(&id, h)
	if ok {
		s.slots[i].fp = fp
		return
	}
	if (s.n+1)*maxLoadDen > len(s.slots)*maxLoadNum {
		t.grow(s)
		i, _ = s.find(&id, h)
	}
	s.slots[i] = uuidSlot{id, fp}
	s.used[i>>6] |= 1 << (i & 63)
	s.n++
	t.n++
}

// grow moves a shard's entries into a shard half as large again.
func (t *uuidTable) grow(s *uuidShard) {
	old, oldUsed := s.slots, s.used
	s.alloc(len(old) + len(old)/2)
	for i := range old {
		if oldUsed[i>>6]&(1<<(i&63)) != 0 {
			_, h := t.locate(&old[i].id)
			j, _ := s.find(&old[i].id, h)
			s.slots[j] = old[i]
			s.used[j>>6] |= 1 << (j & 63)
			s.n++
		}
	}
}

// del removes id. The entries after it in its run move back into the hole
// when their probe passed it (backward-shift deletion: no tombstones, so
// a load that rolls files back does not slow its lookups down).
func (t *uuidTable) del(id [16]byte) {
	s, h := t.locate(&id)
	i, ok := s.find(&id, h)
	if !ok {
		return
	}
	size := len(s.slots)
	for j := i; ; {
		if j++; j == size {
			j = 0
		}
		if !s.isUsed(j) {
			break
		}
		// The entry at j may fill the hole at i if its home is not in
		// the cyclic range (i, j]: its probe then passed i.
		_, hj := t.locate(&s.slots[j].id)
		k := s.home(hj)
		if (j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j)) {
			s.slots[i] = s.slots[j]
			i = j
		}
	}
	s.slots[i] = uuidSlot{}
	s.used[i>>6] &^= 1 << (i & 63)
	s.n--
	t.n--
}
