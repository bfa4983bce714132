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
	// GapPartial: records, but far fewer than the account and region's
	// typical day (see PartialRule): part of the day's logs is probably
	// missing.
	GapPartial = "partial"
)

// The partial-day rule: a day of an account and region is partial when it
// has CloudTrail records (KMS or not) but fewer than 1/PartialFraction of
// that pair's typical day, the median of its days with records in the
// report period and the PartialWindowDays days either side of it. A pair
// whose typical day has fewer than PartialMinTypical records is not
// judged: too few to tell a quiet day from missing logs.
const (
	PartialFraction   = 5
	PartialWindowDays = 28
	PartialMinTypical = 50
)

// PartialRule states the rule for the reports.
var PartialRule = fmt.Sprintf("a day is partial when it has CloudTrail records but fewer than 1/%d of its account and region's typical day "+
	"(the median of that pair's days with records in the period and the %d days either side); pairs whose typical day has fewer than %d records are not judged",
	PartialFraction, PartialWindowDays, PartialMinTypical)

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
	// For a partial span: the records its days have, and the pair's
	// typical day.
	Records int `json:"records,omitempty"`
	Typical int `json:"typical,omitempty"`
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
	case GapPartial:
		return fmt.Sprintf("%s/%s %s (%d day(s)): only %d CloudTrail records where a typical day has %d; part of the logs is probably missing",
			g.Account, g.Region, span, g.Days, g.Records, g.Typical)
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
	case GapPartial:
		return fmt.Sprintf("partial: %d records, a typical day has %d", g.Records, g.Typical)
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
	typical  map[Pair]int              // the pair's typical day (records), 0: not judged
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
	c.typical = map[Pair]int{}
	lo := Day(sc.From.AddDate(0, 0, -PartialWindowDays))
	hi := Day(sc.To.AddDate(0, 0, PartialWindowDays))
	for p, m := range c.days {
		var counts []int
		for d, dc := range m {
			if dc.records > 0 && d >= lo && d < hi {
				counts = append(counts, dc.records)
			}
		}
		if len(counts) == 0 {
			continue
		}
		sort.Ints(counts)
		if med := counts[len(counts)/2]; med >= PartialMinTypical {
			c.typical[p] = med
		}
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
	p := Pair{account, region}
	m := c.days[p]
	agg := c.agg[p]
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
		case c.partial(p, dc.records):
			kind = GapPartial
		}
		if kind == "" {
			cur = nil
			continue
		}
		if cur != nil && cur.Kind == kind {
			cur.To = ds
			cur.Days++
		} else {
			out = append(out, Gap{Account: account, Region: region, From: ds, To: ds, Days: 1, Kind: kind})
			cur = &out[len(out)-1]
		}
		if kind == GapPartial {
			cur.Records += dc.records
			cur.Typical = c.typical[p]
		}
	}
	return out
}

// partial applies the partial-day rule to a day with records.
func (c *Coverage) partial(p Pair, records int) bool {
	t := c.typical[p]
	return t > 0 && records*PartialFraction < t
}

// FirstGap is the first day of [day of from, to) whose evidence is missing
// or partial for the account and region (a change could hide in it), and
// whether there is one.
func (c *Coverage) FirstGap(account, region string, from, to time.Time) (time.Time, bool) {
	if from.IsZero() {
		return time.Time{}, false
	}
	g := c.Between(account, region, from, to)
	if len(g) == 0 {
		return time.Time{}, false
	}
	t, _ := time.Parse("2006-01-02", g[0].From)
	return t, true
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
// [CompleteSince, to) has KMS records and is not partial. It is to itself
// when the day of to's last second is a gap.
func (c *Coverage) CompleteSince(account, region string, to time.Time) time.Time {
	p := Pair{account, region}
	m := c.days[p]
	d := to.Add(-time.Second).UTC().Truncate(24 * time.Hour)
	start := to
	for {
		dc, ok := m[d.Format("2006-01-02")]
		if !ok || dc.records == 0 || dc.kms == 0 || c.partial(p, dc.records) {
			return start
		}
		start = d
		d = d.AddDate(0, 0, -1)
	}
}
