package cloudtrail

import (
	"crypto/sha256"
	"encoding/binary"
)

// Fingerprint identifies what a record states: the first 8 bytes of the
// SHA-256 of a canonical encoding of every field Parse extracts (the
// event's identity, time, caller, key, alias, error and lifecycle
// details; not where the key ARN was read from), not of its bytes. Two deliveries of one event in different
// shapes (a log file's record, the CloudTrailEvent string of
// lookup-events, a Lake or Athena line with lower-case member names)
// have the same fingerprint; two records with one eventID that state
// different facts (a successful and a refused Decrypt) do not, and the
// ingest keeps the one with the smaller fingerprint as the event and the
// other as a conflict (docs/audit-ingest.md, "Conflicts"). SHA-256
// rather than a faster hash: whoever writes log files must not be able
// to make a different record pass for a duplicate.
func (r *Record) Fingerprint() uint64 {
	var buf [768]byte
	b := buf[:0]
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	num := func(v int64) { b = binary.AppendVarint(b, v) }
	str(r.EventID)
	num(r.Time)
	str(r.Source)
	str(r.Name)
	str(r.Type)
	num(int64(r.Category))
	num(int64(r.ReadOnly))
	str(r.Region)
	str(r.Account)
	str(r.PrincipalARN)
	str(r.PrincipalType)
	str(r.PrincipalAccount)
	str(r.RoleARN)
	str(r.InvokedBy)
	str(r.SourceIP)
	str(r.UserAgent)
	str(r.KeyARN)
	str(r.KeyARN2)
	str(r.AliasARN)
	str(r.AliasTarget)
	str(r.ErrorCode)
	str(r.ErrorMessage)
	num(r.ValidTo)
	num(r.DeletionDate)
	num(r.PendingDays)
	str(r.RotationType)
	str(r.KeyMaterialID)
	str(r.ImportType)
	d := &r.Detail
	str(d.KeySpec)
	str(d.Origin)
	str(d.KeyManager)
	str(d.CustomKeyStore)
	str(d.Description)
	num(int64(d.MultiRegion))
	num(d.RotationPeriodDays)
	str(d.ImportType)
	str(d.ExpirationModel)
	str(d.KeyMaterialID)
	sum := sha256.Sum256(b)
	return binary.BigEndian.Uint64(sum[:8])
}
