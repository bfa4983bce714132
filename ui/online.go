package ui

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keyceremony/keyceremony/audit/athena"
	"github.com/keyceremony/keyceremony/audit/awsfetch"
	"github.com/keyceremony/keyceremony/audit/ingest"
	"github.com/keyceremony/keyceremony/audit/kmsinventory"
	"github.com/keyceremony/keyceremony/audit/s3trail"
	"github.com/keyceremony/keyceremony/audit/store"
	"github.com/keyceremony/keyceremony/ceremony/certprofile"
	"github.com/keyceremony/keyceremony/ceremony/kmsimport"
	"github.com/keyceremony/keyceremony/ceremony/online"
)

// The Online actions page: the connected-side steps of the CLI (aws byok,
// aws pca, aws inventory, audit fetch, archive put) as buttons. It exists
// only when Settings enable it, and each action contacts AWS only after
// its button is pressed and a confirmation names what will happen. The
// work is done by ceremony/online and audit/awsfetch, as for the CLI.

// Connection preferences: where to connect, never credentials (those come
// from the standard AWS chain: profile files, environment, SSO).
const (
	prefOnlineProfile  = "online.profile"
	prefOnlineRegion   = "online.region"
	prefOnlineEndpoint = "online.endpoint"
)

// onlineAction is one action's work: it gets the connection and a way to
// report progress (callable from any goroutine) and returns the text to show.
type onlineAction func(ctx context.Context, conn online.Connection, progress func(string)) (string, error)

type onlinePage struct {
	w                         *MainWindow
	profile, region, endpoint *widget.Entry
	status, result            *widget.Label
	cancel                    *widget.Button
	buttons                   []*widget.Button
	stop                      context.CancelFunc
	running                   bool
	// writesAudit names the actions (by title) that load the audit
	// database: when one ends, an open Audit page lists again.
	writesAudit map[string]bool
}

func (w *MainWindow) onlinePage() fyne.CanvasObject {
	if w.online != nil {
		return w.online
	}
	s := w.settings()
	p := &onlinePage{w: w, profile: widget.NewEntry(), region: widget.NewEntry(), endpoint: widget.NewEntry(), writesAudit: map[string]bool{}}
	p.profile.SetPlaceHolder("default credential chain")
	p.profile.SetText(s.prefs.String(prefOnlineProfile))
	p.region.SetPlaceHolder("from the profile or AWS_REGION")
	p.region.SetText(s.prefs.String(prefOnlineRegion))
	p.endpoint.SetPlaceHolder("AWS's (set for a VPC endpoint)")
	p.endpoint.SetText(s.prefs.String(prefOnlineEndpoint))
	p.status = boldLabel("")
	p.result = wrapLabel("No action run yet.")
	p.result.TextStyle = fyne.TextStyle{Monospace: true}
	p.cancel = widget.NewButtonWithIcon("Cancel", theme.CancelIcon(), func() {
		if p.stop != nil {
			p.stop()
		}
	})
	p.cancel.Disable()

	warn := wrapLabel("This machine is connected. Each action below contacts AWS only when you press its button and confirm. Credentials come from the standard AWS chain (profile, environment, SSO) and are never stored by Key Ceremony. Do not use these on the air-gapped laptop: carry the files instead.")
	warn.Importance = widget.WarningImportance
	conn := widget.NewForm(
		widget.NewFormItem("AWS profile", p.profile),
		widget.NewFormItem("Region", p.region),
		widget.NewFormItem("Endpoint URL", p.endpoint),
	)
	body := container.NewVBox(heading("Online actions"), warn, conn,
		p.byokPrepareCard(), p.byokImportCard(), p.pcaCSRCard(), p.pcaImportCard(),
		p.fetchCard(), p.inventoryCard(), p.trailCard(), p.athenaCard(), p.archiveCard(),
		widget.NewSeparator(), container.NewHBox(p.status, p.cancel), p.result)
	w.online, w.onlineActions = container.NewVScroll(body), p
	return w.online
}

func (p *onlinePage) connection() online.Connection {
	return online.Connection{Profile: strings.TrimSpace(p.profile.Text), Region: strings.TrimSpace(p.region.Text), Endpoint: strings.TrimSpace(p.endpoint.Text)}
}

// button makes an action's button. prepare runs on the UI goroutine when
// the button is pressed: it reads and checks the form (a mistake is shown
// before anything else happens) and returns the work, which runs in the
// background after the confirmation, touching no widget.
func (p *onlinePage) button(label, what string, prepare func() (onlineAction, error)) *widget.Button {
	b := widget.NewButtonWithIcon(label, theme.UploadIcon(), nil)
	b.OnTapped = func() {
		if p.running {
			return
		}
		act, err := prepare()
		if err != nil {
			p.status.SetText(strings.TrimSuffix(label, "…") + ": not started")
			p.result.Importance = widget.DangerImportance
			p.result.SetText(err.Error())
			return
		}
		p.confirm(label, what, act)
	}
	b.Importance = widget.HighImportance
	p.buttons = append(p.buttons, b)
	return b
}

func (p *onlinePage) confirm(label, what string, act onlineAction) {
	c := p.connection()
	where := "the default profile"
	if c.Profile != "" {
		where = "profile " + c.Profile
	}
	if c.Region != "" {
		where += ", region " + c.Region
	}
	if c.Endpoint != "" {
		where += ", endpoint " + c.Endpoint
	}
	msg := wrapLabel(what + "\n\nThis contacts AWS now (" + where + ").")
	d := dialog.NewCustomConfirm("Contact AWS?", "Contact AWS", "Cancel", container.NewGridWrap(fyne.NewSize(460, 140), msg), func(ok bool) {
		if ok {
			p.start(strings.TrimSuffix(label, "…"), c, act)
		}
	}, p.w.Window)
	d.Show()
}

func (p *onlinePage) start(title string, c online.Connection, act onlineAction) {
	prefs := p.w.settings().prefs
	prefs.SetString(prefOnlineProfile, c.Profile)
	prefs.SetString(prefOnlineRegion, c.Region)
	prefs.SetString(prefOnlineEndpoint, c.Endpoint)
	ctx, stop := context.WithCancel(context.Background())
	p.stop, p.running = stop, true
	for _, b := range p.buttons {
		b.Disable()
	}
	p.cancel.Enable()
	p.status.SetText(title + ": contacting AWS…")
	p.result.Importance = widget.MediumImportance
	p.result.SetText("")
	progress := func(s string) { fyne.Do(func() { p.result.SetText(s) }) }
	go func() {
		out, err := act(ctx, c, progress)
		stop()
		fyne.Do(func() {
			p.running = false
			for _, b := range p.buttons {
				b.Enable()
			}
			p.cancel.Disable()
			if err != nil {
				p.status.SetText(title + ": failed")
				out = strings.TrimSpace(out + "\n" + err.Error())
				p.result.Importance = widget.DangerImportance
			} else {
				p.status.SetText(title + ": done")
				p.result.Importance = widget.SuccessImportance
			}
			p.result.SetText(out)
			if p.writesAudit[title] && p.w.audit != nil {
				p.w.audit.Apply() // even after a failure: what was committed is there
			}
		})
	}()
}

// loadAudit is an action that loads the audit database db: it connects,
// opens the database and runs load with both.
func loadAudit(db string, load func(ctx context.Context, cfg aws.Config, c online.Connection, st *store.Store, progress func(string)) (string, error)) onlineAction {
	return func(ctx context.Context, c online.Connection, progress func(string)) (string, error) {
		cfg, err := c.Load(ctx)
		if err != nil {
			return "", err
		}
		st, err := store.Open(ctx, db)
		if err != nil {
			return "", err
		}
		defer st.Close()
		return load(ctx, cfg, c, st, progress)
	}
}

// loadsAudit marks b's action as one that loads the audit database.
func (p *onlinePage) loadsAudit(b *widget.Button) *widget.Button {
	p.writesAudit[strings.TrimSuffix(b.Text, "…")] = true
	return b
}

// pathRow is an entry for a path with a button that picks a folder; with
// name set, the entry becomes folder/name (outputs are written new, so no
// save dialog creates the file first).
func (p *onlinePage) pathRow(e *widget.Entry, name string) fyne.CanvasObject {
	pick := widget.NewButtonWithIcon("", theme.FolderOpenIcon(), func() {
		dialog.NewFolderOpen(func(u fyne.ListableURI, err error) {
			if err != nil || u == nil {
				return
			}
			if name != "" {
				e.SetText(filepath.Join(u.Path(), name))
			} else {
				e.SetText(u.Path())
			}
		}, p.w.Window).Show()
	})
	return container.NewBorder(nil, nil, nil, pick, e)
}

func card(title, sub string, form *widget.Form, b *widget.Button) fyne.CanvasObject {
	return widget.NewCard(title, sub, container.NewVBox(form, container.NewHBox(b)))
}

// required checks name, value pairs in order.
func required(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if strings.TrimSpace(pairs[i+1]) == "" {
			return fmt.Errorf("%s is required", pairs[i])
		}
	}
	return nil
}

func (p *onlinePage) byokPrepareCard() fyne.CanvasObject {
	keyID, out := widget.NewEntry(), widget.NewEntry()
	keyID.SetPlaceHolder("empty: create a new EXTERNAL key")
	var specs, algs []string
	for _, c := range kmsimport.Allowed() {
		if !contains(specs, string(c.Spec)) {
			specs = append(specs, string(c.Spec))
		}
	}
	for _, a := range kmsimport.Algorithms() {
		algs = append(algs, string(a))
	}
	spec, alg := widget.NewSelect(specs, nil), widget.NewSelect(algs, nil)
	spec.SetSelected(string(kmsimport.SymmetricDefault))
	alg.SetSelected(string(kmsimport.RSAAESKeyWrapSHA256))
	wks := widget.NewSelect([]string{"RSA_2048", "RSA_3072", "RSA_4096"}, nil)
	wks.SetSelected("RSA_4096")
	b := p.button("Prepare import parameters…", "Create an EXTERNAL KMS key (or use the one given) and fetch its import parameters into the directory.", func() (onlineAction, error) {
		req := online.PrepareRequest{KeyID: strings.TrimSpace(keyID.Text), KeySpec: kmsimport.KeySpec(spec.Selected),
			Algorithm: kmsimport.Algorithm(alg.Selected), WrappingKeySpec: kmsimport.WrappingKeySpec(wks.Selected)}
		dir := out.Text
		if err := required("The parameters directory", dir); err != nil {
			return nil, err
		}
		// Refused here, before AWS is asked for anything.
		if err := kmsimport.Check(req.KeySpec, req.Algorithm, req.WrappingKeySpec); err != nil {
			return nil, err
		}
		return func(ctx context.Context, c online.Connection, _ func(string)) (string, error) {
			k, err := online.NewKMS(ctx, c)
			if err != nil {
				return "", err
			}
			res, err := k.PrepareBYOK(ctx, req, dir)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("KMS key %s (%s, origin EXTERNAL; created now: %v).\nWrote %s: carry it to the byok-wrap ceremony.\nThe parameters expire at %s.",
				res.KeyARN, res.KeySpec, res.Created, filepath.Join(dir, online.ParametersFile), res.ParametersValidTo.Format(time.RFC3339)), nil
		}, nil
	})
	form := widget.NewForm(widget.NewFormItem("Existing key", keyID), widget.NewFormItem("Key spec", spec), widget.NewFormItem("Wrapping algorithm", alg),
		widget.NewFormItem("Wrapping key spec", wks), widget.NewFormItem("Parameters directory", p.pathRow(out, "")))
	return card("BYOK: prepare the import", "aws byok prepare", form, b)
}

func (p *onlinePage) byokImportCard() fyne.CanvasObject {
	dirEntry := widget.NewEntry()
	b := p.button("Import key material…", "Check the byok-wrap ceremony's output against its manifest, import the key material into AWS KMS and confirm the key is Enabled.", func() (onlineAction, error) {
		dir := dirEntry.Text
		if err := required("The ceremony's output directory", dir); err != nil {
			return nil, err
		}
		return func(ctx context.Context, c online.Connection, _ func(string)) (string, error) {
			k, err := online.NewKMS(ctx, c)
			if err != nil {
				return "", err
			}
			res, err := k.ImportBYOK(ctx, dir, time.Now())
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("Imported into %s: key state %s, key material %s.\nEvidence written to %s.",
				res.KeyARN, res.KeyState, res.KeyMaterialID, filepath.Join(dir, online.ImportResultFile)), nil
		}, nil
	})
	return card("BYOK: import the ceremony's output", "aws byok import", widget.NewForm(widget.NewFormItem("Ceremony output", p.pathRow(dirEntry, ""))), b)
}

func (p *onlinePage) pcaCSRCard() fyne.CanvasObject {
	arnEntry, out := widget.NewEntry(), widget.NewEntry()
	arnEntry.SetPlaceHolder("arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID")
	b := p.button("Get CSR…", "Fetch the subordinate CA's certificate signing request from AWS Private CA and write it for the ca-signing ceremony.", func() (onlineAction, error) {
		arn, file := strings.TrimSpace(arnEntry.Text), out.Text
		if err := required("The CA ARN", arn, "The CSR file", file); err != nil {
			return nil, err
		}
		return func(ctx context.Context, c online.Connection, _ func(string)) (string, error) {
			pca, err := online.NewPCA(ctx, c)
			if err != nil {
				return "", err
			}
			csr, err := pca.GetCSR(ctx, arn, file)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("Wrote the CSR (subject %s, %s key) to %s: carry it to the ca-signing ceremony.", csr.Subject, certprofile.KeyType(csr.PublicKey), file), nil
		}, nil
	})
	form := widget.NewForm(widget.NewFormItem("CA ARN", arnEntry), widget.NewFormItem("CSR file", p.pathRow(out, "subordinate-ca.csr")))
	return card("Private CA: get the CSR", "aws pca get-csr", form, b)
}

func (p *onlinePage) pcaImportCard() fyne.CanvasObject {
	arnEntry, dirEntry := widget.NewEntry(), widget.NewEntry()
	b := p.button("Install certificate…", "Check the ca-signing ceremony's certificate and chain locally, install them into AWS Private CA and confirm the CA is ACTIVE.", func() (onlineAction, error) {
		arn, dir := strings.TrimSpace(arnEntry.Text), dirEntry.Text
		if err := required("The CA ARN", arn, "The signing ceremony's output directory", dir); err != nil {
			return nil, err
		}
		return func(ctx context.Context, c online.Connection, _ func(string)) (string, error) {
			pca, err := online.NewPCA(ctx, c)
			if err != nil {
				return "", err
			}
			res, err := pca.ImportCertificate(ctx, arn, dir, time.Now())
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("Installed the certificate (SHA-256 %s): status %s, valid %s to %s.\nEvidence written to %s.",
				res.CertificateSHA256, res.Status, res.NotBefore.Format(time.RFC3339), res.NotAfter.Format(time.RFC3339), filepath.Join(dir, online.PCAImportResultFile)), nil
		}, nil
	})
	form := widget.NewForm(widget.NewFormItem("Subordinate CA ARN", arnEntry), widget.NewFormItem("Signing output", p.pathRow(dirEntry, "")))
	return card("Private CA: install the certificate", "aws pca import-cert", form, b)
}

// parseDay reads an optional YYYY-MM-DD (UTC).
func parseDay(label, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %q is not YYYY-MM-DD", label, s)
	}
	return t, nil
}

// parseDays reads a period's first and last day (labelled for messages).
func parseDays(firstLabel, first, lastLabel, last string) (time.Time, time.Time, error) {
	a, err := parseDay(firstLabel, first)
	if err != nil {
		return a, a, err
	}
	b, err := parseDay(lastLabel, last)
	return a, b, err
}

func dayEntry(hint string) *widget.Entry {
	e := widget.NewEntry()
	e.SetPlaceHolder("YYYY-MM-DD" + hint)
	return e
}

func (p *onlinePage) fetchCard() fyne.CanvasObject {
	from, to := dayEntry(" (default: 90 days ago)"), dayEntry(" (default: now)")
	b := p.button("Fetch events…", "Fetch KMS events with CloudTrail LookupEvents (2 requests per second) into the audit database, from where the last fetch stopped.", func() (onlineAction, error) {
		var opt awsfetch.Options
		var err error
		if opt.From, opt.To, err = parseDays("From", from.Text, "To", to.Text); err != nil {
			return nil, err
		}
		if !opt.To.IsZero() {
			opt.To = opt.To.AddDate(0, 0, 1) // the last day is included
		}
		db := p.w.settings().AuditDB()
		return loadAudit(db, func(ctx context.Context, cfg aws.Config, c online.Connection, st *store.Store, progress func(string)) (string, error) {
			opt.Endpoint = c.Endpoint
			opt.Progress = func(pr awsfetch.Progress) {
				progress(fmt.Sprintf("%s/%s: %d pages, %d events fetched, %d new, %d retried, ETA %s", pr.Account, pr.Region, pr.Pages, pr.Events, pr.New, pr.Retries, pr.ETA.Round(time.Second)))
			}
			sum, err := awsfetch.Fetch(ctx, cfg, st, opt)
			if sum == nil {
				return "", err
			}
			return fmt.Sprintf("Account %s, region %s, %s to %s: %d pages, %d KMS events, %d new, %d already loaded; %d calls retried.\nDatabase: %s",
				sum.Account, sum.Region, sum.From.Format(time.RFC3339), sum.To.Format(time.RFC3339), sum.Pages, sum.Events, sum.New, sum.Duplicate, sum.Retries, st.Path()), err
		}), nil
	})
	form := widget.NewForm(widget.NewFormItem("From", from), widget.NewFormItem("To", to))
	return card("Audit: fetch KMS events", "audit fetch (CloudTrail LookupEvents, the last 90 days)", form, p.loadsAudit(b))
}

func (p *onlinePage) inventoryCard() fyne.CanvasObject {
	out := widget.NewEntry()
	out.SetPlaceHolder("a new file, e.g. kms-inventory.json")
	b := p.button("Export inventory…", "List every KMS key of the region with its metadata, rotation status and key materials, aliases and last use (read-only calls) and write the inventory file.", func() (onlineAction, error) {
		file := out.Text
		if err := required("The inventory file", file); err != nil {
			return nil, err
		}
		return func(ctx context.Context, c online.Connection, progress func(string)) (string, error) {
			cfg, err := c.Load(ctx)
			if err != nil {
				return "", err
			}
			sum, err := kmsinventory.New(cfg, c.Endpoint).Export(ctx, file, kmsinventory.Options{Progress: func(pr kmsinventory.Progress) {
				progress(fmt.Sprintf("%d of %d keys examined", pr.Done, pr.Keys))
			}})
			if err != nil {
				return "", err
			}
			return sum.String(), nil
		}, nil
	})
	name := "kms-inventory-" + time.Now().UTC().Format("20060102") + ".json"
	return card("Audit: export the key inventory", "aws inventory", widget.NewForm(widget.NewFormItem("Inventory file", p.pathRow(out, name))), b)
}

func (p *onlinePage) trailCard() fyne.CanvasObject {
	bucket, prefix, accounts, regions, out := widget.NewEntry(), widget.NewEntry(), widget.NewEntry(), widget.NewEntry(), widget.NewEntry()
	from, to := dayEntry(""), dayEntry(" (included)")
	accounts.SetPlaceHolder("comma-separated; empty: every account in the bucket")
	regions.SetPlaceHolder("comma-separated; empty: every region in the bucket")
	load := widget.NewCheck("Ingest into the audit database afterwards", nil)
	b := p.button("Download trail logs…", "List the trail's log files for each day in the S3 bucket and download those not already here (read-only), optionally loading them into the audit database.", func() (onlineAction, error) {
		if err := required("The trail bucket", bucket.Text, "The first day", from.Text, "The last day", to.Text, "The download directory", out.Text); err != nil {
			return nil, err
		}
		first, last, err := parseDays("First day", from.Text, "Last day", to.Text)
		if err != nil {
			return nil, err
		}
		req := s3trail.Request{Bucket: strings.TrimSpace(bucket.Text), Prefix: strings.TrimSpace(prefix.Text),
			Accounts: s3trail.ParseList(accounts.Text), Regions: s3trail.ParseList(regions.Text), From: first, To: last, Dir: out.Text}
		ingestToo, db := load.Checked, p.w.settings().AuditDB()
		return func(ctx context.Context, c online.Connection, progress func(string)) (string, error) {
			cfg, err := c.Load(ctx)
			if err != nil {
				return "", err
			}
			req.Progress = func(pr s3trail.Progress) {
				progress(fmt.Sprintf("%s: %d files listed, %d downloaded, %d already here, %d failed", pr.Day, pr.Listed, pr.Downloaded, pr.Skipped, pr.Failed))
			}
			sum, err := s3trail.New(cfg, c.Endpoint).Download(ctx, req)
			if sum == nil {
				return "", err
			}
			text := sum.String()
			if err != nil || !ingestToo || len(sum.DayDirs) == 0 {
				return text, err
			}
			progress(text + "Ingesting…")
			st, err := store.Open(ctx, db)
			if err != nil {
				return text, err
			}
			defer st.Close()
			res, err := ingest.Run(ctx, st, sum.DayDirs, ingest.Options{})
			if res != nil {
				text += fmt.Sprintf("Ingested into %s: %d files loaded, %d already loaded, %d failed; %d new KMS events.", st.Path(), res.FilesOK, res.FilesDuplicate, res.FilesFailed, res.KMSNew)
				if err == nil && res.FilesFailed > 0 {
					err = errors.New("some files could not be loaded: keyceremony audit ingest names them")
				}
			}
			return text, err
		}, nil
	})
	form := widget.NewForm(widget.NewFormItem("Trail bucket", bucket), widget.NewFormItem("Key prefix", prefix), widget.NewFormItem("Accounts", accounts),
		widget.NewFormItem("Regions", regions), widget.NewFormItem("First day", from), widget.NewFormItem("Last day", to),
		widget.NewFormItem("Download directory", p.pathRow(out, "")), widget.NewFormItem("", load))
	return card("Audit: download trail logs from S3", "audit fetch --s3-bucket", form, p.loadsAudit(b))
}

// athenaCard runs the KMS query on the organisation's Athena table over
// its trail (audit athena): the period's records, or only their counts.
func (p *onlinePage) athenaCard() fyne.CanvasObject {
	database, table, workgroup, output, where := widget.NewEntry(), widget.NewEntry(), widget.NewEntry(), widget.NewEntry(), widget.NewEntry()
	workgroup.SetPlaceHolder("primary")
	output.SetPlaceHolder("s3://BUCKET/PREFIX/ (unless the workgroup sets one)")
	where.SetPlaceHolder(`e.g. "timestamp" BETWEEN '2025/03/01' AND '2025/03/31'`)
	from, to := dayEntry(""), dayEntry(" (included)")
	aggregate := widget.NewCheck("Counts only (per day, key, operation and principal): reports then say they rest on aggregates", nil)
	b := p.button("Run Athena query…", "Run the KMS query on the Athena table over the trail (Athena bills the data it scans: give a partition condition) and load the result into the audit database.", func() (onlineAction, error) {
		if err := required("The Athena database", database.Text, "The CloudTrail table", table.Text, "Events from", from.Text, "Events to", to.Text); err != nil {
			return nil, err
		}
		first, last, err := parseDays("Events from", from.Text, "Events to", to.Text)
		if err != nil {
			return nil, err
		}
		o := athena.Options{Database: strings.TrimSpace(database.Text), Table: strings.TrimSpace(table.Text),
			Workgroup: strings.TrimSpace(workgroup.Text), OutputLocation: strings.TrimSpace(output.Text),
			From: first, To: last.AddDate(0, 0, 1), Aggregate: aggregate.Checked, Where: strings.TrimSpace(where.Text),
			Args: []string{"gui", "online", "athena"}}
		if err := athena.Check(o); err != nil {
			return nil, err
		}
		db := p.w.settings().AuditDB()
		return loadAudit(db, func(ctx context.Context, cfg aws.Config, c online.Connection, st *store.Store, progress func(string)) (string, error) {
			o.Progress = func(pr athena.Progress) { progress(pr.String()) }
			sum, err := athena.Run(ctx, athena.NewClient(cfg, c.Endpoint), st, o)
			if sum == nil {
				return "", err
			}
			return sum.Text(st.Path()), err
		}), nil
	})
	form := widget.NewForm(widget.NewFormItem("Athena database", database), widget.NewFormItem("CloudTrail table", table),
		widget.NewFormItem("Workgroup", workgroup), widget.NewFormItem("Result location", output),
		widget.NewFormItem("Events from", from), widget.NewFormItem("Events to", to),
		widget.NewFormItem("Partition condition", where), widget.NewFormItem("", aggregate))
	return card("Audit: query the organisation trail with Athena", "audit athena", form, p.loadsAudit(b))
}

func (p *onlinePage) archiveCard() fyne.CanvasObject {
	bucket, prefix, until := widget.NewEntry(), widget.NewEntry(), dayEntry("")
	mode := widget.NewSelect([]string{"COMPLIANCE", "GOVERNANCE"}, nil)
	mode.SetSelected("COMPLIANCE")
	files := widget.NewMultiLineEntry()
	files.SetPlaceHolder("one file per line: transcripts, their PDFs, reports")
	files.SetMinRowsVisible(3)
	b := p.button("Archive…", "Upload the files to the S3 bucket under Object Lock with the retain-until date, each with its SHA-256 for S3 to verify. A bucket without Object Lock is refused.", func() (onlineAction, error) {
		if err := required("The evidence bucket", bucket.Text, "Retain until", until.Text, "The files", files.Text); err != nil {
			return nil, err
		}
		retain, err := parseDay("Retain until", until.Text)
		if err != nil {
			return nil, err
		}
		var list []string
		for _, l := range strings.Split(files.Text, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				list = append(list, l)
			}
		}
		req := online.ArchiveRequest{Bucket: strings.TrimSpace(bucket.Text), Prefix: strings.TrimSpace(prefix.Text), Mode: mode.Selected, RetainUntil: retain, Files: list}
		return func(ctx context.Context, c online.Connection, _ func(string)) (string, error) {
			a, err := online.NewArchive(ctx, c)
			if err != nil {
				return "", err
			}
			res, err := a.Put(ctx, req, time.Now())
			var lines []string
			for _, r := range res {
				lines = append(lines, fmt.Sprintf("s3://%s/%s version %s sha256 %s", req.Bucket, r.Key, r.VersionID, r.SHA256))
			}
			return strings.Join(lines, "\n"), err
		}, nil
	})
	form := widget.NewForm(widget.NewFormItem("Evidence bucket", bucket), widget.NewFormItem("Evidence prefix", prefix), widget.NewFormItem("Lock mode", mode),
		widget.NewFormItem("Retain until", until), widget.NewFormItem("Files", files))
	return card("Archive evidence in S3 (Object Lock)", "archive put", form, b)
}
