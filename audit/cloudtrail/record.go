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
