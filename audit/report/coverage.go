package report

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/keyceremony/keyceremony/audit/store"
)

// Gap kinds: what the ingest coverage shows for a span of days.
const (
	// GapNoLogs: no CloudTrail record at all for the account and region
	// (missing log files, or a period the logs do not reach).
	GapNoLogs = "no-logs"
	// GapNoKMS: CloudTrail records but none from KMS (a trail that
	// excludes KMS events, or KMS data events not selected).
	GapNoKMS = "no-kms-events"
	// GapAggregates: no records, only aggregates (counts per key, day,
	// operation and principal from a query that ran elsewhere): enough to
	// count use, not to establish what a record would (a key's lifecycle).
	GapAggregates = "aggregates-only"
)

// Gap is a run of consecutive UTC days for one account and region whose
// KMS evidence is missing. Reports state it rather than read the silence
// as "no use" or "no change".
type Gap struct {
	Account string `json:"account"`
	Region  string `json:"region"`
	From    string `json:"from"` // first day, YYYY-MM-DD
	To      string `json:"to"`   // last day, inclusive
	Days    int    `json:"days"`
	Kind    string `json:"kind"`
}

// Describe says what the gap means, for a person.
func (g Gap) Describe() string {
	span := g.From
	if g.To != g.From {
		span += " to " + g.To
	}
	switch g.Kind {
	case GapNoKMS:
		return fmt.Sprintf("%s/%s %s (%d day(s)): CloudTrail logs without any KMS event (trail may exclude KMS events); KMS evidence for this span is missing",
			g.Account, g.Region, span, g.Days)
	case GapAggregates:
		return fmt.Sprintf("%s/%s %s (%d day(s)): only aggregates (event counts, no records); per-event evidence for this span is missing",
			g.Account, g.Region, span, g.Days)
	}
	return fmt.Sprintf("%s/%s %s (%d day(s)): no CloudTrail logs; KMS evidence for this span is missing", g.Account, g.Region, span, g.Days)
}

// What is the reason a gap gives, in a few words, for a table.
func (g Gap) What() string {
	switch g.Kind {
	case GapNoKMS:
		return "logs without KMS events (trail may exclude them)"
	case GapAggregates:
		return "aggregates only: counts, no per-event records"
	}
	return "no CloudTrail logs"
}

// Pair is an account and region.
type Pair struct{ Account, Region string }

type dayCov struct{ records, kms int }

// Coverage is the ingest coverage of the accounts and regions in a scope.
type Coverage struct {
	from, to time.Time
	days     map[Pair]map[string]dayCov
	first    map[Pair]string // first day with any record
	pairs    []Pair
	agg      map[Pair]map[string]int64 // events counted by aggregates
	// AggregatesAreEvidence: a day with aggregates and no records is
	// covered (the usage report counts use from aggregates); otherwise it
	// is a GapAggregates (what a record states is not in a count).
	AggregatesAreEvidence bool
}

// LoadCoverage reads the per-day coverage for every account and region in
// scope: those the logs show, plus extra (the keys' own account and region,
// which may have no logs at all).
func LoadCoverage(ctx context.Context, st *store.Store, sc Scope, extra []Pair) (*Coverage, error) {
	rows, err := st.Coverage(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("read the ingest coverage: %w", err)
	}
	c := &Coverage{from: sc.From, to: sc.To, days: map[Pair]map[string]dayCov{}, first: map[Pair]string{}}
	in := func(p Pair) bool {
		return (sc.Account == "" || p.Account == sc.Account) && (sc.Region == "" || p.Region == sc.Region)
	}
	add := func(p Pair) {
		if _, ok := c.days[p]; !ok && in(p) && p.Account != "" && p.Region != "" {
			c.days[p] = map[string]dayCov{}
			c.pairs = append(c.pairs, p)
		}
	}
	for _, r := range rows {
		p := Pair{r.Account, r.Region}
		add(p)
		if m, ok := c.days[p]; ok {
			m[r.Day] = dayCov{records: r.Records, kms: r.KMSRecords}
			if r.Records > 0 && (c.first[p] == "" || r.Day < c.first[p]) {
				c.first[p] = r.Day
			}
		}
	}
	aggs, err := st.AggregateDays(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the aggregates: %w", err)
	}
	for _, a := range aggs {
		p := Pair{a.Account, a.Region}
		add(p)
		if _, ok := c.days[p]; ok {
			if c.agg == nil {
				c.agg = map[Pair]map[string]int64{}
			}
			if c.agg[p] == nil {
				c.agg[p] = map[string]int64{}
			}
			c.agg[p][a.Day] = a.Events
		}
	}
	for _, p := range extra {
		add(p)
	}
	sort.Slice(c.pairs, func(i, j int) bool {
		if c.pairs[i].Account != c.pairs[j].Account {
			return c.pairs[i].Account < c.pairs[j].Account
		}
		return c.pairs[i].Region < c.pairs[j].Region
	})
	return c, nil
}

// Pairs lists the accounts and regions in scope.
func (c *Coverage) Pairs() []Pair { return c.pairs }

// Gaps lists the gaps inside the report period for every pair in scope.
func (c *Coverage) Gaps() []Gap {
	var out []Gap
	for _, p := range c.pairs {
		out = append(out, c.Between(p.Account, p.Region, c.from, c.to)...)
	}
	return out
}

// Between lists the gaps of one account and region in [from, to), by day.
func (c *Coverage) Between(account, region string, from, to time.Time) []Gap {
	if !from.Before(to) {
		return nil
	}
	m := c.days[Pair{account, region}]
	agg := c.agg[Pair{account, region}]
	var out []Gap
	var cur *Gap
	last := to.Add(-time.Second).UTC().Truncate(24 * time.Hour)
	for d := from.UTC().Truncate(24 * time.Hour); !d.After(last); d = d.AddDate(0, 0, 1) {
		ds := d.Format("2006-01-02")
		kind := ""
		dc := m[ds]
		switch {
		case dc.records == 0 && agg[ds] > 0:
			if !c.AggregatesAreEvidence {
				kind = GapAggregates
			}
		case dc.records == 0:
			kind = GapNoLogs
		case dc.kms == 0:
			kind = GapNoKMS
		}
		if kind == "" {
			cur = nil
			continue
		}
		if cur != nil && cur.Kind == kind {
			cur.To = ds
			cur.Days++
			continue
		}
		out = append(out, Gap{Account: account, Region: region, From: ds, To: ds, Days: 1, Kind: kind})
		cur = &out[len(out)-1]
	}
	return out
}

// Complete reports whether every day of [from, to) has KMS evidence for
// the account and region.
func (c *Coverage) Complete(account, region string, from, to time.Time) bool {
	return len(c.Between(account, region, from, to)) == 0
}

// Aggregated reports whether the account and region have aggregates and
// no record on day (YYYY-MM-DD): the usage report counts those days from
// the aggregates.
func (c *Coverage) Aggregated(account, region, day string) bool {
	return c.days[Pair{account, region}][day].records == 0 && c.agg[Pair{account, region}][day] > 0
}

// LogStart is the first day with any CloudTrail record for the account
// and region (zero if none).
func (c *Coverage) LogStart(account, region string) time.Time {
	s := c.first[Pair{account, region}]
	if s == "" {
		return time.Time{}
	}
	t, _ := time.Parse("2006-01-02", s)
	return t
}

// CompleteSince is the start (UTC midnight) of the run of days with KMS
// evidence that ends at to for the account and region: every day of
// [CompleteSince, to) has KMS records. It is to itself when the day of
// to's last second is a gap.
func (c *Coverage) CompleteSince(account, region string, to time.Time) time.Time {
	m := c.days[Pair{account, region}]
	d := to.Add(-time.Second).UTC().Truncate(24 * time.Hour)
	start := to
	for {
		dc, ok := m[d.Format("2006-01-02")]
		if !ok || dc.records == 0 || dc.kms == 0 {
			return start
		}
		start = d
		d = d.AddDate(0, 0, -1)
	}
}
