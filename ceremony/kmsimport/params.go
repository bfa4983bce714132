package kmsimport

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
)

// Parameters are what GetParametersForImport returned: they belong together
// and expire together (24 hours after issue).
type Parameters struct {
	KeyID             string
	ImportToken       []byte
	PublicKeyDER      []byte // SubjectPublicKeyInfo
	PublicKey         *rsa.PublicKey
	ParametersValidTo time.Time
}

// WrappingKeySpec is derived from the public key's size.
func (p *Parameters) WrappingKeySpec() WrappingKeySpec {
	switch p.PublicKey.N.BitLen() {
	case 2048:
		return WrappingRSA2048
	case 3072:
		return WrappingRSA3072
	case 4096:
		return WrappingRSA4096
	}
	return WrappingKeySpec(fmt.Sprintf("RSA_%d", p.PublicKey.N.BitLen()))
}

// ParseParametersJSON reads the JSON that `aws kms get-parameters-for-import`
// prints (or the API response): KeyId, ImportToken and PublicKey in base64,
// ParametersValidTo as an ISO 8601 string or epoch seconds.
func ParseParametersJSON(data []byte) (*Parameters, error) {
	var raw struct {
		KeyID             string          `json:"KeyId"`
		ImportToken       string          `json:"ImportToken"`
		PublicKey         string          `json:"PublicKey"`
		ParametersValidTo json.RawMessage `json:"ParametersValidTo"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("import parameters: not the JSON of get-parameters-for-import: %w", err)
	}
	var missing []string
	for name, v := range map[string]string{"KeyId": raw.KeyID, "ImportToken": raw.ImportToken, "PublicKey": raw.PublicKey} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(raw.ParametersValidTo) == 0 {
		missing = append(missing, "ParametersValidTo")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("import parameters: missing %s", strings.Join(sortedCopy(missing), ", "))
	}
	token, err := base64.StdEncoding.DecodeString(raw.ImportToken)
	if err != nil {
		return nil, fmt.Errorf("import parameters: ImportToken is not base64: %w", err)
	}
	p := &Parameters{KeyID: raw.KeyID, ImportToken: token}
	if err := p.setPublicKey([]byte(raw.PublicKey)); err != nil {
		return nil, err
	}
	if p.ParametersValidTo, err = parseAWSTime(raw.ParametersValidTo); err != nil {
		return nil, fmt.Errorf("import parameters: ParametersValidTo: %w", err)
	}
	return p, nil
}

// ParseParametersFiles builds Parameters from separate files as saved from
// the console or CLI: the public key as DER, PEM or base64, and the import
// token as binary or base64.
func ParseParametersFiles(keyID string, publicKey, importToken []byte, validTo time.Time) (*Parameters, error) {
	p := &Parameters{KeyID: keyID, ParametersValidTo: validTo}
	if err := p.setPublicKey(publicKey); err != nil {
		return nil, err
	}
	p.ImportToken = decodeMaybeBase64(importToken)
	if len(p.ImportToken) == 0 {
		return nil, fmt.Errorf("import token file is empty")
	}
	return p, nil
}

func (p *Parameters) setPublicKey(data []byte) error {
	der := data
	if block, _ := pem.Decode(data); block != nil {
		der = block.Bytes
	} else {
		der = decodeMaybeBase64(data)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return fmt.Errorf("wrapping public key: not a DER/PEM/base64 SubjectPublicKeyInfo: %w", err)
	}
	rk, ok := pub.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("the wrapping public key is %s; AWS KMS issues RSA wrapping keys (RSA_2048, RSA_3072, RSA_4096; SM2 in China Regions, not supported here): "+
			"these are not AWS KMS import parameters, or the public key file is another one", hsm.DescribePublicKey(pub))
	}
	p.PublicKeyDER, p.PublicKey = der, rk
	return nil
}

// decodeMaybeBase64 returns the base64 decoding of data when data is entirely
// base64 text, else data itself (binary DER and import tokens are never
// pure base64 text in practice).
func decodeMaybeBase64(data []byte) []byte {
	text := strings.Join(strings.Fields(string(data)), "")
	if text == "" {
		return nil
	}
	for _, c := range text {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
			return data
		}
	}
	if b, err := base64.StdEncoding.DecodeString(text); err == nil {
		return b
	}
	return data
}

func parseAWSTime(raw json.RawMessage) (time.Time, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05Z07:00"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC(), nil
			}
		}
		return time.Time{}, fmt.Errorf("unrecognised time %q", s)
	}
	if t, ok := parseEpoch(string(raw)); ok {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("unrecognised time %s", raw)
}

// parseEpoch reads the AWS CLI's epoch seconds (1795611722.144) exactly, as
// decimal digits: through a float64 the fraction would gain nanosecond
// noise (.144 becoming .143999815), which the manifest would then carry.
func parseEpoch(s string) (time.Time, bool) {
	whole, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || len(frac) > 9 || strings.Trim(frac, "0123456789") != "" {
		return time.Time{}, false
	}
	nsec := int64(0)
	if frac != "" {
		n, err := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		nsec = n
	}
	return time.Unix(sec, nsec).UTC(), true
}

// CheckFresh refuses parameters that have expired or expire before the
// ceremony can finish (margin), saying what to do.
func (p *Parameters) CheckFresh(now time.Time, margin time.Duration) error {
	if !now.Before(p.ParametersValidTo) {
		return fmt.Errorf("the import parameters for %s expired at %s (they last 24 hours): run get-parameters-for-import again on the connected machine and bring the new files", p.KeyID, p.ParametersValidTo.Format(time.RFC3339))
	}
	if now.Add(margin).After(p.ParametersValidTo) {
		return fmt.Errorf("the import parameters for %s expire at %s, less than %s from now: fetch fresh ones so the import can still happen after the ceremony", p.KeyID, p.ParametersValidTo.Format(time.RFC3339), margin)
	}
	return nil
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
