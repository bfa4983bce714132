package usage

import (
	"os"
	"testing"

	"github.com/keyceremony/keyceremony/audit/report/fixture"
)

func TestDump(t *testing.T) {
	if os.Getenv("KR_DUMP") == "" {
		t.Skip()
	}
	r := build(t, fixture.NewScenario(), true)
	f, _ := os.Create("/tmp/kr/fixture-use.pdf")
	r.WritePDF(f)
	f.Close()
}
