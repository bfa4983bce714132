package cloudtrail

import (
	"fmt"
	"unicode/utf8"
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
