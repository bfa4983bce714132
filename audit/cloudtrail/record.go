// Package cloudtrail turns CloudTrail log bytes into normalised KMS records.
//
// It knows the delivery formats (S3 log files {"Records":[...]}, the output of
// `aws cloudtrail lookup-events`, and one record per line as CloudTrail Lake or
// Athena exports write them) and the shapes of AWS KMS records (API calls,
// service events such as automatic RotateKey, ReEncrypt with two keys,
// CreateKey, aliases, the non-ISO dates inside request and response bodies).
// It does no I/O beyond the io.Reader it is given and knows nothing of SQLite.
package cloudtrail

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// KMSSource is the eventSource of every AWS KMS record.
const KMSSource = "kms.amazonaws.com"

// Category separates cryptographic use of keys from their management and
// from what KMS does by itself; reports treat the three differently.
type Category uint8

const (
	Management Category = 0 // control plane: CreateKey, PutKeyPolicy, DescribeKey, ...
	Data       Category = 1 // cryptographic operations: Decrypt, Encrypt, Sign, ...
	Service    Category = 2 // eventType AwsServiceEvent: RotateKey, DeleteKey, ...
)

func (c Category) String() string {
	switch c {
	case Data:
		return "data"
	case Service:
		return "service"
	}
	return "management"
}

// ParseCategory is the inverse of Category.String.
func ParseCategory(s string) (Category, bool) {
	switch s {
	case "management":
		return Management, true
	case "data":
		return Data, true
	case "service":
		return Service, true
	}
	return 0, false
}

// dataPlane lists the KMS cryptographic operations (AWS KMS developer guide,
// "Cryptographic operations").
var dataPlane = map[string]bool{
	"Decrypt": true, "DeriveSharedSecret": true, "Encrypt": true,
	"GenerateDataKey": true, "GenerateDataKeyPair": true,
	"GenerateDataKeyPairWithoutPlaintext": true, "GenerateDataKeyWithoutPlaintext": true,
	"GenerateMac": true, "GenerateRandom": true, "GetPublicKey": true,
	"ReEncrypt": true, "Sign": true, "Verify": true, "VerifyMac": true,
}

// KeySource says where a record's key ARN came from, so a report can tell
// evidence ("KMS named this key") from inference ("the alias pointed there").
type KeySource uint8

const (
	KeyNone      KeySource = 0
	KeyResources KeySource = 1 // resources[].ARN, written by CloudTrail itself
	KeyResponse  KeySource = 2 // responseElements / serviceEventDetails
	KeyRequest   KeySource = 3 // requestParameters key id or key ARN
	KeyAlias     KeySource = 4 // alias resolved through CreateAlias/UpdateAlias history
	KeyInventory KeySource = 5 // alias resolved through the key inventory
)

func (k KeySource) String() string {
	switch k {
	case KeyResources:
		return "resources"
	case KeyResponse:
		return "response"
	case KeyRequest:
		return "request"
	case KeyAlias:
		return "alias-history"
	case KeyInventory:
		return "alias-inventory"
	}
	return ""
}

// Record is one CloudTrail record, normalised.
//
// The string fields may alias Raw (no copy is made when a JSON string has no
// escapes): a caller that keeps a field beyond the life of Raw must clone it.
type Record struct {
	// Raw is the record exactly as delivered: the bytes of one element of
	// "Records", one line, or the decoded CloudTrailEvent string.
	Raw []byte

	EventID  string
	Time     int64 // eventTime, Unix seconds UTC
	Source   string
	Name     string
	Type     string // eventType: AwsApiCall, AwsServiceEvent, ...
	Category Category
	ReadOnly int8 // -1 absent, 0 false, 1 true
	Region   string
	Account  string // recipientAccountId, else userIdentity.accountId

	PrincipalARN     string
	PrincipalType    string
	PrincipalAccount string
	RoleARN          string // sessionContext.sessionIssuer.arn for assumed roles
	InvokedBy        string
	SourceIP         string
	UserAgent        string

	KeyARN    string    // the key used; for ReEncrypt the source key
	KeyARN2   string    // ReEncrypt destination key
	KeySource KeySource // where KeyARN came from
	// AliasARN is the alias the request named (keyId "alias/..."), or the
	// alias created, updated or deleted by CreateAlias/UpdateAlias/DeleteAlias.
	AliasARN string
	// AliasTarget is the key ARN an alias points to after a successful
	// CreateAlias or UpdateAlias ("" for DeleteAlias).
	AliasTarget string

	ErrorCode    string
	ErrorMessage string

	ValidTo       int64 // ImportKeyMaterial requestParameters.validTo, Unix seconds, 0 if none
	DeletionDate  int64 // ScheduleKeyDeletion responseElements.deletionDate, Unix seconds, 0 if none
	PendingDays   int64 // ScheduleKeyDeletion pendingWindowInDays
	RotationType  string
	KeyMaterialID string
	ImportType    string

	// Detail holds what a key-lifecycle event says about the key beyond
	// the columns above; set for the DetailEvents, zero otherwise.
	Detail Detail
}

// Detail is what the rotation report needs from a key-lifecycle record and
// only the record states: from CreateKey the key's spec, origin, manager,
// custom key store, description and multi-Region flag
// (responseElements.keyMetadata, else the request); from EnableKeyRotation
// its rotationPeriodInDays; from ImportKeyMaterial its importType and
// expirationModel; from RotateKey (and RotateKeyOnDemand) the key material
// made current. A field the record does not state stays empty: KMS's
// defaults are the reader's decision, never filled in here.
type Detail struct {
	KeySpec, Origin, KeyManager, CustomKeyStore, Description string
	MultiRegion                                              int8 // -1 not stated, 0 false, 1 true
	RotationPeriodDays                                       int64
	ImportType, ExpirationModel                              string
	// KeyMaterialID: serviceEventDetails.currentKeyMaterialId first (newer
	// RotateKey records carry only that), then any keyMaterialId.
	KeyMaterialID string
}

// DetailEvents are the event names whose records carry a Detail.
var DetailEvents = []string{"CreateKey", "EnableKeyRotation", "ImportKeyMaterial", "RotateKey", "RotateKeyOnDemand"}

// HasDetail reports whether r is one of the DetailEvents.
func (r *Record) HasDetail() bool {
	switch r.Name {
	case "CreateKey", "EnableKeyRotation", "ImportKeyMaterial", "RotateKey", "RotateKeyOnDemand":
		return r.IsKMS()
	}
	return false
}

// IsKMS reports whether the record is an AWS KMS event.
func (r *Record) IsKMS() bool { return r.Source == KMSSource }

// RecordError is a record that cannot be loaded; Index counts records from 1
// within the file so a person can find it.
type RecordError struct {
	Index int
	Err   error
}

func (e *RecordError) Error() string { return fmt.Sprintf("record %d: %v", e.Index, e.Err) }
func (e *RecordError) Unwrap() error { return e.Err }

var (
	ErrNoEventID = errors.New("record has no eventID")
	ErrNoTime    = errors.New("record has no eventTime")
	ErrDigest    = errors.New("this is a CloudTrail digest file, not a log file")
)

// parser holds the raw candidates seen while walking one record; key
// resolution happens once the whole record has been read because the
// fields arrive in any order.
type parser struct {
	r *Record

	timeStr   string
	resKeys   [4]string
	nResKeys  int
	resAlias  string
	partition string

	reqKeyID, reqSourceKeyID, reqDestKeyID string
	reqAliasName, reqTargetKeyID           string
	reqValidTo                             string
	respKeyMetaARN, respKeyID              string
	respDeletion                           string
	sedKeyID                               string
	uiAccount                              string
	digest                                 bool

	// Detail candidates, by where they were found.
	req, meta                          detailFields
	reqExpiration, reqPeriod           string
	reqMaterial, respMaterial          string
	sedCurrent, sedMaterial, sedOrigin string
}

type detailFields struct {
	spec, cmkSpec, origin, manager, store, description string
	multiRegion                                        int8
}

// Parse parses one record. raw must be the complete JSON object; rec is
// reset and filled (reusing rec avoids an allocation per record).
func Parse(raw []byte, rec *Record) error {
	*rec = Record{Raw: raw, ReadOnly: -1}
	if !utf8.Valid(raw) {
		return fmt.Errorf("invalid UTF-8 at byte %d", invalidUTF8At(raw))
	}
	p := parser{r: rec, req: detailFields{multiRegion: -1}, meta: detailFields{multiRegion: -1}}
	d := dec{b: raw}
	d.ws()
	if d.peek() != '{' {
		return errNotObject
	}
	if err := p.top(&d); err != nil {
		return err
	}
	d.ws()
	if d.i != len(d.b) {
		return d.errf("data after the record")
	}
	return p.finish()
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

func (p *parser) top(d *dec) error {
	r := p.r
	var kb [40]byte
	more, err := d.objBegin()
	for more && err == nil {
		var k []byte
		if k, err = d.objKey(); err != nil {
			return err
		}
		switch string(foldKey(&kb, k)) {
		case "eventid":
			r.EventID, err = d.optStr()
		case "eventtime":
			p.timeStr, err = d.optStr()
		case "eventsource":
			r.Source, err = d.optStr()
		case "eventname":
			r.Name, err = d.optStr()
		case "eventtype":
			r.Type, err = d.optStr()
		case "awsregion":
			r.Region, err = d.optStr()
		case "recipientaccountid":
			r.Account, err = d.optStr()
		case "sourceipaddress":
			r.SourceIP, err = d.optStr()
		case "useragent":
			r.UserAgent, err = d.optStr()
		case "errorcode":
			r.ErrorCode, err = d.optStr()
		case "errormessage":
			r.ErrorMessage, err = d.optStr()
		case "readonly":
			var v, known bool
			v, known, err = d.optBool()
			if known {
				r.ReadOnly = 0
				if v {
					r.ReadOnly = 1
				}
			}
		case "useridentity":
			err = p.nested(d, p.userIdentity)
		case "requestparameters":
			err = p.nested(d, p.request)
		case "responseelements":
			err = p.nested(d, p.response)
		case "serviceeventdetails":
			err = p.nested(d, p.serviceDetails)
		case "additionaleventdata":
			err = p.nested(d, p.additional)
		case "resources":
			err = p.resources(d)
		case "digeststarttime", "logfiles", "digestpublickeyfingerprint":
			p.digest = true
			err = d.skip()
		default:
			err = d.skip()
		}
		if err != nil {
			return err
		}
		more, err = d.objNext()
	}
	return err
}

// nested walks an object member with f. Athena's CloudTrail table stores
// requestParameters, responseElements and friends as JSON text, so a string
// value is decoded and walked the same way; null and other types are skipped.
func (p *parser) nested(d *dec, f func(*dec) error) error {
	d.ws()
	switch d.peek() {
	case '{':
		if err := d.enter(); err != nil {
			return err
		}
		err := f(d)
		d.depth--
		return err
	case '"':
		s, err := d.bstr()
		if err != nil {
			return err
		}
		inner := dec{b: s, depth: d.depth}
		inner.ws()
		if inner.peek() != '{' {
			return nil // a plain string where an object was expected: ignore
		}
		if err := f(&inner); err != nil {
			return fmt.Errorf("in embedded JSON text: %w", err)
		}
		return nil
	}
	return d.skip()
}

// members iterates an object, calling f for each member name (lower-cased);
// f must consume the value.
func (p *parser) members(d *dec, f func(k string) error) error {
	var kb [40]byte
	more, err := d.objBegin()
	for more && err == nil {
		var k []byte
		if k, err = d.objKey(); err != nil {
			return err
		}
		fk := foldKey(&kb, k)
		if fk == nil {
			err = d.skip()
		} else {
			err = f(string(fk))
		}
		if err != nil {
			return err
		}
		more, err = d.objNext()
	}
	return err
}

func (p *parser) userIdentity(d *dec) error {
	r := p.r
	return p.members(d, func(k string) (err error) {
		switch k {
		case "type":
			r.PrincipalType, err = d.optStr()
		case "arn":
			r.PrincipalARN, err = d.optStr()
		case "accountid":
			p.uiAccount, err = d.optStr()
		case "invokedby":
			r.InvokedBy, err = d.optStr()
		case "sessioncontext":
			err = p.nested(d, p.sessionContext)
		default:
			err = d.skip()
		}
		return err
	})
}

func (p *parser) sessionContext(d *dec) error {
	return p.members(d, func(k string) error {
		if k == "sessionissuer" {
			return p.nested(d, func(d *dec) error {
				return p.members(d, func(k string) (err error) {
					if k == "arn" {
						p.r.RoleARN, err = d.optStr()
						return err
					}
					return d.skip()
				})
			})
		}
		return d.skip()
	})
}

func (p *parser) request(d *dec) error {
	r := p.r
	return p.members(d, func(k string) (err error) {
		switch k {
		case "keyid":
			p.reqKeyID, err = d.optStr()
		case "sourcekeyid":
			p.reqSourceKeyID, err = d.optStr()
		case "destinationkeyid":
			p.reqDestKeyID, err = d.optStr()
		case "aliasname":
			p.reqAliasName, err = d.optStr()
		case "targetkeyid":
			p.reqTargetKeyID, err = d.optStr()
		case "validto":
			p.reqValidTo, err = d.optStr()
		case "pendingwindowindays":
			r.PendingDays, err = d.optInt()
		case "importtype":
			r.ImportType, err = d.optStr()
		case "keymaterialid":
			r.KeyMaterialID, err = d.optStr()
			p.reqMaterial = r.KeyMaterialID
		case "expirationmodel":
			p.reqExpiration, err = d.optStr()
		case "rotationperiodindays":
			p.reqPeriod, err = d.optScalar()
		default:
			var ok bool
			if ok, err = p.req.member(d, k); !ok && err == nil {
				err = d.skip()
			}
		}
		return err
	})
}

// member reads the key-metadata fields a CreateKey request or response may
// state; ok is false for any other member (not consumed).
func (f *detailFields) member(d *dec, k string) (ok bool, err error) {
	switch k {
	case "keyspec":
		f.spec, err = d.optStr()
	case "customermasterkeyspec":
		f.cmkSpec, err = d.optStr()
	case "origin":
		f.origin, err = d.optStr()
	case "keymanager":
		f.manager, err = d.optStr()
	case "customkeystoreid":
		f.store, err = d.optStr()
	case "description":
		f.description, err = d.optStr()
	case "multiregion":
		var v, known bool
		v, known, err = d.optBool()
		if known {
			f.multiRegion = 0
			if v {
				f.multiRegion = 1
			}
		}
	default:
		return false, nil
	}
	return true, err
}

func (p *parser) response(d *dec) error {
	r := p.r
	return p.members(d, func(k string) (err error) {
		switch k {
		case "keymetadata":
			err = p.nested(d, func(d *dec) error {
				return p.members(d, func(k string) (err error) {
					if k == "arn" {
						p.respKeyMetaARN, err = d.optStr()
						return err
					}
					if ok, err := p.meta.member(d, k); ok || err != nil {
						return err
					}
					return d.skip()
				})
			})
		case "keyid":
			p.respKeyID, err = d.optStr()
		case "deletiondate":
			p.respDeletion, err = d.optStr()
		case "keymaterialid":
			r.KeyMaterialID, err = d.optStr()
			p.respMaterial = r.KeyMaterialID
		default:
			err = d.skip()
		}
		return err
	})
}

func (p *parser) serviceDetails(d *dec) error {
	r := p.r
	return p.members(d, func(k string) (err error) {
		switch k {
		case "keyid":
			p.sedKeyID, err = d.optStr()
		case "rotationtype":
			r.RotationType, err = d.optStr()
		case "keymaterialid":
			r.KeyMaterialID, err = d.optStr()
			p.sedMaterial = r.KeyMaterialID
		case "currentkeymaterialid":
			p.sedCurrent, err = d.optStr()
		case "keyorigin":
			p.sedOrigin, err = d.optStr()
		default:
			err = d.skip()
		}
		return err
	})
}

func (p *parser) additional(d *dec) error {
	r := p.r
	return p.members(d, func(k string) (err error) {
		if k == "keymaterialid" && r.KeyMaterialID == "" {
			r.KeyMaterialID, err = d.optStr()
			return err
		}
		return d.skip()
	})
}

func (p *parser) resources(d *dec) error {
	d.ws()
	if d.peek() != '[' {
		return d.skip()
	}
	if err := d.enter(); err != nil {
		return err
	}
	defer func() { d.depth-- }()
	more, err := d.arrBegin()
	for more && err == nil {
		d.ws()
		if d.peek() == '{' {
			var arn string
			err = p.members(d, func(k string) (err error) {
				if k == "arn" {
					arn, err = d.optStr()
					return err
				}
				return d.skip()
			})
			if err != nil {
				return err
			}
			switch {
			case isKeyARN(arn):
				if p.nResKeys < len(p.resKeys) {
					p.resKeys[p.nResKeys] = arn
					p.nResKeys++
				}
			case isAliasARN(arn):
				p.resAlias = arn
			}
		} else if err = d.skip(); err != nil {
			return err
		}
		more, err = d.arrNext()
	}
	return err
}

func isKeyARN(s string) bool   { return strings.HasPrefix(s, "arn:") && strings.Contains(s, ":key/") }
func isAliasARN(s string) bool { return strings.HasPrefix(s, "arn:") && strings.Contains(s, ":alias/") }

// partitionOf returns the partition of an ARN ("aws", "aws-cn", ...).
func partitionOf(arn string) string {
	if !strings.HasPrefix(arn, "arn:") {
		return ""
	}
	rest := arn[4:]
	if i := strings.IndexByte(rest, ':'); i > 0 {
		return rest[:i]
	}
	return ""
}

func partitionForRegion(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	case strings.HasPrefix(region, "us-isob-"):
		return "aws-iso-b"
	case strings.HasPrefix(region, "us-iso-"):
		return "aws-iso"
	}
	return "aws"
}

// ref resolves a keyId-style reference (key ARN, key id, alias name, alias
// ARN) in the record's account and region.
func (p *parser) ref(s string) (keyARN, aliasARN string) {
	switch {
	case s == "":
		return "", ""
	case isKeyARN(s):
		return s, ""
	case isAliasARN(s):
		return "", s
	case strings.HasPrefix(s, "arn:"):
		return "", "" // some other ARN: not a key reference
	case strings.HasPrefix(s, "alias/"):
		return "", p.arnPrefix() + s
	}
	return p.arnPrefix() + "key/" + s, ""
}

func (p *parser) arnPrefix() string {
	part := p.partition
	if part == "" {
		part = partitionForRegion(p.r.Region)
	}
	return "arn:" + part + ":kms:" + p.r.Region + ":" + p.r.Account + ":"
}

func (p *parser) finish() error {
	r := p.r
	if r.EventID == "" {
		if p.digest {
			return ErrDigest
		}
		return ErrNoEventID
	}
	if p.timeStr == "" {
		return ErrNoTime
	}
	t, ok := ParseEventTime(p.timeStr)
	if !ok {
		return fmt.Errorf("unparsable eventTime %q", p.timeStr)
	}
	r.Time = t
	if r.Account == "" {
		r.Account = p.uiAccount
	}
	r.PrincipalAccount = p.uiAccount
	switch {
	case r.Type == "AwsServiceEvent":
		r.Category = Service
	case dataPlane[r.Name]:
		r.Category = Data
	}
	if !r.IsKMS() {
		return nil // only the envelope of other services' events is needed
	}
	if p.nResKeys > 0 {
		p.partition = partitionOf(p.resKeys[0])
	} else {
		p.partition = partitionOf(r.PrincipalARN)
	}

	// The key: CloudTrail's own resources list first, then what the
	// response and service details say, then what the caller asked for.
	switch {
	case p.nResKeys > 0:
		r.KeyARN, r.KeySource = p.resKeys[0], KeyResources
		if r.Name == "ReEncrypt" && p.nResKeys > 1 {
			r.KeyARN2 = p.resKeys[1]
		}
	case isKeyARN(p.respKeyMetaARN):
		r.KeyARN, r.KeySource = p.respKeyMetaARN, KeyResponse
	case p.sedKeyID != "":
		if k, _ := p.ref(p.sedKeyID); k != "" {
			r.KeyARN, r.KeySource = k, KeyResponse
		}
	case isKeyARN(p.respKeyID):
		r.KeyARN, r.KeySource = p.respKeyID, KeyResponse
	}
	var reqAlias string
	if r.KeyARN == "" {
		src := p.reqKeyID
		if src == "" {
			src = p.reqSourceKeyID
		}
		if src == "" {
			src = p.reqTargetKeyID
		}
		if k, a := p.ref(src); k != "" {
			r.KeyARN, r.KeySource = k, KeyRequest
		} else {
			reqAlias = a
		}
		if r.Name == "ReEncrypt" {
			// The destination always goes in the second slot, even when the
			// source is unknown (the ciphertext names it), so roles stay right.
			if k, _ := p.ref(p.reqDestKeyID); k != "" {
				r.KeyARN2 = k
				if r.KeySource == KeyNone {
					r.KeySource = KeyRequest
				}
			}
		}
	} else {
		_, reqAlias = p.ref(p.reqKeyID)
	}
	r.AliasARN = reqAlias

	switch r.Name {
	case "CreateAlias", "UpdateAlias", "DeleteAlias":
		alias := p.resAlias
		if alias == "" && p.reqAliasName != "" {
			_, alias = p.ref(p.reqAliasName)
			if alias == "" && !strings.HasPrefix(p.reqAliasName, "arn:") {
				alias = p.arnPrefix() + p.reqAliasName
			}
		}
		r.AliasARN = alias
		if r.Name != "DeleteAlias" && r.ErrorCode == "" {
			target := ""
			if p.reqTargetKeyID != "" {
				target, _ = p.ref(p.reqTargetKeyID)
			}
			if target == "" {
				target = r.KeyARN
			}
			r.AliasTarget = target
		}
	}

	if p.reqValidTo != "" {
		if t, ok := ParseBodyTime(p.reqValidTo); ok {
			r.ValidTo = t
		}
	}
	if p.respDeletion != "" {
		if t, ok := ParseBodyTime(p.respDeletion); ok {
			r.DeletionDate = t
		}
	}
	if r.HasDetail() {
		p.detail()
	}
	return nil
}

// detail settles the Detail from its candidates: what KMS answered
// (keyMetadata) before what the caller asked for.
func (p *parser) detail() {
	d := &p.r.Detail
	m, q := &p.meta, &p.req
	d.KeySpec = first(m.spec, m.cmkSpec, q.spec, q.cmkSpec)
	d.Origin = first(m.origin, q.origin, p.sedOrigin)
	d.KeyManager = m.manager
	d.CustomKeyStore = first(m.store, q.store)
	d.Description = first(m.description, q.description)
	d.MultiRegion = m.multiRegion
	if d.MultiRegion < 0 {
		d.MultiRegion = q.multiRegion
	}
	if n, err := strconv.ParseInt(strings.Trim(p.reqPeriod, `"`), 10, 64); err == nil && n > 0 {
		d.RotationPeriodDays = n
	}
	d.ImportType, d.ExpirationModel = p.r.ImportType, p.reqExpiration
	d.KeyMaterialID = first(p.sedCurrent, p.sedMaterial, p.respMaterial, p.reqMaterial)
}

func first(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// CategoryOf is the category of a KMS event by its name and eventType, as
// Parse sets it (for callers that have the fields but not the record, such
// as aggregates counted elsewhere).
func CategoryOf(name, eventType string) Category {
	switch {
	case eventType == "AwsServiceEvent":
		return Service
	case dataPlane[name]:
		return Data
	}
	return Management
}

// KeyRef resolves a keyId-style reference (key ARN, key id, alias name or
// alias ARN) of an event of the given account and region, as Parse does:
// a key id becomes a key ARN, an alias name an alias ARN.
func KeyRef(ref, region, account string) (keyARN, aliasARN string) {
	p := parser{r: &Record{Region: region, Account: account}}
	return p.ref(ref)
}
