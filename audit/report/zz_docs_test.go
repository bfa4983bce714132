package report_test

import (
	"context"
	"io"
	"os"
	"testing"

	"github.com/keyceremony/keyceremony/audit/store"
)

func TestDocsRender(t *testing.T) {
	db := os.Getenv("KR_DOCS_DB")
	if db == "" {
		t.Skip()
	}
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, kind := range []string{"rotation", "usage"} {
		err := render(context.Background(), st, kind, func(ext string) io.Writer {
			f, _ := os.Create("/tmp/kr/docs-" + kind + "." + ext)
			return f
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
