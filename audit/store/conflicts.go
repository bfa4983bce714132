package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"

	"github.com/keyceremony/keyceremony/audit/cloudtrail"
)

// ConflictRecord is one of two records with one eventID: what it states
// and where it came from.
type ConflictRecord struct {
	Time       time.Time
	Account    string
	Region     string
	Name       string
	ErrorCode  string
	Principal  string
	KeyARN     string
	File       string // the file's first name
	FileSHA256 []byte
	// Offset is where the record starts in the file's (decompressed)
	// bytes; -1 when it is not a slice of the file (a lookup-events
	// CloudTrailEvent string) or was not recorded.
	Offset int64
}

// ConflictInfo is a record kept apart because its eventID's event states
// something else: Kept is the event's record (the smaller fingerprint),
// Other the record kept apart. Settled is false for a record staged by an
// ingest that was interrupted before comparing it (the next ingest does).
type ConflictInfo struct {
	EventID string
	Settled bool
	Kept    ConflictRecord
	Other   ConflictRecord
}

// Conflicts lists every conflicting record, by eventID, then by the
// other record's file and offset: an order that depends on the evidence
// only, not on the order it was loaded in.
func (s *Store) Conflicts(ctx context.Context) ([]ConflictInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT c.event_id, c.state, c.off, c.raw, f.path, f.sha256,
		e.time, n.s, coalesce(ec.s, ''), coalesce(p.arn, ''), coalesce(k.arn, ''), e.off, b.codec, b.src_offs, ef.path, ef.sha256,
		coalesce(acc.s, ''), coalesce(reg.s, '')
		FROM conflicts c JOIN files f ON f.id = c.file
		LEFT JOIN events e ON e.event_id = c.event_id
		LEFT JOIN strs n ON n.id = e.name LEFT JOIN strs ec ON ec.id = e.error_code
		LEFT JOIN principals p ON p.id = e.principal LEFT JOIN keys k ON k.id = e.key
		LEFT JOIN raw_blocks b ON b.id = e.block LEFT JOIN files ef ON ef.id = b.file
		LEFT JOIN strs acc ON acc.id = e.account LEFT JOIN strs reg ON reg.id = e.region`)
	if err != nil {
		return nil, fmt.Errorf("list conflicting records: %w", err)
	}
	defer rows.Close()
	var out []ConflictInfo
	for rows.Next() {
		var c ConflictInfo
		var id any
		var state int
		var off, etime, eoff, codec sql.NullInt64
		var raw, srcOffs []byte
		var name, eerr, eprinc, ekey, efile, eacc, ereg sql.NullString
		if err := rows.Scan(&id, &state, &off, &raw, &c.Other.File, &c.Other.FileSHA256, &etime, &name, &eerr, &eprinc, &ekey,
			&eoff, &codec, &srcOffs, &efile, &c.Kept.FileSHA256, &eacc, &ereg); err != nil {
			return nil, err
		}
		c.EventID, c.Settled = EventIDString(id), state == ConflictSettled
		c.Other.Offset = -1
		if off.Valid {
			c.Other.Offset = off.Int64
		}
		var r cloudtrail.Record
		if err := cloudtrail.Parse(raw, &r); err == nil {
			c.Other.Time, c.Other.Name, c.Other.ErrorCode = time.Unix(r.Time, 0).UTC(), r.Name, r.ErrorCode
			c.Other.Principal, c.Other.KeyARN = r.PrincipalARN, r.KeyARN
			c.Other.Account, c.Other.Region = r.Account, r.Region
			if c.Other.Principal == "" {
				c.Other.Principal = r.InvokedBy
			}
		}
		c.Kept.Time, c.Kept.Name, c.Kept.ErrorCode = ptime(etime), name.String, eerr.String
		c.Kept.Principal, c.Kept.KeyARN, c.Kept.File = eprinc.String, ekey.String, efile.String
		c.Kept.Account, c.Kept.Region = eacc.String, ereg.String
		c.Kept.Offset = -1
		switch {
		case codec.Int64 == CodecGzip:
			c.Kept.Offset = eoff.Int64
		case codec.Valid:
			c.Kept.Offset = srcOffsetAt(srcOffs, eoff.Int64)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.EventID != b.EventID {
			return a.EventID < b.EventID
		}
		if a.Other.File != b.Other.File {
			return a.Other.File < b.Other.File
		}
		return a.Other.Offset < b.Other.Offset
	})
	return out, nil
}
