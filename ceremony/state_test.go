package ceremony

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/ceremony/kmsimport"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
)

// stateOf is, for a step that records resume state, an empty value of its
// state type and the decoder of the prose details an earlier version wrote.
func stateOf(step string) (any, func(transcript.Entry) error) {
	switch step {
	case "token":
		v := &tokenState{}
		return v, v.fromDetails
	case "enrol-token":
		v := &enrolState{}
		return v, v.fromDetails
	case "generate-key":
		v := &generatedKey{}
		return v, v.fromDetails
	case "restore-key", "issuer-key", "byok-key":
		v := &keyRef{}
		return v, v.fromDetails
	case "lint-certificate", "lint-subordinate", "lint-cross-certificate":
		v := &certLint{}
		return v, v.fromDetails
	case "lint-crl":
		v := &crlLint{}
		return v, v.fromDetails
	case "sign-certificate", "sign-subordinate", "sign-cross-certificate", "sign-crl":
		v, noun := &signedState{}, "certificate"
		if step == "sign-crl" {
			noun = "crl"
		}
		return v, func(en transcript.Entry) error { return v.fromDetails(en, noun) }
	case "wrap-plan":
		v := &wrapPlan{}
		return v, v.fromDetails
	}
	return nil, nil
}

// checkStateMatchesDetails decodes the typed resume state of every entry of
// a transcript the current version wrote, and the prose details of the same
// entry with the decoder for earlier versions: both must say the same, so a
// transcript resumes alike whichever it carries. (The wrapping plan is no
// longer written as prose JSON; the inputs steps carry state only in
// byok-wrap.)
func checkStateMatchesDetails(t *testing.T, rep *transcript.Report) {
	t.Helper()
	checked := 0
	for _, en := range rep.Entries {
		typed, _ := stateOf(en.Step)
		if typed == nil || !en.OK() {
			continue
		}
		if _, ok := stateDetail(en); !ok {
			t.Errorf("entry %d (%s) records no resume state", en.Seq, en.Step)
			continue
		}
		if err := loadState(en, typed, nil); err != nil {
			t.Error(err)
			continue
		}
		checked++
		if en.Step == "wrap-plan" {
			continue
		}
		prose, legacy := stateOf(en.Step)
		if err := legacy(en); err != nil {
			t.Errorf("entry %d (%s): prose details: %v", en.Seq, en.Step, err)
			continue
		}
		// The token's whole identity is state earlier versions never wrote
		// as prose: it is compared with the prose serial only.
		switch v := typed.(type) {
		case *tokenState:
			v.Identity = nil
		case *enrolState:
			v.Identity = nil
		}
		if !reflect.DeepEqual(typed, prose) {
			a, _ := json.Marshal(typed)
			b, _ := json.Marshal(prose)
			t.Errorf("entry %d (%s): typed state %s, prose details say %s", en.Seq, en.Step, a, b)
		}
	}
	if checked == 0 {
		t.Error("no entry carries resume state")
	}
}

// TestResumeStateIsStrict: a state with a field its type lacks, without a
// field its type has (also inside a nested value), or with a malformed
// value is refused with the entry and step named; so is an earlier
// version's entry whose prose detail is missing.
func TestResumeStateIsStrict(t *testing.T) {
	entry := func(state string) transcript.Entry {
		return transcript.Entry{Seq: 12, Step: "generate-key", Result: transcript.ResultOK,
			Details: []transcript.Detail{{Key: "key label", Value: "root"}, {Key: stateKey, Value: state}}}
	}
	good := `{"key":{"label":"root","id":"0a0b"},"public_key_sha256":"ff00"}`
	var st generatedKey
	if err := loadState(entry(good), &st, st.fromDetails); err != nil {
		t.Fatal(err)
	}
	if st.Key.Label != "root" || hex.EncodeToString(st.Key.ID) != "0a0b" || hex.EncodeToString(st.PublicKeySHA256) != "ff00" {
		t.Errorf("decoded %+v", st)
	}
	for name, c := range map[string]struct{ state, want string }{
		"unknown field":        {`{"key":{"label":"root","id":"0a0b"},"public_key_sha256":"ff00","extra":1}`, `unknown field "extra"`},
		"missing field":        {`{"key":{"label":"root","id":"0a0b"}}`, `field "public_key_sha256" is missing`},
		"missing nested field": {`{"key":{"label":"root"},"public_key_sha256":"ff00"}`, `field "key.id" is missing`},
		"unknown nested field": {`{"key":{"label":"root","id":"0a0b","class":"x"},"public_key_sha256":"ff00"}`, `unknown field "class"`},
		"not hexadecimal":      {`{"key":{"label":"root","id":"zz"},"public_key_sha256":"ff00"}`, "not hexadecimal"},
		"not an object":        {`"root"`, "not a JSON object"},
		"nested not an object": {`{"key":"root","public_key_sha256":"ff00"}`, `field "key" is not a JSON object`},
	} {
		var st generatedKey
		err := loadState(entry(c.state), &st, st.fromDetails)
		if err == nil || !strings.Contains(err.Error(), "entry 12 (step generate-key)") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", name, err)
		}
	}

	// An earlier version's entry: prose details, each one required.
	old := transcript.Entry{Seq: 9, Step: "lint-crl", Result: transcript.ResultOK, Details: []transcript.Detail{
		{Key: "crl number", Value: "4"}, {Key: "this update", Value: "2026-12-01T10:00:00Z"},
		{Key: "next update", Value: "2027-12-01T10:00:00Z"}, {Key: "tbs sha256", Value: "abcd"}}}
	var crl crlLint
	if err := loadState(old, &crl, crl.fromDetails); err != nil || crl.Number.Int64() != 4 || crl.TBSSHA256 != "abcd" {
		t.Fatalf("legacy CRL lint: %+v %v", crl, err)
	}
	for i := range old.Details {
		cut := old
		cut.Details = append(append([]transcript.Detail{}, old.Details[:i]...), old.Details[i+1:]...)
		var c crlLint
		if err := loadState(cut, &c, c.fromDetails); err == nil || !strings.Contains(err.Error(), "entry 9 (step lint-crl), written by an earlier version") {
			t.Errorf("without %q: %v", old.Details[i].Key, err)
		}
	}
	var k keyRef
	noID := transcript.Entry{Seq: 3, Step: "issuer-key", Details: []transcript.Detail{{Key: "key label", Value: "root"}, {Key: "key id", Value: ""}}}
	if err := k.restore(noID); err == nil || !strings.Contains(err.Error(), "issuer-key") {
		t.Errorf("a key without ID was restored: %v", err)
	}
}

// TestLegacyStateDecodes reads the resume state of every step of the
// transcripts the earlier version wrote (testdata/legacy) with the decoders
// for prose details, and checks it against the outputs those ceremonies
// wrote: the key, the serials and to-be-signed hashes, the CRL's number and
// dates, the wrapping plan, the fingerprints.
func TestLegacyStateDecodes(t *testing.T) {
	dir := filepath.Join(legacyDir, "completed")
	entries := map[string]map[string]any{}
	for _, name := range []string{"root", "signing", "byok"} {
		rep, err := transcript.Verify(filepath.Join(legacyDir, legacyTranscripts[name]))
		if err != nil {
			t.Fatal(err)
		}
		entries[name] = map[string]any{}
		for _, en := range rep.Entries {
			v, legacy := stateOf(en.Step)
			if v == nil || !en.OK() {
				continue
			}
			if _, typed := stateDetail(en); typed {
				t.Fatalf("%s entry %d carries typed state: not an earlier version's transcript", name, en.Seq)
			}
			if err := loadState(en, v, legacy); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			entries[name][en.Step] = v
		}
	}
	readCertFile := func(rel string) (*x509.Certificate, []byte) {
		c := readCert(t, filepath.Join(dir, rel))
		return c, c.Raw
	}
	tbsOf := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

	// Root: the key generated is the certificate's, and the certificate is
	// the one linted.
	root, rootDER := readCertFile("ceremony-output/example-root-2026.cert.pem")
	gen := entries["root"]["generate-key"].(*generatedKey)
	if gen.Key.Label != "example-root-2026" || len(gen.Key.ID) != 16 || tbsOf(root.RawSubjectPublicKeyInfo) != hex.EncodeToString(gen.PublicKeySHA256) {
		t.Errorf("generate-key: %+v", gen)
	}
	lint := entries["root"]["lint-certificate"].(*certLint)
	if !strings.EqualFold(hex.EncodeToString(lint.Serial), root.SerialNumber.Text(16)) || lint.TBSSHA256 != tbsOf(root.RawTBSCertificate) || !lint.IssuedAt.IsZero() {
		t.Errorf("lint-certificate: %+v", lint)
	}
	if got := entries["root"]["sign-certificate"].(*signedState); hex.EncodeToString(got.SHA256) != tbsOf(rootDER) {
		t.Errorf("sign-certificate fingerprint %x", got.SHA256)
	}
	if ts := entries["root"]["token"].(*tokenState); ts.Serial == "" {
		t.Error("token: no serial")
	}
	if es := entries["root"]["enrol-token"].(*enrolState); *es != (enrolState{}) {
		t.Errorf("enrol-token (change-pin) restored %+v", es)
	}

	// Signing: the root key found is the one generated; subordinate and CRL
	// are the ones linted, with the serial, time, number and dates recorded.
	if k := entries["signing"]["issuer-key"].(*keyRef); !reflect.DeepEqual(*k, gen.Key) {
		t.Errorf("issuer-key %+v, generated %+v", k, gen.Key)
	}
	sub, subDER := readCertFile("signing-output/example-issuing-ca-1-2026.subordinate.pem")
	sl := entries["signing"]["lint-subordinate"].(*certLint)
	if !strings.EqualFold(hex.EncodeToString(sl.Serial), sub.SerialNumber.Text(16)) || sl.TBSSHA256 != tbsOf(sub.RawTBSCertificate) || !sl.IssuedAt.Equal(sub.NotBefore) {
		t.Errorf("lint-subordinate %+v; certificate serial %x, not before %s", sl, sub.SerialNumber, sub.NotBefore)
	}
	if got := entries["signing"]["sign-subordinate"].(*signedState); hex.EncodeToString(got.SHA256) != tbsOf(subDER) {
		t.Errorf("sign-subordinate fingerprint %x", got.SHA256)
	}
	crl := readCRL(t, filepath.Join(dir, "signing-output/example-issuing-ca-1-2026.crl.der"))
	cl := entries["signing"]["lint-crl"].(*crlLint)
	if cl.Number.Cmp(crl.Number) != 0 || !cl.ThisUpdate.Equal(crl.ThisUpdate) || !cl.NextUpdate.Equal(crl.NextUpdate) || cl.TBSSHA256 != tbsOf(crl.RawTBSRevocationList) {
		t.Errorf("lint-crl %+v; CRL %s %s %s", cl, crl.Number, crl.ThisUpdate, crl.NextUpdate)
	}
	if got := entries["signing"]["sign-crl"].(*signedState); hex.EncodeToString(got.SHA256) != tbsOf(crl.Raw) {
		t.Errorf("sign-crl fingerprint %x", got.SHA256)
	}

	// BYOK: the key is the script's, and the plan is what the wrap ran.
	raw, err := os.ReadFile(filepath.Join(dir, "byok-output", kmsimport.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var m kmsimport.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if k := entries["byok"]["byok-key"].(*keyRef); k.Label != "example-kms-key-2026" || len(k.ID) != 16 {
		t.Errorf("byok-key %+v", k)
	}
	if p := entries["byok"]["wrap-plan"].(*wrapPlan); len(p.Plan) == 0 || !reflect.DeepEqual(p.Plan, m.WrapSteps) {
		t.Errorf("wrap-plan %+v, the wrap ran %+v", p.Plan, m.WrapSteps)
	}
	var in byokInputs
	rep, _ := transcript.Verify(filepath.Join(legacyDir, legacyTranscripts["byok"]))
	if err := loadState(entryByStep(t, rep, "inputs"), &in, in.fromDetails); err != nil || in.MaterialValidTo == nil ||
		m.Import.ValidTo.IsZero() || !in.MaterialValidTo.Equal(m.Import.ValidTo) {
		t.Errorf("byok inputs: %+v, manifest valid to %s: %v", in, m.Import.ValidTo, err)
	}
}
