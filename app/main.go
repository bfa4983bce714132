// Command keyceremony is Key Ceremony: with no arguments it opens the desktop
// application; with a subcommand (keyceremony help) it runs headless.
package main

import (
	"flag"
	"fmt"
	"os"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"

	"github.com/keyceremony/keyceremony/app/cli"
	"github.com/keyceremony/keyceremony/assets"
	"github.com/keyceremony/keyceremony/ceremony/buildinfo"
	"github.com/keyceremony/keyceremony/ui"
)

// appID matches FyneApp.toml; preferences are stored under it.
const appID = "org.keyceremony.app"

func main() {
	args := os.Args[1:]
	if cli.IsCommand(args) {
		os.Exit(cli.Main(args, &cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}))
	}

	fs := flag.NewFlagSet("keyceremony", flag.ContinueOnError)
	module := fs.String("module", "", "PKCS#11 module for this session (default: Settings, else the built-in SoftHSM2)")
	page := fs.String("page", "", "open this page first: home, tokens, ceremonies, audit, settings")
	scriptPath := fs.String("script", "", "open this ceremony script on the Ceremonies page")
	rehearse := fs.Bool("rehearse", false, "with --script: start its rehearsal (throwaway token) at once")
	edit := fs.String("edit", "", "open this ceremony script in the form (read-only when the form cannot write it back unchanged)")
	auditKey := fs.String("audit-key", "", "open the Audit page's key provenance view on this KMS key (ARN or id) or AWS Private CA (ARN)")
	newKind := fs.String("new", "", "start a new ceremony script of this kind in the form: root-generation, key-backup, key-restore, ca-signing, crl, byok-wrap")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintln(os.Stderr, "run 'keyceremony help' for the headless commands")
		os.Exit(2)
	}

	a := fyneapp.NewWithID(appID)
	a.SetIcon(fyne.NewStaticResource("icon.png", assets.Icon))
	w := ui.NewMainWindow(a, ui.Options{Module: *module, Page: *page, Script: *scriptPath, Rehearse: *rehearse, Edit: *edit, New: *newKind, AuditKey: *auditKey, Version: buildinfo.Version()})
	w.ShowAndRun()
}
