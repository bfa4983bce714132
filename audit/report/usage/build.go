package usage

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/store"
)

// Options say what to report.
type Options struct {
	Scope         report.Scope
	BusinessHours BusinessHours // zero: Mon-Fri 08:00-18:00 UTC
	TopN          int           // rows of the top-N tables (default 10)
	Progress      report.ProgressFunc
	Now           func() time.Time
	Generator     string
}

// AdminNames are the administrative events the report lists with who and
// when: the ones that change who may use a key or whether it can be used.
var AdminNames = []string{"DisableKey", "ScheduleKeyDeletion", "PutKeyPolicy", "CreateGrant", "RetireGrant", "RevokeGrant"}

// LastUseTolerance: GetKeyLastUsage and CloudTrail agree when their last
// use falls within this of each other (KMS records last use by date).
const LastUseTolerance = 24 * time.Hour

const day = 24 * time.Hour

type builder struct {
	ctx  context.Context
	st   *store.Store
	db   *sql.Conn
	o    Options
	dig  *report.Digest
	loc  *time.Location
	from int64 // first second of the first day
	days int
	// dayNames are the period's days as the series name them (Report.Days):
	// every series shares these strings rather than formatting its own
	// (at 50,000 keys and 90 days, 66 MiB of copies).
	dayNames  []string
	zeroDaily []DayCount // zeros

	keys    map[int64]*keyInfo
	keyList []*keyInfo
	strs    map[int64]string
	idents  []*ident
	princ   map[int64]*pinfo
	byInv   map[[2]int64]int32 // (principal, invoked_by) -> identity, for principals named only by their service
	identIx map[string]int32

	noKey     *agg
	reencrypt int64 // strs id of ReEncrypt
	admin     []adminRow
	// aggIdents: identities the aggregates counted.
	aggIdents map[int32]bool
	tot       Totals
	daily     []DayCount
	bh        bhCache
}

type keyInfo struct {
	id                   int64
	arn, account, region string
	aliases              []string
	agg                  *agg
	inScope              bool
	invAsOf, invLast     int64
	invOp                string
	hasInv               bool
}

type pinfo struct {
	ident    int32 // -1: depends on invoked_by
	typ, acc string
}

type ident struct {
	name, typ, account string
	calls, failed, off int64
	keys               map[int64]bool
	firstSeen          int64
	firstPrincipal     int64
	periodFirst        int64 // first event in the period
	periodFirstRow     int64
	periodFirstBy      int64 // its principal
}

type adminRow struct {
	row, time, name, key, principal, invoked, err int64
	eventID                                       string
	count                                         int64 // > 1 only for a group of aggregates
	aggregated                                    bool  // from aggregates: no event id, time is the group's first
}

// Build computes the usage report.
func Build(ctx context.Context, st *store.Store, o Options) (*Report, error) {
	if err := o.Scope.Validate(); err != nil {
		return nil, err
	}
	if o.TopN <= 0 {
		o.TopN = 10
	}
	bh, loc, err := o.BusinessHours.resolve()
	if err != nil {
		return nil, err
	}
	o.BusinessHours = bh
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	conn, release, err := report.ReadConn(ctx, st.DB())
	if err != nil {
		return nil, err
	}
	defer release()
	steps := &report.Stepper{F: o.Progress, Steps: 6}
	fromDay := o.Scope.From.UTC().Truncate(day)
	lastDay := o.Scope.To.Add(-time.Second).UTC().Truncate(day)
	b := &builder{ctx: ctx, st: st, db: conn, o: o, dig: report.NewDigest(), loc: loc, from: fromDay.Unix(),
		days: int(lastDay.Sub(fromDay)/day) + 1, strs: map[int64]string{}, byInv: map[[2]int64]int32{}, identIx: map[string]int32{}}
	b.bh = bhCache{bh: bh, loc: loc, bucket: -1}
	r := &Report{BusinessHours: bh, TopN: o.TopN}
	r.Meta = report.Meta{Kind: "usage", Title: "KMS key usage report", GeneratedAt: now().UTC().Truncate(time.Second),
		Generator: o.Generator, Scope: o.Scope.JSON()}
	for d := fromDay; !d.After(lastDay); d = d.Add(day) {
		r.Days = append(r.Days, report.Day(d))
	}
	b.dayNames = r.Days

	steps.Next("reading the ingest provenance")
	if r.Meta.Provenance, err = report.LoadProvenance(ctx, st, conn); err != nil {
		return nil, err
	}
	steps.Next("listing keys and principals")
	if err := b.loadKeys(); err != nil {
		return nil, err
	}
	if err := b.loadPrincipals(); err != nil {
		return nil, err
	}
	steps.Next("aggregating the period's events")
	if err := b.stream(); err != nil {
		return nil, err
	}
	cov, err := report.LoadCoverage(ctx, st, o.Scope, b.pairs())
	if err != nil {
		return nil, err
	}
	// Days with aggregates and no records count as covered: their use is
	// counted from the aggregates.
	cov.AggregatesAreEvidence = true
	if len(r.Meta.Provenance.AggregateSources) > 0 {
		if err := b.aggregates(cov); err != nil {
			return nil, err
		}
	}
	steps.Next("finding new principals and last uses")
	if err := b.firstSeen(); err != nil {
		return nil, err
	}
	if err := b.resolveStrs(); err != nil {
		return nil, err
	}
	for _, g := range cov.Gaps() {
		b.dig.Section("gap")
		b.dig.Row(g.Account, g.Region, g.From, g.To, g.Kind)
	}
	r.Coverage = cov.Gaps()
	r.Meta.Coverage = report.Verdict(r.Coverage, len(cov.Pairs()))
	if r.Conflicts, err = report.LoadConflicts(ctx, st, o.Scope, b.dig); err != nil {
		return nil, err
	}
	steps.Next("assembling the report")
	if err := b.assemble(r, cov); err != nil {
		return nil, err
	}
	steps.Next("reading the evidence event ids")
	if err := b.evidence(r); err != nil {
		return nil, err
	}
	r.Meta.InputSHA256, r.Meta.InputRows = b.dig.Sum()
	if r.Keys == nil {
		r.Keys = []Key{}
	}
	for _, p := range []*[]report.Gap{&r.Coverage} {
		if *p == nil {
			*p = []report.Gap{}
		}
	}
	if r.Unused == nil {
		r.Unused = []UnusedKey{}
	}
	if r.Admin == nil {
		r.Admin = []AdminEvent{}
	}
	if r.LastUse == nil {
		r.LastUse = []LastUseCheck{}
	}
	if r.Evidence == nil {
		r.Evidence = []Evidence{}
	}
	if r.Principals == nil {
		r.Principals = []Principal{}
	}
	r.Notes = append([]string{}, r.Notes...)
	if a := r.Totals.AggregatedEvents; a > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d of the %d events in scope are counted from aggregates (Athena, per day, key, operation and principal): "+
			"they carry no event id and no time of day, so they are in every count and daily series but not in the off-hours figures, "+
			"and administrative events from aggregates are listed by day and count, without an event id.", a, r.Totals.Events))
	}
	if r.Meta.Provenance.Files == 0 && r.Meta.Provenance.AggregatedEvents == 0 {
		r.Notes = append(r.Notes, "The database holds no ingested file: there is no evidence of any use.")
	}
	return r, nil
}
