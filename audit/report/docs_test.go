package report_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyceremony/keyceremony/audit/store"
)

// TestDocsRender renders both reports of a database for the page images
// in docs/reports (see docs/audit-reports.md); skipped unless
// KC_DOCS_DB and KC_DOCS_OUT are set.
func TestDocsRender(t *testing.T) {
	db, out := os.Getenv("KC_DOCS_DB"), os.Getenv("KC_DOCS_OUT")
	if db == "" || out == "" {
		t.Skip("set KC_DOCS_DB and KC_DOCS_OUT to render the documentation's reports")
	}
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, kind := range []string{"rotation", "usage"} {
		err := render(context.Background(), st, kind, func(ext string) io.Writer {
			f, err := os.OpenFile(filepath.Join(out, kind+"."+ext), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			return f
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
