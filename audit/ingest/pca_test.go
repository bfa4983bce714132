package ingest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyceremony/keyceremony/audit/store"
)

// The AWS Private CA records the key provenance join needs are kept with
// their file (CA ARN, time, raw record); other non-KMS records are only
// counted, and a file loaded twice keeps one copy.
func TestIngestKeepsPrivateCARecords(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ca := "arn:aws:acm-pca:eu-west-1:111122223333:certificate-authority/11223344-1234-1122-2233-112233445566"
	log := `{"Records":[
{"eventVersion":"1.08","eventID":"11111111-2222-3333-4444-555555555555","eventTime":"2026-03-02T10:00:00Z","eventSource":"kms.amazonaws.com","eventName":"Decrypt","awsRegion":"eu-west-1","recipientAccountId":"111122223333"},
{"eventVersion":"1.05","eventID":"21111111-2222-3333-4444-555555555555","eventTime":"2026-03-02T11:00:00Z","eventSource":"acm-pca.amazonaws.com","eventName":"ImportCertificateAuthorityCertificate","awsRegion":"eu-west-1","recipientAccountId":"111122223333","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice"},"requestParameters":{"certificateAuthorityArn":"` + ca + `","certificate":{"hb":[45,45],"limit":1257}},"responseElements":null},
{"eventVersion":"1.05","eventID":"31111111-2222-3333-4444-555555555555","eventTime":"2026-03-02T11:00:01Z","eventSource":"acm-pca.amazonaws.com","eventName":"IssueCertificate","awsRegion":"eu-west-1","requestParameters":{"certificateAuthorityArn":"` + ca + `"}},
{"eventVersion":"1.05","eventID":"41111111-2222-3333-4444-555555555555","eventTime":"2026-03-02T11:00:02Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"eu-west-1"}
]}`
	path := filepath.Join(dir, "111122223333_CloudTrail_eu-west-1_20260302T1100Z_abc.json")
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(dir, "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for range 2 {
		if _, err := Run(ctx, st, []string{path}, Options{}); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := st.PCAEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Name != "ImportCertificateAuthorityCertificate" || evs[0].CAARN != ca || evs[0].File == 0 ||
		evs[0].Principal != "arn:aws:iam::111122223333:user/alice" || evs[0].Time.Unix() != 1772449200 {
		t.Fatalf("Private CA records %+v", evs)
	}
}
