// Package cli is the headless face of Key Ceremony: every subcommand of the
// keyceremony binary. It never imports Fyne, so its tests build without GL headers
// and every ceremony and report can run on a machine without a display.
//
// Each command group lives in its own file and registers itself in init with
// Register, so the groups (token, key, audit, ceremony, ...) stay independent.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/keyceremony/keyceremony/ceremony/buildinfo"
)

// Env is what a command may touch: its streams and the process environment.
// Tests build one with buffers instead of the real terminal.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
}

func (e *Env) getenv(k string) string {
	if e.Getenv != nil {
		return e.Getenv(k)
	}
	return os.Getenv(k)
}

// Command is one subcommand group, such as "token" or "audit".
type Command struct {
	Name    string
	Summary string
	// Run receives the arguments after the group name.
	Run func(ctx context.Context, env *Env, args []string) error
}

var commands = map[string]*Command{}

// Register adds a command group; it panics on a duplicate name because that is
// a programming error caught by any test.
func Register(c *Command) {
	if _, dup := commands[c.Name]; dup {
		panic("cli: duplicate command " + c.Name)
	}
	commands[c.Name] = c
}

// ErrUsage marks an error caused by how the command was called; Main exits 2 for it.
var ErrUsage = errors.New("usage")

func usagef(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, a...))
}

// IsCommand reports whether args name a headless subcommand (as opposed to GUI flags).
func IsCommand(args []string) bool {
	if len(args) == 0 {
		return false
	}
	_, ok := commands[args[0]]
	return ok || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "version"
}

// Version is the binary's stamped version (see ceremony/buildinfo), named in
// report metadata.
var Version = buildinfo.Version()

// Main runs one command line and returns the process exit code.
func Main(args []string, env *Env) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := Run(ctx, args, env)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrUsage):
		fmt.Fprintf(env.Stderr, "keyceremony: %v\n", err)
		return 2
	default:
		fmt.Fprintf(env.Stderr, "keyceremony: %v\n", err)
		return 1
	}
}

// Run dispatches args to a command group.
func Run(ctx context.Context, args []string, env *Env) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printHelp(env.Stdout)
		return nil
	}
	if args[0] == "version" {
		return versionCommand(env, args[1:])
	}
	c, ok := commands[args[0]]
	if !ok {
		return usagef("unknown command %q (run 'keyceremony help')", args[0])
	}
	return c.Run(ctx, env, args[1:])
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "Key Ceremony: quorum-controlled key ceremonies and KMS audit.")
	fmt.Fprintln(w, "\nUsage:\n  keyceremony                 open the desktop application\n  keyceremony COMMAND ...     run headless")
	fmt.Fprintln(w, "\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].Summary)
	}
	fmt.Fprintln(w, "  version    version, commit, modules and SHA-256 of this binary [--json]")
	fmt.Fprintln(w, "\nRun 'keyceremony COMMAND -h' for a command's options.")
}

// subcommand dispatches the second word of a group ("token list").
func subcommand(ctx context.Context, env *Env, group string, args []string, subs map[string]func(context.Context, *Env, []string) error) error {
	names := make([]string, 0, len(subs))
	for n := range subs {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		return usagef("keyceremony %s %s", group, strings.Join(names, "|"))
	}
	f, ok := subs[args[0]]
	if !ok {
		return usagef("unknown subcommand %q for %s (one of: %s)", args[0], group, strings.Join(names, ", "))
	}
	return f(ctx, env, args[1:])
}

// reorder moves flags (with their values) before positional arguments, so
// "run SCRIPT --out D" works as well as "run --out D SCRIPT" with the
// standard flag package. The flag set says which flags take a value: a
// boolean flag never swallows the argument after it.
func reorder(fs *flag.FlagSet, args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(append(flags, "--"), append(rest, args[i+1:]...)...)
		case len(a) > 1 && a[0] == '-':
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if strings.Contains(name, "=") {
				continue
			}
			f := fs.Lookup(name)
			if f == nil {
				continue // parse reports the unknown flag
			}
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !(ok && b.IsBoolFlag()) && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
		default:
			rest = append(rest, a)
		}
	}
	return append(flags, rest...)
}
