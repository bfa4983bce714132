package rotation

import (
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/store"
)

// The report's queries: the keys in scope with their inventory, the
// lifecycle events up to the end of the period, the calls refused because
// of a key's state, and the strings and principals they name.

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
	byARN := map[string]*keyRow{}
	for _, k := range b.keys {
		byARN[k.arn] = k
	}
	return report.AttachAliases(b.ctx, b.st, b.dig, func(keyARN, alias string) bool {
		k := byARN[keyARN]
		if k != nil {
			k.aliases = append(k.aliases, alias)
		}
		return k != nil
	})
}

// strIDs resolves strings to their ids in the strs table, in id order,
// and remembers them.
func (b *builder) strIDs(names []string) ([]int64, error) {
	m, err := store.StrIDs(b.ctx, b.db, names)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, 0, len(m))
	for s, id := range m {
		ids = append(ids, id)
		b.strs[id] = s
	}
	slices.Sort(ids)
	return ids, nil
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
		WHERE e.name IN ` + store.InList(nameIDs) + ` AND e.time < ? AND e.key IS NOT NULL
		ORDER BY e.time, e.id`
}

// UnusableQuery lists calls that failed because of the key's state; it is
// driven by the partial index of failed calls (events_errors_time).
func UnusableQuery(errIDs []int64) string {
	return `SELECT e.id, e.event_id, e.time, e.name, e.key, e.error_code, e.principal
		FROM events e WHERE e.error_code IS NOT NULL AND e.time >= ? AND e.time < ?
		AND e.error_code IN ` + store.InList(errIDs) + ` AND e.key IS NOT NULL ORDER BY e.time, e.id`
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
	if err := store.StrsByID(b.ctx, b.db, want, func(id int64, s string) { b.strs[id] = s }); err != nil {
		return err
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
		rows, err := b.db.QueryContext(b.ctx, `SELECT id, arn, type, account FROM principals WHERE id IN `+store.InList(ids[:n]))
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
