package cloudtrail

import "encoding/json"

// PCASource is the eventSource of AWS Private CA records.
const PCASource = "acm-pca.amazonaws.com"

// IsPCAJoin reports whether the record is one of the AWS Private CA events
// the key provenance join needs: the subordinate CA's CSR handed out
// (GetCertificateAuthorityCsr) and its CA certificate installed
// (ImportCertificateAuthorityCertificate). The ingest keeps these beside
// the KMS events; every other non-KMS record is only counted.
func (r *Record) IsPCAJoin() bool {
	if r.Source != PCASource {
		return false
	}
	switch r.Name {
	case "GetCertificateAuthorityCsr", "ImportCertificateAuthorityCertificate", "CreateCertificateAuthority":
		return true
	}
	return false
}

// PCAAuthority is the CA ARN a Private CA record names: the request's
// certificateAuthorityArn, else (CreateCertificateAuthority) the
// response's.
func PCAAuthority(raw []byte) string {
	var rec struct {
		Req  map[string]any `json:"requestParameters"`
		Resp map[string]any `json:"responseElements"`
	}
	if json.Unmarshal(raw, &rec) != nil {
		return ""
	}
	for _, m := range []map[string]any{rec.Req, rec.Resp} {
		if s, ok := m["certificateAuthorityArn"].(string); ok && s != "" {
			return s
		}
	}
	return ""
}

// PCACertificateLength is what CloudTrail records of the certificate an
// ImportCertificateAuthorityCertificate call installed: not its bytes but
// the request's byte buffer as AWS's Java SDK prints it (a few leading
// bytes, "...", and its "limit", the length of the PEM sent). It returns
// that length, or 0 when the record states none. The certificate itself,
// its serial and its fingerprint are not in CloudTrail: the join can match
// only the CA, the time and this length.
func PCACertificateLength(raw []byte) int64 {
	var rec struct {
		Req struct {
			Certificate struct {
				Limit *int64 `json:"limit"`
			} `json:"certificate"`
		} `json:"requestParameters"`
	}
	if json.Unmarshal(raw, &rec) != nil || rec.Req.Certificate.Limit == nil {
		return 0
	}
	return *rec.Req.Certificate.Limit
}
