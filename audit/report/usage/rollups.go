package usage

import (
	"fmt"
	"strconv"

	"github.com/keyceremony/keyceremony/audit/store"
)

// The report from the rollups (store/rollups.go): a group of events of one
// day, account, region, operation, key pair, principal, calling service
// and error counts in every figure like its events one by one, its first
// and last event stand for theirs in every "first" and "last", and its
// count per UTC hour gives the off-hours figures. The administrative
// events, listed one by one, are read from the events (a few percent of
// them, through the name index). The events are read instead when the
// rollups cannot answer exactly: a period that does not start and end at
// UTC midnight, or business hours that change within a UTC hour (a time
// zone whose offset is not a whole number of hours).

// forceEventPass makes the report read every event even when the rollups
// could answer (tests compare both).
var forceEventPass = false

// rollupWhere selects the period's groups in scope (on the rollups table).
func (b *builder) rollupWhere(extraIDs map[string]int64) (string, []any) {
	sc := b.o.Scope
	from := store.UnixDay(sc.From.Unix())
	to := store.UnixDay(sc.To.Unix() - 1)
	where := "day >= ? AND day <= ?"
	args := []any{from, to}
	// A string never stored names no event (0 would mean "none" here).
	id := func(s string) string {
		if v, ok := extraIDs[s]; ok {
			return strconv.FormatInt(v, 10)
		}
		return "-1"
	}
	if sc.Account != "" {
		where += " AND account = " + id(sc.Account)
	}
	if sc.Region != "" {
		where += " AND region = " + id(sc.Region)
	}
	if sc.KeyARN != "" {
		ids := b.scopeKeyIDs()
		where += " AND (key IN " + store.InList(ids) + " OR key2 IN " + store.InList(ids) + ")"
	}
	return where, args
}

// scopeKeyIDs are the ids of the keys in scope ({-1} for none).
func (b *builder) scopeKeyIDs() []int64 {
	var ids []int64
	for _, k := range b.keyList {
		if k.inScope {
			ids = append(ids, k.id)
		}
	}
	if len(ids) == 0 {
		ids = []int64{-1}
	}
	return ids
}

// rollupsAnswer tells whether the rollups give exactly what the events
// would: whole UTC days, and business hours constant within every UTC
// hour of the period.
func (b *builder) rollupsAnswer() bool {
	sc := b.o.Scope
	from, to := sc.From.Unix(), sc.To.Unix()
	if forceEventPass || from%86400 != 0 || to%86400 != 0 {
		return false
	}
	for h := from; h < to; h += 3600 {
		out := b.bh.outside(h)
		for q := int64(900); q < 3600; q += 900 {
			if b.bh.outside(h+q) != out {
				return false
			}
		}
	}
	return true
}

// digestRollups feeds the period's groups in scope to the input digest:
// the report's input is the same whichever of the two passes read it.
func (b *builder) digestRollups(where string, args []any) error {
	b.dig.Section("events")
	return store.ScanRollups(b.ctx, b.db, where, args, func(k store.RollupKey, v *store.RollupVal) error {
		b.digestGroup(k, v)
		return nil
	})
}

func (b *builder) digestGroup(k store.RollupKey, v *store.RollupVal) {
	vals := make([]int64, 0, 39)
	vals = append(vals, k.Day, k.Account, k.Region, k.Name, k.Category, k.Key, k.Key2, k.Principal, k.InvokedBy, k.ErrorCode,
		v.Events, v.FirstTime, v.FirstID, v.LastTime, v.LastID)
	vals = append(vals, v.Hours[:]...)
	b.dig.Ints(vals...)
}

// streamRollups is the pass over the period's groups.
func (b *builder) streamRollups(where string, args []any) error {
	reencrypt := b.reencrypt
	b.dig.Section("events")
	n := 0
	return store.ScanRollups(b.ctx, b.db, where, args, func(k store.RollupKey, v *store.RollupVal) error {
		if n++; n%65536 == 0 && b.ctx.Err() != nil {
			return b.ctx.Err()
		}
		b.digestGroup(k, v)
		name, cat, k1, k2, pr, inv, ec, cnt := k.Name, k.Category, k.Key, k.Key2, k.Principal, k.InvokedBy, k.ErrorCode, v.Events
		b.tot.Events += cnt
		crypto := cat == 1
		failed := ec != 0
		di := int(k.Day - b.from/86400)
		var off int64
		if crypto {
			for h, c := range v.Hours {
				if c != 0 && b.bh.outside(k.Day*86400+int64(h)*3600) {
					off += c
				}
			}
		}
		idx := b.identOf(pr, inv)
		id0 := b.idents[idx]
		first := rowRef{v.FirstTime, v.FirstID}
		last := rowRef{v.LastTime, v.LastID}
		if id0.calls == 0 || first.before(rowRef{id0.periodFirst, id0.periodFirstRow}) {
			id0.periodFirst, id0.periodFirstRow, id0.periodFirstBy = first.t, first.id, pr
		}
		id0.calls += cnt
		if failed {
			id0.failed += cnt
			b.tot.Failed += cnt
		}
		id0.off += off
		b.tot.OffHours += off
		if crypto {
			b.tot.CryptoCalls += cnt
			b.daily[di].Calls += cnt
			if failed {
				b.daily[di].Failed += cnt
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
			a.tally(op, idx, inv, callerAcct, ec, cnt)
			if crypto {
				a.crypto += cnt
				a.daily[di].Calls += cnt
				if failed {
					a.daily[di].Failed += cnt
				} else {
					if a.firstUse == 0 || first.t < a.firstUse {
						a.firstUse = first.t
					}
					if a.lastUseRow == 0 || !last.before(rowRef{a.lastUse, a.lastUseRow}) {
						a.lastUse, a.lastUseRow = last.t, last.id
					}
				}
				a.off += off
			}
			if key != 0 {
				id0.keys[key] = true
				if ki := b.keys[key]; ki != nil && callerAcct != "" && callerAcct != ki.account {
					if f, ok := a.crossFirst[callerAcct]; !ok || first.before(f) {
						a.crossFirst[callerAcct] = first
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
			b.tot.CrossAccount += cnt
		}
		return nil
	})
}

// adminEvents lists the period's administrative events in scope (the
// rollups count them; the report names each).
func (b *builder) adminEvents(extra string, adminIDs []int64) error {
	if len(adminIDs) == 0 {
		return nil
	}
	sc := b.o.Scope
	rows, err := b.db.QueryContext(b.ctx, `SELECT e.id, e.time, e.name, coalesce(e.key, 0), coalesce(e.principal, 0),
		coalesce(e.invoked_by, 0), coalesce(e.error_code, 0), e.event_id FROM events e
		WHERE e.name IN `+store.InList(adminIDs)+` AND e.time >= ? AND e.time < ?`+extra, sc.From.Unix(), sc.To.Unix())
	if err != nil {
		return fmt.Errorf("read the administrative events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a adminRow
		var evID any
		if err := rows.Scan(&a.row, &a.time, &a.name, &a.key, &a.principal, &a.invoked, &a.err, &evID); err != nil {
			return fmt.Errorf("read the administrative events: %w", err)
		}
		a.eventID = store.EventIDString(evID)
		b.admin = append(b.admin, a)
	}
	return rows.Err()
}
