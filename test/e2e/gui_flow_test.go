package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/test/cloudtrailgen"
)

// These tests drive the real binary's window under a private Xvfb with the
// keyboard, as a person without a mouse would (xdotool sends real X key
// events: Tab, Space, Return, arrows, Ctrl+S, typed text), and check what
// the app wrote: files, exit codes of the CLI's own checks, pdftotext. The
// window title names the screen and what it waits for, which is how the
// test knows where the app is; nothing is read from pixels.

// xsession drives the app's window on one display.
type xsession struct {
	t       *testing.T
	display string
}

func (x xsession) xdotool(args ...string) string {
	x.t.Helper()
	cmd := exec.Command("xdotool", args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+x.display)
	out, err := cmd.CombinedOutput()
	if err != nil {
		x.t.Fatalf("xdotool %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// key presses keys in order ("Tab", "space", "Return", "ctrl+s").
func (x xsession) key(keys ...string) {
	x.t.Helper()
	x.xdotool(append([]string{"key", "--delay", "40"}, keys...)...)
}

// typ types text into the focused field.
func (x xsession) typ(text string) {
	x.t.Helper()
	x.xdotool("type", "--delay", "8", text)
}

// title is the app window's title.
func (x xsession) title() string {
	x.t.Helper()
	cmd := exec.Command("xdotool", "search", "--name", "^Key Ceremony")
	cmd.Env = append(os.Environ(), "DISPLAY="+x.display)
	out, err := cmd.Output()
	ids := strings.Fields(string(out))
	if err != nil || len(ids) == 0 {
		return ""
	}
	cmd = exec.Command("xdotool", "getwindowname", ids[0])
	cmd.Env = append(os.Environ(), "DISPLAY="+x.display)
	name, _ := cmd.Output()
	return strings.TrimSpace(string(name))
}

// waitTitle waits until the title contains want (a hang guard of a minute,
// not a timing assertion) and returns it.
func (x xsession) waitTitle(want string) string {
	x.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if t := x.title(); strings.Contains(t, want) {
			return t
		} else if time.Now().After(deadline) {
			x.fail("the window title never showed %q; it is %q", want, t)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fail stops the test, keeping a picture of the screen for whoever reads
// the failure (the picture is not what the test checks).
func (x xsession) fail(format string, a ...any) {
	x.t.Helper()
	shot := filepath.Join(os.TempDir(), fmt.Sprintf("keyceremony-e2e-%s-%d.png", strings.ReplaceAll(x.t.Name(), "/", "_"), time.Now().Unix()))
	cmd := exec.Command("import", "-window", "root", shot)
	cmd.Env = append(os.Environ(), "DISPLAY="+x.display)
	if cmd.Run() == nil {
		format += "\n(the screen at that moment: %s)"
		a = append(a, shot)
	}
	x.t.Fatalf(format, a...)
}

// ready waits until the window has drawn its first frame, then gives it the
// keyboard focus (there is no window manager to do so): keys sent earlier
// would be lost.
func (x xsession) ready() {
	x.t.Helper()
	screenshot(x.t, x.display, filepath.Join(x.t.TempDir(), "first-frame.png"))
	ids := strings.Fields(x.xdotool("search", "--name", "^Key Ceremony"))
	x.xdotool("windowfocus", "--sync", ids[0])
}

// TestGUIRootScriptFormToRehearsal makes a root-generation script in the
// form, saves it with Ctrl+S, opens the reviewed file and rehearses it to the
// end — shares issued as files with passphrases and presented back — all
// from the keyboard. The script passes `ceremony plan`; the transcript
// passes `ceremony verify`; its PDF reads back with pdftotext.
func TestGUIRootScriptFormToRehearsal(t *testing.T) {
	env := softhsmStore(t)
	serial := tokenSerial(t, env, "Root CA 2026", "11112222", "33334444")
	work, media, tmp := t.TempDir(), t.TempDir(), t.TempDir()
	// Shares must go to a custodian's medium, never into the temporary
	// directory: the app's temporary directory is elsewhere.
	env = append(env, "TMPDIR="+tmp)
	display := xvfb(t)
	startGUI(t, env, display, "--page", "ceremonies")
	x := xsession{t, display}
	x.ready()

	x.key("space") // "New ceremony script…" has the focus
	x.waitTitle("New ceremony script")
	x.key("space") // the first kind: root-generation
	x.waitTitle("New root-generation script")
	scriptPath := filepath.Join(work, "root.yaml")
	x.typ(scriptPath) // "Save as" has the focus
	x.key("Tab", "Tab")
	x.typ("e2e-root-2026")
	x.key("Tab")
	x.typ("E2E Root CA 2026")
	x.key("Tab", "Tab")                             // description, then the token picker
	x.key("Right")                                  // the first token: the initialised one (fills module, URI with serial, change-pin)
	x.key("Tab", "Tab", "Tab", "Tab", "Tab", "Tab") // module, URI, enrolment, module SHA-256, participants
	for i, name := range []string{"Alice Adams", "Wendy Webb", "Carol Chen", "Dan Diaz", "Erin Evans"} {
		if i > 0 {
			x.key("Tab", "Tab", "Tab") // role, Remove, next name
		}
		x.typ(name)
	}
	x.key("Tab", "Tab", "Tab", "Tab") // role, Remove, Add participant, threshold
	x.typ("2")
	x.key("Tab", "Tab", "space") // the custodians (they followed the participants), untick "card"
	x.key("Tab", "Tab", "Right") // "file" stays; air gap: warn (this machine has a network)
	x.key("Tab", "Tab", "Tab")   // free space, key type, key label
	x.typ("e2e-root")
	x.key("Tab", "Tab") // backup stays off; common name
	x.typ("E2E Root CA")
	x.key("Tab")
	x.typ("E2E Corp")
	x.key("Tab", "Tab")
	x.typ("DE")
	x.key("ctrl+s")
	x.waitTitle("Review root.yaml")

	raw, err := os.ReadFile(scriptPath)
	if err != nil {
		t.Fatalf("the form did not save the script: %v", err)
	}
	for _, want := range []string{"id: e2e-root-2026\n", `uri: "pkcs11:token=Root%20CA%202026;serial=` + serial + `"`, "enrol: change-pin\n",
		"  - {name: Erin Evans, role: custodian}\n", "threshold: 2\n", "custodians: [Carol Chen, Dan Diaz, Erin Evans]\n",
		"delivery: [file]\n", "air_gap: warn\n", "backup: false\n", "organization: E2E Corp\n", "country: DE\n"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("the script lacks %q:\n%s", want, raw)
		}
	}
	if out, err := exec.Command(binary, "ceremony", "plan", scriptPath).CombinedOutput(); err != nil {
		t.Fatalf("ceremony plan refuses the form's script: %v\n%s", err, out)
	}

	x.key("space") // "Open the reviewed file"
	x.waitTitle("Script root.yaml")
	x.key("space") // "Rehearse (throwaway token)"
	x.waitTitle("REHEARSAL")
	rehearse(t, x, media)

	transcript := filepath.Join(work, "ceremony-output-rehearsal", "REHEARSAL-e2e-root-2026.transcript.jsonl")
	out, err := exec.Command(binary, "ceremony", "verify", transcript).CombinedOutput()
	if err != nil {
		t.Fatalf("ceremony verify: %v\n%s", err, out)
	}
	for _, want := range []string{"Transcript verified", "e2e-root-2026 (root-generation)", "REHEARSAL", "Complete"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ceremony verify does not say %q:\n%s", want, out)
		}
	}
	pdf, err := exec.Command("pdftotext", strings.TrimSuffix(transcript, ".jsonl")+".pdf", "-").Output()
	if err != nil || !strings.Contains(string(pdf), "E2E Root CA 2026") || !strings.Contains(string(pdf), "REHEARSAL") {
		t.Errorf("transcript PDF (%v):\n%.600s", err, pdf)
	}
	for _, c := range []string{"Carol_Chen", "Dan_Diaz", "Erin_Evans"} {
		if _, err := os.Stat(filepath.Join(media, c+".age")); err != nil {
			t.Errorf("share file of %s: %v", c, err)
		}
	}
}

// rehearse answers the wizard from the keyboard until the ceremony ends:
// Return on a notice, Space and Tab through the named check boxes then
// Return on a confirmation, a share file with its passphrase per custodian.
func rehearse(t *testing.T, x xsession, media string) {
	t.Helper()
	file := func(name string) string { return filepath.Join(media, strings.ReplaceAll(name, " ", "_")+".age") }
	prev, seen := "", 0
	deadline := time.Now().Add(3 * time.Minute) // hang guard
	for time.Now().Before(deadline) {
		title := x.title()
		if title == prev || strings.HasSuffix(title, "— working") {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		prev, seen = title, seen+1
		what := title[strings.LastIndex(title, " — ")+len(" — "):]
		switch {
		case strings.Contains(what, "refused"):
			x.fail("the wizard refused what the keyboard gave it: %s", title)
		case strings.HasPrefix(what, "continue: "):
			x.key("Return")
		case strings.HasPrefix(what, "confirmation by "):
			var n int
			fmt.Sscanf(what, "confirmation by %d", &n)
			x.key("space")
			for i := 1; i < n; i++ {
				x.key("Tab", "space")
			}
			x.key("Return")
		case strings.HasPrefix(what, "share for "):
			name := strings.TrimPrefix(what, "share for ")
			x.key("space", "Tab") // "only <name> looks now", then the share file
			x.typ(file(name))
			x.key("Tab", "Tab")
			x.typ("passphrase of " + name)
			x.key("Tab")
			x.typ("passphrase of " + name)
			x.key("Return")
		case strings.HasPrefix(what, "share from "):
			name := strings.TrimPrefix(what, "share from ")
			x.typ(file(name)) // the share file tab, its path focused
			x.key("Tab", "Tab")
			x.typ("passphrase of " + name)
			x.key("Return")
		case what == "ceremony complete":
			if seen < 20 {
				t.Errorf("the rehearsal ended after only %d screens", seen)
			}
			return
		case what == "did not complete":
			x.fail("the rehearsal did not complete (%s)", title)
		}
	}
	x.fail("the rehearsal did not end; the window shows %q", prev)
}

// TestGUIAuditIngestAndReports ingests a folder of CloudTrail logs on the
// Audit page and exports the rotation and usage reports, from the keyboard;
// the reports are checked by their files and pdftotext.
func TestGUIAuditIngestAndReports(t *testing.T) {
	env := softhsmStore(t)
	logs, reports := t.TempDir(), t.TempDir()
	stats, err := cloudtrailgen.Generate(logs, cloudtrailgen.Config{KMSEvents: 3000, Days: 7, FileInterval: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	display := xvfb(t)
	startGUI(t, env, display, "--page", "audit")
	x := xsession{t, display}
	x.ready()

	x.typ(logs) // the path to ingest has the focus
	x.key("Return")
	title := x.waitTitle("Audit — ingested")
	if m := regexp.MustCompile(`(\d+) new KMS events, 0 failed`).FindStringSubmatch(title); m == nil || m[1] != fmt.Sprint(stats.KMSEvents) {
		x.fail("ingest: %q, want %d new KMS events and no failure", title, stats.KMSEvents)
	}
	// Ingest, files, folder; then the period, the other filters, errors
	// only, order, Apply, the reports folder.
	x.key("Tab", "Tab", "Tab", "Tab")
	x.typ("2025-03-01")
	x.key("Tab")
	x.typ("2025-03-08")
	for i := 0; i < 10; i++ {
		x.key("Tab")
	}
	x.typ(reports)
	x.key("Tab", "space") // Rotation report…
	x.waitTitle("wrote the rotation report")
	x.key("Tab", "space") // Usage report…
	x.waitTitle("wrote the usage report")

	for kind, want := range map[string]string{"rotation": "KMS key rotation compliance report", "usage": "KMS key usage report"} {
		base := filepath.Join(reports, kind+"-report")
		for _, ext := range []string{".csv", ".json"} {
			if fi, err := os.Stat(base + ext); err != nil || fi.Size() == 0 {
				t.Errorf("%s%s: %v", base, ext, err)
			}
		}
		text, err := exec.Command("pdftotext", "-layout", base+".pdf", "-").Output()
		if err != nil {
			t.Fatalf("pdftotext %s.pdf: %v", base, err)
		}
		if !strings.Contains(strings.ToLower(string(text)), strings.ToLower(want)) || !strings.Contains(string(text), "2025-03-01") {
			t.Errorf("%s report PDF does not read back as one for the period:\n%.800s", kind, text)
		}
	}
}
