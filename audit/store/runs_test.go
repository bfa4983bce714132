package store

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunStateRunningThenInterrupted: a run whose process holds its lock
// is "running" to any reader (another connection, another process); once
// the process is killed it is "interrupted" at its last commit, and the
// next ingest records it so and removes its lock file. A run that
// finishes is "done" (it stayed "running" forever when killed).
func TestRunStateRunningThenInterrupted(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "audit.db")
	st, err := Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	// In this process: another Store on the same file sees it running.
	w, err := st.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id, err := w.StartRun([]string{"audit", "ingest", "x"})
	if err != nil {
		t.Fatal(err)
	}
	reader, err := Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	runs, err := reader.Runs(ctx)
	if err != nil || len(runs) != 1 || runs[0].State != RunRunning || runs[0].PID != int64(os.Getpid()) {
		t.Fatalf("runs while running: %+v %v", runs, err)
	}
	if err := w.FinishRun(RunTotals{Status: "done"}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	runs, _ = reader.Runs(ctx)
	if runs[0].ID != id || runs[0].State != RunDone || runs[0].FinishedAt.IsZero() {
		t.Fatalf("runs after finishing: %+v", runs)
	}
	if _, err := os.Stat(runLockPath(db, id)); !os.IsNotExist(err) {
		t.Fatalf("lock file left after the run: %v", err)
	}

	// In another process, killed.
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunChildProcess$")
	cmd.Env = append(os.Environ(), "KC_RUN_CHILD="+db)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if !strings.HasPrefix(line, "ready") {
		cmd.Process.Kill()
		t.Fatalf("child: %q", line)
	}
	runs, _ = reader.Runs(ctx)
	if len(runs) != 2 || runs[1].State != RunRunning || runs[1].PID != int64(cmd.Process.Pid) {
		t.Fatalf("the other process's run: %+v", runs)
	}
	cmd.Process.Kill()
	cmd.Wait()
	runs, _ = reader.Runs(ctx)
	if runs[1].State != RunInterrupted || runs[1].HeartbeatAt.IsZero() || !runs[1].FinishedAt.IsZero() {
		t.Fatalf("after kill -9: %+v", runs[1])
	}
	// The next run records it.
	w, err = st.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.StartRun(nil); err != nil {
		t.Fatal(err)
	}
	var status string
	st.DB().QueryRow(`SELECT status FROM runs WHERE id = ?`, runs[1].ID).Scan(&status)
	if status != "interrupted" {
		t.Fatalf("recorded status %q", status)
	}
	if _, err := os.Stat(runLockPath(db, runs[1].ID)); !os.IsNotExist(err) {
		t.Fatalf("stale lock file kept: %v", err)
	}
	w.Close() // closed without FinishRun: its lock goes with it
	runs, _ = reader.Runs(ctx)
	if runs[2].State != RunInterrupted {
		t.Fatalf("a writer closed without finishing its run: %+v", runs[2])
	}
}

// TestRunChildProcess is the child of TestRunStateRunningThenInterrupted:
// it starts a run, commits, says "ready" and waits to be killed.
func TestRunChildProcess(t *testing.T) {
	db := os.Getenv("KC_RUN_CHILD")
	if db == "" {
		return
	}
	ctx := context.Background()
	st, err := Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	w, err := st.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.StartRun([]string{"child"}); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("ready\n")
	time.Sleep(time.Minute)
}
