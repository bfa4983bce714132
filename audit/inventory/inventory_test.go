package inventory

import (
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
