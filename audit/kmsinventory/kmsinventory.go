// Package kmsinventory exports a region's KMS key inventory: what
// CloudTrail alone cannot show about a key (spec, origin, manager, state,
// rotation settings and history, aliases, last use), gathered with
// read-only KMS calls and written in the combined inventory format that
// audit/inventory declares and the ingest reads (docs/audit-ingest.md). It
// opens a connection to AWS KMS, and only because a person started
// `keyceremony aws inventory` or the GUI's inventory action.
package kmsinventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/keyceremony/keyceremony/audit/inventory"
	"github.com/keyceremony/keyceremony/internal/awsapi"
	"github.com/keyceremony/keyceremony/internal/newfile"
)

// Exporter asks one region's KMS about its keys.
type Exporter struct {
	client *kms.Client
}

// New is an exporter for cfg's region, at endpoint if set (tests, VPC
// endpoints).
func New(cfg aws.Config, endpoint string) *Exporter {
	return &Exporter{client: kms.NewFromConfig(cfg, func(o *kms.Options) { o.BaseEndpoint = awsapi.Endpoint(endpoint) })}
}

// Progress is reported after each key.
type Progress struct {
	Keys, Done int
}

// Options tune an export.
type Options struct {
	// Workers is the number of keys examined at once (default 4): a few
	// calls per key, and accounts hold thousands of keys.
	Workers  int
	Progress func(Progress) // called from one goroutine at a time
	Now      func() time.Time
}

// Summary is what Export tells the operator.
type Summary struct {
	File            string
	Account, Region string
	Keys, Aliases   int
	Unattached      int
	RotationStatus  int // keys with a rotation status
	Rotations       int // key materials listed
	LastUsage       int // keys with a last-usage answer
	Errors          []string
	Notes           []string
}

func (s *Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Wrote the inventory of account %s, region %s to %s: %d keys, %d aliases (%d pointing to no key), rotation status of %d keys, %d key materials, last use of %d keys.\n",
		orNone(s.Account), s.Region, s.File, s.Keys, s.Aliases, s.Unattached, s.RotationStatus, s.Rotations, s.LastUsage)
	for _, n := range s.Notes {
		fmt.Fprintf(&b, "Note: %s\n", n)
	}
	if len(s.Errors) > 0 {
		fmt.Fprintf(&b, "%d calls failed and are recorded in the file (the rest is complete):\n", len(s.Errors))
		for _, e := range s.Errors {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	fmt.Fprintf(&b, "Load it with: keyceremony audit ingest %s\n", s.File)
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "(no keys)"
	}
	return s
}

// Export lists every key of the region with ListKeys, describes each,
// adds its rotation status and key materials where KMS has them, its
// aliases and its last use, and writes the combined inventory to path
// (0600, never over an existing file). A failure for one key is recorded
// in the file and the export goes on; failing to list keys or aliases
// stops it, and nothing is written.
func (k *Exporter) Export(ctx context.Context, path string, opt Options) (*Summary, error) {
	// Refused before the first call, not after minutes of them; the write
	// itself is O_EXCL, so a file appearing meanwhile is not overwritten.
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("%s already exists: choose another file name (nothing is overwritten)", path)
	}
	inv, err := k.Gather(ctx, opt)
	if err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(inventory.Document{Inventory: *inv}, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := newfile.Write(path, append(data, '\n'), "choose another file name (nothing is overwritten)"); err != nil {
		return nil, err
	}
	s := &Summary{File: path, Account: inv.Account, Region: inv.Region, Keys: len(inv.Keys), Unattached: len(inv.UnattachedAliases), Notes: inv.Notes}
	s.Aliases = s.Unattached
	for _, key := range inv.Keys {
		s.Aliases += len(key.Aliases)
		s.Rotations += len(key.Rotations)
		if key.Rotation != nil {
			s.RotationStatus++
		}
		if key.KeyLastUsage != nil {
			s.LastUsage++
		}
		for _, e := range key.Errors {
			s.Errors = append(s.Errors, fmt.Sprintf("%s %s: %s: %s", e.Operation, key.ARN(), e.Code, e.Message))
		}
	}
	return s, nil
}

// Gather asks KMS for the inventory without writing it.
func (k *Exporter) Gather(ctx context.Context, opt Options) (*inventory.Snapshot, error) {
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	inv := &inventory.Snapshot{GeneratedAt: inventory.TimeOf(now()), Region: k.client.Options().Region, Keys: []inventory.KeyEntry{}}

	var listed []types.KeyListEntry
	pages := kms.NewListKeysPaginator(k.client, &kms.ListKeysInput{Limit: aws.Int32(1000)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx, patient)
		if err != nil {
			return nil, explainInventory("list the keys (ListKeys)", err)
		}
		listed = append(listed, out.Keys...)
	}
	// Aliases are listed once for the account and region, then given to
	// their keys: one call per 100 aliases instead of one per key.
	aliases := map[string][]json.RawMessage{} // by target key id
	apages := kms.NewListAliasesPaginator(k.client, &kms.ListAliasesInput{Limit: aws.Int32(100)})
	for apages.HasMorePages() {
		out, err := apages.NextPage(ctx, patient)
		if err != nil {
			return nil, explainInventory("list the aliases (ListAliases)", err)
		}
		for _, a := range out.Aliases {
			m := raw(awsJSON(&a))
			if id := aws.ToString(a.TargetKeyId); id != "" {
				aliases[id] = append(aliases[id], m)
			} else {
				inv.UnattachedAliases = append(inv.UnattachedAliases, m)
			}
		}
	}
	if len(listed) > 0 {
		if p := strings.SplitN(aws.ToString(listed[0].KeyArn), ":", 6); len(p) == 6 {
			inv.Account = p[4]
		}
	}

	// Keys are examined by a few workers; each result goes to its own
	// slot, so the file lists keys in ListKeys' order whatever finishes first.
	inv.Keys = make([]inventory.KeyEntry, len(listed))
	workers := opt.Workers
	if workers <= 0 {
		workers = 4
	}
	var (
		mu       sync.Mutex
		done     int
		noLastUs bool // GetKeyLastUsage is unknown to this endpoint
		wg       sync.WaitGroup
	)
	next := make(chan int)
	for range min(workers, max(len(listed), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				mu.Lock()
				skipUsage := noLastUs
				mu.Unlock()
				key, unknownOp := k.inventoryKey(ctx, listed[i], aliases, skipUsage)
				mu.Lock()
				inv.Keys[i] = key
				if unknownOp {
					noLastUs = true
				}
				done++
				if opt.Progress != nil {
					opt.Progress(Progress{Keys: len(listed), Done: done})
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for i := range listed {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("inventory interrupted after %d of %d keys, nothing written: %w", done, len(listed), err)
	}
	if noLastUs {
		inv.Notes = append(inv.Notes, "GetKeyLastUsage is not offered by this endpoint (UnknownOperationException): no key has a KeyLastUsage; CloudTrail remains the record of use")
		// Keys examined before the answer was known carry the same error:
		// one note says it for all of them.
		for i := range inv.Keys {
			inv.Keys[i].Errors = dropOperation(inv.Keys[i].Errors, "GetKeyLastUsage", "UnknownOperationException")
		}
	}
	return inv, nil
}

func dropOperation(errs []inventory.CallError, op, code string) []inventory.CallError {
	var out []inventory.CallError
	for _, e := range errs {
		if e.Operation != op || e.Code != code {
			out = append(out, e)
		}
	}
	return out
}

// inventoryKey asks KMS about one key. It reports whether GetKeyLastUsage
// turned out not to exist at this endpoint.
func (k *Exporter) inventoryKey(ctx context.Context, entry types.KeyListEntry, aliases map[string][]json.RawMessage, skipUsage bool) (key inventory.KeyEntry, unknownOp bool) {
	arn, id := aws.ToString(entry.KeyArn), aws.ToString(entry.KeyId)
	key.Aliases = aliases[id]
	record := func(op string, err error) {
		e := inventory.CallError{Operation: op, Code: "Error", Message: err.Error()}
		var ae smithy.APIError
		if errors.As(err, &ae) {
			e.Code, e.Message = ae.ErrorCode(), ae.ErrorMessage()
		}
		key.Errors = append(key.Errors, e)
	}
	desc, err := k.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(arn)}, patient)
	if err != nil {
		// The key is still listed, with what ListKeys said of it, so the
		// report knows it exists and that its metadata is missing.
		key.KeyMetadata = raw(map[string]any{"KeyId": id, "Arn": arn})
		record("DescribeKey", err)
		return key, false
	}
	md := desc.KeyMetadata
	key.KeyMetadata = raw(awsJSON(md))
	customerSymmetric := md.KeyManager == types.KeyManagerTypeCustomer && md.KeySpec == types.KeySpecSymmetricDefault
	// Automatic rotation exists only for customer managed symmetric keys
	// whose material KMS generated (not imported, not in a custom key
	// store); asking about the others only collects
	// UnsupportedOperationException. AWS managed keys rotate yearly by rule.
	if customerSymmetric && md.Origin == types.OriginTypeAwsKms {
		if out, err := k.client.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(arn)}, patient); err != nil {
			record("GetKeyRotationStatus", err)
		} else {
			key.Rotation = raw(awsJSON(out))
		}
	}
	// Key materials: symmetric customer keys, generated or imported (an
	// imported key's materials show their import state and expiry).
	// ALL_KEY_MATERIAL includes the first material, which no rotation made.
	if customerSymmetric && (md.Origin == types.OriginTypeAwsKms || md.Origin == types.OriginTypeExternal) {
		rotations := []json.RawMessage{}
		p := kms.NewListKeyRotationsPaginator(k.client, &kms.ListKeyRotationsInput{KeyId: aws.String(arn), IncludeKeyMaterial: types.IncludeKeyMaterialAllKeyMaterial, Limit: aws.Int32(1000)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx, patient)
			if err != nil {
				record("ListKeyRotations", err)
				rotations = nil
				break
			}
			for _, r := range out.Rotations {
				rotations = append(rotations, raw(awsJSON(&r)))
			}
		}
		key.Rotations = rotations
	}
	if !skipUsage {
		out, err := k.client.GetKeyLastUsage(ctx, &kms.GetKeyLastUsageInput{KeyId: aws.String(arn)}, patient)
		var ae smithy.APIError
		switch {
		case err != nil && errors.As(err, &ae) && ae.ErrorCode() == "UnknownOperationException":
			record("GetKeyLastUsage", err)
			return key, true
		case err != nil:
			record("GetKeyLastUsage", err)
		default:
			// The ingest reads Timestamp and Operation; TrackingStartDate
			// says since when "never used" holds.
			u := map[string]any{}
			if out.KeyLastUsage != nil {
				u = awsJSON(out.KeyLastUsage)
			}
			if out.TrackingStartDate != nil {
				u["TrackingStartDate"] = isoTime(*out.TrackingStartDate)
			}
			key.KeyLastUsage = raw(u)
		}
	}
	return key, false
}

// patient lets a call be retried more than the SDK's default 3 attempts:
// an inventory makes a few calls per key, and a throttled call late in a
// large account should not cost the key its data.
func patient(o *kms.Options) { o.Retryer = retry.AddWithMaxAttempts(o.Retryer, 8) }

func explainInventory(what string, err error) error {
	return awsapi.Explain(what, err, map[string]string{
		"AccessDeniedException": "the credentials lack permission (kms:ListKeys, kms:ListAliases, kms:DescribeKey, kms:GetKeyRotationStatus, kms:ListKeyRotations, kms:GetKeyLastUsage)",
		"ThrottlingException":   "AWS kept throttling the requests after every retry; wait and run the command again",
		"KMSInternalException":  "AWS KMS had an internal error; run the command again",
	})
}

func isoTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

var timeType = reflect.TypeOf(time.Time{})

// raw is an AWS object as JSON. awsJSON yields only strings, booleans,
// finite numbers, lists and objects, which always encode.
func raw(m map[string]any) json.RawMessage {
	b, _ := json.Marshal(m)
	return b
}

// awsJSON turns an SDK structure into the JSON object AWS sent: the Go
// field names of aws-sdk-go-v2 are AWS's member names; absent members
// (nil pointers, empty enums and lists) are left out; dates become ISO 8601
// UTC; the SDK's own fields (ResultMetadata, unexported) are dropped.
func awsJSON(v any) map[string]any {
	out, ok := awsValue(reflect.ValueOf(v))
	if m, isMap := out.(map[string]any); ok && isMap {
		return m
	}
	return map[string]any{}
}

func awsValue(v reflect.Value) (any, bool) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil, false
		}
		return awsValue(v.Elem())
	case reflect.Struct:
		if v.Type() == timeType {
			return isoTime(v.Interface().(time.Time)), true
		}
		m := map[string]any{}
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() || f.Name == "ResultMetadata" {
				continue
			}
			if x, ok := awsValue(v.Field(i)); ok {
				m[f.Name] = x
			}
		}
		return m, true
	case reflect.String:
		return v.String(), v.Len() > 0
	case reflect.Bool:
		return v.Bool(), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint(), true
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		return f, !math.IsNaN(f) && !math.IsInf(f, 0) // JSON has neither
	case reflect.Slice, reflect.Array:
		if v.Len() == 0 {
			return nil, false
		}
		list := make([]any, 0, v.Len())
		for i := 0; i < v.Len(); i++ {
			if x, ok := awsValue(v.Index(i)); ok {
				list = append(list, x)
			}
		}
		return list, true
	case reflect.Map:
		if v.Len() == 0 {
			return nil, false
		}
		m := map[string]any{}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, mk := range keys {
			if x, ok := awsValue(v.MapIndex(mk)); ok {
				m[fmt.Sprint(mk.Interface())] = x
			}
		}
		return m, true
	}
	return nil, false
}
