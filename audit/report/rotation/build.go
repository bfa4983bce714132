package rotation

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/report/keyprov"
	"github.com/keyceremony/keyceremony/audit/report/rules"
	"github.com/keyceremony/keyceremony/audit/store"
)

// Options say what to report.
type Options struct {
	Scope    report.Scope
	Policy   rules.Policy
	Progress report.ProgressFunc
	// Now is the generation time (default time.Now); tests fix it.
	Now func() time.Time
	// Generator names the program version on the cover.
	Generator string
}

// lifecycle lists the events that establish rotation, deletion and
// imported-material facts.
var lifecycle = []string{
	"CreateKey", "EnableKeyRotation", "DisableKeyRotation", "RotateKey", "RotateKeyOnDemand",
	"ImportKeyMaterial", "DeleteImportedKeyMaterial", "DeleteExpiredKeyMaterial",
	"ScheduleKeyDeletion", "CancelKeyDeletion", "DeleteKey", "DisableKey", "EnableKey",
}

// unusableErrors are the errors of a call on a disabled key or one pending
// deletion or import.
var unusableErrors = []string{"KMSInvalidStateException", "DisabledException"}

// maxPendingWindow is KMS's longest deletion waiting period: logs complete
// for this long with no ScheduleKeyDeletion show no deletion is pending.
const maxPendingWindow = 30

const day = 24 * time.Hour

// ev is one lifecycle event row.
type ev struct {
	row, time              int64
	eventID                string
	name                   string
	key                    int64
	errCode                string
	validTo, deletionDate  int64
	rotationType, material string
	principal              int64
	stored                 *detail // event_details, if the event has a row
	det                    *detail // set for the events that decide a fact (loadDetails)
}

func (e *ev) t() time.Time { return time.Unix(e.time, 0).UTC() }

// Build computes the rotation report from the database.
func Build(ctx context.Context, st *store.Store, o Options) (*Report, error) {
	if err := o.Scope.Validate(); err != nil {
		return nil, err
	}
	o.Policy = o.Policy.WithDefaults()
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	steps := &report.Stepper{F: o.Progress, Steps: 6}
	conn, release, err := report.ReadConn(ctx, st.DB())
	if err != nil {
		return nil, err
	}
	defer release()
	b := &builder{ctx: ctx, st: st, db: conn, o: o, dig: report.NewDigest(), strs: map[int64]string{}}
	r := &Report{Policy: o.Policy}
	r.Meta = report.Meta{Kind: "rotation", Title: "KMS key rotation compliance report", GeneratedAt: now().UTC().Truncate(time.Second),
		Generator: o.Generator, Scope: o.Scope.JSON()}

	steps.Next("reading the ingest provenance")
	prov, err := report.LoadProvenance(ctx, st, conn)
	if err != nil {
		return nil, err
	}
	r.Meta.Provenance = prov

	steps.Next("listing keys in scope")
	if err := b.loadKeys(); err != nil {
		return nil, err
	}
	steps.Next("reading lifecycle events")
	if err := b.loadEvents(); err != nil {
		return nil, err
	}
	if err := b.loadUnusable(); err != nil {
		return nil, err
	}
	if err := b.loadMaterials(); err != nil {
		return nil, err
	}
	if err := b.resolveNames(); err != nil {
		return nil, err
	}
	steps.Next("selecting the events that decide key facts")
	b.loadDetails()
	steps.Next("reading the ingest coverage")
	var pairs []report.Pair
	for _, k := range b.keys {
		pairs = append(pairs, report.Pair{Account: k.account, Region: k.region})
	}
	if b.cov, err = report.LoadCoverage(ctx, st, o.Scope, pairs); err != nil {
		return nil, err
	}
	for _, g := range b.cov.Gaps() {
		b.dig.Section("gap")
		b.dig.Row(g.Account, g.Region, g.From, g.To, g.Kind)
		r.Coverage = append(r.Coverage, g)
	}
	r.Meta.Coverage = report.Verdict(r.Coverage, len(b.cov.Pairs()))
	if r.Conflicts, err = report.LoadConflicts(ctx, st, o.Scope, b.dig); err != nil {
		return nil, err
	}
	b.conflicts = r.Conflicts
	steps.Next("judging each key")
	for _, k := range b.keys {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if key, ok := b.judge(k); ok {
			r.Keys = append(r.Keys, key)
		}
	}
	// Imported material: the ceremony each import was traced to (the key
	// provenance join), cited per key.
	traces, err := keyprov.Trace(ctx, st, conn, o.Scope, b.dig)
	if err != nil {
		return nil, fmt.Errorf("trace imported material to ceremonies: %w", err)
	}
	for i := range r.Keys {
		r.Keys[i].ImportProvenance = traces[r.Keys[i].ARN]
	}
	r.Meta.InputSHA256, r.Meta.InputRows = b.dig.Sum()
	r.Summary = summarize(r.Keys)
	r.Evidence = b.appendix(r.Keys)
	r.Notes = append([]string{}, b.notes...)
	if r.Keys == nil {
		r.Keys = []Key{}
	}
	if r.Coverage == nil {
		r.Coverage = []report.Gap{}
	}
	switch {
	case prov.AggregateOnly():
		r.Notes = append(r.Notes, "Aggregates cannot show a key's lifecycle: whether rotation is enabled, when material was rotated or imported, "+
			"whether deletion is pending are in the records of those events, which the database does not hold. Every day of the "+
			"period with aggregates only is listed as a coverage gap (aggregates-only), and the facts that need those records are unknown.")
	case len(prov.AggregateSources) > 0:
		r.Notes = append(r.Notes, "Days with aggregates only (no records) are coverage gaps for this report (aggregates-only): "+
			"a count of events does not show what they changed, so facts that need those days' records are unknown.")
	case len(prov.FileList) == 0:
		r.Notes = append(r.Notes, "The database holds no ingested file: every fact below is unknown.")
	}
	return r, nil
}

type builder struct {
	ctx   context.Context
	st    *store.Store
	db    *sql.Conn // every query of the report
	o     Options
	dig   *report.Digest
	cov   *report.Coverage
	keys  []*keyRow
	byID  map[int64]*keyRow
	strs  map[int64]string
	princ map[int64]string
	notes []string
	// conflicts in scope: a key whose events have one is flagged.
	conflicts []report.Conflict
}

// keyRow is one key with its inventory and its events.
type keyRow struct {
	id                          int64
	arn, keyID, account, region string
	aliases                     []string
	inv                         *inventory
	events                      []*ev // lifecycle events up to the end of the period, by time
	unusable                    []*ev // calls failed because of the key's state, in the period
	materials                   []material
}

// material is one key material of the inventory's key-material history
// (ListKeyRotations), as of its snapshot.
type material struct {
	id, state, importState, expModel, rotType string
	asOf, validTo, rotated                    int64 // rotated: the rotation that made it current (0: the first material)
}

type inventory struct {
	asOf                                              int64
	spec, origin, manager, state, desc, expModel, cks sql.NullString
	enabled, created, deletion, validTo, rot, period  sql.NullInt64
	next                                              sql.NullInt64
}
