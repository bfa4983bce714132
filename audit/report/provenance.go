package report

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/keyceremony/keyceremony/audit/cloudtrail"
	"github.com/keyceremony/keyceremony/audit/store"
)

// Provenance is where the database's evidence came from: every ingested
// file with its SHA-256, and the span of the events.
type Provenance struct {
	Database      string    `json:"database"`
	SchemaVersion int       `json:"schema_version"`
	Events        int64     `json:"events"`
	FirstEvent    time.Time `json:"first_event"`
	LastEvent     time.Time `json:"last_event"`
	Files         int       `json:"files"`
	// FilesSHA256 is the SHA-256 of the sorted list of file SHA-256s (hex,
	// one per line): one value that names the whole evidence set.
	FilesSHA256    string `json:"files_sha256"`
	InventoryFiles int    `json:"inventory_files"`
	FailedFiles    int    `json:"failed_files"`
	FileList       []File `json:"file_list"`
	// Failures names every file that failed to load (path, SHA-256,
	// error); Skipped every entry the ingest runs left out and every
	// warning they gave; Runs every ingest run, and Ingest whether one is
	// running or stopped before its end.
	Failures []FailedFile   `json:"failures"`
	Skipped  []SkippedEntry `json:"skipped"`
	Runs     []Run          `json:"runs"`
	Ingest   IngestState    `json:"ingest"`
	// Aggregates: queries that ran elsewhere (Athena over an organisation's
	// trail) and left counts of events, not the events: for the days they
	// cover there is no per-event evidence.
	AggregateSources []AggregateSource `json:"aggregate_sources"`
	AggregatedEvents int64             `json:"aggregated_events"`
	AggregateDays    int               `json:"aggregate_days"` // account/region days with aggregates
}

// AggregateSource is the provenance of one set of aggregates.
type AggregateSource struct {
	Kind         string    `json:"kind"`
	QueryID      string    `json:"query_execution_id"`
	Table        string    `json:"table"` // catalog.database.table
	Workgroup    string    `json:"workgroup"`
	Output       string    `json:"output_location"`
	From         time.Time `json:"from"`
	To           time.Time `json:"to"`
	Rows         int64     `json:"rows"`
	Events       int64     `json:"events"`
	ResultSHA256 string    `json:"result_sha256"`
	DataScanned  int64     `json:"data_scanned_bytes"`
	FinishedAt   time.Time `json:"finished_at"`
	Query        string    `json:"query"`
}

// AggregateOnly is true when the database holds aggregates and no event.
func (p Provenance) AggregateOnly() bool { return p.Events == 0 && p.AggregatedEvents > 0 }

// File is one ingested file.
type File struct {
	Path       string    `json:"path"`
	SHA256     string    `json:"sha256"`
	Size       int64     `json:"size"`
	Format     string    `json:"format"`
	Records    int       `json:"records"`
	KMSNew     int       `json:"kms_events_new"`
	IngestedAt time.Time `json:"ingested_at"`
}

// LoadProvenance reads the provenance of the database behind st.
func LoadProvenance(ctx context.Context, st *store.Store, q *sql.Conn) (Provenance, error) {
	p := Provenance{Database: st.Path()}
	v, err := st.Version(ctx)
	if err != nil {
		return p, fmt.Errorf("read the database schema version: %w", err)
	}
	p.SchemaVersion = v
	// Events are never deleted, so the files' counts of new events add up
	// to the table's size without counting a million rows; the first and
	// last times come from the time index.
	var lo, hi sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT (SELECT coalesce(sum(kms_new), 0) FROM files),
		(SELECT min(time) FROM events), (SELECT max(time) FROM events)`).Scan(&p.Events, &lo, &hi); err != nil {
		return p, fmt.Errorf("count the database's events: %w", err)
	}
	if lo.Valid {
		p.FirstEvent, p.LastEvent = time.Unix(lo.Int64, 0).UTC(), time.Unix(hi.Int64, 0).UTC()
	}
	files, err := st.Files(ctx)
	if err != nil {
		return p, fmt.Errorf("list the ingested files: %w", err)
	}
	sums := make([]string, 0, len(files))
	for _, f := range files {
		s := hex.EncodeToString(f.SHA256)
		sums = append(sums, s)
		p.FileList = append(p.FileList, File{Path: f.Path, SHA256: s, Size: f.Size, Format: f.Format,
			Records: f.Records, KMSNew: f.KMSNew, IngestedAt: f.IngestedAt})
		if f.Format == cloudtrail.FormatInventory.String() {
			p.InventoryFiles++
		}
	}
	p.Files = len(files)
	sort.Strings(sums)
	h := sha256.New()
	for _, s := range sums {
		h.Write([]byte(s + "\n"))
	}
	p.FilesSHA256 = hex.EncodeToString(h.Sum(nil))
	if err := loadRunEvidence(ctx, st, &p); err != nil {
		return p, err
	}
	srcs, err := st.AggregateSources(ctx)
	if err != nil {
		return p, fmt.Errorf("list the aggregate sources: %w", err)
	}
	for _, a := range srcs {
		p.AggregateSources = append(p.AggregateSources, AggregateSource{Kind: a.Kind, QueryID: a.QueryID,
			Table: a.Catalog + "." + a.Database + "." + a.Table, Workgroup: a.Workgroup, Output: a.OutputLocation, From: a.From, To: a.To,
			Rows: a.Rows, Events: a.Events, ResultSHA256: hex.EncodeToString(a.ResultSHA256[:]), DataScanned: a.DataScanned,
			FinishedAt: a.FinishedAt, Query: a.Query})
	}
	if len(srcs) > 0 {
		days, err := st.AggregateDays(ctx)
		if err != nil {
			return p, fmt.Errorf("read the aggregates: %w", err)
		}
		for _, d := range days {
			p.AggregatedEvents += d.Events
		}
		p.AggregateDays = len(days)
	}
	return p, nil
}
