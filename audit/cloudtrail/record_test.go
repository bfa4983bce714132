package cloudtrail

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

const (
	keyA = "arn:aws:kms:eu-central-1:210987654321:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	keyB = "arn:aws:kms:eu-central-1:210987654321:key/9a8b7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4"
	keyC = "arn:aws:kms:eu-central-1:210987654321:key/3c3c3c3c-1111-2222-3333-444455556666"
	alP  = "arn:aws:kms:eu-central-1:210987654321:alias/payments"
)

// fixtureRecords reads testdata/kms-shapes.json with the Reader and returns
// each raw record keyed by eventID.
func fixtureRecords(t *testing.T) map[string][]byte {
	t.Helper()
	f, err := os.Open("testdata/kms-shapes.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd := NewReader(f)
	out := map[string][]byte{}
	for {
		raw, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var rec Record
		if err := Parse(raw, &rec); err != nil {
			t.Fatalf("fixture record: %v", err)
		}
		out[rec.EventID] = bytes.Clone(raw)
	}
	if rd.Format() != FormatLogFile {
		t.Fatalf("format %v, want log file", rd.Format())
	}
	return out
}

func ts(s string) int64 {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.Unix()
}

func TestParseShapes(t *testing.T) {
	raws := fixtureRecords(t)
	if len(raws) != 14 {
		t.Fatalf("%d fixture records, want 14", len(raws))
	}
	tests := []struct {
		id    string
		check func(t *testing.T, r *Record)
	}{
		{"5c1e7d2a-0001-4b8e-9e6f-1a2b3c4d5e01", func(t *testing.T, r *Record) { // Decrypt without keyId
			want(t, "key", r.KeyARN, keyA)
			want(t, "source", r.KeySource, KeyResources)
			want(t, "category", r.Category, Data)
			want(t, "readOnly", r.ReadOnly, int8(1))
			want(t, "time", r.Time, ts("2024-06-03T09:15:02Z"))
			want(t, "principal", r.PrincipalARN, "arn:aws:iam::210987654321:user/dana")
			want(t, "material", r.KeyMaterialID, "aa11bb22cc33dd44ee55ff6600112233445566778899aabbccddeeff00112233")
		}},
		{"5c1e7d2a-0002-4b8e-9e6f-1a2b3c4d5e02", func(t *testing.T, r *Record) { // ReEncrypt: source then destination
			want(t, "key", r.KeyARN, keyA)
			want(t, "key2", r.KeyARN2, keyB)
			want(t, "role", r.RoleARN, "arn:aws:iam::210987654321:role/Rewrapper")
			want(t, "ptype", r.PrincipalType, "AssumedRole")
		}},
		{"5c1e7d2a-0003-4b8e-9e6f-1a2b3c4d5e03", func(t *testing.T, r *Record) { // CreateKey: ARN only in the response
			want(t, "key", r.KeyARN, keyC)
			want(t, "source", r.KeySource, KeyResponse)
			want(t, "category", r.Category, Management)
			want(t, "detail", r.Detail, Detail{KeySpec: "SYMMETRIC_DEFAULT", Origin: "EXTERNAL", KeyManager: "CUSTOMER",
				Description: "imported key", MultiRegion: -1})
		}},
		{"5c1e7d2a-0004-4b8e-9e6f-1a2b3c4d5e04", func(t *testing.T, r *Record) { // automatic rotation
			want(t, "category", r.Category, Service)
			want(t, "invokedBy", r.InvokedBy, "AWS Internal")
			want(t, "ptype", r.PrincipalType, "")
			want(t, "paccount", r.PrincipalAccount, "210987654321")
			want(t, "rotation", r.RotationType, "AUTOMATIC")
			want(t, "key", r.KeyARN, keyA)
		}},
		{"5c1e7d2a-0005-4b8e-9e6f-1a2b3c4d5e05", func(t *testing.T, r *Record) { // old service event: no resources
			want(t, "category", r.Category, Service)
			want(t, "key", r.KeyARN, keyC)
			want(t, "source", r.KeySource, KeyResponse)
		}},
		{"5c1e7d2a-0006-4b8e-9e6f-1a2b3c4d5e06", func(t *testing.T, r *Record) { // ImportKeyMaterial validTo
			want(t, "validTo", r.ValidTo, ts("2025-01-01T20:00:00Z"))
			want(t, "key", r.KeyARN, keyC)
			want(t, "import", r.ImportType, "NEW_KEY_MATERIAL")
			want(t, "material", r.KeyMaterialID, "ffee000011112222333344445555666677778888999900001111222233334444")
			want(t, "detail", r.Detail, Detail{ImportType: "NEW_KEY_MATERIAL", ExpirationModel: "KEY_MATERIAL_EXPIRES", MultiRegion: -1,
				KeyMaterialID: "ffee000011112222333344445555666677778888999900001111222233334444"})
		}},
		{"5c1e7d2a-0007-4b8e-9e6f-1a2b3c4d5e07", func(t *testing.T, r *Record) { // 24h clock with a stray PM
			want(t, "no detail", r.Detail, Detail{})
			want(t, "deletion", r.DeletionDate, ts("2024-06-23T18:58:30Z"))
			want(t, "pending", r.PendingDays, int64(20))
			want(t, "key", r.KeyARN, keyB)
		}},
		{"5c1e7d2a-0008-4b8e-9e6f-1a2b3c4d5e08", func(t *testing.T, r *Record) { // CreateAlias
			want(t, "alias", r.AliasARN, alP)
			want(t, "target", r.AliasTarget, keyA)
		}},
		{"5c1e7d2a-0009-4b8e-9e6f-1a2b3c4d5e09", func(t *testing.T, r *Record) { // UpdateAlias
			want(t, "alias", r.AliasARN, alP)
			want(t, "target", r.AliasTarget, keyB)
		}},
		{"5c1e7d2a-0010-4b8e-9e6f-1a2b3c4d5e10", func(t *testing.T, r *Record) { // denied: only the alias is known
			want(t, "key", r.KeyARN, "")
			want(t, "alias", r.AliasARN, alP)
			want(t, "error", r.ErrorCode, "AccessDenied")
			want(t, "target", r.AliasTarget, "")
		}},
		{"5c1e7d2a-0011-4b8e-9e6f-1a2b3c4d5e11", func(t *testing.T, r *Record) { // alias given as ARN
			want(t, "alias", r.AliasARN, alP)
			want(t, "key", r.KeyARN, "")
		}},
		{"5c1e7d2a-0012-4b8e-9e6f-1a2b3c4d5e12", func(t *testing.T, r *Record) { // bare key id, no resources
			want(t, "key", r.KeyARN, "arn:aws:kms:eu-central-1:210987654321:key/7e7e7e7e-aaaa-bbbb-cccc-dddddddddddd")
			want(t, "source", r.KeySource, KeyRequest)
		}},
		{"5c1e7d2a-0013-4b8e-9e6f-1a2b3c4d5e13", func(t *testing.T, r *Record) { // alias in request, key in resources
			want(t, "key", r.KeyARN, keyB)
			want(t, "alias", r.AliasARN, alP)
			want(t, "ptype", r.PrincipalType, "AWSService")
			want(t, "invokedBy", r.InvokedBy, "s3.amazonaws.com")
		}},
		{"5c1e7d2a-0014-4b8e-9e6f-1a2b3c4d5e14", func(t *testing.T, r *Record) { // another service
			want(t, "kms", r.IsKMS(), false)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.id[24:], func(t *testing.T) {
			var r Record
			if err := Parse(raws[tc.id], &r); err != nil {
				t.Fatal(err)
			}
			want(t, "eventID", r.EventID, tc.id)
			tc.check(t, &r)
		})
	}
}

func want[T comparable](t *testing.T, what string, got, exp T) {
	t.Helper()
	if got != exp {
		t.Errorf("%s = %v, want %v", what, got, exp)
	}
}

// The facts the rotation report reads from lifecycle records (stored by
// the ingest in event_details): newer RotateKey records name the material
// made current only as currentKeyMaterialId, EnableKeyRotation's period may
// be a number or (Athena) a string inside a body given as JSON text, and a
// response's keyMetadata wins over the request.
func TestParseDetails(t *testing.T) {
	for _, c := range []struct {
		name, rec string
		want      Detail
	}{
		{"RotateKey current material", `{"eventID":"r1","eventTime":"2025-03-01T00:00:00Z","eventSource":"kms.amazonaws.com",
			"eventName":"RotateKey","eventType":"AwsServiceEvent","serviceEventDetails":{"keyId":"k","rotationType":"ON_DEMAND",
			"currentKeyMaterialId":"cur","keyOrigin":"AWS_KMS"}}`,
			Detail{Origin: "AWS_KMS", KeyMaterialID: "cur", MultiRegion: -1}},
		{"EnableKeyRotation number", `{"eventID":"r2","eventTime":"2025-03-01T00:00:00Z","eventSource":"kms.amazonaws.com",
			"eventName":"EnableKeyRotation","requestParameters":{"keyId":"k","rotationPeriodInDays":180}}`,
			Detail{RotationPeriodDays: 180, MultiRegion: -1}},
		{"EnableKeyRotation Athena text", `{"eventid":"r3","eventtime":"2025-03-01T00:00:00Z","eventsource":"kms.amazonaws.com",
			"eventname":"EnableKeyRotation","requestparameters":"{\"keyId\":\"k\",\"rotationPeriodInDays\":\"90\"}"}`,
			Detail{RotationPeriodDays: 90, MultiRegion: -1}},
		{"CreateKey response wins", `{"eventID":"r4","eventTime":"2025-03-01T00:00:00Z","eventSource":"kms.amazonaws.com",
			"eventName":"CreateKey","requestParameters":{"customerMasterKeySpec":"RSA_2048","customKeyStoreId":"cks-1","multiRegion":true},
			"responseElements":{"keyMetadata":{"arn":"arn:aws:kms:eu-west-1:1:key/x","keySpec":"RSA_3072","keyManager":"CUSTOMER","origin":"AWS_CLOUDHSM","multiRegion":false}}}`,
			Detail{KeySpec: "RSA_3072", Origin: "AWS_CLOUDHSM", KeyManager: "CUSTOMER", CustomKeyStore: "cks-1", MultiRegion: 0}},
		{"Decrypt has none", `{"eventID":"r5","eventTime":"2025-03-01T00:00:00Z","eventSource":"kms.amazonaws.com",
			"eventName":"GenerateDataKey","requestParameters":{"keyId":"k","keySpec":"AES_256"}}`,
			Detail{}},
	} {
		var r Record
		if err := Parse([]byte(c.rec), &r); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if r.Detail != c.want {
			t.Errorf("%s: detail %+v, want %+v", c.name, r.Detail, c.want)
		}
	}
}

func TestParseAthenaStyle(t *testing.T) {
	// Lower-cased names, bodies as JSON text, a space in the time.
	raw := []byte(`{"eventversion":"1.08","useridentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/u","accountid":"210987654321"},` +
		`"eventtime":"2024-06-03 18:58:30.000","eventsource":"kms.amazonaws.com","eventname":"ScheduleKeyDeletion",` +
		`"awsregion":"eu-central-1","requestparameters":"{\"pendingWindowInDays\": 7, \"keyId\": \"abc\"}",` +
		`"responseelements":"{\"deletionDate\": \"Jun 10, 2024 6:58:30 PM\"}","eventid":"x-1","readonly":"false",` +
		`"recipientaccountid":"210987654321"}`)
	var r Record
	if err := Parse(raw, &r); err != nil {
		t.Fatal(err)
	}
	want(t, "time", r.Time, ts("2024-06-03T18:58:30Z"))
	want(t, "key", r.KeyARN, "arn:aws:kms:eu-central-1:210987654321:key/abc")
	want(t, "deletion", r.DeletionDate, ts("2024-06-10T18:58:30Z"))
	want(t, "pending", r.PendingDays, int64(7))
	want(t, "readOnly", r.ReadOnly, int8(0))
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, raw, want string
	}{
		{"no eventID", `{"eventTime":"2024-01-01T00:00:00Z","eventSource":"kms.amazonaws.com"}`, "no eventID"},
		{"null eventID", `{"eventID":null,"eventTime":"2024-01-01T00:00:00Z"}`, "no eventID"},
		{"no time", `{"eventID":"a"}`, "no eventTime"},
		{"bad time", `{"eventID":"a","eventTime":"yesterday"}`, `unparsable eventTime "yesterday"`},
		{"epoch seconds", `{"eventID":"a","eventTime":1740830400}`, `eventTime is 1740830400, a number (as epoch time: 2025-03-01T12:00:00Z), not an ISO 8601 time string`},
		{"epoch milliseconds", `{"eventID":"a","eventTime":1740830400000}`, `eventTime is 1740830400000, a number (as epoch time: 2025-03-01T12:00:00Z)`},
		{"object time", `{"eventID":"a","eventTime":{"$date":"2025-03-01"}}`, `eventTime is {"$date":"2025-03-01"}, a JSON object, not an ISO 8601`},
		{"impossible date", `{"eventID":"a","eventTime":"2024-02-30T00:00:00Z"}`, "unparsable eventTime"},
		{"invalid UTF-8", "{\"eventID\":\"a\",\"eventTime\":\"2024-01-01T00:00:00Z\",\"userAgent\":\"b\xff\"}", "invalid UTF-8 at byte 64"},
		{"truncated", `{"eventID":"a","eventTime":"2024-01-01T00:00:00Z","userIdentity":{"arn":`, "unexpected end of input"},
		{"not an object", `["a"]`, "not a JSON object"},
		{"trailing data", `{"eventID":"a","eventTime":"2024-01-01T00:00:00Z"} x`, "data after the record"},
		{"bad escape", `{"eventID":"a\q","eventTime":"2024-01-01T00:00:00Z"}`, `bad escape \q`},
		{"control char", "{\"eventID\":\"a\x01\"}", "control character"},
		{"digest file", `{"awsAccountId":"1","digestStartTime":"2024-01-01T00:00:00Z","logFiles":[]}`, "digest file"},
		{"too deep", `{"eventID":"a","x":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`, "nesting deeper"},
		{"bad number", `{"eventID":"a","n":01}`, "want ',' or '}'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Record
			err := Parse([]byte(tc.raw), &r)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseBodyTime(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"Jan 1, 2021 8:00:00 PM", "2021-01-01T20:00:00Z"},
		{"Apr 12, 2021 18:58:30 PM", "2021-04-12T18:58:30Z"},
		{"Apr 12, 2021 05:58:30 AM", "2021-04-12T05:58:30Z"},
		{"Apr 12, 2021 12:05:00 AM", "2021-04-12T00:05:00Z"},
		{"Apr 12, 2021 12:05:00 PM", "2021-04-12T12:05:00Z"},
		{"Aug 10, 2022, 10:38:27 PM", "2022-08-10T22:38:27Z"},
		{"2024-04-05T15:14:47.757000+00:00", "2024-04-05T15:14:47Z"},
		{"2024-04-05T17:14:47+02:00", "2024-04-05T15:14:47Z"},
		{"1499988169.234", "2017-07-13T23:22:49Z"},
		{"1499988169234", "2017-07-13T23:22:49Z"},
	}
	for _, tc := range tests {
		got, ok := ParseBodyTime(tc.in)
		if !ok || got != ts(tc.want) {
			t.Errorf("ParseBodyTime(%q) = %v, %v; want %s", tc.in, time.Unix(got, 0).UTC(), ok, tc.want)
		}
	}
	for _, bad := range []string{"", "soon", "Foo 1, 2021"} {
		if _, ok := ParseBodyTime(bad); ok {
			t.Errorf("ParseBodyTime(%q) succeeded", bad)
		}
	}
}

// readAll runs the Reader over input and returns the raw records.
func readAll(t *testing.T, input []byte) ([][]byte, Format, error) {
	t.Helper()
	rd := NewReader(bytes.NewReader(input))
	var out [][]byte
	for {
		raw, err := rd.Next()
		if err == io.EOF {
			return out, rd.Format(), nil
		}
		if err != nil {
			return out, rd.Format(), err
		}
		out = append(out, bytes.Clone(raw))
	}
}

func TestReaderLogFileIsByteExact(t *testing.T) {
	input, err := os.ReadFile("testdata/kms-shapes.json")
	if err != nil {
		t.Fatal(err)
	}
	raws, f, err := readAll(t, input)
	if err != nil || f != FormatLogFile || len(raws) != 14 {
		t.Fatalf("got %d records, %v, %v", len(raws), f, err)
	}
	// Every record is a verbatim slice of the file, and re-marshalling the
	// Records array with encoding/json gives the same elements.
	var doc struct{ Records []json.RawMessage }
	if err := json.Unmarshal(input, &doc); err != nil {
		t.Fatal(err)
	}
	for i, raw := range raws {
		if !bytes.Equal(raw, doc.Records[i]) {
			t.Errorf("record %d differs from the file's bytes", i+1)
		}
	}
}

func TestReaderLookupEvents(t *testing.T) {
	input, err := os.ReadFile("testdata/lookup-events.json")
	if err != nil {
		t.Fatal(err)
	}
	raws, f, err := readAll(t, input)
	if err != nil || f != FormatLookupEvents || len(raws) != 4 {
		t.Fatalf("got %d records, %v, %v", len(raws), f, err)
	}
	var doc struct {
		Events []struct{ CloudTrailEvent string }
	}
	json.Unmarshal(input, &doc)
	for i, raw := range raws {
		if string(raw) != doc.Events[i].CloudTrailEvent {
			t.Errorf("record %d is not the CloudTrailEvent string", i+1)
		}
	}
	var r Record
	if err := Parse(raws[0], &r); err != nil || r.KeyARN != keyA {
		t.Fatalf("parse lookup record: %v, key %q", err, r.KeyARN)
	}
}

func TestReaderLines(t *testing.T) {
	input, err := os.ReadFile("testdata/lake.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	raws, f, err := readAll(t, input)
	if err != nil || f != FormatLines || len(raws) != 4 {
		t.Fatalf("got %d records, %v, %v", len(raws), f, err)
	}
	lines := bytes.Split(bytes.TrimSpace(input), []byte("\n"))
	for i := range raws {
		if !bytes.Equal(raws[i], lines[i]) {
			t.Errorf("line %d not returned verbatim", i+1)
		}
	}
}

func TestReaderInventoryAndErrors(t *testing.T) {
	inv := []byte(`  {"KeyMetadata": {"Arn": "arn:aws:kms:eu-central-1:1:key/k"}}`)
	rd := NewReader(bytes.NewReader(inv))
	if _, err := rd.Next(); !errors.Is(err, ErrInventory) {
		t.Fatalf("inventory: %v", err)
	}
	rest, _ := io.ReadAll(rd.Unread())
	if !bytes.Equal(bytes.TrimSpace(rest), bytes.TrimSpace(inv)) {
		t.Fatalf("Unread lost bytes: %q", rest)
	}

	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "file is empty"},
		{"whitespace", " \n ", "only whitespace"},
		{"truncated in record", `{"Records":[{"eventID":"a","eventTime":"2024-01`, "unexpected end of input in record (file truncated?)"},
		{"truncated after record", `{"Records":[{"eventID":"a"}`, "file truncated?"},
		{"not JSON", "PK\x03\x04garbage", "expected a JSON object"},
		{"missing comma", `{"Records":[{"a":1} {"b":2}]}`, "want ',' or ']' between records"},
		{"empty CloudTrailEvent", `{"Events":[{"EventId":"e","CloudTrailEvent":""}]}`, "CloudTrailEvent is an empty string"},
		{"inventory after records", `{"eventID":"a","eventTime":"2024-01-01T00:00:00Z"}` + "\n" + `{"Keys":[]}`, "inventory document follows"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := readAll(t, []byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestReaderTooLarge(t *testing.T) {
	big := `{"Records":[{"eventID":"a","pad":"` + strings.Repeat("x", 3<<20) + `"}]}`
	rd := NewReader(strings.NewReader(big))
	rd.MaxValueSize = 1 << 20
	_, err := rd.Next()
	if err == nil || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Fatalf("error %v", err)
	}
}

func TestReaderStreamsBigFile(t *testing.T) {
	// Many records through a reader that returns a few bytes at a time:
	// record boundaries across buffer refills must not matter.
	var b strings.Builder
	b.WriteString(`{"Records":[`)
	for i := 0; i < 5000; i++ {
		if i > 0 {
			b.WriteString(",\n")
		}
		b.WriteString(`{"eventID":"e` + strings.Repeat("\\\"", i%3) + `","eventTime":"2024-01-01T00:00:00Z","s":"a\\\\"}`)
	}
	b.WriteString(`]}`)
	rd := NewReader(io.MultiReader(&chunky{r: strings.NewReader(b.String())}))
	n := 0
	for {
		raw, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var r Record
		if err := Parse(raw, &r); err != nil {
			t.Fatalf("record %d: %v (%s)", n+1, err, raw)
		}
		n++
	}
	if n != 5000 {
		t.Fatalf("%d records", n)
	}
}

type chunky struct{ r io.Reader }

func (c *chunky) Read(p []byte) (int, error) {
	if len(p) > 7 {
		p = p[:7]
	}
	return c.r.Read(p)
}

// RecordOffset places each record of a log file or of JSON lines in the
// input stream (the ingest keeps a gzip file whole and points into it),
// across buffer refills, and is -1 for a lookup-events record, which is
// decoded from a string and so is not in the input as such.
func TestReaderRecordOffset(t *testing.T) {
	// A log file larger than the Reader's buffer, so offsets must survive
	// compaction and growth.
	var big bytes.Buffer
	big.WriteString(`{"Records":[`)
	for i := 0; i < 4000; i++ {
		if i > 0 {
			big.WriteString(",\n ")
		}
		fmt.Fprintf(&big, `{"eventID":"e%d","eventTime":"2025-03-01T00:00:00Z","eventSource":"kms.amazonaws.com","eventName":"Decrypt","pad":"%s"}`, i, strings.Repeat("x", i%300))
	}
	big.WriteString("]}")
	for _, name := range []string{"kms-shapes.json", "lake.jsonl", "lookup-events.json", "big"} {
		input, err := os.ReadFile("testdata/" + name)
		if name == "big" {
			input, err = big.Bytes(), nil
		}
		if err != nil {
			t.Fatal(err)
		}
		rd := NewReader(iotestOneByte{bytes.NewReader(input)}) // forces a refill at every byte
		n := 0
		for {
			raw, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			n++
			off := rd.RecordOffset()
			if rd.Format() == FormatLookupEvents {
				if off != -1 {
					t.Fatalf("%s record %d: offset %d for a decoded record", name, n, off)
				}
				continue
			}
			if off < 0 || !bytes.Equal(input[off:off+int64(len(raw))], raw) {
				t.Fatalf("%s record %d: offset %d does not point at the record", name, n, off)
			}
		}
		if n == 0 {
			t.Fatalf("%s: no records", name)
		}
	}
}

type iotestOneByte struct{ r io.Reader }

func (o iotestOneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}
