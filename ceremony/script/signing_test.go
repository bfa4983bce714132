package script

import (
	"strings"
	"testing"
)

func TestSigningTemplates(t *testing.T) {
	s, err := Parse([]byte(template(t, "ca-signing.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	g := s.Signing
	if g.Subordinate == nil || g.CRL == nil || g.CrossCertificate != nil {
		t.Fatalf("ca-signing template sections: %+v", g)
	}
	p := g.Subordinate.Profile
	if p.Subject.CommonName != "Example Corp Issuing CA 1" || *p.MaxPathLength != 0 || p.ValidityDays != 3650 || len(p.AllowedKeys) != 3 {
		t.Errorf("profile = %+v", p)
	}
	if s.Quorum.Record == nil || s.Token.Enrol != EnrolQuorum {
		t.Errorf("quorum/enrol: %+v %s", s.Quorum, s.Token.Enrol)
	}
	c, err := Parse([]byte(template(t, "crl.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	if c.Signing.CRL.NextUpdateDays != 365 || len(c.Signing.CRL.Revoked) != 1 || CRLReasons[c.Signing.CRL.Revoked[0].Reason] != 5 {
		t.Errorf("crl = %+v", c.Signing.CRL)
	}
	if b, err := ParseSerial(c.Signing.CRL.Revoked[0].Serial); err != nil || len(b) != 8 || b[0] != 0x7a {
		t.Errorf("serial %x %v", b, err)
	}
}

func TestBYOKTemplate(t *testing.T) {
	s, err := Parse([]byte(template(t, "byok-wrap.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	b := s.BYOK
	if b.Parameters == nil || b.KeySpec != "SYMMETRIC_DEFAULT" || b.WrappingAlgorithm != "RSA_AES_KEY_WRAP_SHA_256" || b.Key.Source != KeyGenerate || !*b.KeepInToken {
		t.Errorf("byok = %+v", b)
	}
	if b.Expiration.ValidForDays != 365 || b.ImportType != "" {
		t.Errorf("expiration/import = %+v %q", b.Expiration, b.ImportType)
	}
}

// TestSigningAndBYOKProblems: the new sections report every mistake with its
// path, and the rules AWS and RFC 5280 impose are refused while the script is
// reviewed, before any ceremony.
func TestSigningAndBYOKProblems(t *testing.T) {
	tests := []struct {
		name, tmpl string
		edit       func(string) string
		want       []string
	}{
		{"no subject and no acceptance", "ca-signing.yaml",
			func(s string) string {
				i := strings.Index(s, "      subject:\n")
				j := strings.Index(s, "      # Counted from")
				return s[:i] + s[j:]
			},
			[]string{"signing.subordinate.profile.subject: required"}},
		{"subject and accepting the CSR's", "ca-signing.yaml", rep("      subject:\n", "      accept_csr_subject: true\n      subject:\n"),
			[]string{"signing.subordinate.profile.accept_csr_subject: give either a subject or accept_csr_subject: true, not both"}},
		{"validity twice", "ca-signing.yaml", rep("validity_days: 3650", "validity_days: 3650\n      not_after: 2030-01-01T00:00:00Z"),
			[]string{"signing.subordinate.profile.validity_days: give either validity_days or not_after"}},
		{"path length required", "ca-signing.yaml", rep("      max_path_length: 0\n", ""),
			[]string{"signing.subordinate.profile.max_path_length: required"}},
		{"unknown key type and bad URL and OID", "ca-signing.yaml",
			func(s string) string {
				s = rep("allowed_keys: [ec-p384, rsa-4096, rsa-3072]", "allowed_keys: [ec-p384, dsa-1024]")(s)
				s = rep("[http://crl.example.com/root-2026.crl]", "[crl.example.com/root.crl]")(s)
				return rep("policies: [2.5.29.32.0]", "policies: [any]")(s)
			},
			[]string{`allowed_keys[1]: unknown key type "dsa-1024"`, `crl_distribution_points[0]: "crl.example.com/root.crl" is not an absolute URL`, `policies[0]: "any" is not a dotted OID`}},
		{"nothing to sign", "ca-signing.yaml",
			func(s string) string {
				i := strings.Index(s, "  subordinate:\n")
				j := strings.Index(s, "output:\n")
				return s[:i] + s[j:]
			},
			[]string{"signing: name what the root signs"}},
		{"crl script with a subordinate", "crl.yaml",
			rep("  crl:\n", "  subordinate:\n    csr: {path: x.csr}\n    profile: {accept_csr_subject: true, validity_days: 10, max_path_length: 0, allowed_keys: [ec-p384]}\n  crl:\n"),
			[]string{"signing.subordinate: not used in a crl ceremony"}},
		{"crl reasons and serials", "crl.yaml",
			rep(`reason: cessation-of-operation}`, "reason: stolen}\n      - {serial: \"7a1103 5c902e4d8b\", revoked_at: 2026-12-15T10:00:00Z, reason: superseded}\n      - {serial: xyz, reason: superseded}"),
			[]string{`revoked[0].reason: unknown reason "stolen"`, "revoked[1].serial: serial listed twice", `revoked[2].serial: serial "xyz" is not hexadecimal`, "revoked[2].revoked_at: required"}},
		{"signing inputs are pinned", "ca-signing.yaml", func(s string) string { return strings.ReplaceAll(s, `, sha256: "`+strings.Repeat("0", 64)+`"`, "") },
			[]string{"quorum.record.sha256: required in a ca-signing script", "signing.issuer.certificate.sha256: required", "signing.subordinate.csr.sha256: required"}},
		{"crl inputs are pinned", "crl.yaml", func(s string) string { return strings.ReplaceAll(s, `, sha256: "`+strings.Repeat("0", 64)+`"`, "") },
			[]string{"quorum.record.sha256: required in a crl script", "signing.issuer.certificate.sha256: required"}},
		{"crl without next update", "crl.yaml", rep("next_update_days: 365", "next_update_days: 0"),
			[]string{"signing.crl.next_update_days: required"}},
		{"byok RSA material under OAEP says what to request", "byok-wrap.yaml",
			rep("key_spec: SYMMETRIC_DEFAULT\n  wrapping_algorithm: RSA_AES_KEY_WRAP_SHA_256", "key_spec: RSA_3072\n  wrapping_algorithm: RSAES_OAEP_SHA_256"),
			[]string{"byok.wrapping_algorithm: RSA_3072 material (an RSA private key) can only be wrapped with RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256"}},
		{"byok SM2PKE refused", "byok-wrap.yaml", rep("wrapping_algorithm: RSA_AES_KEY_WRAP_SHA_256", "wrapping_algorithm: SM2PKE"),
			[]string{"byok.wrapping_algorithm: wrapping algorithm SM2PKE", "request RSA_AES_KEY_WRAP_SHA_256"}},
		{"byok unknown spec", "byok-wrap.yaml", rep("key_spec: SYMMETRIC_DEFAULT", "key_spec: AES_128"),
			[]string{`byok.key_spec: key spec "AES_128" cannot receive imported material`}},
		{"byok new material only symmetric", "byok-wrap.yaml",
			func(s string) string {
				s = rep("key_spec: SYMMETRIC_DEFAULT", "key_spec: HMAC_256")(s)
				return rep(`import_type: ""`, "import_type: NEW_KEY_MATERIAL")(s)
			},
			[]string{"byok.import_type: NEW_KEY_MATERIAL (rotation by re-import, then RotateKeyOnDemand) exists only for SYMMETRIC_DEFAULT keys, not HMAC_256"}},
		{"byok validity over a year", "byok-wrap.yaml", rep("valid_for_days: 365", "valid_for_days: 400"),
			[]string{"byok.expiration.valid_for_days: must be 1 to 365"}},
		{"byok keep_in_token must be decided", "byok-wrap.yaml", rep("  keep_in_token: true\n", ""),
			[]string{"byok.keep_in_token: required"}},
		{"byok existing key names the key only", "byok-wrap.yaml", rep("source: generate\n    label: example-kms-key-2026", `source: existing
    uri: "pkcs11:token=Other;object=k"`),
			[]string{"byok.key.uri: must name only the key"}},
		{"byok both parameter forms", "byok-wrap.yaml", rep("  parameters: {path: inputs/import-parameters.json}\n", "  parameters: {path: p.json}\n  import_token: {path: t.bin}\n"),
			[]string{"byok: give either parameters"}},
		{"byok separate files need key and expiry", "byok-wrap.yaml", rep("  parameters: {path: inputs/import-parameters.json}\n", "  public_key: {path: k.bin}\n  import_token: {path: t.bin}\n"),
			[]string{"byok.key_id: required", "byok.parameters_valid_to: required"}},
		{"byok only in byok-wrap", "ca-signing.yaml", rep("output:\n", "byok:\n  key_spec: HMAC_256\noutput:\n"),
			[]string{"byok: not used in a ca-signing ceremony"}},
		{"byok needs the quorum record", "byok-wrap.yaml", rep("  record: {path: ceremony-output/example-root-2026.quorum.json}\n", "  threshold: 3\n"),
			[]string{"quorum.record: required in a byok-wrap ceremony"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := template(t, tc.tmpl)
			edited := tc.edit(base)
			if edited == base {
				t.Fatal("the edit changed nothing: fix the test")
			}
			_, err := Parse([]byte(edited))
			if err == nil {
				t.Fatal("Parse accepted the script")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}
