package ui

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/ceremony"
	"github.com/keyceremony/keyceremony/ceremony/buildinfo"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
)

// transcriptStatus verifies a transcript for the Home page's list.
func transcriptStatus(path string) string {
	rep, err := transcript.Verify(path)
	var ve *transcript.VerifyError
	switch {
	case errors.As(err, &ve):
		return "VERIFICATION FAILED: " + err.Error()
	case err != nil:
		return "cannot verify: " + err.Error()
	}
	return fmt.Sprintf("verified: %d entries chained, %d output files match", len(rep.Entries), rep.Files)
}

func (w *MainWindow) homePage() fyne.CanvasObject {
	s := w.settings()
	airgap := wrapLabel("Checking network interfaces…")
	if up, err := ceremony.NetworkInterfacesUp(); err != nil {
		airgap.SetText("Unknown: this system cannot list its network interfaces (" + err.Error() + "). Check by hand that no cable, Wi-Fi, Bluetooth or modem connection is present; a ceremony's preflight asks you to confirm it.")
		airgap.Importance = widget.WarningImportance
	} else if len(up) == 0 {
		airgap.SetText("Air-gapped: no network interface is up besides loopback.")
		airgap.Importance = widget.SuccessImportance
	} else {
		airgap.SetText("NOT air-gapped: " + strings.Join(up, "; ") + ". Disconnect before a ceremony (the ceremony's preflight checks this again).")
		airgap.Importance = widget.DangerImportance
	}
	db := s.AuditDB()
	dbInfo := db + " (not created yet)"
	if st, err := os.Stat(db); err == nil {
		dbInfo = fmt.Sprintf("%s (%.1f MB)", db, float64(st.Size())/1e6)
	}
	form := widget.NewForm(
		widget.NewFormItem("Network", airgap),
		widget.NewFormItem("Token module", wrapLabel(orDefault(s.Module(), "built-in SoftHSM2"))),
		widget.NewFormItem("Audit database", wrapLabel(dbInfo)),
		widget.NewFormItem("Version", widget.NewLabel(w.opts.Version+" (commit "+shortCommit(buildinfo.Commit())+")")),
		widget.NewFormItem("Binary SHA-256", binaryHash()),
	)
	recent := s.RecentTranscripts()
	statuses := make([]string, len(recent))
	for i := range statuses {
		statuses[i] = "verifying…"
	}
	list := widget.NewList(
		func() int { return len(recent) },
		func() fyne.CanvasObject { return container.NewVBox(boldLabel("path"), wrapLabel("status")) },
		func(id widget.ListItemID, o fyne.CanvasObject) {
			c := o.(*fyne.Container)
			c.Objects[0].(*widget.Label).SetText(recent[id])
			st := c.Objects[1].(*widget.Label)
			st.SetText(statuses[id])
			st.Importance = widget.MediumImportance
			if strings.HasPrefix(statuses[id], "VERIFICATION FAILED") {
				st.Importance = widget.DangerImportance
			}
			st.Refresh()
		},
	)
	go func() {
		for i, p := range recent {
			st := transcriptStatus(p)
			fyne.Do(func() { statuses[i] = st; list.RefreshItem(i) })
		}
	}()
	shortcuts := container.NewHBox(
		widget.NewButton("Tokens", func() { w.Select("tokens") }),
		widget.NewButton("Ceremonies", func() { w.Select("ceremonies") }),
		widget.NewButton("Audit", func() { w.Select("audit") }),
	)
	empty := wrapLabel("No ceremony has been run or opened on this laptop yet.")
	if len(recent) > 0 {
		empty.Hide()
	}
	top := container.NewVBox(heading("This laptop"), form, shortcuts, boldLabel("Recent ceremonies"), empty)
	return container.NewBorder(top, nil, nil, nil, list)
}

// binaryHash shows the SHA-256 of the running executable, the value a witness
// compares with the release's SHA256SUMS before a ceremony.
func binaryHash() fyne.CanvasObject {
	_, sum, err := buildinfo.Executable()
	if err != nil {
		l := wrapLabel("cannot hash the running executable: " + err.Error())
		l.Importance = widget.DangerImportance
		return l
	}
	l := widget.NewLabel(sum)
	l.TextStyle = fyne.TextStyle{Monospace: true}
	l.Truncation = fyne.TextTruncateEllipsis
	return l
}

func shortCommit(c string) string {
	rev, dirty := strings.CutSuffix(c, "-dirty")
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}
