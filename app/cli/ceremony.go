package cli

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"golang.org/x/term"

	"github.com/keyceremony/keyceremony/assets"
	"github.com/keyceremony/keyceremony/ceremony"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/ceremony/words"
)

func init() {
	Register(&Command{Name: "ceremony", Summary: "run, rehearse and verify key ceremonies", Run: func(ctx context.Context, env *Env, args []string) error {
		return subcommand(ctx, env, "ceremony", args, map[string]func(context.Context, *Env, []string) error{
			"run":      ceremonyRun,
			"verify":   ceremonyVerify,
			"plan":     ceremonyPlan,
			"template": ceremonyTemplate,
		})
	}})
	// "transcript verify" is what auditors look for; the same check.
	Register(&Command{Name: "transcript", Summary: "verify a ceremony transcript (same as ceremony verify)", Run: func(ctx context.Context, env *Env, args []string) error {
		return subcommand(ctx, env, "transcript", args, map[string]func(context.Context, *Env, []string) error{
			"verify": ceremonyVerify,
		})
	}})
}

// afterStep is called after each completed step; the subprocess tests set it
// to kill the process at a chosen step, as a crash or power loss would.
var afterStep func(ceremony.StepInfo, transcript.Entry)

func ceremonyRun(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "ceremony run SCRIPT")
	out := fs.String("out", "", "output directory (default: the script's output.directory)")
	answers := fs.String("answers", "", "answer prompts from this YAML file: FOR TESTING AND REHEARSAL ONLY")
	rehearse := fs.Bool("rehearse", false, "run against a throwaway SoftHSM token; every output is marked REHEARSAL")
	unattendedTest := fs.Bool("unattended-test", false, "allow --answers outside a rehearsal: AUTOMATED TESTS ONLY, recorded in the transcript")
	if err := parseFlags(fs, reorder(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("keyceremony ceremony run SCRIPT [--out DIR] [--rehearse] [--answers FILE [--unattended-test]]")
	}
	if *answers != "" && !*rehearse && !*unattendedTest {
		return usagef("--answers confirms on behalf of people who are not there: it is refused outside a rehearsal; use --rehearse (or --unattended-test for an automated test, which the transcript records)")
	}
	if *unattendedTest && *answers == "" {
		return usagef("--unattended-test goes with --answers")
	}
	s, err := script.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	var p ceremony.Prompter
	if *answers != "" {
		a, err := ceremony.LoadAnswers(*answers)
		if err != nil {
			return err
		}
		a.Log = env.Stdout
		fmt.Fprintf(env.Stdout, "ANSWERS FILE %s: prompts are answered automatically. For testing and rehearsal only.\n", *answers)
		p = a
	} else {
		p = &termPrompter{env: env}
	}
	e, err := ceremony.New(s, ceremony.Options{Prompter: p, OutDir: *out, Rehearse: *rehearse, UnattendedTest: *unattendedTest, AfterStep: afterStep})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Ceremony %s: %s\nScript %s\nSHA-256 %x\nOutput directory %s\n", s.ID, s.Title, s.Path, s.SHA256, e.OutputDir())
	res, err := e.Run(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "\nCeremony complete.\nTranscript      %s\nTranscript PDF  %s\nFinal hash      %x\nFinal words     %s\n",
		res.Transcript, res.PDF, res.FinalHash, words.String(res.FinalHash))
	return nil
}

func ceremonyVerify(_ context.Context, env *Env, args []string) error {
	fs := newFlags(env, "ceremony verify TRANSCRIPT")
	expect := fs.String("expect", "", "the final hash written on the signed paper (64 hex digits or the 32 words, quoted)")
	root := fs.String("root", "", "a root certificate you trust (PEM or DER): every token signature in the transcript must be its key's")
	incomplete := fs.Bool("allow-incomplete", false, "accept a transcript that ends before the ceremony completed")
	unanchored := fs.Bool("allow-unanchored", false, "accept a transcript nothing outside its medium vouches for (written before anchors, or anchored only by the quorum MAC) without --expect")
	if err := parseFlags(fs, reorder(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("keyceremony ceremony verify TRANSCRIPT [--expect HASH|WORDS] [--root CERT] [--allow-incomplete] [--allow-unanchored]")
	}
	x := transcript.Expect{AllowIncomplete: *incomplete, AllowUnanchored: *unanchored}
	if *expect != "" {
		h, err := transcript.ParseHash(*expect)
		if err != nil {
			return usagef("--expect: %v", err)
		}
		x.FinalHash = h
	}
	if *root != "" {
		c, err := readCertificate(*root)
		if err != nil {
			return usagef("--root: %v", err)
		}
		x.Root = c
	}
	path := fs.Arg(0)
	rep, err := transcript.Verify(path)
	if err != nil {
		return err
	}
	rep.Describe(env.Stdout, filepath.Dir(path), x)
	if err := rep.Check(x); err != nil {
		return fmt.Errorf("the transcript does not hold:\n%w", err)
	}
	fmt.Fprintln(env.Stdout, "Transcript verified.")
	return nil
}

// readCertificate reads a PEM or DER certificate file.
func readCertificate(path string) (*x509.Certificate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if blk, _ := pem.Decode(raw); blk != nil {
		raw = blk.Bytes
	}
	return x509.ParseCertificate(raw)
}

func ceremonyPlan(_ context.Context, env *Env, args []string) error {
	fs := newFlags(env, "ceremony plan SCRIPT")
	rehearse := fs.Bool("rehearse", false, "plan a rehearsal")
	if err := parseFlags(fs, reorder(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("keyceremony ceremony plan SCRIPT")
	}
	s, err := script.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	e, err := ceremony.New(s, ceremony.Options{Prompter: &termPrompter{env: env}, Rehearse: *rehearse})
	if err != nil {
		return err
	}
	defer e.Close()
	fmt.Fprintf(env.Stdout, "%s (%s)\nScript SHA-256 %x\n  %s\n\n", s.Title, s.Kind, s.SHA256, words.String(s.SHA256[:]))
	for _, st := range e.Plan() {
		roles := make([]string, len(st.Confirm))
		for i, r := range st.Confirm {
			roles[i] = r.Title()
		}
		fmt.Fprintf(env.Stdout, "%2d. %s [%s]\n    Do:      %s\n    Check:   %s\n    Record:  %s\n", st.Number, st.Title, st.ID, st.Do, st.Check, st.Record)
		if len(roles) > 0 {
			fmt.Fprintf(env.Stdout, "    Confirm: %s\n", strings.Join(roles, ", "))
		}
	}
	if *rehearse {
		fmt.Fprintln(env.Stdout, "\nToken: a rehearsal runs on a throwaway SoftHSM token; plan without --rehearse to check the script's token.")
		return nil
	}
	return printTokenReport(env.Stdout, e)
}

// printTokenReport probes the script's token without logging in and says,
// for every operation of the script, whether it runs in the token, in host
// memory, or cannot run; a script the token cannot carry out is an error,
// found before anyone is called into the room.
func printTokenReport(w io.Writer, e *ceremony.Engine) error {
	report, err := e.ProbeToken()
	if err != nil {
		fmt.Fprintf(w, "\nToken NOT CHECKED: %v\n  Plan again where the token is inserted; at the ceremony the token step checks it before any share is issued.\n", err)
		return nil
	}
	id := report.Identity
	fmt.Fprintf(w, "\nToken %q in slot %d (%s %s, serial %s), module %s (%s %s), probed without logging in:\n",
		id.Label, report.Slot, id.Manufacturer, id.Model, id.Serial, report.Module, report.Library.Description, report.Library.LibraryVersion)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, l := range report.Lines {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", l.Operation, l.Where, l.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if blocking := report.Blocking(); len(blocking) > 0 {
		return &ceremony.CannotRunError{Token: id.Label, Lines: blocking}
	}
	return nil
}

func ceremonyTemplate(_ context.Context, env *Env, args []string) error {
	var kinds []string
	for _, k := range script.Kinds {
		if _, err := fs.Stat(assets.Ceremonies, "ceremonies/"+string(k)+".yaml"); err == nil {
			kinds = append(kinds, string(k))
		}
	}
	if len(args) != 1 {
		return usagef("keyceremony ceremony template KIND (one of: %s)", strings.Join(kinds, ", "))
	}
	b, err := fs.ReadFile(assets.Ceremonies, "ceremonies/"+args[0]+".yaml")
	if err != nil {
		return usagef("no template for %q (one of: %s)", args[0], strings.Join(kinds, ", "))
	}
	_, err = env.Stdout.Write(b)
	return err
}

// termPrompter runs a ceremony on the terminal: it prints each step and asks
// each person in turn. Secrets are read without echo when standard input is
// a terminal.
type termPrompter struct {
	env *Env
	tty *bufio.Reader
}

func (p *termPrompter) out() io.Writer { return p.env.Stdout }

func (p *termPrompter) isTerminal() bool {
	f, ok := p.env.Stdin.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// line reads one line of ordinary (echoed) input.
func (p *termPrompter) line(ctx context.Context, prompt string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	fmt.Fprint(p.env.Stderr, prompt)
	var r *bufio.Reader
	if p.isTerminal() {
		// Keep Stdin an *os.File so readSecret still turns echo off.
		if p.tty == nil {
			p.tty = bufio.NewReader(p.env.Stdin)
		}
		r = p.tty
	} else {
		br, ok := p.env.Stdin.(*bufio.Reader)
		if !ok {
			br = bufio.NewReader(p.env.Stdin)
			p.env.Stdin = br
		}
		r = br
	}
	s, err := r.ReadString('\n')
	if err != nil && s == "" {
		if errors.Is(err, io.EOF) {
			return "", fmt.Errorf("%w (end of input)", ceremony.ErrAborted)
		}
		return "", err
	}
	return strings.TrimSpace(s), nil
}

func (p *termPrompter) StepStarted(ctx context.Context, s ceremony.StepInfo) error {
	fmt.Fprintf(p.out(), "\n=== Step %d of %d: %s\n", s.Number, s.Total, s.Title)
	fmt.Fprintf(p.out(), "    Do:     %s\n    Check:  %s\n    Record: %s\n", s.Do, s.Check, s.Record)
	return ctx.Err()
}

func (p *termPrompter) Inform(ctx context.Context, n ceremony.Notice) error {
	if n.Title != "" {
		fmt.Fprintf(p.out(), "--- %s\n", n.Title)
	}
	if n.Warning != "" {
		fmt.Fprintf(p.out(), "    WARNING: %s\n", n.Warning)
	}
	printFacts(p.out(), n.Facts)
	return ctx.Err()
}

func printFacts(w io.Writer, facts []ceremony.Fact) {
	for _, f := range facts {
		fmt.Fprintf(w, "    %-22s %s\n", f.Label+":", f.Value)
		if f.Words != "" {
			ws := strings.Fields(f.Words)
			for i := 0; i < len(ws); i += 8 {
				fmt.Fprintf(w, "    %-22s %s\n", "", strings.Join(ws[i:min(i+8, len(ws))], " "))
			}
		}
	}
}

func (p *termPrompter) Confirm(ctx context.Context, r ceremony.ConfirmRequest) ([]ceremony.Confirmation, error) {
	fmt.Fprintf(p.out(), "    To confirm: %s\n", r.Statement)
	var out []ceremony.Confirmation
	for _, who := range r.Required {
		ans, err := p.line(ctx, fmt.Sprintf("    %s (%s): type yes to confirm, anything else declines: ", who.Name, who.Role.Title()))
		if err != nil {
			return nil, err
		}
		if !strings.EqualFold(ans, "yes") {
			return nil, fmt.Errorf("%w by %s", ceremony.ErrDeclined, who.Name)
		}
		out = append(out, ceremony.Confirmation{Name: who.Name, Role: who.Role})
	}
	return out, nil
}

func (p *termPrompter) DeliverShare(ctx context.Context, r ceremony.DeliveryRequest) (ceremony.Delivery, error) {
	q := r.Quorum
	if q == "" {
		q = "quorum"
	}
	fmt.Fprintf(p.out(), "\n    Share %d of %d of the %s (any %d unlock) for %s. Everyone else looks away from the screen and the media.\n", r.Index, r.Custodians, q, r.Threshold, r.Custodian)
	if r.Problem != "" {
		fmt.Fprintf(p.out(), "    Not accepted: %s\n", r.Problem)
	}
	var d ceremony.Delivery
	for _, m := range r.Media {
		switch m {
		case "card":
			path, err := p.line(ctx, "    Path for the share card PDF on "+r.Custodian+"'s medium (or the printer spool): ")
			if err != nil {
				return d, err
			}
			d.CardPath = path
		case "file":
			path, err := p.line(ctx, "    Path for the encrypted share file on "+r.Custodian+"'s medium: ")
			if err != nil {
				return d, err
			}
			d.FilePath = path
			pass, err := readNewSecret(p.env, "passphrase for "+r.Custodian+"'s share file", "")
			if err != nil {
				return d, err
			}
			d.Passphrase = pass
		}
	}
	return d, nil
}

func (p *termPrompter) PresentShare(ctx context.Context, r ceremony.ShareRequest) (ceremony.ShareInput, error) {
	if r.Quorum == "recovery quorum" {
		fmt.Fprintf(p.out(), "\n    Recovery quorum needed to %s: %d of %d recovery shares accepted.\n", r.Purpose, r.Have, r.Need)
	} else {
		fmt.Fprintf(p.out(), "\n    Quorum needed to %s: %d of %d shares accepted.\n", r.Purpose, r.Have, r.Need)
	}
	if len(r.Presented) > 0 {
		fmt.Fprintf(p.out(), "    Presented: %s\n", strings.Join(r.Presented, ", "))
	}
	fmt.Fprintf(p.out(), "    Waiting:   %s\n", strings.Join(r.Waiting, ", "))
	if r.Problem != "" {
		fmt.Fprintf(p.out(), "    Refused: %s\n", r.Problem)
	}
	var in ceremony.ShareInput
	waiting := map[string]bool{}
	for _, w := range r.Waiting {
		waiting[w] = true
	}
	for i, c := range r.Custodians {
		if waiting[c] {
			fmt.Fprintf(p.out(), "      %d. %s\n", i+1, c)
		}
	}
	for {
		choice, err := p.line(ctx, "    Custodian presenting (number from the list, empty to stop): ")
		if err != nil {
			return in, err
		}
		if choice == "" {
			return in, ceremony.ErrAborted
		}
		if n, err := strconv.Atoi(choice); err == nil && n >= 1 && n <= len(r.Custodians) && waiting[r.Custodians[n-1]] {
			in.Custodian = r.Custodians[n-1]
			break
		}
		fmt.Fprintln(p.out(), "    Not a number from the list above.")
	}
	how, err := p.line(ctx, "    Type the share from the card (t) or open the share file (f)? ")
	if err != nil {
		return in, err
	}
	if strings.HasPrefix(strings.ToLower(how), "f") {
		if in.File, err = p.line(ctx, "    Share file path: "); err != nil {
			return in, err
		}
		in.Passphrase, err = readSecret(p.env, "    Passphrase (not shown): ", "")
		return in, err
	}
	in.Text, err = readSecret(p.env, "    Share, all its groups on one line (not shown): ", "")
	return in, err
}

func (p *termPrompter) Secret(ctx context.Context, r ceremony.SecretRequest) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return readSecret(p.env, fmt.Sprintf("    %s, %s (not shown): ", r.Who.Name, r.Prompt), "")
}
