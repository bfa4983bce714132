package usage

import (
	"database/sql"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/store"
)

// Assembly: the model's tables from the aggregation, the last-use checks
// against the inventory and the evidence events.

func (b *builder) allAggs() []*agg {
	out := []*agg{b.noKey}
	for _, k := range b.keyList {
		if k.agg != nil {
			out = append(out, k.agg)
		}
	}
	return out
}

func (b *builder) pairs() []report.Pair {
	var out []report.Pair
	seen := map[report.Pair]bool{}
	for _, k := range b.keyList {
		p := report.Pair{Account: k.account, Region: k.region}
		if k.inScope && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

func (b *builder) opName(op int64) string {
	n := b.strs[op/4]
	switch op % 4 {
	case 1:
		return n + "From"
	case 2:
		return n + "To"
	}
	return n
}

func sortCounts(c []Count) []Count {
	sort.Slice(c, func(i, j int) bool {
		if c[i].Calls != c[j].Calls {
			return c[i].Calls > c[j].Calls
		}
		return c[i].Name < c[j].Name
	})
	return c
}

func (b *builder) usage(a *agg) Usage {
	u := Usage{Events: a.events, CryptoCalls: a.crypto, Failed: a.failed, OffHours: a.off, Daily: a.daily, Aggregated: a.aggregated,
		Operations: []Count{}, Principals: []Count{}, Services: []Count{}, Accounts: []Count{}, Errors: []Count{}}
	for op, c := range a.ops {
		u.Operations = append(u.Operations, Count{Name: b.opName(op), Calls: c.calls, Failed: c.failed})
	}
	for i, c := range a.idents {
		u.Principals = append(u.Principals, Count{Name: b.idents[i].name, Calls: c.calls, Failed: c.failed})
	}
	for s, c := range a.svcs {
		u.Services = append(u.Services, Count{Name: b.strs[s], Calls: c.calls, Failed: c.failed})
	}
	for acc, c := range a.accts {
		name := acc
		if name == "" {
			name = "(none: AWS service)"
		}
		u.Accounts = append(u.Accounts, Count{Name: name, Calls: c.calls, Failed: c.failed})
	}
	for e, n := range a.errs {
		u.Errors = append(u.Errors, Count{Name: b.strs[e], Calls: n, Failed: n})
	}
	sortCounts(u.Operations)
	sortCounts(u.Principals)
	sortCounts(u.Services)
	sortCounts(u.Accounts)
	sortCounts(u.Errors)
	if u.Daily == nil {
		u.Daily = b.zeros()
	} else {
		for i := range u.Daily {
			u.Daily[i].Day = b.dayNames[i]
		}
	}
	return u
}

// zeros is the series of a set of events with no cryptographic call: one
// for all of them (the model is read-only once built).
func (b *builder) zeros() []DayCount {
	if b.zeroDaily == nil {
		b.zeroDaily = make([]DayCount, b.days)
		for i := range b.zeroDaily {
			b.zeroDaily[i].Day = b.dayNames[i]
		}
	}
	return b.zeroDaily
}

func (b *builder) assemble(r *Report, cov *report.Coverage) error {
	gone, createdIn, err := b.existence()
	if err != nil {
		return err
	}
	for i := range b.daily {
		b.daily[i].Day = b.dayNames[i]
	}
	r.Daily = b.daily
	if err := b.assembleKeys(r, cov, gone, createdIn); err != nil {
		return err
	}
	r.NoKey = b.usage(b.noKey)
	b.assemblePrincipals(r)
	r.Totals.Events, r.Totals.CryptoCalls, r.Totals.Failed = b.tot.Events, b.tot.CryptoCalls, b.tot.Failed
	r.Totals.OffHours, r.Totals.CrossAccount = b.tot.OffHours, b.tot.CrossAccount
	r.Totals.Principals = len(r.Principals)
	r.Totals.AdminEvents = 0
	for _, a := range b.admin {
		r.Totals.AdminEvents += int(max(a.count, 1))
	}
	r.Totals.AggregatedEvents = b.tot.AggregatedEvents
	return b.lastUseChecks(r, cov)
}

// existence finds the keys that did not exist in the period (created after
// it, deleted before it: gone) and those created in it (createdIn: no use
// before it to look for).
func (b *builder) existence() (gone, createdIn map[int64]bool, err error) {
	sc := b.o.Scope
	from, to := sc.From.Unix(), sc.To.Unix()
	names, err := b.strIDs("CreateKey", "DeleteKey")
	if err != nil {
		return nil, nil, err
	}
	gone, createdIn = map[int64]bool{}, map[int64]bool{}
	if len(names) == 0 {
		return gone, createdIn, nil
	}
	var ids []int64
	for _, id := range names {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	rows, err := b.db.QueryContext(b.ctx, `SELECT e.key, e.time, e.name FROM events e WHERE e.name IN `+store.InList(ids)+
		` AND e.key IS NOT NULL AND e.error_code IS NULL ORDER BY e.time, e.id`)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	b.dig.Section("existence")
	for rows.Next() {
		var k, t, n int64
		if err := rows.Scan(&k, &t, &n); err != nil {
			return nil, nil, err
		}
		b.dig.Ints(k, t, n)
		if (n == names["CreateKey"] && t >= to) || (n == names["DeleteKey"] && t < from) {
			gone[k] = true
		}
		if n == names["CreateKey"] && t >= from {
			createdIn[k] = true
		}
	}
	return gone, createdIn, nil
}

// newIdent says whether an identity was first seen in the period.
func (b *builder) newIdent(i int32) bool {
	fs := b.idents[i].firstSeen
	return fs >= b.o.Scope.From.Unix() && fs < b.o.Scope.To.Unix()
}

// assembleKeys lists the keys in scope: those used, most used first, and
// those with no successful cryptographic call (unused-key candidates).
func (b *builder) assembleKeys(r *Report, cov *report.Coverage, gone, createdIn map[int64]bool) error {
	sc := b.o.Scope
	for _, k := range b.keyList {
		if !k.inScope || gone[k.id] && k.agg == nil {
			continue
		}
		r.Totals.KeysInScope++
		if k.agg == nil || k.agg.lastUse == 0 {
			u, err := b.unusedKey(k, cov, createdIn[k.id])
			if err != nil {
				return err
			}
			r.Unused = append(r.Unused, u)
		}
		if k.agg == nil {
			continue
		}
		key := Key{ARN: k.arn, Account: k.account, Region: k.region, Aliases: nonNil(k.aliases), Usage: b.usage(k.agg),
			Gaps: append([]report.Gap{}, cov.Between(k.account, k.region, sc.From, sc.To)...), CrossAccount: []Count{}, NewPrincipals: []string{}}
		if k.agg.lastUse != 0 {
			key.FirstUse, key.LastUse = time.Unix(k.agg.firstUse, 0).UTC(), time.Unix(k.agg.lastUse, 0).UTC()
			r.Totals.KeysUsed++
		}
		for acc, c := range k.agg.accts {
			if acc != "" && acc != k.account {
				key.CrossAccount = append(key.CrossAccount, Count{Name: acc, Calls: c.calls, Failed: c.failed})
			}
		}
		sortCounts(key.CrossAccount)
		for i := range k.agg.idents {
			if b.newIdent(i) {
				key.NewPrincipals = append(key.NewPrincipals, b.idents[i].name)
			}
		}
		sort.Strings(key.NewPrincipals)
		r.Keys = append(r.Keys, key)
	}
	sort.SliceStable(r.Keys, func(i, j int) bool {
		if r.Keys[i].Events != r.Keys[j].Events {
			return r.Keys[i].Events > r.Keys[j].Events
		}
		return r.Keys[i].ARN < r.Keys[j].ARN
	})
	sort.Slice(r.Unused, func(i, j int) bool { return r.Unused[i].ARN < r.Unused[j].ARN })
	return nil
}

// unusedKey describes a key with no successful cryptographic call in the
// period: its last use before it (unless it was created in it), and a
// caveat where evidence is missing.
func (b *builder) unusedKey(k *keyInfo, cov *report.Coverage, createdIn bool) (UnusedKey, error) {
	sc := b.o.Scope
	u := UnusedKey{ARN: k.arn, Aliases: nonNil(k.aliases), Account: k.account, Region: k.region,
		Gaps: append([]report.Gap{}, cov.Between(k.account, k.region, sc.From, sc.To)...)}
	if k.agg != nil {
		u.Events = k.agg.events
	}
	var row, t int64
	var name int64
	err := sql.ErrNoRows
	if !createdIn {
		err = b.db.QueryRowContext(b.ctx, `SELECT e.id, e.time, e.name FROM events e
				WHERE e.key = ? AND e.time < ? AND e.category = 1 AND e.error_code IS NULL ORDER BY e.time DESC LIMIT 1`, k.id, sc.From.Unix()).Scan(&row, &t, &name)
	}
	switch {
	case err == sql.ErrNoRows:
	case err != nil:
		return u, fmt.Errorf("last use of %s: %w", k.arn, err)
	default:
		u.LastUse = time.Unix(t, 0).UTC()
		b.dig.Ints(k.id, row, t, name)
	}
	if len(u.Gaps) > 0 {
		n := 0
		for _, g := range u.Gaps {
			n += g.Days
		}
		u.Caveat = fmt.Sprintf("KMS evidence missing for %d day(s) of the period in %s/%s: use then would not show", n, k.account, k.region)
	}
	return u, nil
}

// assemblePrincipals lists the identities that called, most calls first.
func (b *builder) assemblePrincipals(r *Report) {
	for i, id := range b.idents {
		if id.calls == 0 {
			continue
		}
		p := Principal{Identity: id.name, Type: id.typ, Account: id.account, Calls: id.calls, Failed: id.failed, OffHours: id.off,
			Keys: len(id.keys), New: b.newIdent(int32(i))}
		if id.firstSeen >= 0 {
			p.FirstSeen = time.Unix(id.firstSeen, 0).UTC()
		}
		r.Principals = append(r.Principals, p)
		if p.New {
			r.Totals.NewPrincipals++
		}
	}
	sort.Slice(r.Principals, func(i, j int) bool {
		if r.Principals[i].Calls != r.Principals[j].Calls {
			return r.Principals[i].Calls > r.Principals[j].Calls
		}
		return r.Principals[i].Identity < r.Principals[j].Identity
	})
}

// lastUseChecks compares the inventory's GetKeyLastUsage with the last
// successful cryptographic call CloudTrail shows up to the inventory's time.
func (b *builder) lastUseChecks(r *Report, cov *report.Coverage) error {
	b.dig.Section("last-use")
	for _, k := range b.keyList {
		if !k.inScope || !k.hasInv || (k.invLast == 0 && k.invOp == "") {
			continue
		}
		c := LastUseCheck{KeyARN: k.arn, InventoryAsOf: time.Unix(k.invAsOf, 0).UTC(), InventoryOp: k.invOp}
		if k.invLast != 0 {
			c.InventoryLastUse = time.Unix(k.invLast, 0).UTC()
		}
		var row, t, name int64
		err := b.db.QueryRowContext(b.ctx, LastUseQuery, k.id, k.invAsOf).Scan(&row, &t, &name)
		switch {
		case err == sql.ErrNoRows:
		case err != nil:
			return fmt.Errorf("last use of %s: %w", k.arn, err)
		default:
			c.CloudTrailLast = time.Unix(t, 0).UTC()
			c.CloudTrailEvent = strconv.FormatInt(row, 10) // replaced by the event id in evidence()
			if s, ok := b.strs[name]; ok {
				c.CloudTrailOp = s
			} else {
				c.CloudTrailOp = "\x00" + strconv.FormatInt(name, 10)
			}
			b.dig.Ints(k.id, row, t, name)
		}
		logStart := cov.LogStart(k.account, k.region)
		switch d := c.InventoryLastUse.Sub(c.CloudTrailLast); {
		case c.InventoryLastUse.IsZero() && c.CloudTrailLast.IsZero():
			c.Agree, c.Note = true, "neither shows a use"
		case c.CloudTrailLast.IsZero():
			c.Note = "the inventory shows a use that CloudTrail does not"
			if !logStart.IsZero() && c.InventoryLastUse.Before(logStart) {
				c.Agree, c.Note = true, "the inventory's last use predates the logs"
			}
		case c.InventoryLastUse.IsZero():
			c.Note = "CloudTrail shows a use that the inventory does not"
		case d > LastUseTolerance:
			c.Note = fmt.Sprintf("the inventory's last use is %.1f days later than CloudTrail's: events missing from the logs?", d.Hours()/24)
		case d < -LastUseTolerance:
			c.Note = fmt.Sprintf("CloudTrail's last use is %.1f days later than the inventory's", -d.Hours()/24)
		default:
			c.Agree, c.Note = true, "same date"
		}
		r.LastUse = append(r.LastUse, c)
	}
	return nil
}
