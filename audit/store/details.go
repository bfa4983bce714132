package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/keyceremony/keyceremony/audit/cloudtrail"
)

const insDetailSQL = `INSERT OR REPLACE INTO event_details (event, key_spec, origin, key_manager, custom_key_store,
	description, multi_region, rotation_period_days, import_type, expiration_model, key_material)
	VALUES (?,?,?,?,?,?,?,?,?,?,?)`

func detailArgs(event int64, d *cloudtrail.Detail) []any {
	var mr any
	if d.MultiRegion >= 0 {
		mr = int64(d.MultiRegion)
	}
	return []any{event, nullStr(d.KeySpec), nullStr(d.Origin), nullStr(d.KeyManager), nullStr(d.CustomKeyStore),
		nullStr(d.Description), mr, nullable(d.RotationPeriodDays), nullStr(d.ImportType), nullStr(d.ExpirationModel),
		nullStr(d.KeyMaterialID)}
}

// backfillDetails completes the v4 upgrade: every event of a DetailEvents
// name gets its event_details row, parsed from its raw record. Records are
// read in evidence-block order, so each block is decompressed once.
func backfillDetails(ctx context.Context, conn *sql.Conn) error {
	names := cloudtrail.DetailEvents
	q := `SELECT e.id, e.block, e.off, e.len FROM events e WHERE e.name IN
		(SELECT id FROM strs WHERE s IN (?` + strings.Repeat(",?", len(names)-1) + `)) ORDER BY e.block, e.off`
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	type ref struct{ id, block, off, n int64 }
	var refs []ref
	rows, err := conn.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("list lifecycle events: %w", err)
	}
	for rows.Next() {
		var r ref
		if err := rows.Scan(&r.id, &r.block, &r.off, &r.n); err != nil {
			rows.Close()
			return err
		}
		refs = append(refs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list lifecycle events: %w", err)
	}
	ins, err := conn.PrepareContext(ctx, insDetailSQL)
	if err != nil {
		return err
	}
	defer ins.Close()
	var block int64 = -1
	var data []byte
	var rec cloudtrail.Record
	for _, r := range refs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if r.block != block {
			if data, err = readBlock(ctx, conn, r.block); err != nil {
				return err
			}
			block = r.block
		}
		if r.off < 0 || r.off+r.n > int64(len(data)) {
			return fmt.Errorf("event row %d: raw record outside its block %d (database damaged?)", r.id, r.block)
		}
		if err := cloudtrail.Parse(data[r.off:r.off+r.n], &rec); err != nil {
			return fmt.Errorf("event row %d: %w", r.id, err)
		}
		if _, err := ins.ExecContext(ctx, detailArgs(r.id, &rec.Detail)...); err != nil {
			return fmt.Errorf("event row %d: %w", r.id, err)
		}
	}
	return nil
}
