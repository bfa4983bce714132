package usage

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/audit/store"
)

// evidenceNeed is a row a finding rests on.
type evidenceNeed struct {
	row     int64
	finding string
}

// evidenceRow is what the evidence lists of one row.
type evidenceRow struct {
	eventID               string
	t, name, key, pr, inv int64
}

// evidence reads the event ids of the rows findings rest on and lists them.
func (b *builder) evidence(r *Report) error {
	needs, newRow := b.evidenceNeeds(r)
	byRow, err := b.evidenceRows(needs)
	if err != nil {
		return err
	}
	missing := map[int64]bool{}
	for _, in := range byRow {
		if _, ok := b.strs[in.name]; !ok {
			missing[in.name] = true
		}
	}
	for id := range missing {
		var s string
		if err := b.db.QueryRowContext(b.ctx, `SELECT s FROM strs WHERE id = ?`, id).Scan(&s); err == nil {
			b.strs[id] = s
		}
	}
	keyARN := func(id int64) string {
		if k := b.keys[id]; k != nil {
			return k.arn
		}
		return ""
	}
	principal := func(pr, inv int64) string { return b.idents[b.identOf(pr, inv)].name }
	for _, a := range b.admin {
		e := AdminEvent{EventID: byRow[a.row].eventID, Time: time.Unix(a.time, 0).UTC(), Name: b.strs[a.name],
			KeyARN: keyARN(a.key), Principal: principal(a.principal, a.invoked), Error: b.strs[a.err]}
		if a.aggregated {
			e.EventID, e.Count, e.FromAggregates = "", a.count, true
		}
		r.Admin = append(r.Admin, e)
	}
	for i := range r.LastUse {
		c := &r.LastUse[i]
		if id, err := strconv.ParseInt(c.CloudTrailEvent, 10, 64); err == nil {
			c.CloudTrailEvent = byRow[id].eventID
		}
		if strings.HasPrefix(c.CloudTrailOp, "\x00") {
			id, _ := strconv.ParseInt(c.CloudTrailOp[1:], 10, 64)
			c.CloudTrailOp = b.strs[id]
		}
	}
	for i := range r.Principals {
		if p := &r.Principals[i]; p.New {
			p.FirstEventID = byRow[newRow[p.Identity]].eventID
		}
	}
	seen := map[string]bool{}
	for _, n := range needs {
		in, ok := byRow[n.row]
		// Administrative events carry their ids in their own table.
		if !ok || seen[in.eventID+n.finding] || n.finding == "administrative event" {
			continue
		}
		seen[in.eventID+n.finding] = true
		r.Evidence = append(r.Evidence, Evidence{EventID: in.eventID, Time: time.Unix(in.t, 0).UTC(), Name: b.strs[in.name],
			KeyARN: keyARN(in.key), Principal: principal(in.pr, in.inv), Finding: n.finding})
	}
	sort.SliceStable(r.Evidence, func(i, j int) bool {
		if !r.Evidence[i].Time.Equal(r.Evidence[j].Time) {
			return r.Evidence[i].Time.Before(r.Evidence[j].Time)
		}
		return r.Evidence[i].EventID < r.Evidence[j].EventID
	})
	return nil
}

// evidenceNeeds lists the rows findings rest on: administrative events,
// each key's last use and first call from another account, the last use up
// to the inventory, and each new identity's first event (newRow, by name).
func (b *builder) evidenceNeeds(r *Report) (needs []evidenceNeed, newRow map[string]int64) {
	for _, a := range b.admin {
		if !a.aggregated {
			needs = append(needs, evidenceNeed{a.row, "administrative event"})
		}
	}
	for _, k := range b.keyList {
		if k.agg == nil || !k.inScope {
			continue
		}
		if k.agg.lastUseRow != 0 {
			needs = append(needs, evidenceNeed{k.agg.lastUseRow, "last use in the period"})
		}
		for acc, f := range k.agg.crossFirst {
			needs = append(needs, evidenceNeed{f.id, "first call from account " + acc})
		}
	}
	for i := range r.LastUse {
		if id, err := strconv.ParseInt(r.LastUse[i].CloudTrailEvent, 10, 64); err == nil {
			needs = append(needs, evidenceNeed{id, "last use up to the inventory"})
		}
	}
	// New identities: their first event, which is their first in the period.
	newRow = map[string]int64{}
	for _, id := range b.idents {
		if id.calls > 0 && id.firstSeen >= b.o.Scope.From.Unix() && id.firstSeen < b.o.Scope.To.Unix() {
			needs = append(needs, evidenceNeed{id.periodFirstRow, "first event of a new principal"})
			newRow[id.name] = id.periodFirstRow
		}
	}
	return needs, newRow
}

// evidenceRows reads what the evidence lists of each needed row.
// Administrative events came with their ids from the pass; the few other
// rows are looked up.
func (b *builder) evidenceRows(needs []evidenceNeed) (map[int64]evidenceRow, error) {
	rowIDs := map[int64]bool{}
	var ids []int64
	for _, n := range needs {
		if !rowIDs[n.row] {
			rowIDs[n.row] = true
			ids = append(ids, n.row)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	byRow := map[int64]evidenceRow{}
	for _, a := range b.admin {
		if !a.aggregated {
			byRow[a.row] = evidenceRow{eventID: a.eventID, t: a.time, name: a.name, key: a.key, pr: a.principal, inv: a.invoked}
		}
	}
	var lookup []int64
	for _, id := range ids {
		if _, ok := byRow[id]; !ok {
			lookup = append(lookup, id)
		}
	}
	for len(lookup) > 0 {
		n := min(500, len(lookup))
		rows, err := b.db.QueryContext(b.ctx, `SELECT id, event_id, time, name, coalesce(key, 0), coalesce(principal, 0), coalesce(invoked_by, 0)
			FROM events WHERE id IN `+store.InList(lookup[:n])+` ORDER BY id`)
		if err != nil {
			return nil, fmt.Errorf("read evidence event ids: %w", err)
		}
		for rows.Next() {
			var row int64
			var ev any
			var in evidenceRow
			if err := rows.Scan(&row, &ev, &in.t, &in.name, &in.key, &in.pr, &in.inv); err != nil {
				rows.Close()
				return nil, err
			}
			in.eventID = store.EventIDString(ev)
			byRow[row] = in
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read evidence event ids: %w", err)
		}
		lookup = lookup[n:]
	}
	b.dig.Section("evidence")
	for _, id := range ids {
		if in, ok := byRow[id]; ok {
			b.dig.Row(id, in.eventID)
		}
	}
	return byRow, nil
}
