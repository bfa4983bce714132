package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/quorum"
)

// ceremonyInputs writes, under dir, the files the shipped templates name:
// what the root ceremony would have written (quorum record, root
// certificate, key backup) and what arrives from elsewhere (a subordinate's
// CSR, AWS import parameters).
func ceremonyInputs(t *testing.T, dir string) {
	t.Helper()
	rec, secret, _, err := quorum.Split("example-root-2026", 3, []string{"Carol Chen", "Dan Diaz", "Erin Evans", "Frank Fox", "Grace Gray"})
	if err != nil {
		t.Fatal(err)
	}
	secret.Wipe()
	record, _ := rec.Marshal()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	name := pkix.Name{CommonName: "Example Corp Root CA 2026", Organization: []string{"Example Corp"}, Country: []string{"DE"}}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2026), Subject: name, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(20, 0, 0),
		IsCA: true, BasicConstraintsValid: true, MaxPathLen: -1, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	subKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	bc, _ := asn1.Marshal(struct {
		IsCA bool `asn1:"optional"`
	}{true})
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:         pkix.Name{CommonName: "Example Corp Issuing CA 1", Organization: []string{"Example Corp"}},
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: bc}},
	}, subKey)
	if err != nil {
		t.Fatal(err)
	}
	wrapping, _ := rsa.GenerateKey(rand.Reader, 2048)
	spki, _ := x509.MarshalPKIXPublicKey(&wrapping.PublicKey)
	params := fmt.Sprintf(`{"KeyId":"arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab","ImportToken":%q,"PublicKey":%q,"ParametersValidTo":%q,"KeySpec":"SYMMETRIC_DEFAULT","WrappingAlgorithm":"RSA_AES_KEY_WRAP_SHA_256"}`,
		base64.StdEncoding.EncodeToString([]byte("import token from AWS")), base64.StdEncoding.EncodeToString(spki), time.Now().Add(23*time.Hour).UTC().Format(time.RFC3339))
	for p, data := range map[string][]byte{
		"ceremony-output/example-root-2026.quorum.json":     record,
		"ceremony-output/example-root-2026.cert.pem":        pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert}),
		"ceremony-output/example-root-2026.key-backup.json": []byte(`{"note":"written by the root ceremony"}`),
		"inputs/issuing-ca-1.csr":                           pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}),
		"inputs/import-parameters.json":                     []byte(params),
	} {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o700)
		if err := os.WriteFile(full, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"root-generation", "key-backup", "key-restore", "ca-signing", "crl", "byok-wrap"} {
		tmpl := mustRun(t, os.Environ(), binary, "ceremony", "template", k)
		if err := os.WriteFile(filepath.Join(dir, k+".yaml"), []byte(tmpl), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGUIScreensForms takes the pictures of the script forms, the review and
// the BYOK flow (docs/screenshots with make screenshots), each reached from
// the keyboard; the window title says the screen was reached.
func TestGUIScreensForms(t *testing.T) {
	env := softhsmStore(t)
	tokenSerial(t, env, "Root CA 2026", "11112222", "33334444")
	work := t.TempDir()
	ceremonyInputs(t, work)
	own := strings.Replace(mustRun(t, env, binary, "ceremony", "template", "key-backup"), "quorum:\n", "# Our own note: the backup goes to the bank's safe.\nquorum:\n", 1)
	if err := os.WriteFile(filepath.Join(work, "own-notes.yaml"), []byte(own), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("KC_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	tabs := func(x xsession, n int) {
		for i := 0; i < n; i++ {
			x.key("Tab")
		}
	}
	screens := []struct {
		name  string
		args  []string
		title string
		keys  func(x xsession)
	}{
		{"script-new", []string{"--new", "root-generation"}, "New root-generation script", func(x xsession) {
			x.typ("/media/ceremony-usb/root-2027.yaml")
			x.key("Tab", "Tab")
			x.typ("Root 2027") // not an ID: the problem shows under the field
			x.key("Tab")
			x.typ("Example Corp Root CA 2027")
		}},
		{"script-form-root-generation", []string{"--edit", filepath.Join(work, "root-generation.yaml")}, "Edit root-generation.yaml", func(x xsession) { tabs(x, 50) }},
		{"script-form-key-backup", []string{"--edit", filepath.Join(work, "key-backup.yaml")}, "Edit key-backup.yaml", func(x xsession) { tabs(x, 45) }},
		{"script-form-key-restore", []string{"--edit", filepath.Join(work, "key-restore.yaml")}, "Edit key-restore.yaml", func(x xsession) { tabs(x, 52) }},
		{"script-form-ca-signing", []string{"--edit", filepath.Join(work, "ca-signing.yaml")}, "Edit ca-signing.yaml", func(x xsession) { tabs(x, 56) }},
		{"script-form-crl", []string{"--edit", filepath.Join(work, "crl.yaml")}, "Edit crl.yaml", func(x xsession) { tabs(x, 60) }},
		{"script-form-byok-wrap", []string{"--edit", filepath.Join(work, "byok-wrap.yaml")}, "Edit byok-wrap.yaml", func(x xsession) { tabs(x, 44) }},
		{"script-review", []string{"--edit", filepath.Join(work, "ca-signing.yaml")}, "Review ca-signing.yaml", func(x xsession) { x.key("ctrl+s") }},
		{"script-read-only", []string{"--edit", filepath.Join(work, "own-notes.yaml")}, "Read-only own-notes.yaml", nil},
		{"byok-check", []string{"--page", "byok"}, "the parameters are usable", func(x xsession) {
			x.typ(filepath.Join(work, "inputs", "import-parameters.json"))
			x.key("Return")
		}},
		{"byok-form", []string{"--page", "byok"}, "New byok-wrap script", func(x xsession) {
			x.typ(filepath.Join(work, "inputs", "import-parameters.json"))
			x.key("Return")
			tabs(x, 5)
			x.key("space") // Create the byok-wrap script from these parameters…
			x.waitTitle("New byok-wrap script")
			x.typ(filepath.Join(work, "kms-key-import.yaml"))
			tabs(x, 29)
		}},
	}
	for _, sc := range screens {
		t.Run(sc.name, func(t *testing.T) {
			display := xvfb(t)
			startGUI(t, env, display, sc.args...)
			x := xsession{t, display}
			x.ready()
			if sc.keys != nil {
				sc.keys(x)
			}
			x.waitTitle(sc.title)
			stableScreenshot(t, display, filepath.Join(dir, sc.name+".png"))
		})
	}
}

// stableScreenshot takes the picture once the window has stopped changing
// (two captures alike): a keystroke's scroll or a new screen may still be
// drawing when the title has changed.
func stableScreenshot(t *testing.T, display, path string) {
	t.Helper()
	var last []byte
	for i := 0; i < 20; i++ {
		time.Sleep(400 * time.Millisecond)
		screenshot(t, display, path)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(b, last) {
			return
		}
		last = b
	}
}
