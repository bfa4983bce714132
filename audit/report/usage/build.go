package usage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
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

// StreamQuery is the one pass over the period's events (exported for the
// query-plan test): driven by the events_time index, in index order, so
// no sort and no temporary b-tree. Aggregation happens in Go maps sized by
// the number of groups, not of rows: measured on a million events, one
// indexed pass costs 1.4 s where SQLite's GROUP BY over the same columns
// costs 4 s in its sorter.
//
// The last column is the eventID of administrative events (admin, the
// ids of their names), NULL for the others: the report lists every
// administrative event with its id, and reading it in the pass spares
// looking tens of thousands of rows up again.
func StreamQuery(extra string, admin []int64, packed bool) string {
	return `SELECT ` + streamCols(admin, packed) + ` FROM events e WHERE e.time >= ? AND e.time < ?` + extra + ` ORDER BY e.time, e.id`
}

// SpanQuery counts the period's events and finds the span of their row
// ids, from the events_time index alone (exported for the plan test).
const SpanQuery = `SELECT count(*), coalesce(min(id), 0), coalesce(max(id), 0) FROM events WHERE time >= ? AND time < ?`

// RowidStreamQuery is the same pass in row id order over a span of row
// ids (exported for the plan test). Rows are stored in ingest order, which
// is close to time order, so when the span holds little besides the
// period's events, reading the table in place beats walking the time
// index and looking every row up: 1.3 s instead of 1.9 to 2.5 s at a
// million events. The aggregation does not depend on the order of rows.
func RowidStreamQuery(extra string, admin []int64, packed bool) string {
	return `SELECT ` + streamCols(admin, packed) + ` FROM events e WHERE e.id >= ? AND e.id <= ? AND e.time >= ? AND e.time < ?` + extra + ` ORDER BY e.id`
}

// packIDs: the pass reads pairs of ids packed in one integer (name and
// category, key and key2, principal and invoked_by; 32 bits each), seven
// columns instead of ten: fetching a column from the driver costs more
// than the arithmetic (a third of the pass at a million rows). Build
// checks that every id fits (maxPackedID) and reads them one per column
// otherwise.
var packIDs = true

const maxPackedID = 1<<31 - 1

// IDRangeQuery gives the largest ids the pass packs.
const IDRangeQuery = `SELECT max(coalesce((SELECT max(id) FROM strs), 0), coalesce((SELECT max(id) FROM keys), 0),
	coalesce((SELECT max(id) FROM principals), 0))`

func streamCols(admin []int64, packed bool) string {
	adminID := "NULL"
	if len(admin) > 0 {
		adminID = "CASE WHEN e.name IN " + inList(admin) + " THEN e.event_id END"
	}
	if packed {
		return `e.id, e.time, e.name | (e.category << 32), coalesce(e.key, 0) | (coalesce(e.key2, 0) << 32),
		coalesce(e.principal, 0) | (coalesce(e.invoked_by, 0) << 32), e.error_code, ` + adminID
	}
	return `e.id, e.time, e.name, e.category, coalesce(e.key, 0), coalesce(e.key2, 0), coalesce(e.principal, 0),
		coalesce(e.invoked_by, 0), coalesce(e.error_code, 0), ` + adminID
}

// maxSpanWaste: the row id span is read in place when it holds at most
// this many rows per event of the period.
const maxSpanWaste = 1.5

// forceIndexPass makes stream walk the time index whatever the span (tests
// compare both passes).
var forceIndexPass = false

// FirstSeenQuery gives each principal's first event in the whole database,
// from the events_principal_time index alone.
const FirstSeenQuery = `SELECT principal, min(time) FROM events WHERE principal IS NOT NULL GROUP BY principal`

// LastUseQuery finds a key's last successful cryptographic call up to a
// time, walking the events_key_time index backwards.
const LastUseQuery = `SELECT e.id, e.time, e.name FROM events e
	WHERE e.key = ? AND e.time <= ? AND e.category = 1 AND e.error_code IS NULL ORDER BY e.time DESC LIMIT 1`

type builder struct {
	ctx  context.Context
	st   *store.Store
	db   *sql.Conn
	o    Options
	dig  *report.Digest
	loc  *time.Location
	from int64 // first second of the first day
	days int

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

type cnt struct{ calls, failed int64 }

// agg is one key's (or the keyless events') aggregation.
type agg struct {
	events, crypto, failed, off int64
	aggregated                  int64          // of events, counted from aggregates
	ops                         map[int64]*cnt // name id * 4 + role (1 from, 2 to)
	idents                      map[int32]*cnt
	svcs                        map[int64]*cnt
	accts                       map[string]*cnt
	errs                        map[int64]int64
	daily                       []DayCount
	firstUse, lastUse           int64
	lastUseRow                  int64
	crossFirst                  map[string]rowRef // caller account -> first event
}

// tally counts n calls of one operation (op: name id * 4 + ReEncrypt
// role) by one identity, called through service inv (0: none) from
// account acct, failed with error ec (0: none): the breakdowns that the
// pass over events (n = 1) and the aggregates (n = a group's events) feed
// alike.
func (a *agg) tally(op int64, idx int32, inv int64, acct string, ec, n int64) {
	failed := ec != 0
	a.events += n
	inc(a.ops, op, n, failed)
	inc(a.idents, idx, n, failed)
	if inv != 0 {
		inc(a.svcs, inv, n, failed)
	}
	inc(a.accts, acct, n, failed)
	if failed {
		a.failed += n
		a.errs[ec] += n
	}
}

func inc[K comparable](m map[K]*cnt, k K, n int64, failed bool) {
	c := m[k]
	if c == nil {
		c = &cnt{}
		m[k] = c
	}
	c.calls += n
	if failed {
		c.failed += n
	}
}

// rowRef is an event by (time, row id), the order of the report.
type rowRef struct{ t, id int64 }

func (r rowRef) before(o rowRef) bool { return r.t < o.t || r.t == o.t && r.id < o.id }

func newAgg(days int) *agg {
	return &agg{ops: map[int64]*cnt{}, idents: map[int32]*cnt{}, svcs: map[int64]*cnt{}, accts: map[string]*cnt{},
		errs: map[int64]int64{}, daily: make([]DayCount, days), crossFirst: map[string]rowRef{}}
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

func inList(ids []int64) string {
	var sb strings.Builder
	sb.WriteByte('(')
	for i, id := range ids {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.FormatInt(id, 10))
	}
	sb.WriteByte(')')
	return sb.String()
}

func (b *builder) strIDs(names ...string) (map[string]int64, error) {
	out := map[string]int64{}
	if len(names) == 0 {
		return out, nil
	}
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	rows, err := b.db.QueryContext(b.ctx, `SELECT id, s FROM strs WHERE s IN (`+strings.TrimSuffix(strings.Repeat("?,", len(names)), ",")+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var s string
		if err := rows.Scan(&id, &s); err != nil {
			return nil, err
		}
		out[s] = id
		b.strs[id] = s
	}
	return out, rows.Err()
}

func (b *builder) loadKeys() error {
	sc := b.o.Scope
	rows, err := b.db.QueryContext(b.ctx, `SELECT k.id, k.arn, k.account, k.region, i.as_of, i.last_used_at, i.last_used_operation
		FROM keys k LEFT JOIN inventory i ON i.key = k.id ORDER BY k.id`)
	if err != nil {
		return fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	b.keys = map[int64]*keyInfo{}
	b.dig.Section("keys")
	for rows.Next() {
		k := &keyInfo{}
		var asOf, last sql.NullInt64
		var op sql.NullString
		if err := rows.Scan(&k.id, &k.arn, &k.account, &k.region, &asOf, &last, &op); err != nil {
			return fmt.Errorf("list keys: %w", err)
		}
		k.inScope = (sc.Account == "" || k.account == sc.Account) && (sc.Region == "" || k.region == sc.Region) &&
			(sc.KeyARN == "" || k.arn == sc.KeyARN || strings.HasSuffix(k.arn, "/"+sc.KeyARN))
		k.hasInv, k.invAsOf, k.invLast, k.invOp = asOf.Valid, asOf.Int64, last.Int64, op.String
		b.dig.Row(k.id, k.arn, k.account, k.region, asOf.Int64, last.Int64, op.String)
		b.keys[k.id] = k
		b.keyList = append(b.keyList, k)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	aliases, err := b.st.Aliases(b.ctx)
	if err != nil {
		return fmt.Errorf("list aliases: %w", err)
	}
	byARN := map[string]*keyInfo{}
	for _, k := range b.keyList {
		byARN[k.arn] = k
	}
	b.dig.Section("aliases")
	for _, a := range aliases {
		if k := byARN[a.KeyARN]; k != nil {
			k.aliases = append(k.aliases, a.Name)
			b.dig.Row(a.ARN, a.KeyARN)
		}
	}
	return nil
}

// loadPrincipals folds principals into identities: an assumed-role
// session counts as its role (a role has thousands of sessions), a
// principal with no ARN (an AWS service) as the service that called.
func (b *builder) loadPrincipals() error {
	rows, err := b.db.QueryContext(b.ctx, `SELECT id, arn, type, account, role_arn FROM principals ORDER BY id`)
	if err != nil {
		return fmt.Errorf("list principals: %w", err)
	}
	defer rows.Close()
	b.princ = map[int64]*pinfo{}
	b.dig.Section("principals")
	for rows.Next() {
		var id int64
		var arn, typ, acc, role string
		if err := rows.Scan(&id, &arn, &typ, &acc, &role); err != nil {
			return err
		}
		b.dig.Row(id, arn, typ, acc, role)
		p := &pinfo{ident: -1, typ: typ, acc: acc}
		switch {
		case role != "":
			p.ident = b.identity(role, "IAM role", acc)
		case arn != "":
			p.ident = b.identity(arn, typ, acc)
		}
		b.princ[id] = p
	}
	return rows.Err()
}

func (b *builder) identity(name, typ, acc string) int32 {
	if i, ok := b.identIx[name]; ok {
		return i
	}
	i := int32(len(b.idents))
	b.idents = append(b.idents, &ident{name: name, typ: typ, account: acc, keys: map[int64]bool{}, firstSeen: -1})
	b.identIx[name] = i
	return i
}

func (b *builder) identOf(principal, invoked int64) int32 {
	p := b.princ[principal]
	if p != nil && p.ident >= 0 {
		return p.ident
	}
	k := [2]int64{principal, invoked}
	if i, ok := b.byInv[k]; ok {
		return i
	}
	name := "unknown principal"
	typ, acc := "", ""
	if p != nil {
		typ, acc = p.typ, p.acc
	}
	if invoked != 0 {
		name = "\x00" + strconv.FormatInt(invoked, 10) // the service's name, resolved later
	} else if p != nil && p.typ != "" {
		name = p.typ + " (account " + p.acc + ")"
	}
	i := b.identity(name+"\x01"+typ, typ, acc)
	b.byInv[k] = i
	return i
}

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
		extra += " AND (e.key IN " + inList(ids) + " OR e.key2 IN " + inList(ids) + ")"
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

// streamRows aggregates the rows of the pass (StreamQuery's columns).
func (b *builder) streamRows(rows driver.Rows, v []driver.Value, admin map[int64]bool, packed bool) error {
	reencrypt := b.reencrypt
	if want := map[bool]int{true: 7, false: 10}[packed]; len(v) != want {
		return fmt.Errorf("%d columns, want %d", len(v), want)
	}
	const low = 1<<32 - 1
	n := 0
	for {
		if err := rows.Next(v); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		var id, t, name, cat, k1, k2, pr, inv, ec int64
		var evID driver.Value
		if packed {
			id, t, ec, evID = asInt(v[0]), asInt(v[1]), asInt(v[5]), v[6]
			nc, kk, pi := asInt(v[2]), asInt(v[3]), asInt(v[4])
			name, cat, k1, k2, pr, inv = nc&low, nc>>32, kk&low, kk>>32, pi&low, pi>>32
		} else {
			id, t, name, cat, k1 = asInt(v[0]), asInt(v[1]), asInt(v[2]), asInt(v[3]), asInt(v[4])
			k2, pr, inv, ec, evID = asInt(v[5]), asInt(v[6]), asInt(v[7]), asInt(v[8]), v[9]
		}
		if n++; n%65536 == 0 && b.ctx.Err() != nil {
			return b.ctx.Err()
		}
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
				a.daily[di].Calls++
				if failed {
					a.daily[di].Failed++
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
		if admin[name] {
			b.admin = append(b.admin, adminRow{row: id, time: t, name: name, key: k1, principal: pr, invoked: inv, err: ec,
				eventID: store.EventIDString(evID)})
		}
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

// firstSeen dates every identity's first event in the database. An
// identity named by its principal takes the principal's first event (from
// the principal index alone); one named by the service that called (AWS
// services share one principal) looks for an earlier event of that
// principal and service, which the same index finds in time order.
func (b *builder) firstSeen() error {
	// seen reads (principal, first time) pairs into the identities' dates.
	seen := func(section, query string) error {
		rows, err := b.db.QueryContext(b.ctx, query)
		if err != nil {
			return fmt.Errorf("date first use of principals: %w", err)
		}
		defer rows.Close()
		b.dig.Section(section)
		for rows.Next() {
			var pr, t int64
			if err := rows.Scan(&pr, &t); err != nil {
				return err
			}
			b.dig.Ints(pr, t)
			if p := b.princ[pr]; p != nil && p.ident >= 0 {
				b.seen(p.ident, pr, t)
			}
		}
		return rows.Err()
	}
	if err := seen("first-seen", FirstSeenQuery); err != nil {
		return err
	}
	if len(b.aggIdents) > 0 {
		// Principals the aggregates name: their first counted event.
		if err := seen("first-seen-aggregates", `SELECT principal, min(first_time) FROM aggregates
			WHERE principal IS NOT NULL GROUP BY principal ORDER BY principal`); err != nil {
			return err
		}
	}
	from := b.o.Scope.From.Unix()
	keys := make([][2]int64, 0, len(b.byInv))
	for k := range b.byInv {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i][0] < keys[j][0] || keys[i][0] == keys[j][0] && keys[i][1] < keys[j][1]
	})
	for _, k := range keys {
		i := b.byInv[k]
		id := b.idents[i]
		var t int64
		err := b.db.QueryRowContext(b.ctx, `SELECT time FROM events WHERE principal = ? AND coalesce(invoked_by, 0) = ? AND time < ?
			ORDER BY time LIMIT 1`, k[0], k[1], from).Scan(&t)
		switch {
		case err == sql.ErrNoRows:
			if id.calls > 0 {
				b.seen(i, k[0], id.periodFirst)
			}
		case err != nil:
			return fmt.Errorf("date first use of a service principal: %w", err)
		default:
			b.dig.Ints(k[0], k[1], t)
			b.seen(i, k[0], t)
		}
	}
	return nil
}

func (b *builder) seen(i int32, pr, t int64) {
	id := b.idents[i]
	if id.firstSeen < 0 || t < id.firstSeen {
		id.firstSeen, id.firstPrincipal = t, pr
	}
}

// resolveStrs reads the strings behind the ids the aggregation used.
func (b *builder) resolveStrs() error {
	want := map[int64]bool{}
	note := func(id int64) {
		if _, ok := b.strs[id]; !ok && id != 0 {
			want[id] = true
		}
	}
	for _, a := range b.allAggs() {
		for op := range a.ops {
			note(op / 4)
		}
		for s := range a.svcs {
			note(s)
		}
		for e := range a.errs {
			note(e)
		}
	}
	for _, r := range b.admin {
		note(r.name)
		note(r.err)
		note(r.invoked)
	}
	for k := range b.byInv {
		note(k[1])
	}
	var ids []int64
	for id := range want {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	b.dig.Section("strings")
	for len(ids) > 0 {
		n := min(500, len(ids))
		rows, err := b.db.QueryContext(b.ctx, `SELECT id, s FROM strs WHERE id IN `+inList(ids[:n])+` ORDER BY id`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			var s string
			if err := rows.Scan(&id, &s); err != nil {
				rows.Close()
				return err
			}
			b.strs[id] = s
			b.dig.Row(id, s)
		}
		rows.Close()
		ids = ids[n:]
	}
	// Name the identities known only by their invoking service.
	for k, i := range b.byInv {
		id := b.idents[i]
		if strings.HasPrefix(id.name, "\x00") {
			svc := b.strs[k[1]]
			id.name = svc
			if id.typ != "" {
				id.name = svc + " (" + id.typ + ")"
			}
		} else {
			id.name = strings.SplitN(id.name, "\x01", 2)[0]
		}
	}
	return nil
}

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
	for i := range u.Daily {
		u.Daily[i].Day = report.Day(time.Unix(b.from, 0).Add(time.Duration(i) * day))
	}
	return u
}

func (b *builder) assemble(r *Report, cov *report.Coverage) error {
	sc := b.o.Scope
	from, to := sc.From.Unix(), sc.To.Unix()
	// Keys that existed in the period: not created after it, not deleted
	// before it.
	names, err := b.strIDs("CreateKey", "DeleteKey")
	if err != nil {
		return err
	}
	gone := map[int64]bool{}
	createdIn := map[int64]bool{} // created in the period: no use before it to look for
	if len(names) > 0 {
		var ids []int64
		for _, id := range names {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		rows, err := b.db.QueryContext(b.ctx, `SELECT e.key, e.time, e.name FROM events e WHERE e.name IN `+inList(ids)+
			` AND e.key IS NOT NULL AND e.error_code IS NULL ORDER BY e.time, e.id`)
		if err != nil {
			return err
		}
		b.dig.Section("existence")
		for rows.Next() {
			var k, t, n int64
			if err := rows.Scan(&k, &t, &n); err != nil {
				rows.Close()
				return err
			}
			b.dig.Ints(k, t, n)
			if (n == names["CreateKey"] && t >= to) || (n == names["DeleteKey"] && t < from) {
				gone[k] = true
			}
			if n == names["CreateKey"] && t >= from {
				createdIn[k] = true
			}
		}
		rows.Close()
	}
	for i := range b.daily {
		b.daily[i].Day = r.Days[i]
	}
	r.Daily = b.daily
	newIdent := func(i int32) bool {
		fs := b.idents[i].firstSeen
		return fs >= from && fs < to
	}
	keyARN := map[int64]string{}
	for _, k := range b.keyList {
		keyARN[k.id] = k.arn
	}
	for _, k := range b.keyList {
		if !k.inScope || gone[k.id] && k.agg == nil {
			continue
		}
		r.Totals.KeysInScope++
		if k.agg == nil || k.agg.lastUse == 0 {
			u := UnusedKey{ARN: k.arn, Aliases: nonNil(k.aliases), Account: k.account, Region: k.region,
				Gaps: append([]report.Gap{}, cov.Between(k.account, k.region, sc.From, sc.To)...)}
			if k.agg != nil {
				u.Events = k.agg.events
			}
			var row, t int64
			var name int64
			err := sql.ErrNoRows
			if !createdIn[k.id] {
				err = b.db.QueryRowContext(b.ctx, `SELECT e.id, e.time, e.name FROM events e
				WHERE e.key = ? AND e.time < ? AND e.category = 1 AND e.error_code IS NULL ORDER BY e.time DESC LIMIT 1`, k.id, from).Scan(&row, &t, &name)
			}
			switch {
			case err == sql.ErrNoRows:
			case err != nil:
				return fmt.Errorf("last use of %s: %w", k.arn, err)
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
			if newIdent(i) {
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
	r.NoKey = b.usage(b.noKey)

	for i, id := range b.idents {
		if id.calls == 0 {
			continue
		}
		p := Principal{Identity: id.name, Type: id.typ, Account: id.account, Calls: id.calls, Failed: id.failed, OffHours: id.off,
			Keys: len(id.keys), New: newIdent(int32(i))}
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
	r.Totals.Events, r.Totals.CryptoCalls, r.Totals.Failed = b.tot.Events, b.tot.CryptoCalls, b.tot.Failed
	r.Totals.OffHours, r.Totals.CrossAccount = b.tot.OffHours, b.tot.CrossAccount
	r.Totals.Principals = len(r.Principals)
	r.Totals.AdminEvents = 0
	for _, a := range b.admin {
		r.Totals.AdminEvents += int(max(a.count, 1))
	}
	r.Totals.AggregatedEvents = b.tot.AggregatedEvents

	// GetKeyLastUsage against CloudTrail.
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

// evidence reads the event ids of the rows findings rest on and lists them.
func (b *builder) evidence(r *Report) error {
	type need struct {
		row     int64
		finding string
	}
	var needs []need
	for _, a := range b.admin {
		if !a.aggregated {
			needs = append(needs, need{a.row, "administrative event"})
		}
	}
	for _, k := range b.keyList {
		if k.agg == nil || !k.inScope {
			continue
		}
		if k.agg.lastUseRow != 0 {
			needs = append(needs, need{k.agg.lastUseRow, "last use in the period"})
		}
		for acc, f := range k.agg.crossFirst {
			needs = append(needs, need{f.id, "first call from account " + acc})
		}
	}
	for i := range r.LastUse {
		if id, err := strconv.ParseInt(r.LastUse[i].CloudTrailEvent, 10, 64); err == nil {
			needs = append(needs, need{id, "last use up to the inventory"})
		}
	}
	// New identities: their first event, which is their first in the period.
	newRow := map[string]int64{}
	for _, id := range b.idents {
		if id.calls > 0 && id.firstSeen >= b.o.Scope.From.Unix() && id.firstSeen < b.o.Scope.To.Unix() {
			needs = append(needs, need{id.periodFirstRow, "first event of a new principal"})
			newRow[id.name] = id.periodFirstRow
		}
	}
	rowIDs := map[int64]bool{}
	var ids []int64
	for _, n := range needs {
		if !rowIDs[n.row] {
			rowIDs[n.row] = true
			ids = append(ids, n.row)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	type info struct {
		eventID               string
		t, name, key, pr, inv int64
	}
	byRow := map[int64]info{}
	// Administrative events came with their ids from the pass; the few
	// other rows are looked up.
	for _, a := range b.admin {
		if !a.aggregated {
			byRow[a.row] = info{eventID: a.eventID, t: a.time, name: a.name, key: a.key, pr: a.principal, inv: a.invoked}
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
			FROM events WHERE id IN `+inList(lookup[:n])+` ORDER BY id`)
		if err != nil {
			return fmt.Errorf("read evidence event ids: %w", err)
		}
		for rows.Next() {
			var row int64
			var ev any
			var in info
			if err := rows.Scan(&row, &ev, &in.t, &in.name, &in.key, &in.pr, &in.inv); err != nil {
				rows.Close()
				return err
			}
			in.eventID = store.EventIDString(ev)
			byRow[row] = in
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read evidence event ids: %w", err)
		}
		lookup = lookup[n:]
	}
	b.dig.Section("evidence")
	for _, id := range ids {
		if in, ok := byRow[id]; ok {
			b.dig.Row(id, in.eventID)
		}
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

// AggregatesQuery reads the aggregates of the period's days (exported for
// the plan test): a range of the aggregates_day index.
const AggregatesQuery = `SELECT a.rowid, a.day, a.account, a.region, a.name, a.category, coalesce(a.key, 0), coalesce(a.principal, 0),
	coalesce(a.invoked_by, 0), coalesce(a.error_code, 0), a.events, a.first_time, a.last_time, coalesce(a.key2, 0),
	coalesce(a.alias, 0)
	FROM aggregates a WHERE a.day >= ? AND a.day <= ? ORDER BY a.day, a.rowid`

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
				a.daily[di].Calls += n
				if failed {
					a.daily[di].Failed += n
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
