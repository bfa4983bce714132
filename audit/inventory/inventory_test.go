package inventory

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

func day(s string) int64 {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.Unix()
}

func TestParseDocuments(t *testing.T) {
	const keyA = "arn:aws:kms:eu-central-1:210987654321:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	const keyC = "arn:aws:kms:eu-central-1:210987654321:key/3c3c3c3c-1111-2222-3333-444455556666"
	fallback := day("2024-07-01T00:00:00Z")
	tests := []struct {
		file  string
		check func(t *testing.T, d *Doc)
	}{
		{"inventory-combined.json", func(t *testing.T, d *Doc) {
			if d.Kind != "combined" || d.GeneratedAt != day("2024-06-05T00:00:00Z") || d.Account != "210987654321" {
				t.Fatalf("doc %+v", d)
			}
			k := d.Keys[0]
			if k.ARN != keyC || k.Origin != "EXTERNAL" || k.Manager != "CUSTOMER" || k.ValidTo != day("2025-01-01T20:00:00Z") ||
				k.CreatedAt != day("2024-06-01T10:00:00Z") || k.RotationEnabled == nil || *k.RotationEnabled ||
				k.LastUsedOperation != "Decrypt" || k.LastUsedAt != day("2024-06-04T08:00:00Z") || k.Region != "eu-central-1" {
				t.Fatalf("key %+v", k)
			}
			if len(d.Aliases) != 1 || d.Aliases[0].TargetARN != keyC || d.Aliases[0].Name != "alias/imported" {
				t.Fatalf("aliases %+v", d.Aliases)
			}
		}},
		{"describe-key.json", func(t *testing.T, d *Doc) {
			k := d.Keys[0]
			if d.GeneratedAt != fallback || k.ARN != keyA || k.Spec != "SYMMETRIC_DEFAULT" || k.CreatedAt != 1717200000 || k.RotationEnabled != nil {
				t.Fatalf("doc %+v key %+v", d, k)
			}
		}},
		{"rotation-status.json", func(t *testing.T, d *Doc) {
			k := d.Keys[0]
			if k.ARN != keyA || k.RotationEnabled == nil || !*k.RotationEnabled || k.RotationPeriodDays != 180 ||
				k.NextRotation != day("2024-11-30T00:00:00Z") || k.Origin != "" {
				t.Fatalf("key %+v", k)
			}
		}},
		{"list-aliases.json", func(t *testing.T, d *Doc) {
			if len(d.Aliases) != 2 || !strings.HasSuffix(d.Aliases[0].TargetARN, ":key/5d5d5d5d-0000-0000-0000-000000000005") || d.Aliases[1].TargetARN != "" {
				t.Fatalf("aliases %+v", d.Aliases)
			}
		}},
		{"list-keys.json", func(t *testing.T, d *Doc) {
			if len(d.Keys) != 2 || d.Keys[1].ARN != keyA || d.Keys[1].Account != "210987654321" {
				t.Fatalf("keys %+v", d.Keys)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open("../ingest/testdata/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			docs, err := Parse(f, fallback)
			if err != nil {
				t.Fatal(err)
			}
			if len(docs) != 1 {
				t.Fatalf("%d documents", len(docs))
			}
			tc.check(t, docs[0])
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, "no inventory document"},
		{`{"KeyRotationEnabled": true, "KeyId": "1234"}`, "cannot be attributed"},
		{`{"KeyMetadata": {"KeyId": "1234"}}`, "KeyMetadata has no Arn"},
		{`{"Inventory": {"Keys": [{"Rotation": {}}]}}`, "KeyMetadata.Arn is required"},
		{`{"Inventory": {"Keys": [{"KeyMetadata": {"Arn": "arn:aws:kms:r:1:key/k"}}, {"KeyMetadata": {"Arn": "arn:aws:kms:r:1:key/k", "ValidTo": "soon"}}]}}`, "Keys[1]: unparsable date"},
		{`{"Inventory": {"Keys": [{"KeyMetadata": {"Arn": "arn:aws:kms:r:1:key/k"}, "KeyLastUsage": {"Timestamp": []}}]}}`, "Keys[0]: unparsable date"},
		{`{"Inventory": {"Keys": [17]}}`, "a key entry must be a JSON object"},
		{`{"Keys": [{"KeyId": "1234"}]}`, "has no KeyArn"},
		{`{"KeyMetadata": {"Arn": "arn:aws:kms:r:1:key/k", "CreationDate": "someday"}}`, "unparsable date"},
		{`{"Something": 1}`, "not a KMS inventory document"},
		{`{"KeyMetadata": {"Arn": "arn:aws:kms:r:1:key/k"}} {"Aliases": [`, "inventory document 2"},
	}
	for _, tc := range tests {
		_, err := Parse(strings.NewReader(tc.in), 0)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) error %v, want %q", tc.in, err, tc.want)
		}
	}
}

// The combined format is one type for writer and reader: a Document built
// as audit/kmsinventory builds it reads back with every member the ingest
// uses, and each key keeps its entry's bytes as evidence.
func TestCombinedDocumentRoundTrip(t *testing.T) {
	const arn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	doc := Document{Inventory: Snapshot{
		GeneratedAt: TimeOf(time.Date(2025, 3, 8, 12, 0, 0, 0, time.UTC)), Account: "111122223333", Region: "eu-west-1",
		Keys: []KeyEntry{{
			KeyMetadata:  json.RawMessage(`{"Arn":"` + arn + `","KeySpec":"SYMMETRIC_DEFAULT","Origin":"AWS_KMS","KeyManager":"CUSTOMER","KeyState":"Enabled","CreationDate":"2023-01-10T00:00:00Z"}`),
			Rotation:     json.RawMessage(`{"KeyRotationEnabled":true,"RotationPeriodInDays":180,"NextRotationDate":"2025-06-01T00:00:00Z"}`),
			Rotations:    []json.RawMessage{json.RawMessage(`{"KeyMaterialId":"m1","KeyMaterialState":"CURRENT"}`)},
			Aliases:      []json.RawMessage{json.RawMessage(`{"AliasName":"alias/app","AliasArn":"arn:aws:kms:eu-west-1:111122223333:alias/app","TargetKeyId":"1234abcd-12ab-34cd-56ef-1234567890ab"}`)},
			KeyLastUsage: json.RawMessage(`{"Timestamp":"2025-03-07T09:30:00Z","Operation":"Decrypt"}`),
			Errors:       []CallError{{Operation: "ListKeyRotations", Code: "ThrottlingException", Message: "slow down"}},
		}},
		Notes: []string{"a note"},
	}}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"GeneratedAt": "2025-03-08T12:00:00Z"`) {
		t.Fatalf("GeneratedAt not ISO 8601 UTC:\n%s", data)
	}
	docs, err := Parse(strings.NewReader(string(data)), 1)
	if err != nil || len(docs) != 1 {
		t.Fatalf("Parse: %v", err)
	}
	d := docs[0]
	if d.Kind != "combined" || d.GeneratedAt != time.Date(2025, 3, 8, 12, 0, 0, 0, time.UTC).Unix() || d.Account != "111122223333" || d.Region != "eu-west-1" || len(d.Keys) != 1 {
		t.Fatalf("document %+v", d)
	}
	k := d.Keys[0]
	if k.ARN != arn || k.Spec != "SYMMETRIC_DEFAULT" || k.Manager != "CUSTOMER" || k.RotationEnabled == nil || !*k.RotationEnabled || k.RotationPeriodDays != 180 ||
		k.LastUsedOperation != "Decrypt" || k.LastUsedAt != time.Date(2025, 3, 7, 9, 30, 0, 0, time.UTC).Unix() || k.CreatedAt != time.Date(2023, 1, 10, 0, 0, 0, 0, time.UTC).Unix() {
		t.Errorf("key %+v", k)
	}
	var back KeyEntry
	if err := json.Unmarshal(k.JSON, &back); err != nil || back.ARN() != arn || len(back.Errors) != 1 || back.Errors[0].Code != "ThrottlingException" {
		t.Errorf("the key's evidence is not its entry: %s (%v)", k.JSON, err)
	}
	if len(d.Aliases) != 1 || d.Aliases[0].Name != "alias/app" || d.Aliases[0].TargetARN != arn {
		t.Errorf("aliases %+v", d.Aliases)
	}
}
