package keyprov

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/audit/provenance"
	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/store"
)

// joinEvents are the KMS events the join and the timelines read.
var joinEvents = []string{"CreateKey", "GetParametersForImport", "ImportKeyMaterial", "DeleteImportedKeyMaterial",
	"DeleteExpiredKeyMaterial", "RotateKeyOnDemand", "ScheduleKeyDeletion", "CancelKeyDeletion", "DeleteKey"}

// loadKMS reads the join's KMS events up to the end of the period, with
// what their records state (event_details; the wrapping algorithm and key
// spec of GetParametersForImport from its raw record).
func loadKMS(ctx context.Context, st *store.Store, db *sql.Conn, to time.Time, dig *report.Digest) ([]provenance.KMSEvent, error) {
	q := `SELECT e.id, e.event_id, e.time, n.s, coalesce(k.arn, ''), coalesce(ec.s, ''), coalesce(p.arn, ''), coalesce(e.valid_to, 0),
		coalesce(km.s, ''), coalesce(d.key_spec, ''), coalesce(d.origin, ''), coalesce(d.import_type, ''), coalesce(d.expiration_model, ''),
		coalesce(d.key_material, '')
	FROM events e JOIN strs n ON n.id = e.name
	LEFT JOIN keys k ON k.id = e.key
	LEFT JOIN strs ec ON ec.id = e.error_code
	LEFT JOIN principals p ON p.id = e.principal
	LEFT JOIN strs km ON km.id = e.key_material
	LEFT JOIN event_details d ON d.event = e.id
	WHERE e.name IN (SELECT id FROM strs WHERE s IN (` + strings.TrimSuffix(strings.Repeat("?,", len(joinEvents)), ",") + `)) AND e.time < ?
	ORDER BY e.time, e.id`
	args := make([]any, 0, len(joinEvents)+1)
	for _, n := range joinEvents {
		args = append(args, n)
	}
	rows, err := db.QueryContext(ctx, q, append(args, to.Unix())...)
	if err != nil {
		return nil, fmt.Errorf("read key lifecycle events: %w", err)
	}
	var out []provenance.KMSEvent
	var gpfi []int // indexes of GetParametersForImport events
	var rowIDs []int64
	dig.Section("kms-events")
	for rows.Next() {
		var e provenance.KMSEvent
		var row, t, validTo int64
		var id any
		var km, detailKM string
		if err := rows.Scan(&row, &id, &t, &e.Name, &e.KeyARN, &e.ErrorCode, &e.Principal, &validTo, &km, &e.KeySpec, &e.Origin,
			&e.ImportType, &e.ExpirationModel, &detailKM); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read key lifecycle events: %w", err)
		}
		e.EventID, e.Time = store.EventIDString(id), time.Unix(t, 0).UTC()
		if validTo != 0 {
			e.ValidTo = time.Unix(validTo, 0).UTC()
		}
		e.KeyMaterialID = km
		if e.KeyMaterialID == "" {
			e.KeyMaterialID = detailKM
		}
		dig.Row(e.EventID, t, e.Name, e.KeyARN, e.ErrorCode, e.Principal, validTo, e.KeyMaterialID, e.KeySpec, e.Origin, e.ImportType, e.ExpirationModel)
		if e.Name == "GetParametersForImport" {
			gpfi = append(gpfi, len(out))
			rowIDs = append(rowIDs, row)
		}
		out = append(out, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// CloudTrail records the request of GetParametersForImport (key,
	// wrapping algorithm and key spec), never its response.
	dig.Section("parameters-requests")
	for i, at := range gpfi {
		raw, err := st.RawByRowID(ctx, rowIDs[i])
		if err != nil {
			return nil, fmt.Errorf("read the record of %s: %w", out[at].EventID, err)
		}
		var rec struct {
			Req struct {
				Alg  string `json:"wrappingAlgorithm"`
				Spec string `json:"wrappingKeySpec"`
			} `json:"requestParameters"`
		}
		json.Unmarshal(raw, &rec)
		out[at].WrappingAlgorithm, out[at].WrappingKeySpec = rec.Req.Alg, rec.Req.Spec
		dig.Row(out[at].EventID, rec.Req.Alg, rec.Req.Spec)
	}
	return out, nil
}

// keyInfo is what the inventory says of a key.
type keyInfo struct{ spec, origin, desc string }

func loadInventory(ctx context.Context, db *sql.Conn, dig *report.Digest) (map[string]keyInfo, error) {
	rows, err := db.QueryContext(ctx, `SELECT k.arn, coalesce(i.key_spec, ''), coalesce(i.origin, ''), coalesce(i.description, '')
		FROM inventory i JOIN keys k ON k.id = i.key ORDER BY k.arn`)
	if err != nil {
		return nil, fmt.Errorf("read the key inventory: %w", err)
	}
	defer rows.Close()
	out := map[string]keyInfo{}
	dig.Section("inventory")
	for rows.Next() {
		var arn string
		var k keyInfo
		if err := rows.Scan(&arn, &k.spec, &k.origin, &k.desc); err != nil {
			return nil, err
		}
		dig.Row(arn, k.spec, k.origin, k.desc)
		out[arn] = k
	}
	return out, rows.Err()
}

// usage counts a key's cryptographic calls in the period, and the failed ones.
func usage(ctx context.Context, db *sql.Conn, arn string, sc report.Scope) (calls, failed int64, err error) {
	err = db.QueryRowContext(ctx, `SELECT count(*), count(e.error_code) FROM events e JOIN keys k ON k.id = e.key
		WHERE k.arn = ? AND e.category = 1 AND e.time >= ? AND e.time < ?`, arn, sc.From.Unix(), sc.To.Unix()).Scan(&calls, &failed)
	return calls, failed, err
}

// arnParts reads account and region from an ARN (arn:aws:svc:region:account:...).
func arnParts(arn string) (account, region string) {
	p := strings.SplitN(arn, ":", 6)
	if len(p) < 6 {
		return "", ""
	}
	return p[4], p[3]
}

// inScope reports whether a resource ARN passes the report's filters.
func inScope(arn string, sc report.Scope) bool {
	account, region := arnParts(arn)
	if sc.Account != "" && account != sc.Account || sc.Region != "" && region != sc.Region {
		return false
	}
	return sc.KeyARN == "" || provenance.SameKey(arn, sc.KeyARN) || arn == sc.KeyARN
}
