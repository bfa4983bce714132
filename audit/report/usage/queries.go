package usage

import "github.com/keyceremony/keyceremony/audit/store"

// The report's SQL: the one pass over the period's events (in time index
// or row id order), and the few lookups beside it. Exported for the
// query-plan tests in audit/report.

// StreamQuery is the one pass over the period's events (exported for the
// query-plan test): driven by the events_time index, in index order, so
// no sort and no temporary b-tree. Aggregation happens in Go maps sized by
// the number of groups, not of rows: measured on a million events, one
// indexed pass costs 1.4 s where SQLite's GROUP BY over the same columns
// costs 4 s in its sorter.
//
// The last column is the eventID of administrative events (admin, the
// ids of their names), NULL for the others: the report lists every
// administrative event with its id, and reading it in the pass spares
// looking tens of thousands of rows up again.
func StreamQuery(extra string, admin []int64, packed bool) string {
	return `SELECT ` + streamCols(admin, packed) + ` FROM events e WHERE e.time >= ? AND e.time < ?` + extra + ` ORDER BY e.time, e.id`
}

// SpanQuery counts the period's events and finds the span of their row
// ids, from the events_time index alone (exported for the plan test).
const SpanQuery = `SELECT count(*), coalesce(min(id), 0), coalesce(max(id), 0) FROM events WHERE time >= ? AND time < ?`

// RowidStreamQuery is the same pass in row id order over a span of row
// ids (exported for the plan test). Rows are stored in ingest order, which
// is close to time order, so when the span holds little besides the
// period's events, reading the table in place beats walking the time
// index and looking every row up: 1.3 s instead of 1.9 to 2.5 s at a
// million events. The aggregation does not depend on the order of rows.
func RowidStreamQuery(extra string, admin []int64, packed bool) string {
	return `SELECT ` + streamCols(admin, packed) + ` FROM events e WHERE e.id >= ? AND e.id <= ? AND e.time >= ? AND e.time < ?` + extra + ` ORDER BY e.id`
}

// packIDs: the pass reads pairs of ids packed in one integer (name and
// category, key and key2, principal and invoked_by; 32 bits each), seven
// columns instead of ten: fetching a column from the driver costs more
// than the arithmetic (a third of the pass at a million rows). Build
// checks that every id fits (maxPackedID) and reads them one per column
// otherwise.
var packIDs = true

const maxPackedID = 1<<31 - 1

// IDRangeQuery gives the largest ids the pass packs.
const IDRangeQuery = `SELECT max(coalesce((SELECT max(id) FROM strs), 0), coalesce((SELECT max(id) FROM keys), 0),
	coalesce((SELECT max(id) FROM principals), 0))`

func streamCols(admin []int64, packed bool) string {
	adminID := "NULL"
	if len(admin) > 0 {
		adminID = "CASE WHEN e.name IN " + store.InList(admin) + " THEN e.event_id END"
	}
	if packed {
		return `e.id, e.time, e.name | (e.category << 32), coalesce(e.key, 0) | (coalesce(e.key2, 0) << 32),
		coalesce(e.principal, 0) | (coalesce(e.invoked_by, 0) << 32), e.error_code, ` + adminID
	}
	return `e.id, e.time, e.name, e.category, coalesce(e.key, 0), coalesce(e.key2, 0), coalesce(e.principal, 0),
		coalesce(e.invoked_by, 0), coalesce(e.error_code, 0), ` + adminID
}

// maxSpanWaste: the row id span is read in place when it holds at most
// this many rows per event of the period.
const maxSpanWaste = 1.5

// forceIndexPass makes stream walk the time index whatever the span (tests
// compare both passes).
var forceIndexPass = false

// FirstSeenQuery gives each principal's first event in the whole database,
// from the events_principal_time index alone.
const FirstSeenQuery = `SELECT principal, min(time) FROM events WHERE principal IS NOT NULL GROUP BY principal`

// LastUseQuery finds a key's last successful cryptographic call up to a
// time, walking the events_key_time index backwards.
const LastUseQuery = `SELECT e.id, e.time, e.name FROM events e
	WHERE e.key = ? AND e.time <= ? AND e.category = 1 AND e.error_code IS NULL ORDER BY e.time DESC LIMIT 1`

// AggregatesQuery reads the aggregates of the period's days (exported for
// the plan test): a range of the aggregates_day index.
const AggregatesQuery = `SELECT a.rowid, a.day, a.account, a.region, a.name, a.category, coalesce(a.key, 0), coalesce(a.principal, 0),
	coalesce(a.invoked_by, 0), coalesce(a.error_code, 0), a.events, a.first_time, a.last_time, coalesce(a.key2, 0),
	coalesce(a.alias, 0)
	FROM aggregates a WHERE a.day >= ? AND a.day <= ? ORDER BY a.day, a.rowid`
