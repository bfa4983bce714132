package keyprov

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/keyceremony/keyceremony/audit/store"
)

// What a reviewer browsing one key's provenance needs besides the report:
// the whole life the database knows of, the ceremony of a timeline row,
// and the original record of an event (the Audit page's key view).

// WholePeriod is the span of everything the database knows of keys' lives:
// from the UTC day of its first KMS event, Private CA record or ceremony
// to the UTC day after now (or after its last record, when that is later).
// With an empty database it is the day of now.
func WholePeriod(ctx context.Context, st *store.Store, now time.Time) (from, to time.Time, err error) {
	var lo, hi sql.NullInt64
	err = st.DB().QueryRowContext(ctx, `SELECT min(t), max(t) FROM (
		SELECT min(time) AS t FROM events UNION ALL SELECT max(time) FROM events
		UNION ALL SELECT min(time) FROM pca_events UNION ALL SELECT max(time) FROM pca_events
		UNION ALL SELECT min(started_at) FROM ceremonies UNION ALL SELECT max(ended_at) FROM ceremonies)`).Scan(&lo, &hi)
	if err != nil {
		return from, to, fmt.Errorf("read the span of the audit database: %w", err)
	}
	day := func(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }
	from, to = day(now), day(now).AddDate(0, 0, 1)
	if lo.Valid {
		from = day(time.Unix(lo.Int64, 0))
	}
	if hi.Valid && !time.Unix(hi.Int64, 0).Before(to) {
		to = day(time.Unix(hi.Int64, 0)).AddDate(0, 0, 1)
	}
	return from, to, nil
}

// Ceremony is the report's record of the ceremony with this final hash.
func (r *Report) Ceremony(finalHash string) (*Ceremony, bool) {
	for i := range r.Ceremonies {
		if r.Ceremonies[i].FinalHash == finalHash {
			return &r.Ceremonies[i], true
		}
	}
	return nil, false
}

// Record is the original CloudTrail record of a timeline event, as it was
// ingested: a KMS event's, or a kept Private CA record's.
func Record(ctx context.Context, st *store.Store, eventID string) ([]byte, error) {
	raw, err := st.RawEvent(ctx, eventID)
	if errors.Is(err, store.ErrNotFound) {
		raw, err = st.PCARawEvent(ctx, eventID)
	}
	return raw, err
}
