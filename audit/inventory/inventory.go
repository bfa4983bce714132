// Package inventory reads KMS key inventories: what CloudTrail alone cannot
// show about a key (spec, origin, manager, state, creation date, rotation
// settings, deletion date, imported material expiry, aliases).
//
// It accepts the raw JSON output of each AWS CLI command
//
//	aws kms list-keys
//	aws kms describe-key --key-id ARN
//	aws kms get-key-rotation-status --key-id ARN
//	aws kms list-aliases
//
// and a combined document (the format the online inventory feature writes;
// docs/audit-ingest.md describes it):
//
//	{"Inventory": {
//	   "GeneratedAt": "2025-03-08T12:00:00Z", "Account": "111122223333", "Region": "eu-west-1",
//	   "Keys": [{"KeyMetadata": {...describe-key KeyMetadata...},
//	             "Rotation": {...get-key-rotation-status output...},
//	             "Aliases": [{...list-aliases entry...}],
//	             "KeyLastUsage": {"LastUsedDate": "...", "Operation": "Decrypt"}}]}}
//
// Dates may be ISO 8601 (AWS CLI v2), epoch seconds (CLI v1) or the Java
// format KMS writes in CloudTrail.
package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Doc is one parsed inventory document.
type Doc struct {
	Kind        string // combined, list-keys, describe-key, get-key-rotation-status, list-aliases
	GeneratedAt int64  // Unix seconds; from the document, else the caller's fallback
	Account     string
	Region      string
	Keys        []Key
	Aliases     []Alias
}

// Key is what the document says about one key. Nil pointers and zero
// times mean "this document does not say" (a rotation-status output says
// nothing of origin), so partial documents merge instead of erasing.
type Key struct {
	ARN     string
	KeyID   string
	Account string
	Region  string

	Spec, Usage, Origin, Manager, State string
	Description, ExpirationModel        string
	CustomKeyStore                      string
	Enabled, MultiRegion                *bool
	CreatedAt, DeletionDate, ValidTo    int64

	RotationEnabled    *bool
	RotationPeriodDays int64
	NextRotation       int64

	LastUsedAt        int64
	LastUsedOperation string

	JSON []byte // the document fragment about this key, as given
}

// Alias is one alias and the key it points to.
type Alias struct {
	ARN       string
	Name      string
	TargetARN string // "" for an alias with no target (AWS managed, not yet used)
}

// MaxSize bounds an inventory document; a real account's inventory is a
// few megabytes at most.
const MaxSize = 64 << 20

// Parse reads one or more inventory documents (concatenated or one per
// line). fallbackTime dates documents that carry no timestamp (the raw CLI
// outputs); pass the file's modification time.
func Parse(r io.Reader, fallbackTime int64) ([]*Doc, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("inventory document larger than %d MiB", MaxSize>>20)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var docs []*Doc
	for {
		var raw map[string]json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("inventory document %d: %w", len(docs)+1, err)
		}
		d, err := parseDoc(raw, fallbackTime)
		if err != nil {
			return nil, fmt.Errorf("inventory document %d: %w", len(docs)+1, err)
		}
		docs = append(docs, d)
	}
	if len(docs) == 0 {
		return nil, errors.New("no inventory document")
	}
	return docs, nil
}

func parseDoc(raw map[string]json.RawMessage, fallback int64) (*Doc, error) {
	d := &Doc{GeneratedAt: fallback}
	switch {
	case raw["Inventory"] != nil:
		d.Kind = "combined"
		var inv Snapshot
		if err := json.Unmarshal(raw["Inventory"], &inv); err != nil {
			return nil, fmt.Errorf("Inventory: %w", err)
		}
		if inv.GeneratedAt != 0 {
			d.GeneratedAt = int64(inv.GeneratedAt)
		}
		d.Account, d.Region = inv.Account, inv.Region
		for i, e := range inv.Keys {
			k, aliases, err := e.key()
			if err != nil {
				return nil, fmt.Errorf("Keys[%d]: %w", i, err)
			}
			d.Keys = append(d.Keys, k)
			d.Aliases = append(d.Aliases, aliases...)
		}
	case raw["KeyMetadata"] != nil:
		d.Kind = "describe-key"
		var m metadata
		if err := json.Unmarshal(raw["KeyMetadata"], &m); err != nil {
			return nil, fmt.Errorf("KeyMetadata: %w", err)
		}
		if m.Arn == "" {
			return nil, errors.New("KeyMetadata has no Arn")
		}
		k := m.key()
		k.JSON = raw["KeyMetadata"]
		d.Keys = append(d.Keys, k)
	case raw["KeyRotationEnabled"] != nil:
		d.Kind = "get-key-rotation-status"
		all, _ := json.Marshal(raw)
		var r rotation
		if err := json.Unmarshal(all, &r); err != nil {
			return nil, err
		}
		if !strings.HasPrefix(r.KeyId, "arn:") {
			return nil, errors.New("get-key-rotation-status output has no key ARN in KeyId (older AWS CLI?): it cannot be attributed to a key; use the combined inventory format")
		}
		k := keyFromARN(r.KeyId)
		r.apply(&k)
		k.JSON = all
		d.Keys = append(d.Keys, k)
	case raw["Keys"] != nil:
		d.Kind = "list-keys"
		var ks []struct{ KeyId, KeyArn string }
		if err := json.Unmarshal(raw["Keys"], &ks); err != nil {
			return nil, fmt.Errorf("Keys: %w", err)
		}
		for _, e := range ks {
			if e.KeyArn == "" {
				return nil, fmt.Errorf("list-keys entry %s has no KeyArn", e.KeyId)
			}
			k := keyFromARN(e.KeyArn)
			k.JSON, _ = json.Marshal(e)
			d.Keys = append(d.Keys, k)
		}
	case raw["Aliases"] != nil:
		d.Kind = "list-aliases"
		var as []aliasEntry
		if err := json.Unmarshal(raw["Aliases"], &as); err != nil {
			return nil, fmt.Errorf("Aliases: %w", err)
		}
		for _, a := range as {
			if a.AliasArn == "" {
				return nil, fmt.Errorf("alias %s has no AliasArn", a.AliasName)
			}
			d.Aliases = append(d.Aliases, a.alias(""))
		}
	default:
		names := make([]string, 0, len(raw))
		for k := range raw {
			names = append(names, k)
		}
		return nil, fmt.Errorf("not a KMS inventory document (members: %s)", strings.Join(names, ", "))
	}
	return d, nil
}

// key reads what the ingest uses of one combined-format entry: the key
// and the aliases listed with it.
func (e *KeyEntry) key() (Key, []Alias, error) {
	var m metadata
	if err := member(e.KeyMetadata, &m); err != nil {
		return Key{}, nil, err
	}
	if m.Arn == "" {
		return Key{}, nil, errors.New("KeyMetadata.Arn is required")
	}
	k := m.key()
	if present(e.Rotation) {
		var r rotation
		if err := member(e.Rotation, &r); err != nil {
			return Key{}, nil, err
		}
		r.apply(&k)
	}
	if present(e.KeyLastUsage) {
		var u lastUsage
		if err := member(e.KeyLastUsage, &u); err != nil {
			return Key{}, nil, err
		}
		k.LastUsedAt = int64(u.LastUsedDate)
		if k.LastUsedAt == 0 {
			k.LastUsedAt = int64(u.Timestamp)
		}
		k.LastUsedOperation = u.Operation
	}
	k.JSON = e.Raw
	var aliases []Alias
	for _, raw := range e.Aliases {
		var a aliasEntry
		if err := member(raw, &a); err != nil {
			return Key{}, nil, err
		}
		al := a.alias(k.ARN)
		if al.TargetARN == "" {
			al.TargetARN = k.ARN
		}
		aliases = append(aliases, al)
	}
	return k, aliases, nil
}

// present says whether an optional member is there (not absent, not null).
func present(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

// member decodes an optional AWS object of an entry into v.
func member(raw json.RawMessage, v any) error {
	if !present(raw) {
		return nil
	}
	return json.Unmarshal(raw, v)
}

type metadata struct {
	AWSAccountId, KeyId, Arn               string
	CreationDate, DeletionDate, ValidTo    Time
	Enabled, MultiRegion                   *bool
	Description, KeyUsage, KeyState        string
	Origin, KeyManager, KeySpec            string
	CustomerMasterKeySpec, ExpirationModel string
	CustomKeyStoreId                       string
}

func (m *metadata) key() Key {
	k := keyFromARN(m.Arn)
	if m.AWSAccountId != "" {
		k.Account = m.AWSAccountId
	}
	k.Spec = m.KeySpec
	if k.Spec == "" {
		k.Spec = m.CustomerMasterKeySpec
	}
	k.Usage, k.Origin, k.Manager, k.State = m.KeyUsage, m.Origin, m.KeyManager, m.KeyState
	k.Description, k.ExpirationModel, k.CustomKeyStore = m.Description, m.ExpirationModel, m.CustomKeyStoreId
	k.Enabled, k.MultiRegion = m.Enabled, m.MultiRegion
	k.CreatedAt, k.DeletionDate, k.ValidTo = int64(m.CreationDate), int64(m.DeletionDate), int64(m.ValidTo)
	return k
}

type rotation struct {
	KeyId                string
	KeyRotationEnabled   *bool
	RotationPeriodInDays int64
	NextRotationDate     Time
}

func (r *rotation) apply(k *Key) {
	k.RotationEnabled = r.KeyRotationEnabled
	k.RotationPeriodDays = r.RotationPeriodInDays
	k.NextRotation = int64(r.NextRotationDate)
}

type aliasEntry struct {
	AliasName, AliasArn, TargetKeyId string
}

func (a aliasEntry) alias(keyARN string) Alias {
	al := Alias{ARN: a.AliasArn, Name: a.AliasName}
	switch {
	case strings.HasPrefix(a.TargetKeyId, "arn:"):
		al.TargetARN = a.TargetKeyId
	case a.TargetKeyId != "" && a.AliasArn != "":
		// The key lives in the alias's account and region.
		if i := strings.Index(a.AliasArn, ":alias/"); i > 0 {
			al.TargetARN = a.AliasArn[:i] + ":key/" + a.TargetKeyId
		}
	case a.TargetKeyId == "" && keyARN != "":
		al.TargetARN = keyARN
	}
	return al
}

type lastUsage struct {
	LastUsedDate, Timestamp Time
	Operation               string
}

func keyFromARN(arn string) Key {
	k := Key{ARN: arn}
	p := strings.SplitN(arn, ":", 6)
	if len(p) == 6 {
		k.Region, k.Account = p[3], p[4]
		k.KeyID = strings.TrimPrefix(p[5], "key/")
	}
	return k
}
