package cloudtrail

import (
	"fmt"
	"strconv"
	"strings"
)

// Settling a record once its members are read (finish): which key it is
// about (resources, request parameters and response elements name it by
// ARN, key id, alias name or alias ARN, in an account and region the
// record may not state), its category and its lifecycle details.

func isKeyARN(s string) bool { return strings.HasPrefix(s, "arn:") && strings.Contains(s, ":key/") }

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
