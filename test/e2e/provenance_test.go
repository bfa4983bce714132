package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyceremony/keyceremony/assets"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/test/awsfake"
)

// awsEnvFor is the environment the binary reaches a fake with: static
// credentials, no profile files or instance metadata, the fakes' test
// certificate trusted (every httptest server presents the same one).
func awsEnvFor(t *testing.T, env []string, srv *awsfake.Server) []string {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, srv.CertificatePEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	none := filepath.Join(t.TempDir(), "none")
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "AWS_") {
			out = append(out, kv)
		}
	}
	return append(out, "AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
		"AWS_CONFIG_FILE="+none, "AWS_SHARED_CREDENTIALS_FILE="+none, "AWS_EC2_METADATA_DISABLED=true", "AWS_REGION=eu-west-1", "AWS_CA_BUNDLE="+bundle)
}

// runFails runs the binary expecting it to fail, and returns what it wrote.
func runFails(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err == nil {
		t.Fatalf("%v succeeded:\n%s", args, out.String())
	}
	return out.String()
}

// ceremonyScript adapts a shipped template to the root ceremony's token
// and quorum and writes it with its answers; edits are (old, new) pairs.
func ceremonyScript(t *testing.T, root rootRun, template, name string, edits ...string) (script, answers string) {
	t.Helper()
	raw, err := assets.Ceremonies.ReadFile("ceremonies/" + template)
	if err != nil {
		t.Fatal(err)
	}
	s := regexp.MustCompile(`uri: "pkcs11:[^"]*"`).ReplaceAllString(string(raw), `uri: "pkcs11:serial=`+root.serial+`"`)
	s = regexp.MustCompile(`, sha256: "0+"`).ReplaceAllString(s, "")
	edits = append(edits, "air_gap: block", "air_gap: warn",
		"record: {path: ceremony-output/example-root-2026.quorum.json", "record: {path: "+filepath.Join(root.out, "example-root-2026.quorum.json"))
	for i := 0; i < len(edits); i += 2 {
		if !strings.Contains(s, edits[i]) {
			t.Fatalf("%s lacks %q", template, edits[i])
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
	}
	// Every input the test names is pinned by its SHA-256, as a reviewed
	// script pins it.
	s = regexp.MustCompile(`\{path: (/[^,}]+)\}`).ReplaceAllStringFunc(s, func(m string) string {
		path := regexp.MustCompile(`\{path: (/[^,}]+)\}`).FindStringSubmatch(m)[1]
		data, err := os.ReadFile(path)
		if err != nil {
			return m
		}
		return fmt.Sprintf("{path: %s, sha256: \"%x\"}", path, sha256.Sum256(data))
	})
	script = filepath.Join(root.dir, name+".yaml")
	answers = filepath.Join(root.dir, name+".answers.yaml")
	os.WriteFile(script, []byte(s), 0o600)
	os.WriteFile(answers, []byte("confirm: true\n"+root.deliver+"present:\n  - {custodian: Carol Chen}\n  - {custodian: Frank Fox}\n  - {custodian: Erin Evans}\n"), 0o600)
	return script, answers
}

// provenanceReport runs `audit report provenance` over [from, to) and
// returns its JSON model and the PDF's text.
func provenanceReport(t *testing.T, env []string, db string, from, to time.Time) (map[string]any, string) {
	t.Helper()
	dir := t.TempDir()
	pdf, js, csv := filepath.Join(dir, "p.pdf"), filepath.Join(dir, "p.json"), filepath.Join(dir, "p.csv")
	mustRun(t, env, binary, "audit", "report", "provenance", "--db", db, "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339),
		"-o", pdf, "--json", js, "--csv", csv, "--quiet")
	raw, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	text := mustRun(t, env, "pdftotext", "-layout", pdf, "-")
	// KC_KEEP_REPORTS=DIR keeps the PDFs, for the page images in docs/reports.
	if keep := os.Getenv("KC_KEEP_REPORTS"); keep != "" {
		data, _ := os.ReadFile(pdf)
		os.WriteFile(filepath.Join(keep, t.Name()+"-"+time.Now().Format("150405.000")+".pdf"), data, 0o600)
	}
	return m, text
}

// imports lists the import rows of a key's timeline: status and final hash.
func timelineImports(t *testing.T, m map[string]any, arn string) [][2]string {
	t.Helper()
	var out [][2]string
	for _, k := range m["keys"].([]any) {
		k := k.(map[string]any)
		if k["arn"] != arn {
			continue
		}
		for _, it := range k["timeline"].([]any) {
			it := it.(map[string]any)
			if it["what"] == "ImportKeyMaterial" {
				h, _ := it["final_hash"].(string)
				out = append(out, [2]string{it["status"].(string), h})
			}
		}
		return out
	}
	t.Fatalf("no section for key %s", arn)
	return nil
}

func findingIDs(m map[string]any) map[string][]string {
	out := map[string][]string{}
	for _, f := range m["findings"].([]any) {
		f := f.(map[string]any)
		var ev []string
		for _, e := range f["event_ids"].([]any) {
			ev = append(ev, e.(string))
		}
		out[f["id"].(string)] = append(out[f["id"].(string)], strings.Join(ev, " "))
	}
	return out
}

// One key's whole life through the real binary: parameters from the local
// KMS, a byok-wrap ceremony on SoftHSM, the import, the fake's CloudTrail
// records fetched with audit fetch, the ceremony directory ingested, and
// the provenance report matching the import to the ceremony; then material
// imported outside any ceremony (a direct SDK call) is reported unmatched,
// and a tampered transcript is refused.
func TestKeyProvenanceBYOK(t *testing.T) {
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Fatal("pdftotext (poppler-utils) is needed: make test installs it")
	}
	start := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	trail := awsfake.NewTrail("111122223333", "eu-west-1")
	kmsSrv := awsfake.NewKMS(t)
	kmsSrv.Trail = trail
	ct := awsfake.NewCloudTrail(t)
	root := rootCeremony(t, softhsmStore(t))
	env := awsEnvFor(t, root.env, kmsSrv.Server)

	// The connected side: an EXTERNAL key and its import parameters.
	params := filepath.Join(root.dir, "params")
	os.MkdirAll(params, 0o700)
	out := mustRun(t, env, binary, "aws", "byok", "prepare", "--endpoint-url", kmsSrv.URL, "--key-spec", "SYMMETRIC_DEFAULT",
		"--wrapping-algorithm", "RSA_AES_KEY_WRAP_SHA_256", "--wrapping-key-spec", "RSA_4096", "--description", "provenance e2e", "--out", params)
	keyARN := regexp.MustCompile(`arn:aws:kms:\S+:key/[0-9a-f-]+`).FindString(out)
	if keyARN == "" {
		t.Fatalf("prepare printed no key ARN:\n%s", out)
	}

	// The air-gapped side: the byok-wrap ceremony on the root's token.
	byokOut := filepath.Join(root.dir, "byok-out")
	script, answers := ceremonyScript(t, root, "byok-wrap.yaml", "byok",
		"  parameters: {path: inputs/import-parameters.json}", "  parameters: {path: "+filepath.Join(params, "import-parameters.json")+"}",
		"valid_for_days: 365", "valid_for_days: 300",
		"directory: byok-output", "directory: "+byokOut)
	mustRun(t, env, binary, "ceremony", "run", script, "--answers", answers, "--unattended-test")
	trs, _ := filepath.Glob(filepath.Join(byokOut, "*.transcript.jsonl"))
	if len(trs) != 1 {
		t.Fatalf("transcripts in %s: %v", byokOut, trs)
	}
	rep, err := transcript.Verify(trs[0])
	if err != nil {
		t.Fatal(err)
	}
	final, ok := rep.Final()
	if !ok {
		t.Fatal("the byok-wrap transcript is not complete")
	}

	// Back on the connected side: the import, checked against the transcript.
	out = mustRun(t, env, binary, "aws", "byok", "import", "--endpoint-url", kmsSrv.URL, byokOut)
	if !strings.Contains(out, final.Hash) {
		t.Fatalf("the import does not name the ceremony's final hash:\n%s", out)
	}

	// The audit: CloudTrail through LookupEvents, and the ceremony directory.
	trail.Feed(ct)
	db := filepath.Join(root.dir, "audit.db")
	ctEnv := awsEnvFor(t, root.env, ct.Server)
	mustRun(t, ctEnv, binary, "audit", "fetch", "--db", db, "--endpoint-url", ct.URL, "--from", start.Add(-time.Hour).Format(time.RFC3339), "--no-progress")
	out = mustRun(t, env, binary, "audit", "ingest", "--db", db, byokOut)
	if !strings.Contains(out, "CEREMONY byok-wrap") || !strings.Contains(out, final.Hash) {
		t.Fatalf("ingest of the ceremony:\n%s", out)
	}
	to := time.Now().UTC().Add(time.Hour).Truncate(time.Second)
	m, text := provenanceReport(t, env, db, start.Add(-time.Hour), to)
	if got := timelineImports(t, m, keyARN); len(got) != 1 || got[0] != [2]string{"matched", final.Hash} {
		t.Fatalf("imports of %s: %v\nfindings: %v", keyARN, got, findingIDs(m))
	}
	if f := findingIDs(m); len(f["import-without-ceremony"]) != 0 || len(f["ceremony-without-import"]) != 0 {
		t.Fatalf("findings: %v", f)
	}
	flat := strings.Join(strings.Fields(text), " ")
	for _, want := range []string{"Key provenance report", "every import (1) traced to a witnessed ceremony", final.Hash[:32], "byok-wrap ceremony"} {
		if !strings.Contains(flat, want) {
			t.Errorf("the PDF lacks %q", want)
		}
	}

	// The rotation report cites the ceremony for the imported material.
	rot := filepath.Join(t.TempDir(), "rotation.json")
	mustRun(t, env, binary, "audit", "report", "rotation", "--db", db, "--from", start.Add(-time.Hour).Format(time.RFC3339), "--to", to.Format(time.RFC3339), "--json", rot, "--quiet")
	var rr struct {
		Keys []struct {
			ARN              string `json:"arn"`
			ImportProvenance []struct {
				Status    string `json:"status"`
				FinalHash string `json:"final_hash"`
			} `json:"import_provenance"`
		} `json:"keys"`
	}
	raw, _ := os.ReadFile(rot)
	if err := json.Unmarshal(raw, &rr); err != nil {
		t.Fatal(err)
	}
	cited := false
	for _, k := range rr.Keys {
		if k.ARN == keyARN {
			cited = len(k.ImportProvenance) == 1 && k.ImportProvenance[0].Status == "matched" && k.ImportProvenance[0].FinalHash == final.Hash
		}
	}
	if !cited {
		t.Errorf("the rotation report does not cite the ceremony for %s:\n%s", keyARN, raw)
	}

	// Material imported outside any ceremony, straight through the SDK.
	direct := importDirectly(t, kmsSrv)
	trail.Feed(ct)
	mustRun(t, ctEnv, binary, "audit", "fetch", "--db", db, "--endpoint-url", ct.URL, "--from", start.Add(-time.Hour).Format(time.RFC3339), "--no-progress")
	m, text = provenanceReport(t, env, db, start.Add(-time.Hour), to)
	if got := timelineImports(t, m, direct); len(got) != 1 || got[0][0] != "unmatched" {
		t.Fatalf("imports of %s: %v", direct, got)
	}
	if got := timelineImports(t, m, keyARN); len(got) != 1 || got[0][0] != "matched" {
		t.Fatalf("the ceremony's import after the direct one: %v", got)
	}
	if f := findingIDs(m); len(f["import-without-ceremony"]) != 1 {
		t.Fatalf("findings: %v", f)
	}
	if flat := strings.Join(strings.Fields(text), " "); !strings.Contains(flat, "import-without-ceremony") || !strings.Contains(flat, "1 of 1 import(s) NOT traced") {
		t.Errorf("the PDF does not report the direct import:\n%s", text)
	}

	// A tampered copy of the transcript is refused by name, nothing loaded.
	bad := filepath.Join(root.dir, "tampered")
	os.MkdirAll(bad, 0o700)
	for _, f := range mustGlob(t, filepath.Join(byokOut, "*")) {
		data, _ := os.ReadFile(f)
		if strings.HasSuffix(f, ".transcript.jsonl") {
			data = bytes.Replace(data, []byte("Wendy Webb"), []byte("Wendy Wolf"), 1)
		}
		os.WriteFile(filepath.Join(bad, filepath.Base(f)), data, 0o600)
	}
	out = runFails(t, env, "audit", "ingest", "--db", db, bad)
	if !strings.Contains(out, "REFUSED") || !strings.Contains(out, "does not verify") || !strings.Contains(out, "1 ceremony transcript(s) refused") {
		t.Fatalf("tampered transcript:\n%s", out)
	}

	guiKeyView(t, env, db, keyARN)
}

// guiKeyView opens the real binary's Audit page on the key's provenance
// view (--audit-key) under Xvfb: the window title says the import is
// traced; the ceremony's transcript, opened from the keyboard, is verified
// again. With KC_SCREENSHOT_DIR set (make screenshots) the pictures are
// kept for docs/screenshots.
func guiKeyView(t *testing.T, env []string, db, keyARN string) {
	t.Helper()
	setPreferences(t, env, fmt.Sprintf(`{"audit.database":%q}`, db))
	dir := os.Getenv("KC_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	display := xvfb(t)
	startGUI(t, env, display, "--audit-key", keyARN)
	x := xsession{t, display}
	x.ready()
	x.waitTitle("key provenance of " + keyARN + ": every import (1) traced to a witnessed ceremony")
	time.Sleep(time.Second) // the frame after the title (a picture, not an assertion)
	screenshot(t, display, filepath.Join(dir, "audit-key-timeline.png"))
	// CreateKey's record, GetParametersForImport's, the ceremony's transcript.
	x.key("Tab", "Tab", "Tab", "Tab", "space")
	x.waitTitle("transcript of byok-wrap ceremony")
	if title := x.waitTitle("verified again"); strings.Contains(title, "REFUSED") {
		x.fail("the ceremony's transcript was refused: %s", title)
	}
	time.Sleep(time.Second)
	screenshot(t, display, filepath.Join(dir, "audit-key-transcript.png"))
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil || len(m) == 0 {
		t.Fatalf("glob %s: %v %v", pattern, m, err)
	}
	return m
}

// importDirectly creates an EXTERNAL key and imports material into it
// with the SDK, as someone bypassing the ceremony would; it returns the key.
func importDirectly(t *testing.T, srv *awsfake.KMS) string {
	t.Helper()
	ctx := context.Background()
	c := kms.NewFromConfig(srv.AWSConfig("eu-west-1"), func(o *kms.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	k, err := c.CreateKey(ctx, &kms.CreateKeyInput{Origin: types.OriginTypeExternal, KeySpec: types.KeySpecSymmetricDefault, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: k.KeyMetadata.Arn,
		WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(p.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	material := make([]byte, 32)
	rand.Read(material)
	wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub.(*rsa.PublicKey), material, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: k.KeyMetadata.Arn, ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapped,
		ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire}); err != nil {
		t.Fatal(err)
	}
	return aws.ToString(k.KeyMetadata.Arn)
}

// The same for a subordinate CA in AWS Private CA: aws pca get-csr, the
// ca-signing ceremony on the root's token, aws pca import-cert; the fake's
// CloudTrail records written as a log file and ingested with the ceremony
// directory; the installation is matched to the ceremony. A second
// installation with no ceremony behind it is reported.
func TestKeyProvenanceSubCA(t *testing.T) {
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Fatal("pdftotext (poppler-utils) is needed: make test installs it")
	}
	start := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	trail := awsfake.NewTrail("111122223333", "eu-west-1")
	pca := awsfake.NewPCA(t)
	pca.Trail = trail
	caARN := pca.AddSubordinate(t, "Example Corp Issuing CA 1")
	root := rootCeremony(t, softhsmStore(t))
	env := awsEnvFor(t, root.env, pca.Server)

	csr := filepath.Join(root.dir, "issuing-ca-1.csr")
	mustRun(t, env, binary, "aws", "pca", "get-csr", "--endpoint-url", pca.URL, "--ca-arn", caARN, "-o", csr)
	subOut := filepath.Join(root.dir, "signing-out")
	script, answers := ceremonyScript(t, root, "ca-signing.yaml", "ca-signing",
		"certificate: {path: ceremony-output/example-root-2026.cert.pem}", "certificate: {path: "+filepath.Join(root.out, "example-root-2026.cert.pem")+"}",
		"csr: {path: inputs/issuing-ca-1.csr}", "csr: {path: "+csr+"}",
		"acm_pca_arn: arn:aws:acm-pca:eu-west-1:111122223333:certificate-authority/11111111-2222-3333-4444-555555555555", "acm_pca_arn: "+caARN,
		"counter_directory: ceremony-output", "counter_directory: "+root.out,
		"directory: signing-output", "directory: "+subOut)
	mustRun(t, env, binary, "ceremony", "run", script, "--answers", answers, "--unattended-test")
	trs := mustGlob(t, filepath.Join(subOut, "*.transcript.jsonl"))
	rep, err := transcript.Verify(trs[0])
	if err != nil {
		t.Fatal(err)
	}
	final, _ := rep.Final()
	mustRun(t, env, binary, "aws", "pca", "import-cert", "--endpoint-url", pca.URL, "--ca-arn", caARN, subOut)
	if pca.Status(caARN) != "ACTIVE" {
		t.Fatalf("CA status %s", pca.Status(caARN))
	}

	// A second CA whose certificate was signed outside any ceremony (by a
	// software CA) and installed straight through the SDK.
	other := pca.AddSubordinate(t, "Rogue CA")
	installOutside(t, pca, other)

	logs := filepath.Join(root.dir, "trail")
	os.MkdirAll(logs, 0o700)
	logFile := filepath.Join(logs, "111122223333_CloudTrail_eu-west-1_"+start.Format("20060102T1504Z")+"_e2e.json")
	if err := trail.WriteLogFile(logFile); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(root.dir, "audit.db")
	out := mustRun(t, env, binary, "audit", "ingest", "--db", db, logFile, subOut)
	if !strings.Contains(out, "CEREMONY ca-signing") {
		t.Fatalf("ingest:\n%s", out)
	}
	m, text := provenanceReport(t, env, db, start.Add(-time.Hour), time.Now().UTC().Add(time.Hour).Truncate(time.Second))
	status := map[string]string{}
	for _, c := range m["certificate_authorities"].([]any) {
		c := c.(map[string]any)
		for _, it := range c["timeline"].([]any) {
			it := it.(map[string]any)
			if it["what"] == "ImportCertificateAuthorityCertificate" && it["error"] == nil {
				h, _ := it["final_hash"].(string)
				status[c["arn"].(string)] = it["status"].(string) + " " + h
			}
		}
	}
	if status[caARN] != "matched "+final.Hash || !strings.HasPrefix(status[other], "unmatched") {
		t.Fatalf("CA installations: %v\nfindings %v", status, findingIDs(m))
	}
	if f := findingIDs(m); len(f["ca-certificate-without-ceremony"]) != 1 {
		t.Fatalf("findings %v", f)
	}
	flat := strings.Join(strings.Fields(text), " ")
	for _, want := range []string{"Private CA arn:aws:acm-pca:eu-west-1:111122223333:certificate", "every CA certificate installation (1) traced", "ca-certificate-without-ceremony"} {
		if !strings.Contains(flat, want) {
			t.Errorf("the PDF lacks %q", want)
		}
	}
}

// installOutside signs a CA's CSR with a throwaway software root and
// installs the certificate with the SDK: no ceremony, no transcript.
func installOutside(t *testing.T, srv *awsfake.PCA, caARN string) {
	t.Helper()
	ctx := context.Background()
	c := acmpca.NewFromConfig(srv.AWSConfig("eu-west-1"), func(o *acmpca.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	out, err := c.GetCertificateAuthorityCsr(ctx, &acmpca.GetCertificateAuthorityCsrInput{CertificateAuthorityArn: aws.String(caARN)})
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode([]byte(aws.ToString(out.Csr)))
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Software root"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	rootCert, _ := x509.ParseCertificate(rootDER)
	subTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: csr.Subject, NotBefore: now.Add(-time.Minute), NotAfter: now.AddDate(1, 0, 0),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	subDER, err := x509.CreateCertificate(rand.Reader, subTmpl, rootCert, csr.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{CertificateAuthorityArn: aws.String(caARN),
		Certificate:      pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: subDER}),
		CertificateChain: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER})}); err != nil {
		t.Fatal(err)
	}
}
