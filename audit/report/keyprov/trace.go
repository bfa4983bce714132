package keyprov

import (
	"context"
	"database/sql"

	"github.com/keyceremony/keyceremony/audit/provenance"
	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/store"
)

// ImportTrace is where one import of key material came from, as another
// report cites it.
type ImportTrace struct {
	EventID    string            `json:"event_id"`
	Time       string            `json:"time"`
	Status     provenance.Status `json:"status"`
	CeremonyID string            `json:"ceremony_id,omitempty"`
	FinalHash  string            `json:"final_hash,omitempty"`
}

// Trace runs the join over the imports up to the end of the scope's period
// and returns, by key ARN, each import with the ceremony it was traced to.
// The rows it reads go into dig, so the citing report's input SHA-256
// covers them.
func Trace(ctx context.Context, st *store.Store, db *sql.Conn, sc report.Scope, dig *report.Digest) (map[string][]ImportTrace, error) {
	cers, err := st.Ceremonies(ctx)
	if err != nil {
		return nil, err
	}
	dig.Section("ceremonies")
	for _, c := range cers {
		dig.Row(c.FinalHash, c.Kind, c.CeremonyID, c.Started.Unix(), c.Ended.Unix(), c.Rehearsal)
	}
	evs, err := loadKMS(ctx, st, db, sc.To, dig)
	if err != nil {
		return nil, err
	}
	res := provenance.Match(cers, evs, nil, provenance.Options{AsOf: sc.To})
	out := map[string][]ImportTrace{}
	for _, imp := range res.Imports {
		e := imp.Event
		out[e.KeyARN] = append(out[e.KeyARN], ImportTrace{EventID: e.EventID, Time: report.FormatTime(e.Time), Status: imp.Status,
			CeremonyID: imp.CeremonyID, FinalHash: imp.FinalHash})
	}
	return out, nil
}
