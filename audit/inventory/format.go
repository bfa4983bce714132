package inventory

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/audit/cloudtrail"
)

// The combined inventory format: what `keyceremony aws inventory`
// (audit/kmsinventory) writes and Parse reads, declared once here.
//
//	{"Inventory": {"GeneratedAt", "Account", "Region", "Keys": [
//	   {"KeyMetadata", "Rotation", "Rotations", "Aliases", "KeyLastUsage", "Errors"}],
//	 "UnattachedAliases", "Notes"}}
//
// Every AWS object (KeyMetadata of describe-key, the output of
// get-key-rotation-status, list-key-rotations and list-aliases entries,
// KeyLastUsage) is kept as AWS sent it, with AWS's member names and
// ISO 8601 UTC dates as the AWS CLI v2 prints them. KeyMetadata,
// Rotation, Aliases and KeyLastUsage are what the ingest reads;
// Rotations, Errors, UnattachedAliases and Notes are kept with the
// document as evidence.

// Document is a combined inventory file's top level.
type Document struct {
	Inventory Snapshot `json:"Inventory"`
}

// Snapshot is one account and region at one moment.
type Snapshot struct {
	GeneratedAt Time       `json:"GeneratedAt"`
	Account     string     `json:"Account,omitempty"`
	Region      string     `json:"Region"`
	Keys        []KeyEntry `json:"Keys"`
	// UnattachedAliases point to no key (AWS creates alias/aws/* before
	// the service first uses its key).
	UnattachedAliases []json.RawMessage `json:"UnattachedAliases,omitempty"`
	// Notes say what could not be asked at all, such as an operation the
	// endpoint does not offer.
	Notes []string `json:"Notes,omitempty"`
}

// KeyEntry is what was learnt about one key. Members are absent when the
// operation does not apply to the key or failed (see Errors): an absent
// Rotation means "not known", never "rotation disabled".
type KeyEntry struct {
	KeyMetadata  json.RawMessage   `json:"KeyMetadata"`
	Rotation     json.RawMessage   `json:"Rotation,omitempty"`
	Rotations    []json.RawMessage `json:"Rotations,omitempty"`
	Aliases      []json.RawMessage `json:"Aliases,omitempty"`
	KeyLastUsage json.RawMessage   `json:"KeyLastUsage,omitempty"`
	Errors       []CallError       `json:"Errors,omitempty"`

	// Raw is the entry as read (set when decoded, never written): the
	// ingest keeps it as the key's evidence.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes an entry and keeps its bytes in Raw.
func (e *KeyEntry) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("a key entry must be a JSON object, not %.40s", b)
	}
	type fields KeyEntry // without this method
	var f fields
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*e = KeyEntry(f)
	e.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// ARN is KeyMetadata's Arn ("" if it has none).
func (e *KeyEntry) ARN() string {
	var m struct{ Arn string }
	json.Unmarshal(e.KeyMetadata, &m)
	return m.Arn
}

// CallError records a call that failed for one key; the export goes on.
type CallError struct {
	Operation string `json:"Operation"`
	Code      string `json:"Code"`
	Message   string `json:"Message"`
}

// Time is an instant in Unix seconds. It is written as ISO 8601 UTC and
// read from ISO 8601, epoch seconds (a number or a string) or the Java
// format KMS writes in CloudTrail.
type Time int64

// TimeOf is t in seconds.
func TimeOf(t time.Time) Time { return Time(t.Unix()) }

// Time is t as a time.Time in UTC.
func (t Time) Time() time.Time { return time.Unix(int64(t), 0).UTC() }

// MarshalJSON writes the ISO 8601 UTC form.
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + t.Time().Format(time.RFC3339) + `"`), nil
}

// UnmarshalJSON accepts every form inventories carry.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	v, ok := cloudtrail.ParseBodyTime(strings.Trim(string(b), `"`))
	if !ok {
		return fmt.Errorf("unparsable date %s", b)
	}
	*t = Time(v)
	return nil
}
