package usage

import (
	"database/sql/driver"
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/keyceremony/keyceremony/audit/store"
)

// stream makes the one pass over the period's events.
func (b *builder) stream() error {
	sc := b.o.Scope
	var extra string
	var args []any
	args = append(args, sc.From.Unix(), sc.To.Unix())
	if sc.Account != "" || sc.Region != "" {
		ids, err := b.strIDs(sc.Account, sc.Region)
		if err != nil {
			return err
		}
		if sc.Account != "" {
			extra += " AND e.account = " + strconv.FormatInt(ids[sc.Account], 10)
		}
		if sc.Region != "" {
			extra += " AND e.region = " + strconv.FormatInt(ids[sc.Region], 10)
		}
	}
	if sc.KeyARN != "" {
		var ids []int64
		for _, k := range b.keyList {
			if k.inScope {
				ids = append(ids, k.id)
			}
		}
		if len(ids) == 0 {
			ids = []int64{-1}
		}
		extra += " AND (e.key IN " + store.InList(ids) + " OR e.key2 IN " + store.InList(ids) + ")"
	}
	names, err := b.strIDs(append([]string{"ReEncrypt"}, AdminNames...)...)
	if err != nil {
		return err
	}
	b.reencrypt = names["ReEncrypt"]
	admin := map[int64]bool{}
	for _, n := range AdminNames {
		if id, ok := names[n]; ok {
			admin[id] = true
		}
	}
	var adminIDs []int64
	for id := range admin {
		adminIDs = append(adminIDs, id)
	}
	sort.Slice(adminIDs, func(i, j int) bool { return adminIDs[i] < adminIDs[j] })
	packed := packIDs
	if packed {
		var top int64
		if err := b.db.QueryRowContext(b.ctx, IDRangeQuery).Scan(&top); err != nil {
			return fmt.Errorf("read the period's events: %w", err)
		}
		packed = top <= maxPackedID
	}
	query := StreamQuery(extra, adminIDs, packed)
	if sc.KeyARN == "" && !forceIndexPass {
		var n, lo, hi int64
		if err := b.db.QueryRowContext(b.ctx, SpanQuery, sc.From.Unix(), sc.To.Unix()).Scan(&n, &lo, &hi); err != nil {
			return fmt.Errorf("read the period's events: %w", err)
		}
		if n > 0 && float64(hi-lo+1) <= maxSpanWaste*float64(n) {
			query = RowidStreamQuery(extra, adminIDs, packed)
			args = append([]any{lo, hi}, args...)
		}
	}
	b.noKey = newAgg(b.days)
	b.daily = make([]DayCount, b.days)
	b.dig.Section("events")
	// The rows are read from the driver itself: database/sql's Next and
	// Scan cost a third of the pass on a million rows (a lock, a copy and a
	// conversion per value), for values the driver already gives as int64.
	err = b.db.Raw(func(dc any) error {
		q, ok := dc.(driver.QueryerContext)
		if !ok {
			return fmt.Errorf("the SQLite driver (%T) cannot run queries directly", dc)
		}
		nargs := make([]driver.NamedValue, len(args))
		for i, a := range args {
			nargs[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
		}
		rows, err := q.QueryContext(b.ctx, query, nargs)
		if err != nil {
			return err
		}
		defer rows.Close()
		v := make([]driver.Value, len(rows.Columns()))
		return b.streamRows(rows, v, admin, packed)
	})
	if err != nil {
		return fmt.Errorf("read the period's events: %w", err)
	}
	// An identity named by the calling service may gather principals of
	// several accounts: it takes the account of its first event's.
	for _, i := range b.byInv {
		if id := b.idents[i]; id.calls > 0 {
			id.account = ""
			if p := b.princ[id.periodFirstBy]; p != nil {
				id.account = p.acc
			}
		}
	}
	sort.Slice(b.admin, func(i, j int) bool {
		return rowRef{b.admin[i].time, b.admin[i].row}.before(rowRef{b.admin[j].time, b.admin[j].row})
	})
	return nil
}

// evRow is one event of the pass as the reading goroutine decoded it.
type evRow struct {
	id, t, name, cat, k1, k2, pr, inv, ec int64
	admin                                 bool
	evID                                  string // an administrative event's CloudTrail id
}

// chunkRows is the number of rows the reading goroutine hands over at once.
const chunkRows = 2048

// streamRows aggregates the rows of the pass (StreamQuery's columns). A
// goroutine steps SQLite and decodes the rows, a chunk at a time, while
// this one aggregates the chunks before, in the order read: on two cores
// the pass takes about the longer of the two instead of their sum (SQLite
// is two thirds of it). The rows are only touched by the goroutine that
// reads them; the aggregation reads no database.
func (b *builder) streamRows(rows driver.Rows, v []driver.Value, admin map[int64]bool, packed bool) error {
	if want := map[bool]int{true: 7, false: 10}[packed]; len(v) != want {
		return fmt.Errorf("%d columns, want %d", len(v), want)
	}
	const buffers = 6
	full, free := make(chan []evRow, buffers), make(chan []evRow, buffers)
	for range buffers {
		free <- make([]evRow, 0, chunkRows)
	}
	stop := make(chan struct{})
	readErr := make(chan error, 1)
	go func() {
		defer close(full)
		readErr <- readRows(rows, v, admin, packed, full, free, stop)
	}()
	var err error
	for chunk := range full {
		if err == nil {
			if err = b.ctx.Err(); err != nil {
				close(stop) // the reader ends; its chunks are drained below
			} else {
				for i := range chunk {
					b.aggregate(&chunk[i])
				}
			}
		}
		free <- chunk[:0]
	}
	if rerr := <-readErr; err == nil {
		err = rerr
	}
	return err
}

// readRows decodes the rows into chunks taken from free and sends them on
// full, until the rows end or stop is closed.
func readRows(rows driver.Rows, v []driver.Value, admin map[int64]bool, packed bool, full, free chan []evRow, stop chan struct{}) error {
	const low = 1<<32 - 1
	var chunk []evRow
	for {
		if chunk == nil {
			select {
			case chunk = <-free:
			case <-stop:
				return nil
			}
		}
		err := rows.Next(v)
		if err == nil {
			var r evRow
			var evID driver.Value
			if packed {
				r.id, r.t, r.ec, evID = asInt(v[0]), asInt(v[1]), asInt(v[5]), v[6]
				nc, kk, pi := asInt(v[2]), asInt(v[3]), asInt(v[4])
				r.name, r.cat, r.k1, r.k2, r.pr, r.inv = nc&low, nc>>32, kk&low, kk>>32, pi&low, pi>>32
			} else {
				r.id, r.t, r.name, r.cat, r.k1 = asInt(v[0]), asInt(v[1]), asInt(v[2]), asInt(v[3]), asInt(v[4])
				r.k2, r.pr, r.inv, r.ec, evID = asInt(v[5]), asInt(v[6]), asInt(v[7]), asInt(v[8]), v[9]
			}
			if admin[r.name] {
				r.admin, r.evID = true, store.EventIDString(evID)
			}
			chunk = append(chunk, r)
			if len(chunk) < chunkRows {
				continue
			}
		} else if err != io.EOF {
			return err
		}
		if len(chunk) > 0 {
			select {
			case full <- chunk:
			case <-stop:
				return nil
			}
		}
		if err == io.EOF {
			return nil
		}
		chunk = nil
	}
}

// aggregate counts one event of the pass.
func (b *builder) aggregate(r *evRow) {
	reencrypt := b.reencrypt
	id, t, name, cat, k1, k2, pr, inv, ec := r.id, r.t, r.name, r.cat, r.k1, r.k2, r.pr, r.inv, r.ec
	b.dig.Ints(id, t, name, cat, k1, k2, pr, inv, ec)
	b.tot.Events++
	crypto := cat == 1
	failed := ec != 0
	di := int((t - b.from) / 86400)
	off := crypto && b.bh.outside(t)
	idx := b.identOf(pr, inv)
	id0 := b.idents[idx]
	// Rows may come in row id order: every "first" and "last" compares
	// (time, id) rather than trusting the order.
	ref := rowRef{t, id}
	if id0.calls == 0 || ref.before(rowRef{id0.periodFirst, id0.periodFirstRow}) {
		id0.periodFirst, id0.periodFirstRow, id0.periodFirstBy = t, id, pr
	}
	id0.calls++
	if failed {
		id0.failed++
		b.tot.Failed++
	}
	if off {
		id0.off++
		b.tot.OffHours++
	}
	if crypto {
		b.tot.CryptoCalls++
		b.daily[di].Calls++
		if failed {
			b.daily[di].Failed++
		}
	}
	callerAcct := ""
	if p := b.princ[pr]; p != nil {
		callerAcct = p.acc
	}
	cross := false
	add := func(a *agg, key int64, role int64) {
		op := name * 4
		if name == reencrypt {
			op += role
		}
		a.tally(op, idx, inv, callerAcct, ec, 1)
		if crypto {
			a.crypto++
			a.dayCount(di).Calls++
			if failed {
				a.dayCount(di).Failed++
			} else {
				if a.firstUse == 0 || t < a.firstUse {
					a.firstUse = t
				}
				if a.lastUseRow == 0 || !ref.before(rowRef{a.lastUse, a.lastUseRow}) {
					a.lastUse, a.lastUseRow = t, id
				}
			}
			if off {
				a.off++
			}
		}
		if key != 0 {
			id0.keys[key] = true
			if ki := b.keys[key]; ki != nil && callerAcct != "" && callerAcct != ki.account {
				if f, ok := a.crossFirst[callerAcct]; !ok || ref.before(f) {
					a.crossFirst[callerAcct] = ref
				}
				cross = true
			}
		}
	}
	if k1 == 0 && k2 == 0 {
		add(b.noKey, 0, 0)
	}
	if k1 != 0 {
		add(b.keyAgg(k1), k1, 1)
	}
	if k2 != 0 && (k2 != k1 || name == reencrypt) {
		add(b.keyAgg(k2), k2, 2)
	}
	if cross {
		b.tot.CrossAccount++
	}
	if r.admin {
		b.admin = append(b.admin, adminRow{row: id, time: t, name: name, key: k1, principal: pr, invoked: inv, err: ec,
			eventID: r.evID})
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func asInt(v any) int64 {
	if i, ok := v.(int64); ok {
		return i
	}
	return 0
}

func (b *builder) keyAgg(id int64) *agg {
	k := b.keys[id]
	if k == nil { // a key row added after the key list was read (an ingest running)
		k = &keyInfo{id: id, arn: "key row " + strconv.FormatInt(id, 10), inScope: true}
		b.keys[id] = k
		b.keyList = append(b.keyList, k)
	}
	if k.agg == nil {
		k.agg = newAgg(b.days)
	}
	return k.agg
}
