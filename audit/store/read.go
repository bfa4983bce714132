package store

import (
	"context"
	"database/sql"
	"sort"
	"time"
)

// CoverageDay is what was seen for one account, region and UTC day.
// Files counts S3 delivery files (by content: the same file under two names
// counts once); Records counts every record seen from any source, KMS or
// not; KMSRecords counts KMS records including repeated deliveries;
// KMSEvents counts unique KMS events stored. A day with files but no KMS
// records suggests a trail that excludes KMS events; a day with no files
// suggests missing logs. Reports should say so rather than "no use".
type CoverageDay struct {
	Account, Region string
	Day             string // YYYY-MM-DD UTC
	Files           int
	Records         int
	KMSRecords      int
	KMSEvents       int
}

// Coverage returns the per-day coverage. With fillGaps, every day between
// the first and last day seen for an account and region is listed, missing
// days with zero counts, so gaps are visible.
func (s *Store) Coverage(ctx context.Context, fillGaps bool) ([]CoverageDay, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT account, region, day, files, records, kms_records, kms_events
		FROM coverage ORDER BY account, region, day`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []CoverageDay
	for rows.Next() {
		var c CoverageDay
		if err := rows.Scan(&c.Account, &c.Region, &c.Day, &c.Files, &c.Records, &c.KMSRecords, &c.KMSEvents); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil || !fillGaps {
		return out, err
	}
	var filled []CoverageDay
	for i := 0; i < len(out); {
		j := i
		for j < len(out) && out[j].Account == out[i].Account && out[j].Region == out[i].Region {
			j++
		}
		first, _ := time.Parse("2006-01-02", out[i].Day)
		last, _ := time.Parse("2006-01-02", out[j-1].Day)
		k := i
		for d := first; !d.After(last); d = d.AddDate(0, 0, 1) {
			ds := d.Format("2006-01-02")
			if k < j && out[k].Day == ds {
				filled = append(filled, out[k])
				k++
			} else {
				filled = append(filled, CoverageDay{Account: out[i].Account, Region: out[i].Region, Day: ds})
			}
		}
		i = j
	}
	return filled, nil
}

// KeyInfo is what is known of one key: from the inventory (if one was
// loaded), its aliases, and its use in the stored events.
type KeyInfo struct {
	ARN, KeyID, Account, Region string
	Aliases                     []string // alias ARNs currently pointing to it (latest known target)

	InInventory        bool
	AsOf               time.Time // inventory snapshot time
	Spec, Usage        string
	Origin             string // AWS_KMS, EXTERNAL, AWS_CLOUDHSM, EXTERNAL_KEY_STORE
	Manager            string // AWS, CUSTOMER
	State              string
	Enabled            *bool
	Description        string
	CreatedAt          time.Time
	DeletionDate       time.Time
	ValidTo            time.Time
	ExpirationModel    string
	MultiRegion        *bool
	CustomKeyStore     string
	RotationEnabled    *bool
	RotationPeriodDays int
	NextRotation       time.Time
	LastUsedAt         time.Time
	LastUsedOperation  string

	Events              int64 // stored events naming the key (either slot)
	FirstSeen, LastSeen time.Time
}

func ptime(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.Unix(v.Int64, 0).UTC()
}

func pbool(v sql.NullInt64) *bool {
	if !v.Valid {
		return nil
	}
	b := v.Int64 == 1
	return &b
}

// Keys lists every key seen in events or the inventory, by ARN.
func (s *Store) Keys(ctx context.Context) ([]KeyInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT k.id, k.arn, k.key_id, k.account, k.region,
		i.as_of, i.key_spec, i.key_usage, i.origin, i.manager, i.state, i.enabled, i.description,
		i.created_at, i.deletion_date, i.valid_to, i.expiration_model, i.multi_region, i.custom_key_store,
		i.rotation_enabled, i.rotation_period_days, i.next_rotation, i.last_used_at, i.last_used_operation
		FROM keys k LEFT JOIN inventory i ON i.key = k.id ORDER BY k.arn`)
	if err != nil {
		return nil, err
	}
	var out []KeyInfo
	idx := map[int64]int{}
	for rows.Next() {
		var k KeyInfo
		var id int64
		var asOf, enabled, created, del, validTo, multi, rot, period, next, lastUsed sql.NullInt64
		var spec, usage, origin, manager, state, desc, expm, cks, lastOp sql.NullString
		if err := rows.Scan(&id, &k.ARN, &k.KeyID, &k.Account, &k.Region, &asOf, &spec, &usage, &origin, &manager,
			&state, &enabled, &desc, &created, &del, &validTo, &expm, &multi, &cks, &rot, &period, &next,
			&lastUsed, &lastOp); err != nil {
			rows.Close()
			return nil, err
		}
		k.InInventory = asOf.Valid
		k.AsOf = ptime(asOf)
		k.Spec, k.Usage, k.Origin, k.Manager, k.State = spec.String, usage.String, origin.String, manager.String, state.String
		k.Enabled, k.Description = pbool(enabled), desc.String
		k.CreatedAt, k.DeletionDate, k.ValidTo = ptime(created), ptime(del), ptime(validTo)
		k.ExpirationModel, k.MultiRegion, k.CustomKeyStore = expm.String, pbool(multi), cks.String
		k.RotationEnabled, k.RotationPeriodDays, k.NextRotation = pbool(rot), int(period.Int64), ptime(next)
		k.LastUsedAt, k.LastUsedOperation = ptime(lastUsed), lastOp.String
		idx[id] = len(out)
		out = append(out, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Use per key, from the key indexes (key2 covers ReEncrypt destinations).
	for _, q := range []string{
		`SELECT key, count(*), min(time), max(time) FROM events WHERE key IS NOT NULL GROUP BY key`,
		`SELECT key2, count(*), min(time), max(time) FROM events WHERE key2 IS NOT NULL AND (key IS NULL OR key <> key2) GROUP BY key2`,
	} {
		rows, err := s.db.QueryContext(ctx, q)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id, n, lo, hi int64
			if err := rows.Scan(&id, &n, &lo, &hi); err != nil {
				rows.Close()
				return nil, err
			}
			if i, ok := idx[id]; ok {
				k := &out[i]
				k.Events += n
				if k.FirstSeen.IsZero() || lo < k.FirstSeen.Unix() {
					k.FirstSeen = time.Unix(lo, 0).UTC()
				}
				if hi > k.LastSeen.Unix() {
					k.LastSeen = time.Unix(hi, 0).UTC()
				}
			}
		}
		rows.Close()
	}
	aliases, err := s.Aliases(ctx)
	if err != nil {
		return nil, err
	}
	byARN := map[string]int{}
	for i, k := range out {
		byARN[k.ARN] = i
	}
	for _, a := range aliases {
		if i, ok := byARN[a.KeyARN]; ok {
			out[i].Aliases = append(out[i].Aliases, a.ARN)
		}
	}
	return out, nil
}

// AliasInfo is an alias and its latest known target.
type AliasInfo struct {
	ARN, Name, Account, Region string
	KeyARN                     string    // "" if deleted or unknown
	Since                      time.Time // when that target was recorded
	Source                     string    // cloudtrail or inventory
}

// Aliases lists every alias with its latest known target (the most recent
// of CloudTrail changes and inventory snapshots).
func (s *Store) Aliases(ctx context.Context) ([]AliasInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT a.arn, a.name, a.account, a.region, coalesce(k.arn,''), t.since, t.source
		FROM aliases a LEFT JOIN alias_targets t ON t.alias = a.id LEFT JOIN keys k ON k.id = t.key
		ORDER BY a.arn, t.since, t.source`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	latest := map[string]AliasInfo{}
	for rows.Next() {
		var a AliasInfo
		var since, src sql.NullInt64
		if err := rows.Scan(&a.ARN, &a.Name, &a.Account, &a.Region, &a.KeyARN, &since, &src); err != nil {
			return nil, err
		}
		if since.Valid {
			a.Since = time.Unix(since.Int64, 0).UTC()
			a.Source = "cloudtrail"
			if src.Int64 == sourceInventory {
				a.Source = "inventory"
			}
		}
		latest[a.ARN] = a // rows are in time order: the last one wins
	}
	out := make([]AliasInfo, 0, len(latest))
	for _, a := range latest {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ARN < out[j].ARN })
	return out, rows.Err()
}

// FileInfo is one ingested file.
type FileInfo struct {
	ID                      int64
	SHA256                  []byte
	Size                    int64
	Path                    string
	Names                   []string // every path it was seen under
	Format, Compression     string
	Records, KMSNew, KMSDup int
	NonKMS                  int
	IngestedAt              time.Time
}

// Files lists the ingested files, oldest first.
func (s *Store) Files(ctx context.Context) ([]FileInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, sha256, size, path, format, compression, records, kms_new,
		kms_dup, non_kms, ingested_at FROM files ORDER BY id`)
	if err != nil {
		return nil, err
	}
	var out []FileInfo
	idx := map[int64]int{}
	for rows.Next() {
		var f FileInfo
		var at int64
		if err := rows.Scan(&f.ID, &f.SHA256, &f.Size, &f.Path, &f.Format, &f.Compression, &f.Records,
			&f.KMSNew, &f.KMSDup, &f.NonKMS, &at); err != nil {
			rows.Close()
			return nil, err
		}
		f.IngestedAt = time.Unix(at, 0).UTC()
		idx[f.ID] = len(out)
		out = append(out, f)
	}
	rows.Close()
	rows, err = s.db.QueryContext(ctx, `SELECT file, path FROM file_names ORDER BY file, seen_at, path`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var p string
		if err := rows.Scan(&id, &p); err != nil {
			return nil, err
		}
		if i, ok := idx[id]; ok {
			out[i].Names = append(out[i].Names, p)
		}
	}
	return out, rows.Err()
}

// Failure is a file (or directory) that could not be loaded.
type Failure struct {
	Path  string
	Error string
	At    time.Time
	Run   int64
	Size  int64
	// SHA256 is the content's hash when the file could be read to its end
	// (nil for a file that could not be opened or read).
	SHA256 []byte
	// LoadedSince: a file with the same content (SHA-256) or the same name
	// was loaded after the failure.
	LoadedSince bool
}

// Failures lists the files that failed to load, newest first.
func (s *Store) Failures(ctx context.Context) ([]Failure, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT f.path, f.error, f.at, coalesce(f.run, 0), coalesce(f.size, 0), f.sha256,
		EXISTS (SELECT 1 FROM files x WHERE x.sha256 = f.sha256 AND x.ingested_at >= f.at)
		OR EXISTS (SELECT 1 FROM file_names n WHERE n.path = f.path AND n.seen_at >= f.at)
		FROM failures f ORDER BY f.id DESC`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Failure
	for rows.Next() {
		var f Failure
		var at int64
		if err := rows.Scan(&f.Path, &f.Error, &at, &f.Run, &f.Size, &f.SHA256, &f.LoadedSince); err != nil {
			return nil, err
		}
		f.At = time.Unix(at, 0).UTC()
		out = append(out, f)
	}
	return out, rows.Err()
}

// Totals are database-wide counts.
type Totals struct {
	Events, Files, Keys, Blocks int64
	First, Last                 time.Time
}

// Totals counts what the database holds.
func (s *Store) Totals(ctx context.Context) (Totals, error) {
	var t Totals
	var lo, hi sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM files),
		(SELECT count(*) FROM keys), (SELECT count(*) FROM raw_blocks),
		(SELECT min(time) FROM events), (SELECT max(time) FROM events)`).Scan(&t.Events, &t.Files, &t.Keys, &t.Blocks, &lo, &hi)
	t.First, t.Last = ptime(lo), ptime(hi)
	return t, err
}

// KnownFiles maps the SHA-256 of every ingested file to its id, so an
// ingest can skip files already loaded without parsing them.
func (s *Store) KnownFiles(ctx context.Context) (map[[32]byte]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT sha256, id FROM files`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[[32]byte]int64{}
	for rows.Next() {
		var b []byte
		var id int64
		if err := rows.Scan(&b, &id); err != nil {
			return nil, err
		}
		if len(b) == 32 {
			m[[32]byte(b)] = id
		}
	}
	return m, rows.Err()
}
