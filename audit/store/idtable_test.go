package store

import (
	"math/rand/v2"
	"testing"
)

// TestUUIDTableAgainstAMap runs random puts, deletes and lookups on small
// tables (runs that wrap around the end, growth, deletes inside long
// runs) and compares every answer with a Go map's.
func TestUUIDTableAgainstAMap(t *testing.T) {
	for _, c := range []struct {
		name        string
		sizeFor     int // entries the table is made for
		ids, ops    int // distinct ids drawn from, operations
		putPct, del int // share of puts and deletes, percent
	}{
		// 64 shards of at least 64 slots: 3,500 ids fill them to the
		// brim, with runs that wrap around a shard's end.
		{"full shards, wrapping runs", 1, 3500, 200000, 50, 40},
		{"growth from the minimum", 1, 30000, 100000, 80, 10},
		{"mostly deletes", 3000, 4000, 100000, 30, 60},
		{"no deletes", 10000, 20000, 50000, 80, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(c.ops)))
			pool := make([][16]byte, c.ids)
			for i := range pool {
				for j := range pool[i] {
					pool[i][j] = byte(rng.IntN(256))
				}
			}
			tab := newUUIDTable(c.sizeFor)
			want := map[[16]byte]uint64{}
			for op := range c.ops {
				id := pool[rng.IntN(len(pool))]
				switch r := rng.IntN(100); {
				case r < c.putPct:
					fp := rng.Uint64()
					tab.put(id, fp)
					want[id] = fp
				case r < c.putPct+c.del:
					tab.del(id)
					delete(want, id)
				}
				got, ok := tab.get(id)
				if w, wok := want[id]; ok != wok || got != w {
					t.Fatalf("op %d: get = %d, %v; want %d, %v", op, got, ok, w, wok)
				}
				if tab.len() != len(want) {
					t.Fatalf("op %d: len %d, want %d", op, tab.len(), len(want))
				}
			}
			// Every id, present or not, answers as the map does.
			for _, id := range pool {
				got, ok := tab.get(id)
				if w, wok := want[id]; ok != wok || got != w {
					t.Fatalf("end: get = %d, %v; want %d, %v", got, ok, w, wok)
				}
			}
			for i := range tab.shards {
				sh := &tab.shards[i]
				if load := float64(sh.n) / float64(len(sh.slots)); load > 0.72 {
					t.Errorf("shard %d: load %.2f past the maximum 0.72", i, load)
				}
			}
		})
	}
}

func slots(t *uuidTable) int {
	n := 0
	for i := range t.shards {
		n += len(t.shards[i].slots)
	}
	return n
}

// TestUUIDTableSize: the table made for n entries holds them without
// growing, at about 34 bytes an entry at a million (a map measured 53).
func TestUUIDTableSize(t *testing.T) {
	const n = 1000000
	tab := newUUIDTable(n)
	before := slots(tab)
	for i := range n {
		var id [16]byte
		id[0], id[1], id[2] = byte(i), byte(i>>8), byte(i>>16)
		tab.put(id, uint64(i))
	}
	if slots(tab) != before {
		t.Errorf("made for %d entries, the table grew from %d to %d slots", n, before, slots(tab))
	}
	if per := float64(tab.bytes()) / n; per > 35 {
		t.Errorf("%.1f bytes an entry, want at most 34", per)
	}
}
