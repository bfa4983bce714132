package report_test

import (
	"context"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/audit/report/fixture"
	"github.com/keyceremony/keyceremony/audit/report/rotation"
	"github.com/keyceremony/keyceremony/audit/report/usage"
)

// Every query the reports run over the events table is driven by an
// index: asserted on the query plans SQLite chooses for a real database.
func TestQueryPlansUseIndexes(t *testing.T) {
	st := fixture.Build(t, fixture.NewScenario(), true)
	db := st.DB()
	for _, c := range []struct {
		name, query string
		args        []any
		index       string
		noTemp      bool // no temporary b-tree (sort or grouping) over the rows
	}{
		{"usage stream", usage.StreamQuery("", []int64{3, 4}, true), []any{1, 2}, "USING INDEX events_time", true},
		{"usage stream, one key", usage.StreamQuery(" AND (e.key IN (1) OR e.key2 IN (1))", nil, false), []any{1, 2}, "events_key", false},
		{"usage span", usage.SpanQuery, []any{1, 2}, "USING COVERING INDEX events_time", true},
		{"usage aggregates", usage.AggregatesQuery, []any{"2025-03-01", "2025-03-07"}, "USING INDEX aggregates_day", true},
		{"usage stream in place", usage.RowidStreamQuery("", []int64{3}, true), []any{1, 9, 1, 2}, "USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)", true},
		{"first seen", usage.FirstSeenQuery, nil, "SEARCH events USING COVERING INDEX events_principal_time (principal=?)", true},
		{"last use", usage.LastUseQuery, []any{1, 2}, "USING INDEX events_key_time", true},
		{"lifecycle", rotation.EventsQuery([]int64{1, 2, 3}), []any{1}, "USING INDEX events_name_time", false},
		{"refused calls", rotation.UnusableQuery([]int64{1, 2}), []any{1, 2}, "USING INDEX events_errors_time", false},
	} {
		rows, err := db.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+c.query, c.args...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "\n")
		if !strings.Contains(p, c.index) {
			t.Errorf("%s: plan does not use %s:\n%s", c.name, c.index, p)
		}
		for _, line := range plan {
			if strings.HasPrefix(line, "SCAN e") && !strings.Contains(line, "INDEX") || line == "SCAN events" {
				t.Errorf("%s: full table scan:\n%s", c.name, p)
			}
		}
		if c.noTemp && strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("%s: sorts or groups in a temporary b-tree:\n%s", c.name, p)
		}
	}
}
