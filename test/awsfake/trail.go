package awsfake

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Trail records the calls fake servers answer as CloudTrail records in
// AWS's shape (what the AWS documentation's log examples show): the
// request's parameters in camelCase without the blobs AWS leaves out
// (import tokens, wrapped material, public keys), null response elements
// except where AWS logs some (CreateKey's keyMetadata, ImportKeyMaterial's
// keyId and keyMaterialId), dates inside bodies in AWS's "Jan 2, 2006,
// 3:04:05 PM" form, a Private CA certificate as the Java byte buffer AWS
// prints (its length, not its bytes), resources, errors. A test hands the
// records to a CloudTrail fake (Feed: LookupEvents, for audit fetch) or
// writes them as a log file (WriteLogFile, for audit ingest).
type Trail struct {
	Account, Region string
	// User is the IAM user the records name as the caller.
	User string

	mu      sync.Mutex
	records []map[string]any
	fed     int // records handed to a CloudTrail fake
}

// NewTrail records calls in account and region.
func NewTrail(account, region string) *Trail {
	return &Trail{Account: account, Region: region, User: "ceremony-admin"}
}

// awsBodyTime is how CloudTrail writes dates inside request and response
// bodies of KMS records.
const awsBodyTime = "Jan 2, 2006, 3:04:05 PM"

func newEventID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// add appends one record.
func (t *Trail) add(source, name string, at time.Time, readOnly bool, req, resp any, resources []map[string]string, apiErr *APIError, requestID string) {
	rec := map[string]any{
		"eventVersion": "1.11",
		"userIdentity": map[string]any{"type": "IAMUser", "principalId": "AIDAEXAMPLEUSER", "arn": "arn:aws:iam::" + t.Account + ":user/" + t.User,
			"accountId": t.Account, "accessKeyId": "AKIDEXAMPLE", "userName": t.User},
		"eventTime": at.UTC().Format(time.RFC3339), "eventSource": source, "eventName": name, "awsRegion": t.Region,
		"sourceIPAddress": "192.0.2.10", "userAgent": "aws-sdk-go-v2/1.30.0 keyceremony", "requestParameters": req, "responseElements": resp,
		"requestID": requestID, "eventID": newEventID(), "readOnly": readOnly, "eventType": "AwsApiCall", "managementEvent": true,
		"recipientAccountId": t.Account, "eventCategory": "Management",
	}
	if len(resources) > 0 {
		rec["resources"] = resources
	}
	if apiErr != nil {
		rec["errorCode"], rec["errorMessage"] = apiErr.Type, apiErr.Message
		rec["responseElements"] = nil
	}
	t.mu.Lock()
	t.records = append(t.records, rec)
	t.mu.Unlock()
}

// Records are the recorded records, oldest first, as JSON.
func (t *Trail) Records() []json.RawMessage {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]json.RawMessage, len(t.records))
	for i, r := range t.records {
		out[i], _ = json.Marshal(r)
	}
	return out
}

// WriteLogFile writes the records as a CloudTrail log file ({"Records":[...]}).
func (t *Trail) WriteLogFile(path string) error {
	data, err := json.Marshal(map[string]any{"Records": t.Records()})
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// Feed adds the records not fed yet to a CloudTrail fake, as LookupEvents
// answers them.
func (t *Trail) Feed(c *CloudTrail) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range t.records[t.fed:] {
		raw, _ := json.Marshal(r)
		at, _ := time.Parse(time.RFC3339, r["eventTime"].(string))
		var res []map[string]string
		if rs, ok := r["resources"].([]map[string]string); ok {
			for _, x := range rs {
				res = append(res, map[string]string{"ResourceType": x["type"], "ResourceName": x["ARN"]})
			}
		}
		c.Add(LookupEvent{EventID: r["eventID"].(string), EventName: r["eventName"].(string), EventSource: r["eventSource"].(string),
			Username: t.User, AccessKeyID: "AKIDEXAMPLE", EventTime: at, ReadOnly: fmt.Sprint(r["readOnly"]), Resources: res, CloudTrailEvent: string(raw)})
	}
	t.fed = len(t.records)
}

// camel turns an AWS JSON protocol body into CloudTrail's requestParameters:
// member names in camelCase, blobs AWS does not log left out, epoch dates
// in AWS's body form.
func camel(body []byte, drop ...string) map[string]any {
	var in map[string]any
	if json.Unmarshal(body, &in) != nil {
		return nil
	}
	out := map[string]any{}
	for k, v := range in {
		skip := false
		for _, d := range drop {
			skip = skip || d == k
		}
		if skip {
			continue
		}
		if k == "ValidTo" {
			if f, ok := v.(float64); ok {
				v = time.Unix(int64(f), 0).UTC().Format(awsBodyTime)
			}
		}
		r := []rune(k)
		r[0] = unicode.ToLower(r[0])
		out[string(r)] = v
	}
	return out
}

// kmsRecord records one KMS call the fake answered.
func (k *KMS) kmsRecord(op string, body []byte, out any, apiErr *APIError, requestID string) {
	t := k.Trail
	if t == nil || strings.HasPrefix(op, "List") || strings.HasPrefix(op, "Get") && op != "GetParametersForImport" {
		return
	}
	req := camel(body, "ImportToken", "EncryptedKeyMaterial")
	var resp any
	arn := ""
	if id, _ := req["keyId"].(string); id != "" {
		k.mu.Lock()
		if key, e := k.resolve(id); e == nil {
			arn = key.meta["Arn"].(string)
		}
		k.mu.Unlock()
	}
	m, _ := out.(map[string]any)
	switch op {
	case "CreateKey":
		if md, ok := m["KeyMetadata"].(map[string]any); ok {
			arn = md["Arn"].(string)
			meta := map[string]any{}
			for key, v := range md {
				if key == "CreationDate" {
					v = time.Now().UTC().Format(awsBodyTime)
				}
				r := []rune(key)
				r[0] = unicode.ToLower(r[0])
				meta[string(r)] = v
			}
			resp = map[string]any{"keyMetadata": meta}
		}
	case "ImportKeyMaterial":
		if m != nil {
			resp = map[string]any{"keyId": m["KeyId"], "keyMaterialId": m["KeyMaterialId"]}
		}
	}
	var res []map[string]string
	if arn != "" {
		res = []map[string]string{{"accountId": k.Account, "type": "AWS::KMS::Key", "ARN": arn}}
	}
	t.add("kms.amazonaws.com", op, k.Now(), op == "DescribeKey" || op == "GetParametersForImport", req, resp, res, apiErr, requestID)
}

// javaBuffer is how CloudTrail prints a Private CA certificate or chain:
// the request's byte buffer, a few bytes of it and its length.
func javaBuffer(b64 string) map[string]any {
	data, _ := base64.StdEncoding.DecodeString(b64)
	head := []any{}
	for i := 0; i < len(data) && i < 2; i++ {
		head = append(head, int(data[i]))
	}
	head = append(head, "...", 10)
	return map[string]any{"hb": head, "offset": 0, "isReadOnly": false, "bigEndian": true, "nativeByteOrder": false, "mark": -1,
		"position": len(data), "limit": len(data), "capacity": len(data), "address": 0}
}

// pcaRecord records one Private CA call the fake answered.
func (p *PCA) pcaRecord(op string, body []byte, apiErr *APIError, requestID string, at time.Time) {
	t := p.Trail
	if t == nil || op == "DescribeCertificateAuthority" {
		return
	}
	var in map[string]any
	json.Unmarshal(body, &in)
	req := map[string]any{}
	if a, ok := in["CertificateAuthorityArn"].(string); ok {
		req["certificateAuthorityArn"] = a
	}
	for _, f := range []string{"Certificate", "CertificateChain"} {
		if s, ok := in[f].(string); ok {
			r := []rune(f)
			r[0] = unicode.ToLower(r[0])
			req[string(r)] = javaBuffer(s)
		}
	}
	t.add("acm-pca.amazonaws.com", op, at, op == "GetCertificateAuthorityCsr", req, nil, nil, apiErr, requestID)
}
