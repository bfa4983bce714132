// Package report holds what the audit reports share: the scope a report
// covers, its progress callback, the ingest provenance and coverage gaps it
// states, the SHA-256 of its input query results, and the safe creation of
// output files. The reports themselves live in sub-packages:
//
//	rules     eligibility, per-control status and the control mapping (one table)
//	rotation  the key rotation compliance report
//	usage     the key usage report
//	pdfdoc    the PDF layer (fonts, tables, charts)
//
// Every report is computed into one plain model; its PDF, CSV and JSON are
// rendered from that model, so they cannot disagree.
package report

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/audit/store"
)

// Scope selects what a report covers. The period is [From, To).
type Scope struct {
	From, To time.Time
	Account  string // AWS account id; "" for all
	Region   string // AWS region; "" for all
	KeyARN   string // key ARN or key id; "" for all
}

// Validate checks the scope; its errors say what to change.
func (s Scope) Validate() error {
	if s.From.IsZero() || s.To.IsZero() {
		return errors.New("the report period needs both a start (--from) and an end (--to)")
	}
	if !s.From.Before(s.To) {
		return fmt.Errorf("the report period is empty: start %s is not before end %s", s.From.Format(time.RFC3339), s.To.Format(time.RFC3339))
	}
	return nil
}

// String is a one-line description for headers and covers.
func (s Scope) String() string {
	var b strings.Builder
	b.WriteString(FormatPeriod(s.From, s.To))
	if s.Account != "" {
		b.WriteString(", account " + s.Account)
	}
	if s.Region != "" {
		b.WriteString(", region " + s.Region)
	}
	if s.KeyARN != "" {
		b.WriteString(", key " + s.KeyARN)
	}
	return b.String()
}

// FormatPeriod shows [from, to) the way people read it: whole UTC days as
// an inclusive date range, anything else as timestamps.
func FormatPeriod(from, to time.Time) string {
	from, to = from.UTC(), to.UTC()
	if isMidnight(from) && isMidnight(to) {
		return from.Format("2006-01-02") + " to " + to.AddDate(0, 0, -1).Format("2006-01-02") + " (UTC, inclusive)"
	}
	return from.Format(time.RFC3339) + " to " + to.Format(time.RFC3339) + " (end excluded)"
}

func isMidnight(t time.Time) bool { return t.Equal(t.Truncate(24 * time.Hour)) }

// ScopeJSON is the scope as exported.
type ScopeJSON struct {
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Account string    `json:"account,omitempty"`
	Region  string    `json:"region,omitempty"`
	Key     string    `json:"key,omitempty"`
}

// JSON is the exported form of the scope.
func (s Scope) JSON() ScopeJSON {
	return ScopeJSON{From: s.From.UTC(), To: s.To.UTC(), Account: s.Account, Region: s.Region, Key: s.KeyARN}
}

// Progress is how far a report computation is. Stages are named for a
// person ("reading rotation evidence"); Step counts from 1 to Steps.
type Progress struct {
	Stage string
	Step  int
	Steps int
}

// ProgressFunc receives progress; it is called on the computing goroutine,
// so a GUI must hop to its UI goroutine (fyne.Do) inside it.
type ProgressFunc func(Progress)

// Stepper reports numbered stages.
type Stepper struct {
	F     ProgressFunc
	Steps int
	n     int
}

// Next announces the next stage.
func (s *Stepper) Next(stage string) {
	s.n++
	if s.F != nil {
		s.F(Progress{Stage: stage, Step: s.n, Steps: s.Steps})
	}
}

// Meta is what every report states about itself: the cover page and the
// "meta" object of the JSON export.
type Meta struct {
	Kind        string     `json:"kind"` // "rotation" or "usage"
	Title       string     `json:"title"`
	GeneratedAt time.Time  `json:"generated_at"`
	Generator   string     `json:"generator"`
	Scope       ScopeJSON  `json:"scope"`
	Provenance  Provenance `json:"provenance"`
	// InputSHA256 is the SHA-256 of a canonical serialisation of every row
	// the report's queries returned (see Digest); InputRows counts them.
	InputSHA256 string `json:"input_sha256"`
	InputRows   int64  `json:"input_rows"`
}

// Day is a UTC calendar day as YYYY-MM-DD.
func Day(t time.Time) string { return t.UTC().Format("2006-01-02") }

// FormatTime is how reports print an instant.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// FormatDate is how reports print a date.
func FormatDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02")
}

// Conn is a connection a report reads through.
type Conn = sql.Conn

// ReadConn takes one connection from the store's pool for a report and
// gives it a small page cache (PRAGMA cache_size): a report reads most
// pages once, and with modernc's SQLite a large cache costs more to fill
// than it saves (each new page buffer is an allocation from the OS, and
// freeing a full 64 MiB cache when the connection closes takes a second).
// Measured on 1M events, a cold lifecycle query took 0.9 s with the
// store's 64 MiB cache and 0.6 s with 4 MiB, and memory stays low.
// Mapping the file (PRAGMA mmap_size) is faster still but puts every page
// read in the process's resident memory, which the 200 MB budget of a
// report does not allow. release restores the pool's settings.
func ReadConn(ctx context.Context, db *sql.DB) (c *sql.Conn, release func(), err error) {
	c, err = db.Conn(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("open a database connection: %w", err)
	}
	var prev int64
	if err := c.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&prev); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("read the page cache size: %w", err)
	}
	if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size=%d; PRAGMA mmap_size=%d", -CacheKiB, MmapSize)); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("set up the report's database connection: %w", err)
	}
	return c, func() {
		c.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("PRAGMA cache_size=%d; PRAGMA mmap_size=0", prev))
		c.Close()
	}, nil
}

// AttachAliases reads every alias with the key it points to and hands the
// aliases of the keys a report covers to add, which returns false for a
// key outside the report. Both reports digest them alike: the "aliases"
// section, one row (alias ARN, key ARN) per alias attached.
func AttachAliases(ctx context.Context, st *store.Store, dig *Digest, add func(keyARN, alias string) bool) error {
	aliases, err := st.Aliases(ctx)
	if err != nil {
		return fmt.Errorf("list aliases: %w", err)
	}
	dig.Section("aliases")
	for _, a := range aliases {
		if add(a.KeyARN, a.Name) {
			dig.Row(a.ARN, a.KeyARN)
		}
	}
	return nil
}

// CacheKiB is the page cache of a report's connection; MmapSize the
// mapping of the file (0: none). Benchmarks may vary them.
var (
	CacheKiB int64 = 4096
	MmapSize int64 = 0
)

// MemoryLimit is the soft limit (debug.SetMemoryLimit) the CLI runs a
// report under: the garbage collector works harder instead of letting the
// process grow, and a report on a million events stays under 200 MB.
const MemoryLimit = 112 << 20
