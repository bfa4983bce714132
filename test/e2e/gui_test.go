package e2e

import (
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/test/cloudtrailgen"
)

// xvfb starts a private X display and returns its name. It starts at a
// display number derived from the process id and checks that its own server
// came up and stayed up, so two runs on one machine (or one in a chroot, which
// shares abstract X sockets) never end up on the same server.
func xvfb(t *testing.T) string {
	t.Helper()
	for d := 100 + os.Getpid()%500; d < 1000; d++ {
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", d)); err == nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", d)); err == nil {
			continue
		}
		display := fmt.Sprintf(":%d", d)
		// -noreset: by default Xvfb resets when its last client leaves, and a
		// client connecting during the reset fails to open the display.
		cmd := exec.Command("Xvfb", display, "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-noreset")
		if err := cmd.Start(); err != nil {
			t.Fatalf("start Xvfb (make test installs xvfb): %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		// Up means the server answers a client, not merely that its socket
		// file exists.
		up := false
		for i := 0; i < 200 && !up; i++ {
			select {
			case <-exited:
				i = 200 // this number is taken elsewhere: try the next one
			case <-time.After(50 * time.Millisecond):
				probe := exec.Command("xdotool", "getdisplaygeometry")
				probe.Env = append(os.Environ(), "DISPLAY="+display)
				up = probe.Run() == nil
			}
		}
		if !up {
			cmd.Process.Kill()
			continue
		}
		t.Cleanup(func() {
			// SIGTERM lets Xvfb remove its lock and socket files.
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		})
		return display
	}
	t.Fatal("no free X display")
	return ""
}

// startGUI runs the binary on display with args and waits for its window.
func startGUI(t *testing.T, env []string, display string, args ...string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(env, "DISPLAY="+display)
	logPath := filepath.Join(t.TempDir(), "gui.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		logf.Close()
	})
	fail := func(why string) {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("%s; app output:\n%s", why, b)
	}
	for i := 0; i < 300; i++ {
		select {
		case err := <-exited:
			exited <- err
			fail(fmt.Sprintf("keyceremony exited early (%v)", err))
		default:
		}
		xd := exec.Command("xdotool", "search", "--name", "^Key Ceremony")
		xd.Env = cmd.Env
		if out, _ := xd.Output(); len(strings.TrimSpace(string(out))) > 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	fail("the Key Ceremony window did not appear")
}

// screenshot captures the whole display to path once the window has drawn
// (a loaded machine may take a while for the first frame): it retries until
// the picture is not blank, for at most 30 seconds (a hang guard).
func screenshot(t *testing.T, display, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		cmd := exec.Command("import", "-window", "root", path)
		cmd.Env = append(os.Environ(), "DISPLAY="+display)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("import: %v\n%s", err, out)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("screenshot is not a PNG: %v", err)
		}
		if distinctColours(img) >= 8 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("screenshot %s is blank", path)
		}
		time.Sleep(time.Second)
	}
}

func distinctColours(img image.Image) int {
	seen := map[uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[(r>>8)<<16|(g>>8)<<8|bl>>8] = true
		}
	}
	return len(seen)
}

// TestGUIScreens starts the real binary under Xvfb once per screen and takes
// a screenshot of each. With KC_SCREENSHOT_DIR set (make screenshots) the
// pictures are kept for docs/screenshots.
func TestGUIScreens(t *testing.T) {
	env := softhsmStore(t)
	mustRun(t, env, "softhsm2-util", "--init-token", "--free", "--label", "Root CA 2026", "--so-pin", "11112222", "--pin", "33334444")
	work := t.TempDir()
	tmpl := mustRun(t, env, binary, "ceremony", "template", "root-generation")
	tmpl = strings.Replace(tmpl, "air_gap: block", "air_gap: warn", 1) // the test machine is networked
	tmpl = regexp.MustCompile(`directory: \S+`).ReplaceAllString(tmpl, "directory: "+filepath.Join(work, "out"))
	scriptPath := filepath.Join(work, "root-2026.yaml")
	if err := os.WriteFile(scriptPath, []byte(tmpl), 0o600); err != nil {
		t.Fatal(err)
	}
	// An audit database with generated CloudTrail logs, loaded by the binary
	// into the default location the GUI opens.
	logs := filepath.Join(work, "logs")
	if _, err := cloudtrailgen.Generate(logs, cloudtrailgen.Config{KMSEvents: 20000, Days: 7, FileInterval: 2 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	mustRun(t, env, binary, "audit", "ingest", logs)
	dir := os.Getenv("KC_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	screens := []struct {
		name string
		args []string
	}{
		{"home", []string{"--page", "home"}},
		{"tokens", []string{"--page", "tokens"}},
		{"ceremony-script", []string{"--script", scriptPath}},
		{"ceremony-wizard-rehearsal", []string{"--script", scriptPath, "--rehearse"}},
		{"byok", []string{"--page", "byok"}},
		{"audit", []string{"--page", "audit"}},
		{"settings", []string{"--page", "settings"}},
		{"online", []string{"--page", "online"}}, // after "Enable online actions" in Settings
	}
	for _, sc := range screens {
		t.Run(sc.name, func(t *testing.T) {
			if sc.name == "online" {
				enableOnlineActions(t, env)
			}
			display := xvfb(t)
			startGUI(t, env, display, sc.args...)
			time.Sleep(3 * time.Second) // first frame, token load, the rehearsal's first step
			screenshot(t, display, filepath.Join(dir, sc.name+".png"))
		})
	}
	// The whole wizard flow is driven in ui's widget test
	// TestWizardRehearsalRootCeremony; here the rehearsal must at least never
	// touch the real output directory.
	if _, err := os.Stat(filepath.Join(work, "out")); err == nil {
		t.Error("the rehearsal wrote into the real output directory")
	}
}

// enableOnlineActions sets the Settings switch the way the GUI stores it.
func enableOnlineActions(t *testing.T, env []string) {
	t.Helper()
	setPreferences(t, env, `{"online.enabled":true}`)
}

// setPreferences writes the app's preferences (JSON) where the GUI reads
// them: Fyne's preferences file of the app under XDG_CONFIG_HOME.
func setPreferences(t *testing.T, env []string, prefs string) {
	t.Helper()
	var config string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "XDG_CONFIG_HOME="); ok {
			config = v
		}
	}
	dir := filepath.Join(config, "fyne", "org.keyceremony.app")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "preferences.json"), []byte(prefs), 0o600); err != nil {
		t.Fatal(err)
	}
}
