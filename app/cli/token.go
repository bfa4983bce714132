package cli

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/keyceremony/keyceremony/ceremony"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/softhsm"
)

func init() {
	Register(&Command{Name: "token", Summary: "list and initialise PKCS#11 tokens", Run: func(ctx context.Context, env *Env, args []string) error {
		return subcommand(ctx, env, "token", args, map[string]func(context.Context, *Env, []string) error{
			"list":         tokenList,
			"init":         tokenInit,
			"capabilities": tokenCapabilities,
		})
	}})
	Register(&Command{Name: "key", Summary: "generate and list keys on a token", Run: func(ctx context.Context, env *Env, args []string) error {
		return subcommand(ctx, env, "key", args, map[string]func(context.Context, *Env, []string) error{
			"generate": keyGenerate,
			"list":     keyList,
		})
	}})
}

func newFlags(env *Env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("keyceremony "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return usagef("%s", fs.Name())
		}
		return usagef("%v", err)
	}
	return nil
}

// openModule resolves --module (or the built-in SoftHSM) and opens it.
func openModule(path string) (*hsm.Module, error) {
	p, err := softhsm.Resolve(path)
	if err != nil {
		return nil, err
	}
	return hsm.Open(p)
}

type tokenListOutput struct {
	Module  string                `json:"module"`
	Info    hsm.ModuleInfo        `json:"info"`
	Slots   []hsm.Slot            `json:"slots"`
	Modules []hsm.ModuleCandidate `json:"modulesFound"`
}

func tokenList(_ context.Context, env *Env, args []string) error {
	fs := newFlags(env, "token list")
	module := fs.String("module", "", "PKCS#11 module path (default: $KEYCEREMONY_MODULE, else the built-in SoftHSM2)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	m, err := openModule(*module)
	if err != nil {
		return err
	}
	defer m.Close()
	out := tokenListOutput{Module: m.Path(), Modules: hsm.DiscoverModules()}
	if out.Info, err = m.Info(); err != nil {
		return err
	}
	if out.Slots, err = m.Slots(); err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(env.Stdout, out)
	}
	fmt.Fprintf(env.Stdout, "Module %s (%s %s)\n", out.Module, out.Info.Manufacturer, out.Info.LibraryVersion)
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SLOT\tLABEL\tSERIAL\tMANUFACTURER\tMODEL\tFLAGS")
	for _, s := range out.Slots {
		if s.Token == nil {
			fmt.Fprintf(tw, "%d\t(no token)\t\t%s\t\t\n", s.ID, s.Manufacturer)
			continue
		}
		label := s.Token.Label
		if !s.Token.Initialized {
			label = "(blank)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", s.ID, label, s.Token.Serial, s.Token.Manufacturer, s.Token.Model, strings.Join(s.Token.Flags(), ","))
	}
	return tw.Flush()
}

// multiFlag is a flag that may be given more than once.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// tokenCapabilities prints what a token can do with Key Ceremony (root keys,
// signing, BYOK, backup), found without logging in. With several --module
// flags and --markdown it prints the top-level README's table.
func tokenCapabilities(_ context.Context, env *Env, args []string) error {
	fs := newFlags(env, "token capabilities")
	var modules multiFlag
	fs.Var(&modules, "module", "PKCS#11 module path; repeat for several (default: $KEYCEREMONY_MODULE, else the built-in SoftHSM2)")
	uri := fs.String("token", "", "PKCS#11 URI of the token (default: each module's first initialised token)")
	asJSON := fs.Bool("json", false, "print JSON")
	markdown := fs.Bool("markdown", false, "print a Markdown table, one row per module")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(modules) == 0 {
		modules = multiFlag{""}
	}
	var rows []*ceremony.AppCapabilities
	for _, mod := range modules {
		row, err := moduleCapabilities(mod, *uri)
		if err != nil {
			return err
		}
		rows = append(rows, row)
	}
	switch {
	case *asJSON:
		return writeJSON(env.Stdout, rows)
	case *markdown:
		_, err := io.WriteString(env.Stdout, ceremony.MarkdownTable(rows))
		return err
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\n", r.Implementation)
		for _, l := range [][2]string{{"root keys", r.Root}, {"signing", r.Signing}, {"BYOK entirely in the token", r.BYOKInToken},
			{"BYOK with host steps", r.BYOKWithHost}, {"root key backup", r.Backup}} {
			fmt.Fprintf(tw, "  %s\t%s\n", l[0], l[1])
		}
	}
	return tw.Flush()
}

// moduleCapabilities opens a module and works out what its token (uri, or
// the first initialised one) can do.
func moduleCapabilities(module, uri string) (*ceremony.AppCapabilities, error) {
	m, err := openModule(module)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	var slot hsm.Slot
	if uri != "" {
		u, err := hsm.ParseURI(uri)
		if err != nil {
			return nil, usagef("%v", err)
		}
		if slot, err = m.FindToken(u); err != nil {
			return nil, err
		}
	} else {
		slots, err := m.Slots()
		if err != nil {
			return nil, err
		}
		for _, s := range slots {
			if s.Token != nil && s.Token.Initialized {
				slot = s
				break
			}
		}
		if slot.Token == nil {
			return nil, fmt.Errorf("%s has no initialised token: give --token, or initialise one ('keyceremony token init')", m.Path())
		}
	}
	return ceremony.TokenCapabilities(m, slot)
}

func tokenInit(_ context.Context, env *Env, args []string) error {
	fs := newFlags(env, "token init")
	module := fs.String("module", "", "PKCS#11 module path (default: the built-in SoftHSM2)")
	label := fs.String("label", "", "token label (required, at most 32 bytes)")
	slot := fs.Int("slot", -1, "slot to initialise (default: the first blank token)")
	soFile := fs.String("so-pin-file", "", "read the new SO PIN from this file instead of the terminal")
	pinFile := fs.String("pin-file", "", "read the new user PIN from this file instead of the terminal")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *label == "" {
		return usagef("token init: --label is required")
	}
	m, err := openModule(*module)
	if err != nil {
		return err
	}
	defer m.Close()
	slots, err := m.Slots()
	if err != nil {
		return err
	}
	var target *hsm.Slot
	for i := range slots {
		s := &slots[i]
		if s.Token == nil {
			continue
		}
		if *slot >= 0 && s.ID == uint(*slot) || *slot < 0 && !s.Token.Initialized {
			target = s
			break
		}
	}
	if target == nil {
		return fmt.Errorf("token init: no blank token found (give --slot to re-initialise one; that erases it)")
	}
	so, err := readNewSecret(env, "SO PIN", *soFile)
	if err != nil {
		return err
	}
	defer clear(so)
	user, err := readNewSecret(env, "user PIN", *pinFile)
	if err != nil {
		return err
	}
	defer clear(user)
	tok, err := m.InitTokenWithPINs(target.ID, *label, so, user)
	if err != nil {
		return err
	}
	defer tok.Close()
	info, err := tok.Info()
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Initialised token %q serial %s: %s\n", info.Label, info.Serial, tok.URI())
	return nil
}

// tryAnyway is the flag that lets a login go ahead although the token
// reports few PIN tries left.
func tryAnyway(fs *flag.FlagSet) *bool {
	return fs.Bool("try-pin-anyway", false, "try the PIN although the token reports few tries left (never on its final try): only when you are sure of it")
}

// openTokenLoggedIn opens the token named by uri and logs the user in.
func openTokenLoggedIn(env *Env, module, uri, pinFile string, anyway bool) (*hsm.Module, *hsm.Token, hsm.URI, error) {
	u, err := hsm.ParseURI(uri)
	if err != nil {
		return nil, nil, u, usagef("%v", err)
	}
	if module == "" {
		module = u.ModulePath
	}
	m, err := openModule(module)
	if err != nil {
		return nil, nil, u, err
	}
	tok, err := m.OpenToken(u)
	if err != nil {
		m.Close()
		return nil, nil, u, err
	}
	pin, err := readSecret(env, fmt.Sprintf("User PIN for token %q: ", tok.Label()), pinFile)
	if err == nil {
		if anyway {
			tok.AllowOneMoreTry(false)
		}
		err = tok.Login(pin)
		clear(pin)
	}
	if errors.Is(err, hsm.ErrPINTriesLow) {
		err = fmt.Errorf("%w (--try-pin-anyway tries once more, if you are sure of the PIN)", err)
	}
	if err != nil {
		tok.Close()
		m.Close()
		return nil, nil, u, err
	}
	return m, tok, u, nil
}

func keyGenerate(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "key generate")
	module := fs.String("module", "", "PKCS#11 module path (default: the URI's module-path, else the built-in SoftHSM2)")
	uri := fs.String("token", "", "PKCS#11 URI of the token (required), e.g. pkcs11:token=Root%20CA")
	typ := fs.String("type", "ec-p384", "key type: "+strings.Join(hsm.KeyTypes(), ", "))
	label := fs.String("label", "", "key label (required, unique on the token)")
	extractable := fs.Bool("extractable", false, "allow the key to leave the token wrapped (only for keys meant for backup or export)")
	pinFile := fs.String("pin-file", "", "read the user PIN from this file instead of the terminal")
	anyway := tryAnyway(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *uri == "" || *label == "" {
		return usagef("key generate: --token and --label are required")
	}
	kt, err := hsm.ParseKeyType(*typ)
	if err != nil {
		return usagef("%v", err)
	}
	m, tok, _, err := openTokenLoggedIn(env, *module, *uri, *pinFile, *anyway)
	if err != nil {
		return err
	}
	defer m.Close()
	defer tok.Close()
	k, err := tok.GenerateKey(ctx, hsm.KeySpec{Type: kt, Label: *label, Extractable: *extractable})
	if err != nil {
		return err
	}
	for _, c := range k.Unmet() {
		fmt.Fprintf(env.Stderr, "NOTE: the token does not honour %s\n", c)
	}
	return printKeys(env.Stdout, []*hsm.Key{k}, *asJSON)
}

func keyList(_ context.Context, env *Env, args []string) error {
	fs := newFlags(env, "key list")
	module := fs.String("module", "", "PKCS#11 module path (default: the URI's module-path, else the built-in SoftHSM2)")
	uri := fs.String("token", "", "PKCS#11 URI of the token (required); object=/id=/type= narrow the list")
	pinFile := fs.String("pin-file", "", "read the user PIN from this file instead of the terminal")
	anyway := tryAnyway(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *uri == "" {
		return usagef("key list: --token is required")
	}
	m, tok, u, err := openTokenLoggedIn(env, *module, *uri, *pinFile, *anyway)
	if err != nil {
		return err
	}
	defer m.Close()
	defer tok.Close()
	keys, err := tok.FindKeys(u.KeyFilter())
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.Problem() != nil {
			fmt.Fprintf(env.Stderr, "WARNING: key %q (id %x) cannot be read: %v; the other keys are listed\n", k.Label(), k.ID(), k.Problem())
		}
	}
	return printKeys(env.Stdout, keys, *asJSON)
}

type keyJSON struct {
	Label       string   `json:"label"`
	ID          string   `json:"id"`
	Class       string   `json:"class"`
	Type        string   `json:"type"`
	Sensitive   bool     `json:"sensitive"`
	Extractable bool     `json:"extractable"`
	Fingerprint string   `json:"sha256SPKI,omitempty"`
	Uses        []string `json:"uses"`
	URI         string   `json:"uri"`
	Problem     string   `json:"problem,omitempty"` // why the key cannot be read
}

func printKeys(w io.Writer, keys []*hsm.Key, asJSON bool) error {
	out := make([]keyJSON, 0, len(keys))
	for _, k := range keys {
		kj := keyJSON{Label: k.Label(), ID: hex.EncodeToString(k.ID()), Class: k.Class().String(), Type: k.Type().String(),
			Sensitive: k.Sensitive(), Extractable: k.Extractable(), Fingerprint: hex.EncodeToString(k.Fingerprint()), Uses: k.Uses(), URI: k.URI().String()}
		if k.Problem() != nil {
			kj.Problem = k.Problem().Error()
		}
		out = append(out, kj)
	}
	if asJSON {
		return writeJSON(w, out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LABEL\tCLASS\tTYPE\tID\tSENSITIVE\tEXTRACTABLE\tUSES\tSHA-256(SPKI)")
	for _, k := range out {
		fp := k.Fingerprint
		if k.Problem != "" {
			fp = "UNREADABLE (see the warning)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%v\t%s\t%s\n", k.Label, k.Class, k.Type, k.ID, k.Sensitive, k.Extractable, strings.Join(k.Uses, ","), fp)
	}
	return tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
