package awsfake

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// CloudTrail is a local CloudTrail LookupEvents endpoint holding a list of
// events, answering newest first in pages of at most 50 with opaque,
// checked NextTokens, AWS's validation errors, and ThrottlingException
// when asked (ThrottleEvery, FailNext). The same server answers STS
// GetCallerIdentity (query protocol, XML), which is how a fetch learns the
// account, so one endpoint override serves both.
type CloudTrail struct {
	*Server
	Account, Region string
	// ThrottleEvery > 0 makes every n-th LookupEvents call fail with
	// ThrottlingException (400, "Rate exceeded"), as AWS does above
	// 2 requests per second.
	ThrottleEvery int

	mu     sync.Mutex
	events []LookupEvent // newest first
	sorted bool
}

// LookupEvent is one event as LookupEvents returns it.
type LookupEvent struct {
	EventID, EventName, EventSource, Username, AccessKeyID string
	EventTime                                              time.Time
	ReadOnly                                               string
	Resources                                              []map[string]string
	CloudTrailEvent                                        string
}

// NewCloudTrail starts a CloudTrail (and STS) server for the test.
func NewCloudTrail(t testing.TB) *CloudTrail {
	c := &CloudTrail{Account: "111122223333", Region: "eu-west-1"}
	srv := newServer(t, nil)
	js := srv.jsonService("CloudTrail_20131101", map[string]func([]byte) (any, *APIError){
		"LookupEvents": c.lookupEvents,
	})
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			srv.queryService(w, r, map[string]func(url.Values) (string, *APIError){"GetCallerIdentity": c.getCallerIdentity})
			return
		}
		if c.ThrottleEvery > 0 && r.Header.Get("X-Amz-Target") == "CloudTrail_20131101.LookupEvents" &&
			(srv.Calls("LookupEvents")+1)%c.ThrottleEvery == 0 {
			srv.FailNext("LookupEvents", APIError{400, "ThrottlingException", "Rate exceeded"})
		}
		js(w, r)
	})
	c.Server = srv
	return c
}

// Add stores events.
func (c *CloudTrail) Add(evs ...LookupEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, evs...)
	c.sorted = false
}

// AddKMSEvents generates n KMS data events (Decrypt, Encrypt,
// GenerateDataKey by an assumed role on a few keys), spread evenly from
// from to to, several per second, and returns their eventIDs.
func (c *CloudTrail) AddKMSEvents(n int, from, to time.Time) []string {
	names := []string{"Decrypt", "Encrypt", "GenerateDataKey", "Decrypt", "Decrypt"}
	ids := make([]string, n)
	evs := make([]LookupEvent, n)
	step := to.Sub(from) / time.Duration(max(n, 1))
	for i := range n {
		// Three events share each second, so pages split seconds.
		t := from.Add(step * time.Duration(i/3*3)).UTC().Truncate(time.Second)
		sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%s/%d/%d", c.Account, c.Region, from.UnixNano(), i)))
		h := hex.EncodeToString(sum[:])
		id := h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-8" + h[17:20] + "-" + h[20:32]
		ids[i] = id
		key := fmt.Sprintf("arn:aws:kms:%s:%s:key/%08d-aaaa-bbbb-cccc-%012d", c.Region, c.Account, i%4, i%4)
		name := names[i%len(names)]
		rec := map[string]any{
			"eventVersion": "1.09",
			"userIdentity": map[string]any{
				"type": "AssumedRole", "principalId": "AROAEXAMPLEROLEID:app", "arn": "arn:aws:sts::" + c.Account + ":assumed-role/app/i-0abc",
				"accountId": c.Account, "accessKeyId": "ASIAEXAMPLE" + strconv.Itoa(i%7),
				"sessionContext": map[string]any{"sessionIssuer": map[string]any{"type": "Role", "principalId": "AROAEXAMPLEROLEID",
					"arn": "arn:aws:iam::" + c.Account + ":role/app", "accountId": c.Account, "userName": "app"},
					"attributes": map[string]any{"creationDate": t.Add(-time.Hour).Format(time.RFC3339), "mfaAuthenticated": "false"}},
			},
			"eventTime": t.Format(time.RFC3339), "eventSource": "kms.amazonaws.com", "eventName": name,
			"awsRegion": c.Region, "sourceIPAddress": "10.0.0." + strconv.Itoa(i%250+1), "userAgent": "aws-sdk-go-v2/1.30.0",
			"requestParameters": map[string]any{"encryptionAlgorithm": "SYMMETRIC_DEFAULT", "keyId": key},
			"responseElements":  nil, "requestID": h[32:64], "eventID": id, "readOnly": true,
			"resources": []map[string]string{{"accountId": c.Account, "type": "AWS::KMS::Key", "ARN": key}},
			"eventType": "AwsApiCall", "managementEvent": true, "recipientAccountId": c.Account, "eventCategory": "Management",
		}
		raw, _ := json.Marshal(rec)
		evs[i] = LookupEvent{EventID: id, EventName: name, EventSource: "kms.amazonaws.com", Username: "app", AccessKeyID: "ASIAEXAMPLE",
			EventTime: t, ReadOnly: "true", Resources: []map[string]string{{"ResourceType": "AWS::KMS::Key", "ResourceName": key}}, CloudTrailEvent: string(raw)}
	}
	c.Add(evs...)
	return ids
}

var lookupKeys = map[string]bool{"EventId": true, "EventName": true, "ReadOnly": true, "Username": true, "ResourceType": true,
	"ResourceName": true, "EventSource": true, "AccessKeyId": true}

func fromEpoch(f *float64) time.Time {
	if f == nil {
		return time.Time{}
	}
	sec, frac := math.Modf(*f)
	return time.Unix(int64(sec), int64(frac*1e9))
}

// lookupEvents implements CloudTrail LookupEvents (management events).
func (c *CloudTrail) lookupEvents(body []byte) (any, *APIError) {
	var in struct {
		LookupAttributes []struct{ AttributeKey, AttributeValue string }
		StartTime        *float64
		EndTime          *float64
		EventCategory    string
		MaxResults       *int
		NextToken        string
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &APIError{400, "SerializationException", err.Error()}
	}
	if len(in.LookupAttributes) > 1 {
		return nil, &APIError{400, "InvalidLookupAttributesException", "You cannot specify more than one lookup attribute"}
	}
	for _, a := range in.LookupAttributes {
		if !lookupKeys[a.AttributeKey] || a.AttributeValue == "" {
			return nil, &APIError{400, "InvalidLookupAttributesException", "Invalid lookup attribute " + a.AttributeKey}
		}
	}
	limit := 50
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 50 {
			return nil, &APIError{400, "InvalidMaxResultsException", "MaxResults must be between 1 and 50"}
		}
		limit = *in.MaxResults
	}
	start, end := fromEpoch(in.StartTime), fromEpoch(in.EndTime)
	if !start.IsZero() && !end.IsZero() && start.After(end) {
		return nil, &APIError{400, "InvalidTimeRangeException", "Start time must be before end time"}
	}
	// The token is bound to the query, as AWS's are.
	q, _ := json.Marshal([]any{in.LookupAttributes, in.StartTime, in.EndTime, limit})
	qsum := sha256.Sum256(q)
	offset := 0
	if in.NextToken != "" {
		tag, n, ok := strings.Cut(in.NextToken, ".")
		o, err := strconv.Atoi(n)
		if !ok || err != nil || tag != hex.EncodeToString(qsum[:8]) || o <= 0 {
			return nil, &APIError{400, "InvalidNextTokenException", "Invalid NextToken"}
		}
		offset = o
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.sorted {
		sort.SliceStable(c.events, func(i, j int) bool { return c.events[i].EventTime.After(c.events[j].EventTime) })
		c.sorted = true
	}
	var match []LookupEvent
	for _, e := range c.events {
		if (!start.IsZero() && e.EventTime.Before(start)) || (!end.IsZero() && e.EventTime.After(end)) {
			continue
		}
		if len(in.LookupAttributes) == 1 && !matches(e, in.LookupAttributes[0].AttributeKey, in.LookupAttributes[0].AttributeValue) {
			continue
		}
		match = append(match, e)
	}
	out := map[string]any{}
	page := []map[string]any{}
	for i := offset; i < len(match) && i < offset+limit; i++ {
		e := match[i]
		res := []map[string]string{}
		for _, r := range e.Resources {
			res = append(res, r)
		}
		page = append(page, map[string]any{"EventId": e.EventID, "EventName": e.EventName, "ReadOnly": e.ReadOnly,
			"AccessKeyId": e.AccessKeyID, "EventTime": epoch(e.EventTime), "EventSource": e.EventSource, "Username": e.Username,
			"Resources": res, "CloudTrailEvent": e.CloudTrailEvent})
	}
	out["Events"] = page
	if offset+limit < len(match) {
		out["NextToken"] = hex.EncodeToString(qsum[:8]) + "." + strconv.Itoa(offset+limit)
	}
	return out, nil
}

func matches(e LookupEvent, key, value string) bool {
	switch key {
	case "EventId":
		return e.EventID == value
	case "EventName":
		return e.EventName == value
	case "EventSource":
		return e.EventSource == value
	case "ReadOnly":
		return e.ReadOnly == value
	case "Username":
		return e.Username == value
	case "AccessKeyId":
		return e.AccessKeyID == value
	}
	for _, r := range e.Resources {
		if (key == "ResourceType" && r["ResourceType"] == value) || (key == "ResourceName" && r["ResourceName"] == value) {
			return true
		}
	}
	return false
}

func (c *CloudTrail) getCallerIdentity(url.Values) (string, *APIError) {
	return "<Arn>arn:aws:iam::" + c.Account + ":user/auditor</Arn><UserId>AIDAEXAMPLEAUDITOR</UserId><Account>" + c.Account + "</Account>", nil
}

// queryService handles the AWS query protocol (STS): a form-encoded POST
// with Action and Version, answered in XML.
func (s *Server) queryService(w http.ResponseWriter, r *http.Request, ops map[string]func(url.Values) (string, *APIError)) {
	body, _ := io.ReadAll(r.Body)
	form, err := url.ParseQuery(string(body))
	op := form.Get("Action")
	s.mu.Lock()
	s.Requests = append(s.Requests, Request{Operation: op, Header: r.Header.Clone(), Body: body})
	s.calls[op]++
	s.mu.Unlock()
	writeErr := func(e APIError) {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(e.Status)
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>req-%s</RequestId></ErrorResponse>`, e.Type, e.Message, op)
	}
	if r.Method != http.MethodPost || err != nil || form.Get("Version") == "" {
		writeErr(APIError{400, "MalformedQueryString", "bad query request"})
		return
	}
	if e := checkSigned(r); e != nil {
		writeErr(*e)
		return
	}
	h, ok := ops[op]
	if !ok {
		writeErr(APIError{400, "InvalidAction", op + " is not implemented by the test server"})
		return
	}
	result, e := h(form)
	if e != nil {
		writeErr(*e)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<%[1]sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><%[1]sResult>%[2]s</%[1]sResult><ResponseMetadata><RequestId>req-%[1]s</RequestId></ResponseMetadata></%[1]sResponse>`, op, result)
}
