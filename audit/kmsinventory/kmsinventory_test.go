package kmsinventory_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/audit/ingest"
	"github.com/keyceremony/keyceremony/audit/inventory"
	"github.com/keyceremony/keyceremony/audit/kmsinventory"
	"github.com/keyceremony/keyceremony/audit/store"
	"github.com/keyceremony/keyceremony/test/awsfake"
)

// An account as an inventory meets it: AWS managed and customer keys,
// rotation on and off, asymmetric and HMAC keys, imported material, a key
// pending deletion, several aliases per key and an alias with no key.
type account struct {
	awsManaged, rotating, plain, signing, hmac, imported, deleting string
}

var (
	day       = func(s string) time.Time { t, _ := time.Parse("2006-01-02", s); return t }
	created   = day("2023-01-10")
	validTo   = day("2027-01-01")
	deletion  = day("2026-12-24")
	lastUsed  = day("2026-11-20").Add(8 * time.Hour)
	rotations = []time.Time{day("2024-01-10"), day("2025-01-09")}
)

func populate(srv *awsfake.KMS) account {
	a := account{
		awsManaged: srv.AddKey(awsfake.KeyOptions{Manager: "AWS", Description: "Default key that protects my EBS volumes when no other key is defined", Created: created}),
		rotating:   srv.AddKey(awsfake.KeyOptions{Description: "application data", Created: created, RotationEnabled: true, RotationPeriodDays: 365, Rotations: rotations}),
		plain:      srv.AddKey(awsfake.KeyOptions{Description: "backups", Created: created, LastUsed: lastUsed, LastOperation: "Decrypt"}),
		signing:    srv.AddKey(awsfake.KeyOptions{Spec: "RSA_3072", Created: created}),
		hmac:       srv.AddKey(awsfake.KeyOptions{Spec: "HMAC_256", Created: created}),
		imported:   srv.AddKey(awsfake.KeyOptions{Origin: "EXTERNAL", Created: created, ValidTo: validTo}),
		deleting:   srv.AddKey(awsfake.KeyOptions{State: "PendingDeletion", DeletionDate: deletion, Created: created}),
	}
	srv.AddAlias("alias/aws/ebs", a.awsManaged)
	srv.AddAlias("alias/app-data", a.rotating)
	srv.AddAlias("alias/app-data-current", a.rotating)
	srv.AddAlias("alias/signing", a.signing)
	srv.AddAlias("alias/imported", a.imported)
	srv.AddAlias("alias/aws/s3", "") // AWS made the alias, the service has not used it yet
	return a
}

func TestInventoryExportIngests(t *testing.T) {
	srv := awsfake.NewKMS(t)
	srv.PageSize = 2 // seven keys, six aliases, three key materials: every list pages
	acct := populate(srv)
	// One key's policy denies reading its rotation status: recorded, not fatal.
	srv.FailFor("GetKeyRotationStatus", acct.plain, awsfake.APIError{Status: 400, Type: "AccessDeniedException", Message: "User: arn:aws:iam::111122223333:user/auditor is not authorized to perform: kms:GetKeyRotationStatus"})
	ctx := context.Background()
	k := kmsinventory.New(srv.AWSConfig("eu-west-1"), srv.URL)
	path := filepath.Join(t.TempDir(), "inventory.json")
	var progress []kmsinventory.Progress
	sum, err := k.Export(ctx, path, kmsinventory.Options{Progress: func(p kmsinventory.Progress) { progress = append(progress, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Keys != 7 || sum.Aliases != 6 || sum.Unattached != 1 || sum.RotationStatus != 2 || sum.Rotations != 3+1+1+1 || sum.LastUsage != 7 || len(sum.Errors) != 1 ||
		!strings.Contains(sum.Errors[0], "GetKeyRotationStatus "+acct.plain+": AccessDeniedException") || sum.Account != "111122223333" || sum.Region != "eu-west-1" {
		t.Errorf("summary %+v", sum)
	}
	if len(progress) != 7 || progress[6].Done != 7 || progress[6].Keys != 7 {
		t.Errorf("progress %+v", progress)
	}
	if !strings.Contains(sum.String(), "keyceremony audit ingest "+path) {
		t.Errorf("summary text:\n%s", sum)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("inventory file: %v %v", st.Mode(), err)
	}
	if _, err := k.Export(ctx, path, kmsinventory.Options{}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("export over an existing file: %v", err)
	}

	// What was asked of KMS, and how.
	calls := map[string]int{}
	for _, r := range srv.Requests {
		calls[r.Operation]++
		if r.Header.Get("X-Amz-Target") != "TrentService."+r.Operation || !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") {
			t.Errorf("%s: target %q, authorization %q", r.Operation, r.Header.Get("X-Amz-Target"), r.Header.Get("Authorization"))
		}
		if r.Operation == "ListKeyRotations" && !strings.Contains(string(r.Body), `"IncludeKeyMaterial":"ALL_KEY_MATERIAL"`) {
			t.Errorf("ListKeyRotations without ALL_KEY_MATERIAL: %s", r.Body)
		}
	}
	// One export (the second was refused before any call): 4 pages of
	// keys, 3 of aliases. Rotation status only for the three customer
	// symmetric keys KMS generated; key materials also for the imported
	// one (the rotating key's 3 materials take 2 pages).
	want := map[string]int{"ListKeys": 4, "ListAliases": 3, "DescribeKey": 7, "GetKeyRotationStatus": 3, "ListKeyRotations": 5, "GetKeyLastUsage": 7}
	for op, n := range want {
		if calls[op] != n {
			t.Errorf("%s called %d times, want %d (all: %v)", op, calls[op], n, calls)
		}
	}

	// The file is the combined inventory format, AWS's member names.
	data, _ := os.ReadFile(path)
	var doc inventory.Document
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	inv := doc.Inventory
	if len(inv.Keys) != 7 || inv.Keys[0].ARN() != acct.awsManaged || len(inv.UnattachedAliases) != 1 || object(t, inv.UnattachedAliases[0])["AliasName"] != "alias/aws/s3" {
		t.Fatalf("document: %s", data)
	}
	byARN := map[string]inventory.KeyEntry{}
	for _, key := range inv.Keys {
		byARN[key.ARN()] = key
	}
	rot := byARN[acct.rotating]
	if len(rot.Rotations) != 3 || object(t, rot.Rotations[0])["RotationDate"] != nil || object(t, rot.Rotations[2])["KeyMaterialState"] != "CURRENT" ||
		object(t, rot.Rotations[1])["RotationType"] != "AUTOMATIC" || object(t, rot.KeyMetadata)["CreationDate"] != "2023-01-10T00:00:00Z" ||
		object(t, rot.KeyMetadata)["EncryptionAlgorithms"] == nil || len(rot.Aliases) != 2 {
		t.Errorf("rotating key: %+v", rot)
	}
	if u := object(t, byARN[acct.plain].KeyLastUsage); u["Operation"] != "Decrypt" || u["TrackingStartDate"] != "2025-06-01T00:00:00Z" || u["CloudTrailEventId"] == nil {
		t.Errorf("last usage: %v", u)
	}
	if e := byARN[acct.plain].Errors; len(e) != 1 || e[0].Operation != "GetKeyRotationStatus" || e[0].Code != "AccessDeniedException" || byARN[acct.plain].Rotation != nil {
		t.Errorf("denied rotation status: %+v", byARN[acct.plain])
	}
	if imp := byARN[acct.imported]; imp.Rotation != nil || len(imp.Rotations) != 1 || object(t, imp.Rotations[0])["ImportState"] != "IMPORTED" {
		t.Errorf("imported key: %+v", imp)
	}
	if s := byARN[acct.signing]; s.Rotation != nil || s.Rotations != nil || len(s.Errors) != 0 {
		t.Errorf("asymmetric key: %+v", s)
	}

	checkIngested(t, path, data, inv, acct)
}

// checkIngested ingests the exported file through the ingest pipeline
// and checks what the audit store then knows of every key and alias.
func checkIngested(t *testing.T, path string, data []byte, inv inventory.Snapshot, acct account) {
	t.Helper()
	ctx := context.Background()
	docs, err := inventory.Parse(strings.NewReader(string(data)), 0)
	if err != nil || len(docs) != 1 || docs[0].Kind != "combined" {
		t.Fatalf("inventory.Parse: %v", err)
	}
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	res, err := ingest.Run(ctx, st, []string{path}, ingest.Options{Workers: 1})
	if err != nil || res.FilesFailed != 0 || res.InventoryFiles != 1 || res.InventoryKeys != 7 {
		t.Fatalf("ingest: %v %+v", err, res)
	}
	keys, err := st.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]store.KeyInfo{}
	for _, ki := range keys {
		got[ki.ARN] = ki
	}
	no, yes := false, true
	tests := []struct {
		name, arn                      string
		manager, spec, origin, state   string
		rotation                       *bool
		period                         int
		next, deletion, valid, lastUse time.Time
		aliases                        int
	}{
		{"aws managed", acct.awsManaged, "AWS", "SYMMETRIC_DEFAULT", "AWS_KMS", "Enabled", nil, 0, time.Time{}, time.Time{}, time.Time{}, time.Time{}, 1},
		{"rotating", acct.rotating, "CUSTOMER", "SYMMETRIC_DEFAULT", "AWS_KMS", "Enabled", &yes, 365, rotations[1].AddDate(0, 0, 365), time.Time{}, time.Time{}, time.Time{}, 2},
		{"rotation denied", acct.plain, "CUSTOMER", "SYMMETRIC_DEFAULT", "AWS_KMS", "Enabled", nil, 0, time.Time{}, time.Time{}, time.Time{}, lastUsed, 0},
		{"asymmetric", acct.signing, "CUSTOMER", "RSA_3072", "AWS_KMS", "Enabled", nil, 0, time.Time{}, time.Time{}, time.Time{}, time.Time{}, 1},
		{"hmac", acct.hmac, "CUSTOMER", "HMAC_256", "AWS_KMS", "Enabled", nil, 0, time.Time{}, time.Time{}, time.Time{}, time.Time{}, 0},
		{"imported", acct.imported, "CUSTOMER", "SYMMETRIC_DEFAULT", "EXTERNAL", "Enabled", nil, 0, time.Time{}, time.Time{}, validTo, time.Time{}, 1},
		{"pending deletion", acct.deleting, "CUSTOMER", "SYMMETRIC_DEFAULT", "AWS_KMS", "PendingDeletion", &no, 0, time.Time{}, deletion, time.Time{}, time.Time{}, 0},
	}
	for _, tc := range tests {
		ki, ok := got[tc.arn]
		switch {
		case !ok || !ki.InInventory:
			t.Errorf("%s: not in the inventory", tc.name)
		case ki.Manager != tc.manager || ki.Spec != tc.spec || ki.Origin != tc.origin || ki.State != tc.state || !ki.CreatedAt.Equal(created):
			t.Errorf("%s: metadata %+v", tc.name, ki)
		case (ki.RotationEnabled == nil) != (tc.rotation == nil) || tc.rotation != nil && *ki.RotationEnabled != *tc.rotation || ki.RotationPeriodDays != tc.period || !ki.NextRotation.Equal(tc.next):
			t.Errorf("%s: rotation %v %d %s", tc.name, ki.RotationEnabled, ki.RotationPeriodDays, ki.NextRotation)
		case !ki.DeletionDate.Equal(tc.deletion) || !ki.ValidTo.Equal(tc.valid) || !ki.LastUsedAt.Equal(tc.lastUse):
			t.Errorf("%s: deletion %s valid-to %s last used %s", tc.name, ki.DeletionDate, ki.ValidTo, ki.LastUsedAt)
		case len(ki.Aliases) != tc.aliases:
			t.Errorf("%s: aliases %v", tc.name, ki.Aliases)
		}
	}
	aliases, err := st.Aliases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]string{}
	for _, a := range aliases {
		targets[a.Name] = a.KeyARN
		if a.Source != "inventory" || !a.Since.Equal(inv.GeneratedAt.Time()) {
			t.Errorf("alias %s: source %s since %s", a.Name, a.Source, a.Since)
		}
	}
	if targets["alias/app-data"] != acct.rotating || targets["alias/app-data-current"] != acct.rotating || targets["alias/imported"] != acct.imported || targets["alias/aws/ebs"] != acct.awsManaged {
		t.Errorf("alias targets %v", targets)
	}
	// Ingesting the same file again changes nothing.
	if res, err := ingest.Run(ctx, st, []string{path}, ingest.Options{Workers: 1}); err != nil || res.FilesDuplicate != 1 {
		t.Errorf("second ingest: %v %+v", err, res)
	}
}

// Where GetKeyLastUsage does not exist, the inventory says so once and
// has no per-key errors; a failure to list keys writes nothing.
func TestInventoryWithoutLastUsageAPI(t *testing.T) {
	srv := awsfake.NewKMS(t)
	srv.NoKeyLastUsage = true
	for range 10 {
		srv.AddKey(awsfake.KeyOptions{})
	}
	ctx := context.Background()
	k := kmsinventory.New(srv.AWSConfig("eu-west-1"), srv.URL)
	dir := t.TempDir()
	sum, err := k.Export(ctx, filepath.Join(dir, "inv.json"), kmsinventory.Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Keys != 10 || sum.LastUsage != 0 || len(sum.Errors) != 0 || len(sum.Notes) != 1 || !strings.Contains(sum.Notes[0], "GetKeyLastUsage is not offered") {
		t.Errorf("summary %+v", sum)
	}
	// Once known, the operation is not asked again for every key.
	if n := srv.Calls("GetKeyLastUsage"); n > 2 {
		t.Errorf("GetKeyLastUsage called %d times", n)
	}

	srv.FailNext("ListKeys", awsfake.APIError{Status: 400, Type: "AccessDeniedException", Message: "not authorized to perform: kms:ListKeys"})
	out := filepath.Join(dir, "denied.json")
	if _, err := k.Export(ctx, out, kmsinventory.Options{}); err == nil || !strings.Contains(err.Error(), "kms:ListKeys") {
		t.Errorf("denied ListKeys: %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed export left a file: %v", err)
	}
}

// object decodes one AWS object of the document.
func object(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return m
}
