package usage

import (
	"fmt"
	"sort"
	"time"

	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/store"
)

// aggregates adds the counts of the days that have aggregates and no
// records (a day with records is counted from its events alone; a query
// over it would count the same events again). A group is a day's events
// of one key, operation, principal, service and error: it adds to every
// count like that many events, without an event id and without a time of
// day (not to the off-hours figures). A day only partly inside the period
// is counted only for the groups whose events all fall inside it. A group
// of ReEncrypt calls counts for its source key and its destination key, as
// the records do; a group whose calls named only an alias counts for the
// key the alias history says it pointed to at the group's first event.
func (b *builder) aggregates(cov *report.Coverage) error {
	sc := b.o.Scope
	from, to := sc.From.Unix(), sc.To.Unix()
	names, err := b.strIDs(append([]string{"ReEncrypt"}, AdminNames...)...)
	if err != nil {
		return err
	}
	admin := map[int64]bool{}
	for _, n := range AdminNames {
		if id, ok := names[n]; ok {
			admin[id] = true
		}
	}
	var keyIDs map[int64]bool
	if sc.KeyARN != "" {
		keyIDs = map[int64]bool{}
		for _, k := range b.keyList {
			if k.inScope {
				keyIDs[k.id] = true
			}
		}
	}
	// The alias histories are read on a connection of their own: this
	// one is busy with the aggregates' rows.
	aliases := store.NewAliasResolver(b.ctx, b.st.DB())
	rows, err := b.db.QueryContext(b.ctx, AggregatesQuery, report.Day(sc.From), report.Day(sc.To.Add(-time.Second)))
	if err != nil {
		return fmt.Errorf("read the aggregates: %w", err)
	}
	defer rows.Close()
	b.aggIdents = map[int32]bool{}
	b.dig.Section("aggregates")
	for rows.Next() {
		var rowid, cat, k1, k2, al, pr, inv, ec, n, first, last, name int64
		var dayS, account, region string
		if err := rows.Scan(&rowid, &dayS, &account, &region, &name, &cat, &k1, &pr, &inv, &ec, &n, &first, &last, &k2, &al); err != nil {
			return fmt.Errorf("read the aggregates: %w", err)
		}
		if k1 == 0 && al != 0 {
			if k1, err = aliases.KeyAt(al, first); err != nil {
				return err
			}
		}
		if first < from || last >= to || !cov.Aggregated(account, region, dayS) ||
			(sc.Account != "" && account != sc.Account) || (sc.Region != "" && region != sc.Region) || (keyIDs != nil && !keyIDs[k1] && !keyIDs[k2]) {
			continue
		}
		if k2 != 0 {
			b.dig.Row(rowid, dayS, account, region, name, cat, k1, pr, inv, ec, n, first, last, k2)
		} else {
			b.dig.Row(rowid, dayS, account, region, name, cat, k1, pr, inv, ec, n, first, last)
		}
		b.tot.Events += n
		b.tot.AggregatedEvents += n
		crypto, failed := cat == 1, ec != 0
		di := int((first - b.from) / 86400)
		idx := b.identOf(pr, inv)
		b.aggIdents[idx] = true
		id0 := b.idents[idx]
		if id0.calls == 0 || (rowRef{first, 0}).before(rowRef{id0.periodFirst, id0.periodFirstRow}) {
			id0.periodFirst, id0.periodFirstRow, id0.periodFirstBy = first, 0, pr
		}
		id0.calls += n
		if failed {
			id0.failed += n
			b.tot.Failed += n
		}
		if crypto {
			b.tot.CryptoCalls += n
			b.daily[di].Calls += n
			if failed {
				b.daily[di].Failed += n
			}
		}
		callerAcct := ""
		if p := b.princ[pr]; p != nil {
			callerAcct = p.acc
		}
		isRe := name == names["ReEncrypt"]
		cross := false
		addTo := func(a *agg, key, role int64) {
			if key != 0 {
				id0.keys[key] = true
				if ki := b.keys[key]; ki != nil && callerAcct != "" && callerAcct != ki.account {
					cross = true
				}
			}
			a.aggregated += n
			op := name * 4
			if isRe {
				op += role
			}
			a.tally(op, idx, inv, callerAcct, ec, n)
			if crypto {
				a.crypto += n
				a.dayCount(di).Calls += n
				if failed {
					a.dayCount(di).Failed += n
				} else {
					if a.firstUse == 0 || first < a.firstUse {
						a.firstUse = first
					}
					if a.lastUse == 0 || last > a.lastUse {
						a.lastUse, a.lastUseRow = last, 0 // no event to cite
					}
				}
			}
		}
		// As for the records (streamRows): the keyless, the key, and a
		// second key that differs or is a ReEncrypt's destination.
		if k1 == 0 && k2 == 0 {
			addTo(b.noKey, 0, 0)
		}
		if k1 != 0 {
			addTo(b.keyAgg(k1), k1, 1)
		}
		if k2 != 0 && (k2 != k1 || isRe) {
			addTo(b.keyAgg(k2), k2, 2)
		}
		if cross {
			b.tot.CrossAccount += n
		}
		if admin[name] {
			b.admin = append(b.admin, adminRow{time: first, name: name, key: k1, principal: pr, invoked: inv, err: ec, count: n, aggregated: true})
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the aggregates: %w", err)
	}
	sort.SliceStable(b.admin, func(i, j int) bool {
		return rowRef{b.admin[i].time, b.admin[i].row}.before(rowRef{b.admin[j].time, b.admin[j].row})
	})
	return nil
}
