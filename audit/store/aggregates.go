package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/keyceremony/keyceremony/audit/cloudtrail"
)

// AggregateSource is the provenance of a set of aggregates: the query that
// counted the events, where it ran and what it returned.
type AggregateSource struct {
	ID                               int64
	Kind                             string // "athena"
	QueryID                          string // the Athena QueryExecutionId
	Catalog, Database, Table         string
	Workgroup, OutputLocation, Query string
	// From and To are the whole UTC days counted, [From, To).
	From, To     time.Time
	Rows, Events int64
	// ResultSHA256 is the SHA-256 of the result rows as received (every
	// value, in order, length-prefixed), which a reviewer can recompute
	// from the query's CSV in the output location.
	ResultSHA256          [32]byte
	DataScanned           int64 // bytes the query scanned, as Athena reports it
	StartedAt, FinishedAt time.Time
}

// Aggregate is one group of KMS events of one UTC day.
type Aggregate struct {
	Day             string // YYYY-MM-DD
	Account, Region string
	Name            string
	Category        cloudtrail.Category
	KeyARN          string // "" when no key is named
	Key2ARN         string // a ReEncrypt's destination key
	// AliasARN is the alias the calls named when they named no key, or
	// the alias a CreateAlias, UpdateAlias or DeleteAlias changed; then
	// AliasTarget is the key it points to afterwards ("" for DeleteAlias).
	AliasARN, AliasTarget string
	// The principal, as the events table keeps it (RoleARN for assumed
	// roles, so sessions fold into their role).
	PrincipalARN, PrincipalType, PrincipalAccount, RoleARN string
	InvokedBy, ErrorCode                                   string
	Events                                                 int64
	First, Last                                            int64 // Unix seconds of the group's first and last event
}

// ImportAggregates stores a query's aggregates for src.From to src.To in
// one transaction. The days it covers replace whatever earlier aggregates
// said of them (a query over a period always counts the whole period); the
// earlier sources stay as provenance. It returns how many aggregate rows
// were replaced.
func (w *Writer) ImportAggregates(src AggregateSource, rows []Aggregate) (replaced int64, err error) {
	if w.inFile {
		return 0, errors.New("store: ImportAggregates inside a file")
	}
	if !src.From.Equal(src.From.Truncate(24*time.Hour)) || !src.To.Equal(src.To.Truncate(24*time.Hour)) || !src.From.Before(src.To) {
		return 0, fmt.Errorf("store: aggregates must cover whole UTC days, got %s to %s", src.From, src.To)
	}
	if err := w.begin(); err != nil {
		return 0, err
	}
	// A failure rolls the whole query back: the caller's run is one unit.
	defer func() {
		if err != nil {
			w.conn.ExecContext(context.WithoutCancel(w.ctx), "ROLLBACK")
			w.inTx = false
			w.resetCaches()
			w.rollReset()
		}
	}()
	first, last := src.From.UTC().Format("2006-01-02"), src.To.UTC().AddDate(0, 0, -1).Format("2006-01-02")
	res, err := w.conn.ExecContext(w.ctx, `DELETE FROM aggregates WHERE day >= ? AND day <= ?`, first, last)
	if err != nil {
		return 0, fmt.Errorf("replace aggregates: %w", err)
	}
	replaced, _ = res.RowsAffected()
	res, err = w.conn.ExecContext(w.ctx, `INSERT INTO aggregate_sources (kind, query_id, catalog, database_name, table_name,
		workgroup, output_location, query, period_from, period_to, rows, events, result_sha256, data_scanned, started_at,
		finished_at, run) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		src.Kind, src.QueryID, nullStr(src.Catalog), nullStr(src.Database), nullStr(src.Table), nullStr(src.Workgroup),
		nullStr(src.OutputLocation), src.Query, src.From.Unix(), src.To.Unix(), src.Rows, src.Events, src.ResultSHA256[:],
		src.DataScanned, src.StartedAt.Unix(), src.FinishedAt.Unix(), nullable(w.run))
	if err != nil {
		return 0, fmt.Errorf("record the aggregate source: %w", err)
	}
	srcID, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	ins, err := w.conn.PrepareContext(w.ctx, `INSERT INTO aggregates (source, day, account, region, name, category, key,
		principal, invoked_by, error_code, events, first_time, last_time, key2, alias) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
	if err != nil {
		return 0, err
	}
	defer ins.Close()
	for i := range rows {
		a := &rows[i]
		if a.Day < first || a.Day > last {
			return 0, fmt.Errorf("aggregate of day %s outside the query's period %s to %s", a.Day, first, last)
		}
		name, err := w.str(a.Name)
		if err != nil {
			return 0, err
		}
		var key, key2, al, inv, ec int64
		if a.KeyARN != "" {
			if key, err = w.key(a.KeyARN); err != nil {
				return 0, err
			}
		}
		if a.Key2ARN != "" {
			if key2, err = w.key(a.Key2ARN); err != nil {
				return 0, err
			}
		}
		if a.AliasARN != "" {
			if al, err = w.alias(a.AliasARN); err != nil {
				return 0, err
			}
		}
		// A successful alias change counted here extends the alias's
		// history, from the group's first event (several changes of one
		// alias to one key on one day are one group: the first is kept).
		if al != 0 && a.ErrorCode == "" && (a.Name == "CreateAlias" || a.Name == "UpdateAlias" || a.Name == "DeleteAlias") {
			var target int64
			if a.AliasTarget != "" && a.Name != "DeleteAlias" {
				if target, err = w.key(a.AliasTarget); err != nil {
					return 0, err
				}
			}
			if _, err := w.insTarget.ExecContext(w.ctx, al, nullable(target), a.First, sourceEvent, nil); err != nil {
				return 0, fmt.Errorf("store alias history: %w", err)
			}
			w.markAlias(al, math.MinInt64) // events of the alias may resolve differently now
		}
		if a.InvokedBy != "" {
			if inv, err = w.str(a.InvokedBy); err != nil {
				return 0, err
			}
		}
		if a.ErrorCode != "" {
			if ec, err = w.str(a.ErrorCode); err != nil {
				return 0, err
			}
		}
		pr, err := w.principal(&cloudtrail.Record{PrincipalARN: a.PrincipalARN, PrincipalType: a.PrincipalType,
			PrincipalAccount: a.PrincipalAccount, RoleARN: a.RoleARN})
		if err != nil {
			return 0, err
		}
		if _, err := ins.ExecContext(w.ctx, srcID, a.Day, a.Account, a.Region, name, int64(a.Category), nullable(key),
			nullable(pr), nullable(inv), nullable(ec), a.Events, a.First, a.Last, nullable(key2), nullable(al)); err != nil {
			return 0, fmt.Errorf("store aggregate: %w", err)
		}
	}
	if err := w.Commit(); err != nil {
		return 0, err
	}
	if w.AliasesDirty() {
		if _, err := w.ResolveAliases(); err != nil {
			return replaced, fmt.Errorf("resolve aliases after the aggregates: %w", err)
		}
	}
	return replaced, nil
}

// AggregateSources lists the queries whose aggregates the database holds,
// oldest first.
func (s *Store) AggregateSources(ctx context.Context) ([]AggregateSource, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, kind, query_id, coalesce(catalog,''), coalesce(database_name,''),
		coalesce(table_name,''), coalesce(workgroup,''), coalesce(output_location,''), query, period_from, period_to, rows,
		events, result_sha256, coalesce(data_scanned,0), started_at, finished_at FROM aggregate_sources ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AggregateSource
	for rows.Next() {
		var a AggregateSource
		var from, to, started, finished int64
		var sum []byte
		if err := rows.Scan(&a.ID, &a.Kind, &a.QueryID, &a.Catalog, &a.Database, &a.Table, &a.Workgroup, &a.OutputLocation,
			&a.Query, &from, &to, &a.Rows, &a.Events, &sum, &a.DataScanned, &started, &finished); err != nil {
			return nil, err
		}
		copy(a.ResultSHA256[:], sum)
		a.From, a.To = time.Unix(from, 0).UTC(), time.Unix(to, 0).UTC()
		a.StartedAt, a.FinishedAt = time.Unix(started, 0).UTC(), time.Unix(finished, 0).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// AggregateDay is what the aggregates say of one account, region and day.
type AggregateDay struct {
	Account, Region, Day string
	Events               int64
}

// AggregateDays sums the aggregates per account, region and day.
func (s *Store) AggregateDays(ctx context.Context) ([]AggregateDay, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT account, region, day, sum(events) FROM aggregates
		GROUP BY account, region, day ORDER BY account, region, day`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AggregateDay
	for rows.Next() {
		var a AggregateDay
		if err := rows.Scan(&a.Account, &a.Region, &a.Day, &a.Events); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
