package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"os"

	"golang.org/x/term"
)

// readSecret reads a PIN or passphrase as bytes the caller must clear: from
// file when given (first line), from the terminal without echo, or as one line
// of standard input when that is not a terminal (scripts, tests).
func readSecret(env *Env, prompt, file string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read PIN file: %w", err)
		}
		line, _, _ := bytes.Cut(b, []byte("\n"))
		out := bytes.Clone(bytes.TrimRight(line, "\r"))
		clear(b)
		if len(out) == 0 {
			return nil, fmt.Errorf("PIN file %s is empty", file)
		}
		return out, nil
	}
	fmt.Fprint(env.Stderr, prompt)
	if f, ok := env.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(env.Stderr)
		if err != nil {
			return nil, fmt.Errorf("read PIN: %w", err)
		}
		if len(b) == 0 {
			return nil, fmt.Errorf("empty PIN")
		}
		return b, nil
	}
	r, ok := env.Stdin.(*bufio.Reader)
	if !ok {
		r = bufio.NewReader(env.Stdin)
		env.Stdin = r // keep buffered input for the next secret
	}
	line, err := r.ReadBytes('\n')
	if err != nil && len(line) == 0 {
		return nil, fmt.Errorf("read PIN from standard input: %w", err)
	}
	out := bytes.Clone(bytes.TrimRight(line, "\r\n"))
	clear(line)
	if len(out) == 0 {
		return nil, fmt.Errorf("empty PIN")
	}
	return out, nil
}

// readNewSecret asks twice on a terminal so a typo cannot set an unknown PIN.
func readNewSecret(env *Env, what, file string) ([]byte, error) {
	first, err := readSecret(env, "New "+what+": ", file)
	if err != nil || file != "" {
		return first, err
	}
	if f, ok := env.Stdin.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
		return first, nil
	}
	second, err := readSecret(env, "Repeat "+what+": ", "")
	if err != nil {
		clear(first)
		return nil, err
	}
	defer clear(second)
	if !bytes.Equal(first, second) {
		clear(first)
		return nil, fmt.Errorf("the two %ss differ", what)
	}
	return first, nil
}
