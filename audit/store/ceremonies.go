package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/audit/cloudtrail"
)

// Key provenance: the ceremonies whose transcripts verified, and the AWS
// Private CA records the join to CloudTrail needs (schema: the ceremonies
// and pca_events tables). The loader (audit/ceremonies) decides what goes
// in; this file only stores and reads it.

// Ceremony is one verified ceremony transcript and what it produced.
type Ceremony struct {
	ID int64
	// FinalHash is the hash the transcript PDF prints and people sign on
	// paper (hex): one ceremony, one row.
	FinalHash     string
	CeremonyID    string // the script's id
	Kind          string // root-generation, ca-signing, byok-wrap, ...
	Title         string
	ScriptSHA256  string
	BinarySHA256  string
	BinaryVersion string
	Started       time.Time // the first entry, by the laptop's clock
	Ended         time.Time // the final entry, by the laptop's clock
	Rehearsal     bool
	Participants  []Participant
	// Anchors says what vouches for the transcript beyond its own chain
	// (token signatures, quorum MAC, the final hash on paper).
	Anchors string
	Entries int
	Facts   CeremonyFacts

	TranscriptPath   string
	TranscriptSHA256 []byte
	TranscriptSize   int64
	Run              int64
	LoadedAt         time.Time
}

// Participant is one person who confirmed a step, with their role.
type Participant struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

// CeremonyFacts is what a ceremony produced, by kind.
type CeremonyFacts struct {
	BYOK        *BYOKFacts `json:"byok,omitempty"`
	Certificate *CertFacts `json:"certificate,omitempty"`
}

// BYOKFacts is what a byok-wrap ceremony wrapped, for which KMS key and
// import parameters, and the import when its result is beside the files.
type BYOKFacts struct {
	KeyARN            string    `json:"key_arn"`
	KeySpec           string    `json:"key_spec"`
	WrappingAlgorithm string    `json:"wrapping_algorithm"`
	WrappingKeySpec   string    `json:"wrapping_key_spec"`
	WrappingKeySHA256 string    `json:"wrapping_public_key_sha256"`
	ParametersValidTo time.Time `json:"parameters_valid_to"`
	ExpirationModel   string    `json:"expiration_model"`
	MaterialValidTo   time.Time `json:"material_valid_to,omitzero"`
	// ImportType is the import's --import-type: "" for a first import.
	ImportType string `json:"import_type,omitempty"`
	// MaterialFingerprint identifies the material without revealing it
	// (a public key's SHA-256, a key check value), when one is defined.
	MaterialFingerprint     string `json:"material_fingerprint,omitempty"`
	EncryptedMaterialSHA256 string `json:"encrypted_material_sha256"`
	// Import is the result `aws byok import` recorded beside the files,
	// tied to this transcript's final hash; nil when there is none.
	Import *BYOKImport `json:"import,omitempty"`
}

// BYOKImport is the recorded result of `aws byok import`.
type BYOKImport struct {
	KeyARN        string    `json:"key_arn"`
	KeyMaterialID string    `json:"key_material_id,omitempty"`
	KeyState      string    `json:"key_state"`
	ImportedAt    time.Time `json:"imported_at"`
	RequestID     string    `json:"request_id,omitempty"`
}

// CertFacts is the certificate a root-generation or ca-signing ceremony
// signed, and for a subordinate the AWS Private CA it is for.
type CertFacts struct {
	CAARN     string    `json:"ca_arn,omitempty"`
	File      string    `json:"file"`
	SHA256    string    `json:"sha256"`
	Size      int64     `json:"size"` // of the PEM file AWS is given
	Serial    string    `json:"serial"`
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// ImportedAt is when `aws pca import-cert` recorded the import beside
	// the files (zero when there is no such record).
	ImportedAt time.Time `json:"imported_at,omitzero"`
}

// PutCeremony stores a verified ceremony in the current run. A ceremony
// already stored (same final hash: the same transcript) is not added
// again; its facts are updated, so that loading the directory again after
// `aws byok import` adds the import's result. It reports whether it was
// already there.
func (w *Writer) PutCeremony(c *Ceremony) (dup bool, err error) {
	if err := w.begin(); err != nil {
		return false, err
	}
	facts, err := json.Marshal(c.Facts)
	if err != nil {
		return false, err
	}
	people, err := json.Marshal(c.Participants)
	if err != nil {
		return false, err
	}
	var id int64
	err = w.conn.QueryRowContext(w.ctx, `SELECT id FROM ceremonies WHERE final_hash = ?`, c.FinalHash).Scan(&id)
	switch {
	case err == nil:
		_, err = w.conn.ExecContext(w.ctx, `UPDATE ceremonies SET facts = ? WHERE id = ?`, string(facts), id)
		c.ID = id
		return true, err
	case err != sql.ErrNoRows:
		return false, err
	}
	var key, ca any
	if b := c.Facts.BYOK; b != nil {
		key = b.KeyARN
	}
	if x := c.Facts.Certificate; x != nil && x.CAARN != "" {
		ca = x.CAARN
	}
	res, err := w.conn.ExecContext(w.ctx, `INSERT INTO ceremonies (final_hash, ceremony_id, kind, title, script_sha256, binary_sha256,
		binary_version, started_at, ended_at, rehearsal, participants, anchors, entries, kms_key_arn, ca_arn, facts,
		transcript_path, transcript_sha256, transcript_size, run, loaded_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		c.FinalHash, c.CeremonyID, c.Kind, nullStr(c.Title), nullStr(c.ScriptSHA256), nullStr(c.BinarySHA256), nullStr(c.BinaryVersion),
		c.Started.Unix(), c.Ended.Unix(), c.Rehearsal, string(people), c.Anchors, c.Entries, key, ca, string(facts),
		c.TranscriptPath, c.TranscriptSHA256, c.TranscriptSize, nullable(w.run), time.Now().Unix())
	if err != nil {
		return false, fmt.Errorf("store ceremony %s: %w", c.CeremonyID, err)
	}
	c.ID, _ = res.LastInsertId()
	return false, nil
}

// Ceremonies lists the stored ceremonies, oldest first.
func (s *Store) Ceremonies(ctx context.Context) ([]Ceremony, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, final_hash, ceremony_id, kind, coalesce(title, ''), coalesce(script_sha256, ''),
		coalesce(binary_sha256, ''), coalesce(binary_version, ''), started_at, ended_at, rehearsal, participants, anchors, entries,
		facts, transcript_path, transcript_sha256, transcript_size, coalesce(run, 0), loaded_at
		FROM ceremonies ORDER BY started_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list ceremonies: %w", err)
	}
	defer rows.Close()
	var out []Ceremony
	for rows.Next() {
		var c Ceremony
		var started, ended, loaded int64
		var people, facts string
		if err := rows.Scan(&c.ID, &c.FinalHash, &c.CeremonyID, &c.Kind, &c.Title, &c.ScriptSHA256, &c.BinarySHA256, &c.BinaryVersion,
			&started, &ended, &c.Rehearsal, &people, &c.Anchors, &c.Entries, &facts, &c.TranscriptPath, &c.TranscriptSHA256,
			&c.TranscriptSize, &c.Run, &loaded); err != nil {
			return nil, fmt.Errorf("list ceremonies: %w", err)
		}
		c.Started, c.Ended, c.LoadedAt = time.Unix(started, 0).UTC(), time.Unix(ended, 0).UTC(), time.Unix(loaded, 0).UTC()
		if err := json.Unmarshal([]byte(people), &c.Participants); err != nil {
			return nil, fmt.Errorf("ceremony %s: participants: %w", c.CeremonyID, err)
		}
		if err := json.Unmarshal([]byte(facts), &c.Facts); err != nil {
			return nil, fmt.Errorf("ceremony %s: facts: %w", c.CeremonyID, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// PCAEvent is one AWS Private CA record the join keeps.
type PCAEvent struct {
	EventID   string
	Time      time.Time
	Name      string
	CAARN     string
	Account   string
	Region    string
	Principal string
	ErrorCode string
	File      int64
	Raw       string
}

// PCAEventOf is the record as kept, when it is one the join needs. The
// strings are copied: a Record's fields may alias a buffer that is reused.
func PCAEventOf(r *cloudtrail.Record) (PCAEvent, bool) {
	if !r.IsPCAJoin() {
		return PCAEvent{}, false
	}
	c := strings.Clone
	return PCAEvent{EventID: c(r.EventID), Time: time.Unix(r.Time, 0).UTC(), Name: c(r.Name), CAARN: cloudtrail.PCAAuthority(r.Raw),
		Account: c(r.Account), Region: c(r.Region), Principal: c(r.PrincipalARN), ErrorCode: c(r.ErrorCode), Raw: string(r.Raw)}, true
}

// putPCA stores a file's Private CA records (in the file's savepoint:
// they go or stay with the file). A record stored already is skipped.
func (w *Writer) putPCA(evs []PCAEvent) error {
	for _, e := range evs {
		if _, err := w.conn.ExecContext(w.ctx, `INSERT OR IGNORE INTO pca_events (event_id, time, name, ca_arn, account, region,
			principal, error_code, file, raw) VALUES (?,?,?,?,?,?,?,?,?,?)`, e.EventID, e.Time.Unix(), e.Name, nullStr(e.CAARN),
			nullStr(e.Account), nullStr(e.Region), nullStr(e.Principal), nullStr(e.ErrorCode), w.fileID, e.Raw); err != nil {
			return fmt.Errorf("store Private CA record %s: %w", e.EventID, err)
		}
	}
	return nil
}

// PCAEvents lists the stored Private CA records, oldest first.
func (s *Store) PCAEvents(ctx context.Context) ([]PCAEvent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT event_id, time, name, coalesce(ca_arn, ''), coalesce(account, ''), coalesce(region, ''),
		coalesce(principal, ''), coalesce(error_code, ''), coalesce(file, 0), raw FROM pca_events ORDER BY time, id`)
	if err != nil {
		return nil, fmt.Errorf("list Private CA records: %w", err)
	}
	defer rows.Close()
	var out []PCAEvent
	for rows.Next() {
		var e PCAEvent
		var t int64
		if err := rows.Scan(&e.EventID, &t, &e.Name, &e.CAARN, &e.Account, &e.Region, &e.Principal, &e.ErrorCode, &e.File, &e.Raw); err != nil {
			return nil, fmt.Errorf("list Private CA records: %w", err)
		}
		e.Time = time.Unix(t, 0).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// PCARawEvent is the original CloudTrail record of a kept Private CA event.
func (s *Store) PCARawEvent(ctx context.Context, eventID string) ([]byte, error) {
	var raw string
	err := s.db.QueryRowContext(ctx, `SELECT raw FROM pca_events WHERE event_id = ?`, eventID).Scan(&raw)
	if err == sql.ErrNoRows {
		return nil, fmt.Errorf("Private CA record %s: %w", eventID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("Private CA record %s: %w", eventID, err)
	}
	return []byte(raw), nil
}
