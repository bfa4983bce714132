package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/keyceremony/keyceremony/audit/cloudtrail"
	"github.com/keyceremony/keyceremony/audit/inventory"
)

// ImportInventory stores inventory documents inside the current file.
// The document bytes are kept as evidence in a raw block of the file (block
// is their DEFLATE, rawSize their length). A newer snapshot of a key wins;
// a partial document (say, rotation status only) fills its fields without
// erasing the others.
func (w *Writer) ImportInventory(docs []*inventory.Doc, block []byte, rawSize int) (keys int, err error) {
	if !w.inFile {
		return 0, errors.New("store: ImportInventory outside a file")
	}
	if _, err := w.insBlock.ExecContext(w.ctx, w.nextBlock, w.fileID, CodecDeflate, rawSize, block, nil); err != nil {
		return 0, fmt.Errorf("store inventory document: %w", err)
	}
	w.nextBlock++
	q := inventoryUpsert()
	for _, d := range docs {
		for _, k := range d.Keys {
			id, err := w.key(k.ARN)
			if err != nil {
				return keys, err
			}
			var meta, rot, use any
			if k.State != "" || k.Spec != "" || k.Origin != "" {
				meta = d.GeneratedAt
			}
			if k.RotationEnabled != nil {
				rot = d.GeneratedAt
			}
			if k.LastUsedAt != 0 || k.LastUsedOperation != "" {
				use = d.GeneratedAt
			}
			_, err = w.conn.ExecContext(w.ctx, q, id, d.GeneratedAt, meta, rot, use, w.fileID,
				nullStr(k.Spec), nullStr(k.Usage), nullStr(k.Origin), nullStr(k.Manager), nullStr(k.State), nullBool(k.Enabled),
				nullStr(k.Description), nullTime(k.CreatedAt), nullTime(k.DeletionDate), nullTime(k.ValidTo),
				nullStr(k.ExpirationModel), nullBool(k.MultiRegion), nullStr(k.CustomKeyStore),
				nullBool(k.RotationEnabled), nullable(k.RotationPeriodDays), nullTime(k.NextRotation),
				nullTime(k.LastUsedAt), nullStr(k.LastUsedOperation), string(k.JSON))
			if err != nil {
				return keys, fmt.Errorf("store inventory of %s: %w", k.ARN, err)
			}
			if err := upsertMaterials(w.ctx, w.conn, id, d.GeneratedAt, w.fileID, k.Materials); err != nil {
				return keys, fmt.Errorf("store the key materials of %s: %w", k.ARN, err)
			}
			keys++
		}
		for _, a := range d.Aliases {
			al, err := w.alias(a.ARN)
			if err != nil {
				return keys, err
			}
			var target int64
			if a.TargetARN != "" {
				if target, err = w.key(a.TargetARN); err != nil {
					return keys, err
				}
			}
			if _, err := w.insTarget.ExecContext(w.ctx, al, nullable(target), d.GeneratedAt, sourceInventory, nil); err != nil {
				return keys, fmt.Errorf("store alias %s: %w", a.ARN, err)
			}
			// An inventory snapshot can decide events of any time (the
			// earliest snapshot stands for the time before it).
			w.markAlias(al, math.MinInt64)
		}
	}
	return keys, nil
}

// upsertMaterials stores a snapshot's key materials: a snapshot at least
// as recent as the stored one updates a material; a rotation date, once
// known, stays.
func upsertMaterials(ctx context.Context, conn *sql.Conn, key, asOf, file int64, ms []inventory.Material) error {
	for _, m := range ms {
		if _, err := conn.ExecContext(ctx, `INSERT INTO key_materials (key, material_id, as_of, file, state, import_state,
			expiration_model, valid_to, rotation_date, rotation_type, description) VALUES (?,?,?,?,?,?,?,?,?,?,?)
			ON CONFLICT (key, material_id) DO UPDATE SET as_of = excluded.as_of, file = excluded.file, state = excluded.state,
			import_state = excluded.import_state, expiration_model = excluded.expiration_model, valid_to = excluded.valid_to,
			rotation_date = coalesce(excluded.rotation_date, rotation_date), rotation_type = coalesce(excluded.rotation_type, rotation_type),
			description = excluded.description
			WHERE excluded.as_of >= key_materials.as_of`,
			key, m.ID, asOf, nullable(file), nullStr(m.State), nullStr(m.ImportState), nullStr(m.ExpirationModel),
			nullTime(m.ValidTo), nullTime(m.RotationDate), nullStr(m.RotationType), nullStr(m.Description)); err != nil {
			return err
		}
	}
	return nil
}

// backfillMaterials completes the v9 upgrade: the key materials of the
// inventory fragments already stored.
func backfillMaterials(ctx context.Context, conn *sql.Conn) error {
	rows, err := conn.QueryContext(ctx, `SELECT key, as_of, coalesce(file, 0), json FROM inventory WHERE json LIKE '%"Rotations"%'`)
	if err != nil {
		return err
	}
	type frag struct {
		key, asOf, file int64
		json            string
	}
	var fs []frag
	for rows.Next() {
		var f frag
		if err := rows.Scan(&f.key, &f.asOf, &f.file, &f.json); err != nil {
			rows.Close()
			return err
		}
		fs = append(fs, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, f := range fs {
		ms, err := inventory.MaterialsOf([]byte(f.json))
		if err != nil {
			continue // a fragment of another shape: nothing to add
		}
		if err := upsertMaterials(ctx, conn, f.key, f.asOf, f.file, ms); err != nil {
			return err
		}
	}
	return nil
}

func nullBool(b *bool) any {
	if b == nil {
		return nil
	}
	if *b {
		return int64(1)
	}
	return int64(0)
}

type target struct {
	key    int64
	since  int64
	source int
}

// ResolveAliases fills the key of events that named only an alias (a
// denied call has no resources list) from what is known of the alias over
// time: the CreateAlias/UpdateAlias history first (the target in force at
// the event's time), the inventory otherwise. It revisits every event of an
// alias whose history changed in this run, so loading logs and inventory in
// any order gives the same result. It returns the number of events updated.
//
// With the events_alias_time index it walks each alias's events through
// it. Without (a bulk load, which calls it before building the indexes), it
// reads the candidate events in one pass over the table instead, and its
// updates cost no index maintenance: at a million events that is a second
// less than resolving after the index build.
func (w *Writer) ResolveAliases() (int, error) {
	if w.inFile {
		return 0, errors.New("store: ResolveAliases inside a file")
	}
	if err := w.begin(); err != nil {
		return 0, err
	}
	// events_alias_time and events_alias_unresolved go and come back
	// together (a bulk load drops every index, BuildIndexes builds the
	// missing ones in one transaction; v12 adds the second to a database
	// that has the first, or has neither after a killed bulk load).
	var indexed int
	if err := w.conn.QueryRowContext(w.ctx, `SELECT count(*) FROM sqlite_schema WHERE type='index' AND name='events_alias_time'`).Scan(&indexed); err != nil {
		return 0, err
	}
	var byAlias map[int64][]aliasEvent
	if indexed == 0 {
		var err error
		if byAlias, err = w.aliasEventsByScan(); err != nil {
			return 0, err
		}
	} else if err := w.markUnresolvedAliases(); err != nil {
		return 0, err
	}
	ids := make([]int64, 0, len(w.dirtyAlias)+len(w.pendingAlias))
	for id := range w.dirtyAlias {
		ids = append(ids, id)
	}
	for id := range w.pendingAlias {
		if _, dirty := w.dirtyAlias[id]; !dirty {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	updated := 0
	for _, al := range ids {
		// An event resolves the same way as before unless its alias's
		// history changed at or before its time: only those events, and
		// the ones without a key, are looked at (at ten million events, the
		// difference between a second and a pass over every alias event
		// for one more day).
		since, dirty := w.dirtyAlias[al]
		pending := w.pendingAlias[al]
		var evs []aliasEvent
		if byAlias != nil {
			evs = slices.DeleteFunc(byAlias[al], func(e aliasEvent) bool {
				return !(dirty && e.time >= since) && !(pending && e.key == 0)
			})
			if len(evs) == 0 {
				continue
			}
		} else {
			var err error
			if evs, err = w.aliasCandidates(al, dirty, since, pending); err != nil {
				return updated, fmt.Errorf("resolve alias %d: %w", al, err)
			}
		}
		n, err := w.resolveAlias(al, evs)
		if err != nil {
			return updated, fmt.Errorf("resolve alias %d: %w", al, err)
		}
		updated += n
	}
	clear(w.dirtyAlias)
	clear(w.pendingAlias)
	return updated, w.Commit()
}

// aliasEvent is an event a change of its alias's history may re-resolve.
type aliasEvent struct {
	id, time, key int64
	src           int
}

// UnresolvedAliasesQuery lists the aliases of events up to a row id whose
// key is not known, from the events_alias_unresolved index alone
// (exported for the query-plan test).
const UnresolvedAliasesQuery = `SELECT DISTINCT alias FROM events WHERE id <= ? AND alias IS NOT NULL AND key IS NULL`

// markAlias notes that alias al's history changed at since: its events
// from then on are resolved again.
func (w *Writer) markAlias(al, since int64) {
	if s, ok := w.dirtyAlias[al]; !ok || since < s {
		w.dirtyAlias[al] = since
	}
}

// markUnresolvedAliases marks the aliases still unresolved from earlier
// runs (their history may have grown in this one). The rows this writer
// added marked their aliases already, so unless another connection wrote
// meanwhile only the rows before ours need looking at, and none when the
// table started empty.
func (w *Writer) markUnresolvedAliases() error {
	q, args := UnresolvedAliasesQuery, []any{math.MaxInt64}
	if !w.othersWrote {
		if w.startMax == 0 {
			return nil
		}
		args = []any{w.startMax}
	}
	rows, err := w.conn.QueryContext(w.ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return err
		}
		w.pendingAlias[id] = true
	}
	return rows.Err()
}

// The candidate events of an alias in (time, id) order: those its history
// decides from a time on (through events_alias_time), and those without a
// key (through events_alias_unresolved, named: the planner would rather
// walk events_alias_time for the order, every event of the alias).
const (
	aliasEventsQuery = `SELECT id, time, coalesce(key,0), key_source FROM events
		WHERE alias = ? AND time >= ? AND (key IS NULL OR key_source IN (?, ?)) ORDER BY time, id`
	unresolvedEventsQuery = `SELECT id, time, 0, key_source FROM events INDEXED BY events_alias_unresolved
		WHERE alias = ? AND alias IS NOT NULL AND key IS NULL ORDER BY time, id`
)

// aliasCandidates lists the events of alias al to resolve again: those at
// or after since if its history changed (dirty), those without a key if
// it has some (pending), in (time, id) order.
func (w *Writer) aliasCandidates(al int64, dirty bool, since int64, pending bool) ([]aliasEvent, error) {
	var evs []aliasEvent
	if dirty {
		var err error
		if evs, err = w.aliasEvents(aliasEventsQuery, al, since, int(cloudtrail.KeyAlias), int(cloudtrail.KeyInventory)); err != nil {
			return nil, err
		}
	}
	if !pending || (dirty && since == math.MinInt64) {
		return evs, nil
	}
	more, err := w.aliasEvents(unresolvedEventsQuery, al)
	if err != nil {
		return nil, err
	}
	seen := make(map[int64]bool, len(evs))
	for _, e := range evs {
		seen[e.id] = true
	}
	for _, e := range more {
		if !seen[e.id] {
			evs = append(evs, e)
		}
	}
	sort.Slice(evs, func(i, j int) bool {
		if evs[i].time != evs[j].time {
			return evs[i].time < evs[j].time
		}
		return evs[i].id < evs[j].id
	})
	return evs, nil
}

// aliasEvents lists an alias's candidate events by query q (above).
func (w *Writer) aliasEvents(q string, args ...any) ([]aliasEvent, error) {
	rows, err := w.conn.QueryContext(w.ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []aliasEvent
	for rows.Next() {
		var e aliasEvent
		if err := rows.Scan(&e.id, &e.time, &e.key, &e.src); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// aliasEventsByScan reads every candidate event in one pass over the table
// (no index needed), marks the aliases left unresolved by earlier runs as
// markUnresolvedAliases does, and returns the candidates of the marked
// aliases in (time, id) order.
func (w *Writer) aliasEventsByScan() (map[int64][]aliasEvent, error) {
	rows, err := w.conn.QueryContext(w.ctx, `SELECT id, alias, time, coalesce(key,0), key_source FROM events
		WHERE alias IS NOT NULL AND (key IS NULL OR key_source IN (?, ?))`, int(cloudtrail.KeyAlias), int(cloudtrail.KeyInventory))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	all := map[int64][]aliasEvent{}
	for rows.Next() {
		var e aliasEvent
		var al int64
		if err := rows.Scan(&e.id, &al, &e.time, &e.key, &e.src); err != nil {
			return nil, err
		}
		if e.key == 0 && (w.othersWrote || e.id <= w.startMax) {
			w.pendingAlias[al] = true
		}
		all[al] = append(all[al], e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for al, evs := range all {
		if _, dirty := w.dirtyAlias[al]; !dirty && !w.pendingAlias[al] {
			delete(all, al)
			continue
		}
		sort.Slice(evs, func(i, j int) bool {
			if evs[i].time != evs[j].time {
				return evs[i].time < evs[j].time
			}
			return evs[i].id < evs[j].id
		})
	}
	return all, nil
}

// rowsQuerier is a database, connection or transaction.
type rowsQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// aliasHistory reads what is known of an alias over time: the CloudTrail
// changes (hist) and the inventory snapshots (inv), each by time.
func aliasHistory(ctx context.Context, q rowsQuerier, al int64) (hist, inv []target, err error) {
	rows, err := q.QueryContext(ctx, `SELECT coalesce(key,0), since, source FROM alias_targets WHERE alias = ? ORDER BY since, source`, al)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var t target
		if err := rows.Scan(&t.key, &t.since, &t.source); err != nil {
			return nil, nil, err
		}
		if t.source == sourceEvent {
			hist = append(hist, t)
		} else {
			inv = append(inv, t)
		}
	}
	return hist, inv, rows.Err()
}

// AliasResolver tells which key an alias named at a time, from the same
// history and by the same rule as ResolveAliases for events (CloudTrail's
// alias changes first, the inventory otherwise). Reports use it for
// aggregates, which keep the alias a call named instead of a key: their
// resolution then follows whatever history was loaded, in any order.
type AliasResolver struct {
	ctx  context.Context
	q    rowsQuerier
	hist map[int64][2][]target
}

// NewAliasResolver reads histories through q (the store's database or a
// report's connection), each alias's once.
func NewAliasResolver(ctx context.Context, q rowsQuerier) *AliasResolver {
	return &AliasResolver{ctx: ctx, q: q, hist: map[int64][2][]target{}}
}

// KeyAt is the key alias pointed to at t (Unix seconds), 0 if none is known.
func (r *AliasResolver) KeyAt(alias, t int64) (int64, error) {
	h, ok := r.hist[alias]
	if !ok {
		hist, inv, err := aliasHistory(r.ctx, r.q, alias)
		if err != nil {
			return 0, fmt.Errorf("read the history of alias %d: %w", alias, err)
		}
		h = [2][]target{hist, inv}
		r.hist[alias] = h
	}
	k, _ := pick(h[0], h[1], t)
	return k, nil
}

func (w *Writer) resolveAlias(al int64, evs []aliasEvent) (int, error) {
	hist, inv, err := aliasHistory(w.ctx, w.conn, al)
	if err != nil {
		return 0, err
	}
	if len(hist) == 0 && len(inv) == 0 {
		return 0, nil
	}
	// Walk the alias's events in time order and update them in runs that
	// resolve to the same key: one UPDATE per run, not per event.
	type change struct {
		ids []int64
		key int64
		src int
	}
	var changes []*change
	for _, e := range evs {
		k, s := pick(hist, inv, e.time)
		if k == e.key && s == e.src {
			continue
		}
		if n := len(changes); n > 0 && changes[n-1].key == k && changes[n-1].src == s {
			changes[n-1].ids = append(changes[n-1].ids, e.id)
		} else {
			changes = append(changes, &change{ids: []int64{e.id}, key: k, src: s})
		}
	}
	n := 0
	for _, c := range changes {
		for len(c.ids) > 0 {
			chunk := c.ids[:min(len(c.ids), 500)]
			c.ids = c.ids[len(chunk):]
			if err := w.rollMoveKey(chunk, c.key); err != nil {
				return n, err
			}
			if _, err := w.conn.ExecContext(w.ctx, `UPDATE events SET key = ?, key_source = ? WHERE id IN `+InList(chunk),
				nullable(c.key), c.src); err != nil {
				return n, err
			}
			n += len(chunk)
		}
	}
	return n, nil
}

// pick chooses the alias target for an event at time t: the last change
// recorded in CloudTrail at or before t; failing that the inventory
// snapshot at or before t, or the earliest one (an inventory taken later is
// the best evidence there is when the logs hold no alias change).
func pick(hist, inv []target, t int64) (int64, int) {
	for i := len(hist) - 1; i >= 0; i-- {
		if hist[i].since <= t {
			if hist[i].key == 0 { // DeleteAlias: the alias named no key then
				return 0, int(cloudtrail.KeyNone)
			}
			return hist[i].key, int(cloudtrail.KeyAlias)
		}
	}
	if len(inv) == 0 {
		return 0, int(cloudtrail.KeyNone)
	}
	best := inv[0]
	for _, x := range inv {
		if x.since <= t {
			best = x
		}
	}
	if best.key == 0 {
		return 0, int(cloudtrail.KeyNone)
	}
	return best.key, int(cloudtrail.KeyInventory)
}

// Inventory columns by the kind of document that knows them. A document
// updates the columns of the kinds it carries, and only with information at
// least as recent as what is stored, so partial documents (describe-key,
// then get-key-rotation-status) merge in any order.
var (
	metaCols     = []string{"key_spec", "key_usage", "origin", "manager", "state", "enabled", "description", "created_at", "deletion_date", "valid_to", "expiration_model", "multi_region", "custom_key_store"}
	rotationCols = []string{"rotation_enabled", "rotation_period_days", "next_rotation"}
	usageCols    = []string{"last_used_at", "last_used_operation"}
)

func inventoryUpsert() string {
	cols := []string{"key", "as_of", "meta_as_of", "rotation_as_of", "usage_as_of", "file"}
	cols = append(cols, metaCols...)
	cols = append(cols, rotationCols...)
	cols = append(cols, usageCols...)
	cols = append(cols, "json")
	q := "INSERT INTO inventory (" + strings.Join(cols, ", ") + ") VALUES (" +
		strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ") ON CONFLICT (key) DO UPDATE SET " +
		"as_of = max(as_of, excluded.as_of), file = excluded.file, json = excluded.json"
	group := func(stamp string, cols []string) {
		newer := "excluded." + stamp + " IS NOT NULL AND (" + stamp + " IS NULL OR excluded." + stamp + " >= " + stamp + ")"
		for _, c := range append(cols, stamp) {
			q += ", " + c + " = CASE WHEN " + newer + " THEN excluded." + c + " ELSE " + c + " END"
		}
	}
	group("meta_as_of", metaCols)
	group("rotation_as_of", rotationCols)
	group("usage_as_of", usageCols)
	return q
}
