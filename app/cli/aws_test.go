package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/ceremony/online"
	"github.com/keyceremony/keyceremony/test/awsfake"
)

// The CLI reaches a local KMS through the real SDK; the certificate of the
// test server is trusted through AWS_CA_BUNDLE, as a VPC endpoint's would be.
func TestAWSBYOKPrepareCLI(t *testing.T) {
	srv := awsfake.NewKMS(t)
	dir := t.TempDir()
	awsEnv(t, srv.Server)
	out, _, err := run(t, "", "aws", "byok", "prepare", "--region", "eu-west-1", "--endpoint-url", srv.URL, "--key-spec", "HMAC_256",
		"--wrapping-algorithm", "RSAES_OAEP_SHA_256", "--wrapping-key-spec", "RSA_2048", "--out", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Created KMS key arn:aws:kms:eu-west-1:111122223333:key/") {
		t.Errorf("output: %s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, online.ParametersFile)); err != nil {
		t.Fatal(err)
	}
	// An impossible combination is refused before anything is sent.
	calls := srv.Calls("CreateKey")
	_, _, err = run(t, "", "aws", "byok", "prepare", "--region", "eu-west-1", "--endpoint-url", srv.URL, "--key-spec", "RSA_2048",
		"--wrapping-algorithm", "RSAES_OAEP_SHA_256", "--out", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "RSA_AES_KEY_WRAP") || srv.Calls("CreateKey") != calls {
		t.Errorf("RSA material under OAEP: err %v, calls %d -> %d", err, calls, srv.Calls("CreateKey"))
	}
	// import needs the ceremony's directory.
	if _, _, err := run(t, "", "aws", "byok", "import", "--region", "eu-west-1", "--endpoint-url", srv.URL, t.TempDir()); err == nil || !strings.Contains(err.Error(), "import-manifest.json") {
		t.Errorf("import of an empty directory: %v", err)
	}
}
