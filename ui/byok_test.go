package ui

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/ceremony"
	"github.com/keyceremony/keyceremony/ceremony/kmsimport"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/hsm/softhsm/softhsmtest"
)

func paramsJSON(t *testing.T, bits int, validTo time.Time, extra string) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return []byte(fmt.Sprintf(`{"KeyId":"arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab","ImportToken":%q,"PublicKey":%q,"ParametersValidTo":%q%s}`,
		base64.StdEncoding.EncodeToString([]byte("token")), base64.StdEncoding.EncodeToString(spki), validTo.Format(time.RFC3339), extra))
}

func TestCheckParameters(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name    string
		data    []byte
		spec    kmsimport.KeySpec
		alg     kmsimport.Algorithm
		problem string // "" means usable
	}{
		{"usable", paramsJSON(t, 2048, now.Add(20*time.Hour), ""), kmsimport.SymmetricDefault, kmsimport.RSAAESKeyWrapSHA256, ""},
		{"expired", paramsJSON(t, 2048, now.Add(-time.Hour), ""), kmsimport.SymmetricDefault, kmsimport.RSAAESKeyWrapSHA256, "expired"},
		{"RSA material under OAEP", paramsJSON(t, 2048, now.Add(20*time.Hour), ""), kmsimport.RSA2048, kmsimport.RSAESOAEPSHA256, "RSA_AES_KEY_WRAP"},
		{"P-521 under OAEP with RSA-2048", paramsJSON(t, 2048, now.Add(20*time.Hour), ""), kmsimport.ECCNISTP521, kmsimport.RSAESOAEPSHA1, "too large"},
		{"bundle for another algorithm", paramsJSON(t, 2048, now.Add(20*time.Hour), `,"KeySpec":"SYMMETRIC_DEFAULT","WrappingAlgorithm":"RSAES_OAEP_SHA_1"`), kmsimport.SymmetricDefault, kmsimport.RSAAESKeyWrapSHA256, "must match"},
		{"not parameters", []byte(`{"hello":1}`), kmsimport.SymmetricDefault, kmsimport.RSAAESKeyWrapSHA256, "missing"},
	}
	for _, tc := range tests {
		facts, problems := checkParameters(tc.data, tc.spec, tc.alg, now)
		joined := strings.Join(problems, "; ")
		if tc.problem == "" && len(problems) > 0 || tc.problem != "" && !strings.Contains(joined, tc.problem) {
			t.Errorf("%s: problems %q, want %q", tc.name, joined, tc.problem)
		}
		if tc.problem == "" && (len(facts) == 0 || !strings.Contains(facts[1][1], "RSA_2048")) {
			t.Errorf("%s: facts %v", tc.name, facts)
		}
	}
}

func TestImportInstructionsCheckManifest(t *testing.T) {
	dir := t.TempDir()
	wrapOutputs(t, dir)
	out := importInstructions(dir)
	if !strings.Contains(out, "ok EncryptedKeyMaterial.bin") || !strings.Contains(out, "aws kms import-key-material") {
		t.Fatalf("instructions:\n%s", out)
	}
	os.WriteFile(filepath.Join(dir, kmsimport.ImportTokenFile), []byte("other"), 0o600)
	if out := importInstructions(dir); !strings.Contains(out, "CHANGED ImportToken.bin") {
		t.Fatalf("a changed file was not flagged:\n%s", out)
	}
}

func TestBYOKPageShowsTheWholeFlow(t *testing.T) {
	a := test.NewTempApp(t)
	w := NewMainWindow(a, Options{Page: "byok"})
	defer w.Close()
	waitForMarkup(t, w, "1. On the connected machine", "get-parameters-for-import", "2. Check the parameters you brought",
		"3. Create the byok-wrap script and have it reviewed", "4. Run the ceremony", "5. On the connected machine again")
}

// The BYOK page takes the parameters file (typed, Enter checks it), fills the
// spec and algorithm from it, and creates the byok-wrap script from it in the
// form: the file pinned by its SHA-256, the spec and algorithm set.
func TestBYOKPageCreatesTheScriptFromTheParameters(t *testing.T) {
	softhsmtest.NewStore(t)
	dir := t.TempDir()
	params := filepath.Join(dir, "import-parameters.json")
	data := paramsJSON(t, 3072, time.Now().Add(20*time.Hour), `,"KeySpec":"HMAC_256","WrappingAlgorithm":"RSAES_OAEP_SHA_256"`)
	os.WriteFile(params, data, 0o600)
	a := test.NewTempApp(t)
	w := NewMainWindow(a, Options{Page: "byok"})
	defer w.Close()
	c := w.Canvas()
	var focused fyne.Focusable
	fyne.DoAndWait(func() { focused = c.Focused() })
	if _, ok := focused.(*widget.Entry); !ok {
		t.Fatalf("the BYOK page starts with the focus on %T, not the parameters file", focused)
	}
	typeText(c, params)
	fyne.DoAndWait(func() { focused.(*widget.Entry).TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn}) })
	waitForMarkup(t, w, "arn:aws:kms:eu-west-1:111122223333:key/1234abcd", "RSA_3072", "The parameters are usable")
	fyne.DoAndWait(func() {
		test.Tap(buttonWithText(t, c.Content(), "Create the byok-wrap script from these parameters…"))
	})
	f := w.Ceremonies().Form()
	if f == nil || f.Kind() != script.BYOKWrap {
		t.Fatal("no byok-wrap form")
	}
	s := f.Script()
	if s.BYOK.Parameters == nil || s.BYOK.Parameters.Path != params || s.BYOK.Parameters.SHA256 != sha256Hex(data) ||
		s.BYOK.KeySpec != "HMAC_256" || s.BYOK.WrappingAlgorithm != "RSAES_OAEP_SHA_256" || s.BYOK.AllowHostSteps {
		t.Fatalf("byok section from the page: %+v %+v", s.BYOK, s.BYOK.Parameters)
	}
	waitForMarkup(t, w, "New byok-wrap script", "matches the pin", "Wrapping key: RSA_3072")
}

// A byok-wrap ceremony's last screen shows the import instructions, checked
// against the manifest in its output directory.
func TestBYOKCeremonyEndsWithImportInstructions(t *testing.T) {
	dir := t.TempDir()
	inputs(t, dir)
	f := newTestForm(t, script.BYOKWrap)
	fyne.DoAndWait(func() {
		f.Load(defaultScript(script.BYOKWrap, "/usr/lib/softhsm/libsofthsm2.so"))
		f.SetPath(filepath.Join(dir, "byok.yaml"))
	})
	for _, kv := range formFills[script.BYOKWrap] {
		fillField(t, f, kv[0], kv[1])
	}
	data, err := f.YAML()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "byok.yaml")
	os.WriteFile(path, data, 0o600)
	s, err := script.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	a := test.NewTempApp(t)
	win := a.NewWindow("byok")
	defer win.Close()
	wz, err := NewWizard(win, s, out, false)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(out, 0o700)
	wrapOutputs(t, out)
	fyne.DoAndWait(func() {
		win.SetContent(wz)
		win.Resize(fyne.NewSize(1280, 800))
		wz.showEnd(&ceremony.Result{Transcript: "t.jsonl", PDF: "t.pdf", FinalHash: []byte{1, 2}}, nil)
	})
	markup := ""
	fyne.DoAndWait(func() { markup = test.RenderToMarkup(win.Canvas()) })
	for _, want := range []string{"Import into AWS KMS", "ok EncryptedKeyMaterial.bin", "aws kms import-key-material"} {
		if !strings.Contains(markup, want) {
			t.Errorf("the last screen lacks %q", want)
		}
	}
	if got := win.Title(); got != "Key Ceremony — step 1 of "+itoa(len(wz.plan))+": Script identified — ceremony complete" {
		t.Errorf("title %q", got)
	}
}

func itoa(n int) string { return fmt.Sprint(n) }

// wrapOutputs writes what a byok-wrap ceremony's wrap step leaves in its
// output directory: the manifest and the two files it names.
func wrapOutputs(t *testing.T, dir string) {
	t.Helper()
	material, token := []byte("wrapped material"), []byte("import token")
	m := kmsimport.Manifest{KeyID: "arn:aws:kms:eu-west-1:111122223333:key/k", KeySpec: kmsimport.SymmetricDefault, ParametersValidTo: time.Now().Add(5 * time.Hour),
		Import: kmsimport.Import{ExpirationModel: kmsimport.KeyMaterialDoesNotExpire},
		Files:  map[string]string{kmsimport.EncryptedKeyMaterialFile: sha256Hex(material), kmsimport.ImportTokenFile: sha256Hex(token)}}
	m.Command = kmsimport.ImportCommand(m)
	b, _ := json.Marshal(m)
	for name, data := range map[string][]byte{kmsimport.ManifestFile: b, kmsimport.EncryptedKeyMaterialFile: material, kmsimport.ImportTokenFile: token} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
