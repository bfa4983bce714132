package rotation

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/audit/report"
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
	steps.Next("judging each key")
	for _, k := range b.keys {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if key, ok := b.judge(k); ok {
			r.Keys = append(r.Keys, key)
		}
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
}

// keyRow is one key with its inventory and its events.
type keyRow struct {
	id                          int64
	arn, keyID, account, region string
	aliases                     []string
	inv                         *inventory
	events                      []*ev // lifecycle events up to the end of the period, by time
	unusable                    []*ev // calls failed because of the key's state, in the period
}

type inventory struct {
	asOf                                              int64
	spec, origin, manager, state, desc, expModel, cks sql.NullString
	enabled, created, deletion, validTo, rot, period  sql.NullInt64
	next                                              sql.NullInt64
}

func (b *builder) loadKeys() error {
	sc := b.o.Scope
	rows, err := b.db.QueryContext(b.ctx, `SELECT k.id, k.arn, k.key_id, k.account, k.region,
		i.as_of, i.key_spec, i.origin, i.manager, i.state, i.enabled, i.description, i.created_at,
		i.deletion_date, i.valid_to, i.expiration_model, i.custom_key_store, i.rotation_enabled,
		i.rotation_period_days, i.next_rotation
		FROM keys k LEFT JOIN inventory i ON i.key = k.id
		WHERE (?1 = '' OR k.account = ?1) AND (?2 = '' OR k.region = ?2) AND (?3 = '' OR k.arn = ?3 OR k.key_id = ?3)
		ORDER BY k.arn`, sc.Account, sc.Region, sc.KeyARN)
	if err != nil {
		return fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	b.byID = map[int64]*keyRow{}
	b.dig.Section("keys")
	for rows.Next() {
		k := &keyRow{}
		var asOf sql.NullInt64
		inv := &inventory{}
		if err := rows.Scan(&k.id, &k.arn, &k.keyID, &k.account, &k.region, &asOf, &inv.spec, &inv.origin, &inv.manager,
			&inv.state, &inv.enabled, &inv.desc, &inv.created, &inv.deletion, &inv.validTo, &inv.expModel, &inv.cks,
			&inv.rot, &inv.period, &inv.next); err != nil {
			return fmt.Errorf("list keys: %w", err)
		}
		if asOf.Valid {
			inv.asOf = asOf.Int64
			k.inv = inv
		}
		b.dig.Row(k.arn, k.account, k.region, asOf.Int64, inv.spec.String, inv.origin.String, inv.manager.String, inv.state.String,
			inv.enabled.Int64, inv.enabled.Valid, inv.desc.String, inv.created.Int64, inv.deletion.Int64, inv.validTo.Int64,
			inv.expModel.String, inv.cks.String, inv.rot.Int64, inv.rot.Valid, inv.period.Int64, inv.next.Int64)
		b.keys = append(b.keys, k)
		b.byID[k.id] = k
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list keys: %w", err)
	}
	aliases, err := b.st.Aliases(b.ctx)
	if err != nil {
		return fmt.Errorf("list aliases: %w", err)
	}
	byARN := map[string]*keyRow{}
	for _, k := range b.keys {
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

// strIDs resolves strings to their ids in the strs table.
func (b *builder) strIDs(names []string) ([]int64, error) {
	q := `SELECT id, s FROM strs WHERE s IN (` + strings.TrimSuffix(strings.Repeat("?,", len(names)), ",") + `) ORDER BY id`
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	rows, err := b.db.QueryContext(b.ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		var s string
		if err := rows.Scan(&id, &s); err != nil {
			return nil, err
		}
		ids = append(ids, id)
		b.strs[id] = s
	}
	return ids, rows.Err()
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

// EventsQuery is the lifecycle query (exported for the plan test): it is
// driven by the events_name_time index, one range per event name, and
// picks up each event's facts from event_details by its primary key.
func EventsQuery(nameIDs []int64) string {
	return `SELECT e.id, e.event_id, e.time, e.name, e.key, e.error_code, e.valid_to, e.deletion_date,
		e.rotation_type, e.key_material, e.principal,
		d.event, d.key_spec, d.origin, d.key_manager, d.custom_key_store, d.description,
		d.rotation_period_days, d.import_type, d.expiration_model, d.key_material
		FROM events e LEFT JOIN event_details d ON d.event = e.id
		WHERE e.name IN ` + inList(nameIDs) + ` AND e.time < ? AND e.key IS NOT NULL
		ORDER BY e.time, e.id`
}

// UnusableQuery lists calls that failed because of the key's state; it is
// driven by the partial index of failed calls (events_errors_time).
func UnusableQuery(errIDs []int64) string {
	return `SELECT e.id, e.event_id, e.time, e.name, e.key, e.error_code, e.principal
		FROM events e WHERE e.error_code IS NOT NULL AND e.time >= ? AND e.time < ?
		AND e.error_code IN ` + inList(errIDs) + ` AND e.key IS NOT NULL ORDER BY e.time, e.id`
}

func (b *builder) loadEvents() error {
	ids, err := b.strIDs(lifecycle)
	if err != nil {
		return fmt.Errorf("resolve event names: %w", err)
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := b.db.QueryContext(b.ctx, EventsQuery(ids), b.o.Scope.To.Unix())
	if err != nil {
		return fmt.Errorf("read lifecycle events: %w", err)
	}
	defer rows.Close()
	b.dig.Section("lifecycle")
	for rows.Next() {
		e := &ev{}
		var evID any
		var name int64
		var errc, vt, dd, rt, km, pr, dEvent, dPeriod sql.NullInt64
		var dSpec, dOrigin, dManager, dStore, dDesc, dImport, dExp, dMat sql.NullString
		if err := rows.Scan(&e.row, &evID, &e.time, &name, &e.key, &errc, &vt, &dd, &rt, &km, &pr,
			&dEvent, &dSpec, &dOrigin, &dManager, &dStore, &dDesc, &dPeriod, &dImport, &dExp, &dMat); err != nil {
			return fmt.Errorf("read lifecycle events: %w", err)
		}
		if dEvent.Valid {
			e.stored = &detail{KeySpec: dSpec.String, Origin: dOrigin.String, KeyManager: dManager.String,
				CustomKeyStore: dStore.String, Description: dDesc.String, RotationPeriodDays: int(dPeriod.Int64),
				ImportType: dImport.String, ExpirationModel: dExp.String, KeyMaterialID: dMat.String}
		}
		k := b.byID[e.key]
		if k == nil {
			continue // a key outside the scope
		}
		e.eventID = store.EventIDString(evID)
		e.name = b.strs[name]
		e.validTo, e.deletionDate, e.principal = vt.Int64, dd.Int64, pr.Int64
		e.errCode = b.lazyStr(errc)
		e.rotationType = b.lazyStr(rt)
		e.material = b.lazyStr(km)
		b.dig.Row(e.eventID, e.time, name, k.arn, errc.Int64, vt.Int64, dd.Int64, rt.Int64, km.Int64, pr.Int64,
			dSpec.String, dOrigin.String, dManager.String, dStore.String, dDesc.String, dPeriod.Int64,
			dImport.String, dExp.String, dMat.String)
		k.events = append(k.events, e)
	}
	return rows.Err()
}

// lazyStr remembers a strs id to resolve later in one query.
func (b *builder) lazyStr(v sql.NullInt64) string {
	if !v.Valid {
		return ""
	}
	if _, ok := b.strs[v.Int64]; !ok {
		b.strs[v.Int64] = ""
	}
	return "\x00" + strconv.FormatInt(v.Int64, 10)
}

func (b *builder) loadUnusable() error {
	ids, err := b.strIDs(unusableErrors)
	if err != nil || len(ids) == 0 {
		return err
	}
	rows, err := b.db.QueryContext(b.ctx, UnusableQuery(ids), b.o.Scope.From.Unix(), b.o.Scope.To.Unix())
	if err != nil {
		return fmt.Errorf("read calls on unusable keys: %w", err)
	}
	defer rows.Close()
	b.dig.Section("unusable")
	for rows.Next() {
		e := &ev{}
		var evID any
		var name, errc int64
		var pr sql.NullInt64
		if err := rows.Scan(&e.row, &evID, &e.time, &name, &e.key, &errc, &pr); err != nil {
			return err
		}
		k := b.byID[e.key]
		if k == nil {
			continue
		}
		e.eventID = store.EventIDString(evID)
		e.name = b.lazyStr(sql.NullInt64{Int64: name, Valid: true})
		e.errCode = b.strs[errc]
		e.principal = pr.Int64
		b.dig.Row(e.eventID, e.time, name, k.arn, errc, pr.Int64)
		k.unusable = append(k.unusable, e)
	}
	return rows.Err()
}

// resolveNames fills the deferred strings and the principals named.
func (b *builder) resolveNames() error {
	var want []int64
	for id, s := range b.strs {
		if s == "" {
			want = append(want, id)
		}
	}
	sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
	for len(want) > 0 {
		n := min(len(want), 500)
		rows, err := b.db.QueryContext(b.ctx, `SELECT id, s FROM strs WHERE id IN `+inList(want[:n]))
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
		}
		rows.Close()
		want = want[n:]
	}
	fix := func(s *string) {
		if strings.HasPrefix(*s, "\x00") {
			id, _ := strconv.ParseInt((*s)[1:], 10, 64)
			*s = b.strs[id]
		}
	}
	pids := map[int64]bool{}
	for _, k := range b.keys {
		for _, list := range [][]*ev{k.events, k.unusable} {
			for _, e := range list {
				fix(&e.errCode)
				fix(&e.rotationType)
				fix(&e.material)
				fix(&e.name)
				if e.principal != 0 {
					pids[e.principal] = true
				}
			}
		}
	}
	b.princ = map[int64]string{}
	var ids []int64
	for id := range pids {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for len(ids) > 0 {
		n := min(len(ids), 500)
		rows, err := b.db.QueryContext(b.ctx, `SELECT id, arn, type, account FROM principals WHERE id IN `+inList(ids[:n]))
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			var arn, typ, acct string
			if err := rows.Scan(&id, &arn, &typ, &acct); err != nil {
				rows.Close()
				return err
			}
			switch {
			case arn != "":
				b.princ[id] = arn
			case typ != "":
				b.princ[id] = typ + " " + acct
			default:
				b.princ[id] = "AWS (account " + acct + ")"
			}
		}
		rows.Close()
		ids = ids[n:]
	}
	return nil
}

// loadDetails picks the events whose facts (event_details, read with the
// lifecycle events) decide the report: the key's CreateKey (when no
// inventory gives spec, origin and manager), the last accepted
// EnableKeyRotation (its period), the last import of key material and, for
// imported keys, the last on-demand rotation and the import before it. An
// event without a row states nothing (an empty detail, as its record would).
func (b *builder) loadDetails() {
	need := func(e *ev) {
		if e == nil || e.det != nil {
			return
		}
		e.det = e.stored
		if e.det == nil {
			e.det = &detail{}
		}
	}
	for _, k := range b.keys {
		var create, enable, imp, onDemand *ev
		external := k.inv != nil && k.inv.origin.String == "EXTERNAL"
		for _, e := range k.events {
			if e.errCode != "" {
				continue
			}
			switch e.name {
			case "CreateKey":
				create = e
			case "EnableKeyRotation":
				enable = e
			case "ImportKeyMaterial":
				imp = e
				external = true
			case "RotateKeyOnDemand":
				onDemand = e
			case "RotateKey":
				if e.rotationType == "ON_DEMAND" {
					onDemand = e
				}
			}
		}
		if create != nil && (k.inv == nil || !k.inv.spec.Valid || !k.inv.origin.Valid || !k.inv.manager.Valid) {
			need(create)
		}
		need(enable)
		need(imp)
		if external && onDemand != nil {
			if onDemand.name == "RotateKey" {
				need(onDemand) // its current key material id
			}
			// The import of new material that the on-demand rotation made current.
			for i := len(k.events) - 1; i >= 0; i-- {
				e := k.events[i]
				if e.time <= onDemand.time && e.name == "ImportKeyMaterial" && e.errCode == "" {
					need(e)
					break
				}
			}
		}
	}
}

func days(d time.Duration) int { return int(d / day) }

func tri(t rules.Tri) string { return t.String() }

func (b *builder) principal(e *ev) string { return b.princ[e.principal] }

// judge establishes the facts about one key at the end of the period and
// applies the rules. ok is false for a key outside the period.
func (b *builder) judge(k *keyRow) (Key, bool) {
	to := b.o.Scope.To
	from := b.o.Scope.From
	p := b.o.Policy
	key := Key{ARN: k.arn, KeyID: k.keyID, Account: k.account, Region: k.region, Aliases: k.aliases,
		Sources: map[string]string{}, EventCounts: map[string]int{}, Flags: []Flag{}, Evidence: []EvidenceRef{}}
	if key.Aliases == nil {
		key.Aliases = []string{}
	}
	var f rules.Facts
	ref := func(role string, e *ev) {
		key.Evidence = append(key.Evidence, EvidenceRef{Role: role, EventID: e.eventID, Time: e.t(), Name: e.name})
	}

	// Static identity: the inventory, else the CreateKey record, else an
	// AWS managed alias.
	inv := k.inv
	if inv != nil {
		key.InventoryAsOf = time.Unix(inv.asOf, 0).UTC()
		src := "inventory as of " + report.FormatTime(key.InventoryAsOf)
		set := func(field string, dst *string, v sql.NullString) {
			if v.Valid && v.String != "" {
				*dst = v.String
				key.Sources[field] = src
			}
		}
		set("key_spec", &key.Spec, inv.spec)
		set("origin", &key.Origin, inv.origin)
		set("manager", &key.Manager, inv.manager)
		set("description", &key.Description, inv.desc)
		if inv.cks.Valid {
			f.CustomKeyStore = inv.cks.String
		}
		if inv.created.Valid {
			key.Created = time.Unix(inv.created.Int64, 0).UTC()
			key.Sources["created"] = src
		}
	}
	var create *ev
	for _, e := range k.events {
		if e.name == "CreateKey" && e.errCode == "" {
			create = e
			break
		}
	}
	if create != nil {
		key.Created, key.CreatedInLogs = create.t(), true
		key.Sources["created"] = "CreateKey event " + create.eventID
		ref("created", create)
		if d := create.det; d != nil {
			src := "CreateKey event " + create.eventID
			fill := func(field string, dst *string, v string) {
				if *dst == "" && v != "" {
					*dst = v
					key.Sources[field] = src
				}
			}
			fill("key_spec", &key.Spec, d.KeySpec)
			fill("origin", &key.Origin, d.Origin)
			fill("manager", &key.Manager, d.KeyManager)
			fill("description", &key.Description, d.Description)
			if f.CustomKeyStore == "" {
				f.CustomKeyStore = d.CustomKeyStore
			}
			// KMS's defaults apply to an accepted CreateKey that named no
			// spec or origin, and a key created by a caller is customer
			// managed.
			fill("key_spec", &key.Spec, "SYMMETRIC_DEFAULT")
			fill("origin", &key.Origin, "AWS_KMS")
			fill("manager", &key.Manager, "CUSTOMER")
		}
	}
	if key.Manager == "" {
		for _, a := range k.aliases {
			if strings.HasPrefix(a, "alias/aws/") {
				key.Manager = "AWS"
				key.Sources["manager"] = "alias " + a + " (only AWS managed keys have alias/aws/ aliases)"
				break
			}
		}
	}
	if !key.Created.IsZero() && key.Created.After(to) {
		return key, false // not yet created in the period
	}

	// Replay the lifecycle.
	var (
		rotAt, pendAt, enAt               time.Time
		rotEv, pendEv, enEv               *ev
		lastRot, lastOnDemand, lastImport *ev
		lastAuto, enableEv                *ev
		deleted                           *ev
		materialGone                      *ev
		keyEnabled                        = rules.Unknown
		rotations                         int
	)
	for _, e := range k.events {
		if e.errCode != "" {
			key.EventCounts[e.name+" (failed)"]++
			continue
		}
		key.EventCounts[e.name]++
		switch e.name {
		case "CreateKey":
			f.RotationEnabled, rotAt, rotEv = rules.No, e.t(), e
			f.PendingDeletion, pendAt, pendEv = rules.No, e.t(), e
			keyEnabled, enAt, enEv = rules.Yes, e.t(), e
		case "EnableKeyRotation":
			f.RotationEnabled, rotAt, rotEv = rules.Yes, e.t(), e
			f.RotationAccepted = true
			enableEv = e
			f.RotationPeriod = 365 // KMS's default when the request names no period
			if e.det != nil && e.det.RotationPeriodDays > 0 {
				f.RotationPeriod = e.det.RotationPeriodDays
			}
		case "DisableKeyRotation":
			f.RotationEnabled, rotAt, rotEv = rules.No, e.t(), e
		case "RotateKey": // the rotation itself (a service event)
			rotations++
			lastRot = e
			if e.rotationType == "ON_DEMAND" {
				lastOnDemand = e
			} else {
				lastAuto = e
				// KMS rotates automatically only eligible keys with
				// rotation enabled: the event proves both, at its time.
				f.RotationAccepted = true
				if f.RotationEnabled != rules.Yes {
					rotEv = e
				}
				f.RotationEnabled, rotAt = rules.Yes, e.t()
			}
		case "RotateKeyOnDemand": // the request; its RotateKey follows
			lastRot, lastOnDemand = e, e
		case "ImportKeyMaterial":
			lastImport = e
			materialGone = nil
			if key.Origin == "" {
				key.Origin = "EXTERNAL"
				key.Sources["origin"] = "ImportKeyMaterial accepted (only EXTERNAL keys take imported material), event " + e.eventID
			}
		case "DeleteImportedKeyMaterial", "DeleteExpiredKeyMaterial":
			materialGone = e
		case "ScheduleKeyDeletion":
			f.PendingDeletion, pendAt, pendEv = rules.Yes, e.t(), e
			f.DeletionDate = time.Time{}
			if e.deletionDate != 0 {
				f.DeletionDate = time.Unix(e.deletionDate, 0).UTC()
			}
		case "CancelKeyDeletion":
			f.PendingDeletion, pendAt, pendEv = rules.No, e.t(), e
			keyEnabled, enAt, enEv = rules.No, e.t(), e // a cancelled deletion leaves the key disabled
		case "DeleteKey":
			deleted = e
		case "DisableKey":
			keyEnabled, enAt, enEv = rules.No, e.t(), e
		case "EnableKey":
			keyEnabled, enAt, enEv = rules.Yes, e.t(), e
		}
	}
	if deleted != nil && deleted.t().Before(from) {
		return key, false // deleted before the period
	}
	f.Manager, f.Spec, f.Origin = key.Manager, key.Spec, key.Origin

	// A snapshot of the inventory inside the period is evidence at its
	// time; one taken after the period says nothing of the state at its end
	// (only the static facts above are used).
	invSrc := ""
	if inv != nil && inv.asOf < to.Unix() {
		at := time.Unix(inv.asOf, 0).UTC()
		invSrc = "inventory as of " + report.FormatTime(at)
		if inv.rot.Valid && !at.Before(rotAt) {
			f.RotationEnabled, rotAt, rotEv = rules.TriOf(inv.rot.Int64 == 1), at, nil
			key.Sources["rotation_enabled"] = invSrc
			if inv.period.Valid && inv.period.Int64 > 0 {
				f.RotationPeriod = int(inv.period.Int64)
			} else if inv.rot.Int64 == 1 && f.RotationPeriod == 0 {
				f.RotationPeriod = 365
			}
		}
		if inv.state.Valid && !at.Before(pendAt) {
			f.PendingDeletion, pendAt, pendEv = rules.TriOf(inv.state.String == "PendingDeletion"), at, nil
			key.Sources["pending_deletion"] = invSrc
			if inv.deletion.Valid {
				f.DeletionDate = time.Unix(inv.deletion.Int64, 0).UTC()
			}
		}
		if inv.enabled.Valid && !at.Before(enAt) {
			keyEnabled, enAt, enEv = rules.TriOf(inv.enabled.Int64 == 1), at, nil
		}
		if inv.state.Valid {
			key.State = inv.state.String
			key.Sources["state"] = invSrc
		}
	}

	cs := b.cov.CompleteSince(k.account, k.region, to)
	covered := func(t time.Time) bool { return !t.IsZero() && !t.Before(cs) }

	// Rotation setting: known only if the logs are complete since the
	// evidence that set it.
	if f.RotationEnabled != rules.Unknown {
		if covered(rotAt) {
			if rotEv != nil {
				role := "rotation disabled (default for a new key)"
				switch rotEv.name {
				case "RotateKey":
					role = "automatic rotation (rotation enabled)"
				case "EnableKeyRotation":
					role = "rotation enabled"
				case "DisableKeyRotation":
					role = "rotation disabled"
				}
				ref(role, rotEv)
				key.Sources["rotation_enabled"] = rotEv.name + " event " + rotEv.eventID
			}
		} else {
			b.gapNote(&key, "rotation setting", rotAt)
			f.RotationEnabled = rules.Unknown
			f.RotationGap = true
			delete(key.Sources, "rotation_enabled")
		}
	}
	if f.RotationEnabled == rules.Yes {
		key.RotationPeriodDays = f.RotationPeriod
	}

	// Age of the key material.
	born := key.Created
	if lastRot != nil && lastRot.t().After(born) {
		born = lastRot.t()
		key.LastRotation = lastRot.t()
		key.LastRotationType = lastRot.rotationType
		if lastRot.name == "RotateKeyOnDemand" {
			key.LastRotationType = "ON_DEMAND"
		}
		ref("last rotation", lastRot)
	}
	if inv != nil && inv.asOf < to.Unix() && inv.next.Valid && inv.rot.Valid && inv.rot.Int64 == 1 && f.RotationPeriod > 0 {
		// GetKeyRotationStatus's NextRotationDate is one period after the
		// last rotation.
		if t := time.Unix(inv.next.Int64, 0).UTC().AddDate(0, 0, -f.RotationPeriod); t.After(born) && !t.After(to) {
			born = t
			key.Sources["last_rotation"] = invSrc + " (NextRotationDate minus the rotation period)"
			key.LastRotation = t
		}
	}
	key.Rotations = rotations
	// KMS rotates automatically one period after rotation was enabled or
	// after the last automatic rotation; on-demand rotations do not move
	// that schedule.
	if f.RotationEnabled == rules.Yes && f.RotationPeriod > 0 {
		var base time.Time
		if enableEv != nil {
			base = enableEv.t()
		}
		if lastAuto != nil && lastAuto.t().After(base) {
			base = lastAuto.t()
		}
		switch {
		case key.Sources["rotation_enabled"] == invSrc && invSrc != "" && inv.next.Valid:
			key.NextAutomaticRotation = time.Unix(inv.next.Int64, 0).UTC()
		case !base.IsZero():
			key.NextAutomaticRotation = base.AddDate(0, 0, f.RotationPeriod)
		}
	}
	if !born.IsZero() {
		f.MaterialAgeMaxKnown = true
		f.MaterialAgeMax = days(to.Sub(born))
		if covered(born) {
			f.MaterialAgeMin = f.MaterialAgeMax
		} else if cs.Before(to) {
			f.MaterialAgeMin = days(to.Sub(cs))
		}
		age := f.MaterialAgeMax
		key.MaterialAgeDays = &age
		key.MaterialAgeExact = f.MaterialAgeMin == f.MaterialAgeMax
		key.PolicyDue = born.AddDate(0, 0, p.RotationDays)
	} else if cs.Before(to) {
		f.MaterialAgeMin = days(to.Sub(cs))
	}
	if f.MaterialAgeMin > p.RotationDays {
		key.DaysOverdue = f.MaterialAgeMin - p.RotationDays
	}

	// Deletion.
	if deleted != nil {
		f.Deleted = true
		key.State = "Deleted"
		ref("deleted", deleted)
	}
	if f.PendingDeletion != rules.Unknown && !covered(pendAt) {
		b.gapNote(&key, "deletion status", pendAt)
		f.PendingDeletion = rules.Unknown
		f.DeletionGap = true
		delete(key.Sources, "pending_deletion")
	}
	if f.PendingDeletion == rules.Unknown && deleted == nil && !cs.After(to.AddDate(0, 0, -maxPendingWindow)) {
		// Complete logs for longer than the longest waiting period, with no
		// deletion scheduled or done: nothing is pending.
		scheduled := false
		for _, e := range k.events {
			if e.name == "ScheduleKeyDeletion" && e.errCode == "" && !e.t().Before(cs) {
				scheduled = true
			}
		}
		if !scheduled {
			f.PendingDeletion = rules.No
			key.Sources["pending_deletion"] = fmt.Sprintf("no ScheduleKeyDeletion in %d days of complete logs (longer than the %d-day maximum waiting period)", days(to.Sub(cs)), maxPendingWindow)
		}
	}
	if f.PendingDeletion != rules.Unknown && pendEv != nil && key.Sources["pending_deletion"] == "" {
		key.Sources["pending_deletion"] = pendEv.name + " event " + pendEv.eventID
		if pendEv.name != "CreateKey" {
			ref(map[bool]string{true: "deletion scheduled", false: "deletion cancelled"}[f.PendingDeletion == rules.Yes], pendEv)
		}
	}
	if f.PendingDeletion == rules.Yes {
		key.DeletionDate = f.DeletionDate
	}
	key.PendingDeletion = tri(f.PendingDeletion)
	if keyEnabled != rules.Unknown && !covered(enAt) {
		keyEnabled = rules.Unknown
	}
	invState := key.State
	switch {
	case f.Deleted:
		key.State = "Deleted"
	case f.PendingDeletion == rules.Yes:
		key.State = "PendingDeletion"
	case materialGone != nil:
		key.State = "PendingImport"
	case keyEnabled == rules.No:
		key.State = "Disabled"
	case keyEnabled == rules.Yes:
		key.State = "Enabled"
	case invState != "":
		key.State = invState
	default:
		key.State = "unknown"
	}
	if key.State != invState {
		delete(key.Sources, "state")
	}

	// Imported material.
	if lastImport != nil {
		ref("last import of key material", lastImport)
		f.ImportKnown = true // the import itself states its expiration
		if lastImport.validTo != 0 {
			f.ImportExpires = rules.Yes
			key.ImportValidTo = time.Unix(lastImport.validTo, 0).UTC()
			f.ImportValidDays = int((lastImport.validTo - lastImport.time + int64(day/time.Second) - 1) / int64(day/time.Second))
			key.ImportExpirationModel = "KEY_MATERIAL_EXPIRES"
		} else {
			f.ImportExpires = rules.No
			key.ImportExpirationModel = "KEY_MATERIAL_DOES_NOT_EXPIRE"
		}
		if d := lastImport.det; d != nil && d.ExpirationModel != "" {
			key.ImportExpirationModel = d.ExpirationModel
			f.ImportExpires = rules.TriOf(d.ExpirationModel != "KEY_MATERIAL_DOES_NOT_EXPIRE")
		}
		if lastImport.material != "" {
			key.MaterialIDs = append(key.MaterialIDs, lastImport.material)
		}
	} else if inv != nil && inv.asOf < to.Unix() && inv.expModel.Valid {
		f.ImportKnown = true
		key.ImportExpirationModel = inv.expModel.String
		f.ImportExpires = rules.TriOf(inv.expModel.String != "KEY_MATERIAL_DOES_NOT_EXPIRE")
		if inv.validTo.Valid {
			key.ImportValidTo = time.Unix(inv.validTo.Int64, 0).UTC()
		}
		f.ImportKnown = false // the import time (and so the validity span) is not in the logs
	}
	if key.Origin == "EXTERNAL" && lastOnDemand != nil {
		f.CompensatingKnown = true
		f.CompensatingAge = days(to.Sub(lastOnDemand.t()))
		ref("on-demand rotation", lastOnDemand)
		var newImport *ev
		for i := len(k.events) - 1; i >= 0; i-- {
			e := k.events[i]
			if e.time <= lastOnDemand.time && e.name == "ImportKeyMaterial" && e.errCode == "" {
				newImport = e
				break
			}
		}
		desc := "rotated on demand " + report.FormatDate(lastOnDemand.t())
		mat := lastOnDemand.material
		if lastOnDemand.det != nil && lastOnDemand.det.KeyMaterialID != "" {
			mat = lastOnDemand.det.KeyMaterialID
		}
		if mat != "" {
			desc += " (key material " + mat + ")"
			key.MaterialIDs = appendUniq(key.MaterialIDs, mat)
		}
		if newImport != nil {
			it := "import"
			if newImport.det != nil && newImport.det.ImportType != "" {
				it = newImport.det.ImportType + " import"
			}
			desc = it + " " + report.FormatDate(newImport.t()) + (map[bool]string{true: " (key material " + newImport.material + ")", false: ""}[newImport.material != ""]) + ", then " + desc
			ref("material imported before on-demand rotation", newImport)
			if newImport.material != "" {
				key.MaterialIDs = appendUniq(key.MaterialIDs, newImport.material)
			}
		} else {
			desc += "; the import of that material is not in the logs"
		}
		key.Compensating = desc
	} else if key.Origin == "EXTERNAL" {
		key.Compensating = "none evidenced: no RotateKeyOnDemand in the logs"
	}

	// Judge.
	key.Judgement = rules.Judge(f, p)
	key.RotationEnabled = tri(f.RotationEnabled)
	switch key.Judgement.Eligibility {
	case rules.NotEligibleKey: // a rotation setting means nothing for such a key
		key.RotationEnabled = "n/a"
	case rules.AWSManaged:
		key.RotationEnabled = "by AWS"
	}
	key.MaterialAgeMinDays = f.MaterialAgeMin

	// Flags.
	ids := func(es ...*ev) []string {
		out := []string{}
		for _, e := range es {
			if e != nil {
				out = append(out, e.eventID)
			}
		}
		return out
	}
	flag := func(id, text string, evs ...*ev) {
		key.Flags = append(key.Flags, Flag{ID: id, Text: text, Evidence: ids(evs...)})
	}
	for _, c := range key.Judgement.Checks {
		switch {
		case c.Check == rules.CheckRotationEnabled && c.Status == rules.NonCompliant:
			flag(FlagRotationDisabled, "automatic rotation disabled on a customer managed symmetric key", rotEv)
		case c.Check == rules.CheckRotationPeriod && c.Status == rules.NonCompliant && f.MaterialAgeMin > p.RotationDays:
			last := lastRot
			if last == nil {
				last = create
			}
			flag(FlagRotationOverdue, fmt.Sprintf("rotation overdue by at least %d day(s)", key.DaysOverdue), last)
		}
	}
	if f.Deleted {
		flag(FlagDeleted, "key deleted on "+report.FormatDate(deleted.t()), deleted)
	}
	if f.PendingDeletion == rules.Yes {
		t := "deletion scheduled"
		if !f.DeletionDate.IsZero() {
			t += " for " + report.FormatDate(f.DeletionDate)
		}
		flag(FlagPendingDeletion, t, pendEv)
	}
	if keyEnabled == rules.No && f.PendingDeletion != rules.Yes && !f.Deleted {
		flag(FlagKeyDisabled, "key disabled", enEv)
	}
	if !key.ImportValidTo.IsZero() && !f.Deleted {
		switch vt := key.ImportValidTo; {
		case vt.Before(to) || materialGone != nil:
			t := "imported key material expired " + report.FormatDate(vt)
			if materialGone != nil {
				t = "imported key material deleted (" + materialGone.name + " " + report.FormatDate(materialGone.t()) + ")"
			}
			flag(FlagMaterialExpired, t, lastImport, materialGone)
		case vt.Before(to.AddDate(0, 0, p.ExpiryWarnDays)):
			flag(FlagMaterialExpiring, fmt.Sprintf("imported key material expires %s, within %d days of the end of the period", report.FormatDate(vt), p.ExpiryWarnDays), lastImport)
		}
	}
	if len(k.unusable) > 0 {
		byCode := map[string]int{}
		for _, e := range k.unusable {
			byCode[e.errCode]++
		}
		var parts []string
		for _, c := range unusableErrors {
			if n := byCode[c]; n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n, c))
			}
		}
		fl := Flag{ID: FlagUseWhileUnusable, Count: len(k.unusable),
			Text: "use attempted while the key was disabled or pending deletion or import: " + strings.Join(parts, ", ")}
		for _, e := range k.unusable {
			fl.Evidence = append(fl.Evidence, e.eventID)
		}
		key.Flags = append(key.Flags, fl)
	}
	if !key.CreatedInLogs {
		t := "created before the logs begin"
		if !key.Created.IsZero() {
			t = "created " + report.FormatDate(key.Created) + ", before the logs begin"
		}
		flag(FlagCreatedBefore, t+": CloudTrail evidence of its history is incomplete")
	}
	key.Gaps = append([]report.Gap{}, b.cov.Between(k.account, k.region, from, to)...)
	if len(key.Gaps) > 0 {
		n := 0
		for _, g := range key.Gaps {
			n += g.Days
		}
		flag(FlagCoverageGap, fmt.Sprintf("KMS evidence missing for %d day(s) of the period in %s/%s", n, k.account, k.region))
	}
	sort.SliceStable(key.Evidence, func(i, j int) bool { return key.Evidence[i].Time.Before(key.Evidence[j].Time) })
	return key, true
}

func appendUniq(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// gapNote records why a fact was set back to unknown.
func (b *builder) gapNote(k *Key, what string, since time.Time) {
	k.Sources[strings.ReplaceAll(what, " ", "_")+"_unknown"] = fmt.Sprintf("%s last established %s, but KMS evidence is missing for part of the time since", what, report.FormatTime(since))
}

func summarize(keys []Key) Summary {
	s := Summary{Keys: len(keys), ByStatus: map[rules.Status]int{}, Flags: map[string]int{}}
	for _, st := range []rules.Status{rules.Compliant, rules.NonCompliant, rules.StatusUnknown, rules.NotEligible, rules.NotApplicable} {
		s.ByStatus[st] = 0
	}
	for _, c := range rules.Controls {
		cs := ControlSummary{Check: c.Check, Title: c.Title, Refs: c.Refs, Counts: map[rules.Status]int{}}
		for _, st := range []rules.Status{rules.Compliant, rules.NonCompliant, rules.StatusUnknown, rules.NotEligible, rules.NotApplicable} {
			cs.Counts[st] = 0
		}
		for _, k := range keys {
			for _, r := range k.Judgement.Checks {
				if r.Check == c.Check {
					cs.Counts[r.Status]++
				}
			}
		}
		s.Controls = append(s.Controls, cs)
	}
	for _, k := range keys {
		s.ByStatus[k.Judgement.Status]++
		for _, f := range k.Flags {
			s.Flags[f.ID]++
		}
	}
	return s
}

// appendix lists every event a finding or flag rests on.
func (b *builder) appendix(keys []Key) []EvidenceItem {
	byEvent := map[string]*EvidenceItem{}
	index := map[string]*ev{}
	for _, k := range b.keys {
		for _, list := range [][]*ev{k.events, k.unusable} {
			for _, e := range list {
				index[e.eventID] = e
			}
		}
	}
	keyARN := map[int64]string{}
	for _, k := range b.keys {
		keyARN[k.id] = k.arn
	}
	add := func(id, finding string) {
		e := index[id]
		if e == nil {
			return
		}
		it := byEvent[id]
		if it == nil {
			it = &EvidenceItem{EventID: id, Time: e.t(), Name: e.name, KeyARN: keyARN[e.key], Principal: b.principal(e), Error: e.errCode}
			switch {
			case e.deletionDate != 0:
				it.Detail = "deletion date " + report.FormatDate(time.Unix(e.deletionDate, 0))
			case e.validTo != 0:
				it.Detail = "valid to " + report.FormatDate(time.Unix(e.validTo, 0))
			case e.rotationType != "":
				it.Detail = "rotation type " + e.rotationType
			}
			if e.det != nil && e.det.RotationPeriodDays > 0 {
				it.Detail = "rotation period " + strconv.Itoa(e.det.RotationPeriodDays) + " days"
			}
			if e.det != nil && e.det.ImportType != "" {
				it.Detail = strings.TrimPrefix(it.Detail+", ", ", ") + "import type " + e.det.ImportType
			}
			if e.material != "" {
				it.Detail = strings.TrimPrefix(it.Detail+", ", ", ") + "key material " + e.material
			}
			byEvent[id] = it
		}
		for _, f := range it.Findings {
			if f == finding {
				return
			}
		}
		it.Findings = append(it.Findings, finding)
	}
	for _, k := range keys {
		for _, c := range k.Judgement.Checks {
			if c.Status == rules.Compliant || c.Status == rules.NotApplicable {
				continue
			}
			for _, r := range k.Evidence {
				add(r.EventID, c.Check+":"+c.Rule)
			}
		}
		for _, f := range k.Flags {
			for _, id := range f.Evidence {
				add(id, f.ID)
			}
		}
	}
	out := make([]EvidenceItem, 0, len(byEvent))
	for _, it := range byEvent {
		out = append(out, *it)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].EventID < out[j].EventID
	})
	return out
}
