package awsfake

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// The read-only KMS operations of a key inventory (audit/kmsinventory):
// keys and aliases added by a test, listed page by page, with rotation
// status, key materials and last use.

// KeyOptions describe a key added with AddKey, as an account's inventory
// would hold it: AWS managed keys, keys with rotation history, asymmetric
// and HMAC keys, imported (EXTERNAL) material, keys pending deletion.
type KeyOptions struct {
	Manager      string // CUSTOMER (default) or AWS
	Spec         string // default SYMMETRIC_DEFAULT
	Usage        string // default from the spec
	Origin       string // default AWS_KMS
	State        string // default Enabled; PendingDeletion needs DeletionDate
	Description  string
	Created      time.Time // default a year before Now
	DeletionDate time.Time
	ValidTo      time.Time // imported material that expires
	// RotationEnabled and RotationPeriodDays are what GetKeyRotationStatus
	// answers for a customer symmetric key (period default 365).
	RotationEnabled    bool
	RotationPeriodDays int
	// Rotations are the completed rotations, oldest first; each adds key
	// material after the key's first.
	Rotations []time.Time
	// LastUsed and LastOperation are what GetKeyLastUsage reports.
	LastUsed      time.Time
	LastOperation string
}

// AddKey adds a key directly (no CloudTrail event, no CreateKey call) and
// returns its ARN.
func (k *KMS) AddKey(o KeyOptions) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.counter++
	id := fmt.Sprintf("%08x-aaaa-4bbb-8ccc-%012x", k.counter, k.counter)
	now := k.Now()
	if o.Manager == "" {
		o.Manager = "CUSTOMER"
	}
	if o.Spec == "" {
		o.Spec = "SYMMETRIC_DEFAULT"
	}
	if o.Origin == "" {
		o.Origin = "AWS_KMS"
	}
	if o.State == "" {
		o.State = "Enabled"
	}
	if o.Created.IsZero() {
		o.Created = now.AddDate(-1, 0, 0)
	}
	meta := map[string]any{
		"KeyId": id, "Arn": k.arn(id), "AWSAccountId": k.Account, "CreationDate": epoch(o.Created),
		"Description": o.Description, "Enabled": o.State == "Enabled", "KeyState": o.State, "KeyManager": o.Manager,
		"KeySpec": o.Spec, "CustomerMasterKeySpec": o.Spec, "Origin": o.Origin, "MultiRegion": false,
	}
	switch {
	case o.Spec == "SYMMETRIC_DEFAULT":
		meta["KeyUsage"], meta["EncryptionAlgorithms"] = "ENCRYPT_DECRYPT", []string{"SYMMETRIC_DEFAULT"}
	case len(o.Spec) > 5 && o.Spec[:5] == "HMAC_":
		meta["KeyUsage"], meta["MacAlgorithms"] = "GENERATE_VERIFY_MAC", []string{"HMAC_" + o.Spec[5:]}
	case len(o.Spec) > 4 && o.Spec[:4] == "RSA_":
		meta["KeyUsage"], meta["SigningAlgorithms"] = "SIGN_VERIFY", []string{"RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PSS_SHA_256"}
	default:
		meta["KeyUsage"], meta["SigningAlgorithms"] = "SIGN_VERIFY", []string{"ECDSA_SHA_256"}
	}
	if o.Usage != "" {
		meta["KeyUsage"] = o.Usage
	}
	if !o.DeletionDate.IsZero() {
		meta["DeletionDate"], meta["PendingDeletionWindowInDays"] = epoch(o.DeletionDate), 30
	}
	key := &fakeKey{meta: meta}
	if o.Origin == "EXTERNAL" {
		meta["ExpirationModel"] = "KEY_MATERIAL_DOES_NOT_EXPIRE"
		if !o.ValidTo.IsZero() {
			meta["ExpirationModel"], meta["ValidTo"] = "KEY_MATERIAL_EXPIRES", epoch(o.ValidTo)
		}
	}
	// Key material: the first, then one per rotation; the last is current.
	if o.Spec == "SYMMETRIC_DEFAULT" {
		for i := 0; i <= len(o.Rotations); i++ {
			sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", id, i)))
			m := map[string]any{"KeyId": id, "KeyMaterialId": hex.EncodeToString(sum[:]), "KeyMaterialState": "NON_CURRENT"}
			if i > 0 {
				m["RotationDate"], m["RotationType"] = epoch(o.Rotations[i-1]), "AUTOMATIC"
			}
			if o.Origin == "EXTERNAL" {
				m["ImportState"], m["ExpirationModel"] = "IMPORTED", meta["ExpirationModel"]
				if v, ok := meta["ValidTo"]; ok {
					m["ValidTo"] = v
				}
			}
			key.materials = append(key.materials, m)
		}
		key.materials[len(key.materials)-1]["KeyMaterialState"] = "CURRENT"
		meta["CurrentKeyMaterialId"] = key.materials[len(key.materials)-1]["KeyMaterialId"]
	}
	if o.Manager == "AWS" {
		// AWS managed keys rotate every year; AWS says so and nobody can change it.
		key.rotation = map[string]any{"KeyId": k.arn(id), "KeyRotationEnabled": true, "RotationPeriodInDays": 365}
	} else if o.Spec == "SYMMETRIC_DEFAULT" && o.Origin == "AWS_KMS" {
		key.rotation = map[string]any{"KeyId": k.arn(id), "KeyRotationEnabled": o.RotationEnabled}
		if o.RotationEnabled {
			days := o.RotationPeriodDays
			if days == 0 {
				days = 365
			}
			last := o.Created
			if n := len(o.Rotations); n > 0 {
				last = o.Rotations[n-1]
			}
			key.rotation["RotationPeriodInDays"], key.rotation["NextRotationDate"] = days, epoch(last.AddDate(0, 0, days))
		}
	}
	if !o.LastUsed.IsZero() {
		key.lastUsage = map[string]any{"Operation": o.LastOperation, "Timestamp": epoch(o.LastUsed),
			"CloudTrailEventId": fmt.Sprintf("5c1e7d2a-0000-4000-8000-%012x", k.counter), "KmsRequestId": fmt.Sprintf("req-%012x", k.counter)}
	}
	k.keys[id] = key
	return k.arn(id)
}

// AddAlias points alias/NAME at a key (an id or ARN), or at nothing when
// keyID is "" (AWS creates aliases such as alias/aws/ebs before their key).
func (k *KMS) AddAlias(name, keyID string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	target := ""
	if keyID != "" {
		key, e := k.resolve(keyID)
		if e != nil {
			panic("awsfake: alias for an unknown key " + keyID)
		}
		target = key.meta["KeyId"].(string)
	}
	k.aliases[name] = &fakeAlias{name: name, target: target, created: k.Now().AddDate(0, -6, 0)}
}

// FailFor makes every call of op about keyID (an id or ARN) fail with e:
// one key whose policy denies an operation, say.
func (k *KMS) FailFor(op, keyID string, e APIError) {
	k.mu.Lock()
	defer k.mu.Unlock()
	key, err := k.resolve(keyID)
	if err != nil {
		panic("awsfake: FailFor an unknown key " + keyID)
	}
	k.failFor[op+" "+key.meta["KeyId"].(string)] = e
}

// keyFor resolves the request's KeyId and applies FailFor.
func (k *KMS) keyFor(op, id string) (*fakeKey, *APIError) {
	if id == "" {
		return nil, &APIError{400, "ValidationException", "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null"}
	}
	key, e := k.resolve(id)
	if e != nil {
		return nil, e
	}
	if f, ok := k.failFor[op+" "+key.meta["KeyId"].(string)]; ok {
		return nil, &f
	}
	return key, nil
}

type listRequest struct {
	KeyId              string
	Limit              *int
	Marker             string
	IncludeKeyMaterial string
}

// page cuts a sorted list into AWS's Limit/Marker pages. Markers are
// opaque to the client and bound to the operation and the query, as
// KMS's are: a marker from elsewhere is InvalidMarkerException.
func (k *KMS) page(op string, in listRequest, n int) (from, to int, out map[string]any, e *APIError) {
	limit := 100
	if in.Limit != nil {
		if *in.Limit < 1 || *in.Limit > 1000 {
			return 0, 0, nil, &APIError{400, "ValidationException", fmt.Sprintf("1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value between 1 and 1000", *in.Limit)}
		}
		limit = *in.Limit
	}
	if k.PageSize > 0 && k.PageSize < limit {
		limit = k.PageSize
	}
	if in.Marker != "" {
		raw, err := base64.RawURLEncoding.DecodeString(in.Marker)
		var i int
		if _, serr := fmt.Sscanf(string(raw), op+"|"+in.KeyId+"|%d", &i); err != nil || serr != nil || i <= 0 || i > n {
			return 0, 0, nil, &APIError{400, "InvalidMarkerException", "The request was rejected because the marker that specifies where pagination should next begin is not valid."}
		}
		from = i
	}
	to = min(from+limit, n)
	out = map[string]any{"Truncated": to < n}
	if to < n {
		out["NextMarker"] = base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%s|%s|%d", op, in.KeyId, to))
	}
	return from, to, out, nil
}

func (k *KMS) sortedKeyIDs() []string {
	ids := make([]string, 0, len(k.keys))
	for id := range k.keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (k *KMS) listKeys(body []byte) (any, *APIError) {
	var in listRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &APIError{400, "SerializationException", err.Error()}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	ids := k.sortedKeyIDs()
	from, to, out, e := k.page("ListKeys", in, len(ids))
	if e != nil {
		return nil, e
	}
	entries := []map[string]string{}
	for _, id := range ids[from:to] {
		entries = append(entries, map[string]string{"KeyId": id, "KeyArn": k.arn(id)})
	}
	out["Keys"] = entries
	return out, nil
}

func (k *KMS) listAliases(body []byte) (any, *APIError) {
	var in listRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &APIError{400, "SerializationException", err.Error()}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	filter := ""
	if in.KeyId != "" {
		key, e := k.resolve(in.KeyId)
		if e != nil {
			return nil, e
		}
		filter = key.meta["KeyId"].(string)
	}
	var names []string
	for name, a := range k.aliases {
		if filter == "" || a.target == filter {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	from, to, out, e := k.page("ListAliases", in, len(names))
	if e != nil {
		return nil, e
	}
	entries := []map[string]any{}
	for _, name := range names[from:to] {
		a := k.aliases[name]
		m := map[string]any{"AliasName": name, "AliasArn": fmt.Sprintf("arn:aws:kms:%s:%s:%s", k.Region, k.Account, name)}
		if a.target != "" {
			m["TargetKeyId"], m["CreationDate"], m["LastUpdatedDate"] = a.target, epoch(a.created), epoch(a.created)
		}
		entries = append(entries, m)
	}
	out["Aliases"] = entries
	return out, nil
}

// unsupported is KMS's answer for an operation a key's kind does not have.
func unsupported(key *fakeKey, what string) *APIError {
	m := key.meta
	switch {
	case m["KeySpec"] != "SYMMETRIC_DEFAULT":
		return &APIError{400, "UnsupportedOperationException", fmt.Sprintf("%s is not supported for KMS keys with key spec %s.", what, m["KeySpec"])}
	case m["Origin"] != "AWS_KMS" && what == "Automatic key rotation":
		return &APIError{400, "UnsupportedOperationException", fmt.Sprintf("%s is not supported for KMS keys with origin %s.", what, m["Origin"])}
	case m["Origin"] == "AWS_CLOUDHSM" || m["Origin"] == "EXTERNAL_KEY_STORE":
		return &APIError{400, "UnsupportedOperationException", fmt.Sprintf("%s is not supported for KMS keys in a custom key store.", what)}
	}
	return nil
}

func (k *KMS) getKeyRotationStatus(body []byte) (any, *APIError) {
	var in struct{ KeyId string }
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &APIError{400, "SerializationException", err.Error()}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	key, e := k.keyFor("GetKeyRotationStatus", in.KeyId)
	if e != nil {
		return nil, e
	}
	if key.rotation == nil {
		if e := unsupported(key, "Automatic key rotation"); e != nil {
			return nil, e
		}
		return map[string]any{"KeyId": key.meta["Arn"], "KeyRotationEnabled": false}, nil
	}
	return key.rotation, nil
}

func (k *KMS) listKeyRotations(body []byte) (any, *APIError) {
	var in listRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &APIError{400, "SerializationException", err.Error()}
	}
	switch in.IncludeKeyMaterial {
	case "", "ROTATIONS_ONLY", "ALL_KEY_MATERIAL":
	default:
		return nil, &APIError{400, "ValidationException", "1 validation error detected: Value '" + in.IncludeKeyMaterial + "' at 'includeKeyMaterial' failed to satisfy constraint: Member must satisfy enum value set: [ALL_KEY_MATERIAL, ROTATIONS_ONLY]"}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	key, e := k.keyFor("ListKeyRotations", in.KeyId)
	if e != nil {
		return nil, e
	}
	if e := unsupported(key, "Key rotation"); e != nil {
		return nil, e
	}
	// ROTATIONS_ONLY (the default) leaves out the first key material,
	// which no rotation produced; ALL_KEY_MATERIAL lists it too.
	var list []map[string]any
	for _, m := range key.materials {
		if _, rotated := m["RotationDate"]; rotated || in.IncludeKeyMaterial == "ALL_KEY_MATERIAL" {
			list = append(list, m)
		}
	}
	from, to, out, e := k.page("ListKeyRotations", in, len(list))
	if e != nil {
		return nil, e
	}
	out["Rotations"] = append([]map[string]any{}, list[from:to]...)
	return out, nil
}

func (k *KMS) getKeyLastUsage(body []byte) (any, *APIError) {
	if k.NoKeyLastUsage {
		return nil, &APIError{400, "UnknownOperationException", "Unknown operation GetKeyLastUsage"}
	}
	var in struct{ KeyId string }
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &APIError{400, "SerializationException", err.Error()}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	key, e := k.keyFor("GetKeyLastUsage", in.KeyId)
	if e != nil {
		return nil, e
	}
	created := key.meta["CreationDate"].(float64)
	// KMS tracks usage from a date on, or from the key's creation if later.
	tracking := max(created, epoch(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)))
	out := map[string]any{"KeyId": key.meta["KeyId"], "KeyCreationDate": created, "TrackingStartDate": tracking, "KeyLastUsage": map[string]any{}}
	if key.lastUsage != nil {
		out["KeyLastUsage"] = key.lastUsage
	}
	return out, nil
}
