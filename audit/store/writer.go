package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/audit/cloudtrail"
)

// CodecDeflate marks a raw block compressed with raw DEFLATE (RFC 1951).
const CodecDeflate = 1

// CodecGzip marks a raw block that is an input file itself, as delivered:
// a gzip file of one or more members (RFC 1952), whose decompressed bytes
// hold the records at their offsets. Keeping a CloudTrail log file's own
// compressed bytes spares compressing every record a second time, the
// largest CPU cost of a load after parsing.
const CodecGzip = 2

// Batch is one raw block of KMS records from one file. The ingest worker
// concatenates the records' Raw bytes in order and compresses them into
// Block; the writer stores the block once and, per record, its offset and
// length inside the uncompressed block. Compressing a block of neighbouring
// records instead of each record alone is what keeps the evidence small:
// CloudTrail records repeat each other's ARNs, agents and field names.
//
// Alternatively (FileOffs set, Block nil) the records are verbatim slices
// of the current file, which is kept whole as its own evidence block
// (FileEnd.Block): FileOffs[i] is where Records[i].Raw starts in the file's
// decompressed bytes. One file may mix both kinds of batch.
type Batch struct {
	Records  []cloudtrail.Record
	Block    []byte // DEFLATE of the concatenated Records[i].Raw
	RawSize  int
	FileOffs []int64

	keys []eventKey // set by Prepare
}

// Prepare does the part of AddBatch's work that needs no database (parsing
// each eventID into the form it is stored and deduplicated in), so that
// ingest workers do it in parallel instead of the single writer.
func (b *Batch) Prepare() {
	if cap(b.keys) >= len(b.Records) {
		b.keys = b.keys[:len(b.Records)]
	} else {
		b.keys = make([]eventKey, len(b.Records))
	}
	for i := range b.Records {
		b.keys[i] = keyOf(b.Records[i].EventID)
	}
}

// FileMeta describes an input file before it is read.
type FileMeta struct {
	Path        string // as given, or "archive.tar!member" for an archive member
	Size        int64
	Compression string // none, gzip
	// Account, Region and Day come from the S3 delivery path
	// (AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/) when it has one.
	Account, Region, Day string
}

// DayKey is one account, region and UTC day (Unix days).
type DayKey struct {
	Account, Region string
	Day             int64
}

// DayCount counts the records of one file that fall on one day.
type DayCount struct {
	Records    int // all records, KMS or not
	KMSRecords int // KMS records, including repeated deliveries
}

// FileEnd is what the worker knows once it has read the whole file.
type FileEnd struct {
	SHA256              [32]byte
	Format              string
	Records, NonKMS     int
	FirstTime, LastTime int64
	Days                map[DayKey]*DayCount
	// Block is the file's own evidence block (CodecGzip: the file as
	// stored; BlockSize its decompressed length), required when batches of
	// the file used FileOffs. It is stored only if one of those records
	// was new.
	Block      []byte
	BlockCodec int
	BlockSize  int64
}

// FileResult is the outcome of one committed file.
type FileResult struct {
	FileID int64
	// Duplicate means a file with the same SHA-256 was already loaded (under
	// this or another name): nothing was added but the name is recorded.
	Duplicate bool
	KMSNew    int
	KMSDup    int
}

// Writer is the single writer of an ingest. It groups many files in one
// transaction for speed and gives each file its own SAVEPOINT, so a file
// that fails half-way is rolled back alone and a committed transaction
// never holds part of a file. Not safe for concurrent use.
type Writer struct {
	s    *Store
	ctx  context.Context
	conn *sql.Conn

	insBlock, insFile, insName, insFailure *sql.Stmt
	insStr, insPrincipal, insKey, insAlias *sql.Stmt
	insTarget, selFileBySHA, covUpsert     *sql.Stmt
	insDetail                              *sql.Stmt

	strs       map[string]int64
	principals map[principalKey]int64
	keys       map[string]int64
	aliases    map[string]int64
	undo       []func() // cache entries added inside the current file

	inTx      bool
	txEvents  int
	txStarted time.Time
	// MaxTxEvents and MaxTxAge bound one transaction: large enough that
	// commits are rare, small enough that a kill loses little work and
	// the WAL stays small.
	MaxTxEvents int
	MaxTxAge    time.Duration
	// BulkEvents, if set before DropIndexes, is the expected number of new
	// events: the in-memory eventID set is sized for it once.
	BulkEvents int64

	nextBlock, nextFile int64
	savedBlock          int64
	maxEvent            int64 // largest events.id (new rows follow it)
	// startMax is maxEvent when the writer started, and othersWrote tells
	// whether another connection has committed since: ResolveAliases then
	// only needs to look for unresolved aliases among the rows up to
	// startMax (this writer's own rows mark their aliases as they go).
	startMax    int64
	othersWrote bool
	insMany     map[int]*sql.Stmt
	margs       []any
	// rawMany are the multi-row INSERTs prepared on the driver connection
	// itself (used inside conn.Raw): database/sql's checks and conversions
	// of 24 arguments a row were a tenth of the writer's time.
	rawMany map[int]driver.Stmt
	nargs   []driver.NamedValue

	run        int64
	inFile     bool
	fileBlock  int64 // id reserved for the current file's own block (0: none yet)
	fileNew    int   // new events that point into it
	savepoint  bool
	meta       FileMeta
	fileID     int64
	kmsNew     int
	kmsDup     int
	newPerDay  map[DayKey]*int
	dirtyAlias map[int64]bool
	args       []any

	// ids is set during a bulk load (DropIndexes): the eventIDs in the
	// table, so that duplicates are found in memory while the UNIQUE index
	// is dropped. It is complete as long as no other connection has
	// written since ver (PRAGMA data_version), which begin checks.
	ids     *idSet
	ver     int64
	fileIDs []eventKey // ids added by the current file (undone with it)
	sel     []int
}

// eventKey is an eventID as the UNIQUE index compares it: the 16 bytes of
// a canonical UUID (stored as a blob), or the text of anything else.
type eventKey struct {
	uuid [16]byte
	text string // "" for a UUID
	isID bool   // a UUID
}

// idSet is the set of stored eventIDs a bulk load deduplicates with.
type idSet struct {
	uuids map[[16]byte]struct{}
	texts map[string]struct{}
}

func keyOf(id string) eventKey {
	if u, ok := uuid16(id); ok {
		return eventKey{uuid: u, isID: true}
	}
	return eventKey{text: id}
}

func (s *idSet) has(k eventKey) bool {
	if k.isID {
		_, ok := s.uuids[k.uuid]
		return ok
	}
	_, ok := s.texts[k.text]
	return ok
}

func (s *idSet) add(k eventKey) {
	if k.isID {
		s.uuids[k.uuid] = struct{}{}
	} else {
		s.texts[k.text] = struct{}{}
	}
}

func (s *idSet) del(k eventKey) {
	if k.isID {
		delete(s.uuids, k.uuid)
	} else {
		delete(s.texts, k.text)
	}
}

type principalKey struct{ arn, typ, account string }

// NewWriter takes the database's write side. Close it when done.
func (s *Store) NewWriter(ctx context.Context) (*Writer, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	w := &Writer{s: s, ctx: ctx, conn: conn,
		strs: map[string]int64{}, principals: map[principalKey]int64{},
		keys: map[string]int64{}, aliases: map[string]int64{},
		dirtyAlias: map[int64]bool{}, newPerDay: map[DayKey]*int{},
		MaxTxEvents: 200000, MaxTxAge: 3 * time.Second,
		args: make([]any, nEventCols), margs: make([]any, nEventCols*multiRows),
		insMany: map[int]*sql.Stmt{}, rawMany: map[int]driver.Stmt{}, nargs: make([]driver.NamedValue, nEventCols*multiRows),
	}
	prep := func(dst **sql.Stmt, q string) {
		if err != nil {
			return
		}
		*dst, err = conn.PrepareContext(ctx, q)
	}
	prep(&w.insBlock, `INSERT INTO raw_blocks (id, file, codec, size, data) VALUES (?,?,?,?,?)`)
	prep(&w.insFile, `INSERT INTO files (id, sha256, size, path, format, compression, records, kms_new, kms_dup,
		non_kms, first_time, last_time, account, region, day, ingested_at, run)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
	prep(&w.insName, `INSERT OR IGNORE INTO file_names (file, path, seen_at) VALUES (?,?,?)`)
	prep(&w.insFailure, `INSERT INTO failures (run, path, size, sha256, error, at) VALUES (?,?,?,?,?,?)`)
	prep(&w.insStr, `INSERT OR IGNORE INTO strs (s) VALUES (?)`)
	prep(&w.insPrincipal, `INSERT OR IGNORE INTO principals (arn, type, account, role_arn) VALUES (?,?,?,?)`)
	prep(&w.insKey, `INSERT OR IGNORE INTO keys (arn, account, region, key_id) VALUES (?,?,?,?)`)
	prep(&w.insAlias, `INSERT OR IGNORE INTO aliases (arn, account, region, name) VALUES (?,?,?,?)`)
	prep(&w.insTarget, `INSERT OR IGNORE INTO alias_targets (alias, key, since, source, event) VALUES (?,?,?,?,?)`)
	prep(&w.selFileBySHA, `SELECT id FROM files WHERE sha256 = ?`)
	prep(&w.insDetail, insDetailSQL)
	prep(&w.covUpsert, `INSERT INTO coverage (account, region, day, files, records, kms_records, kms_events)
		VALUES (?,?,?,?,?,?,?) ON CONFLICT (account, region, day) DO UPDATE SET
		files = files + excluded.files, records = records + excluded.records,
		kms_records = kms_records + excluded.kms_records, kms_events = kms_events + excluded.kms_events`)
	if err == nil {
		err = w.loadCounters()
		w.startMax = w.maxEvent
	}
	if err == nil {
		err = w.loadCaches()
	}
	if err == nil {
		w.ver, err = w.dataVersion()
	}
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("prepare audit database writer: %w", err)
	}
	return w, nil
}

func (w *Writer) loadCounters() error {
	if err := w.conn.QueryRowContext(w.ctx, `SELECT coalesce(max(id),0) FROM events`).Scan(&w.maxEvent); err != nil {
		return err
	}
	if err := w.conn.QueryRowContext(w.ctx, `SELECT coalesce(max(id),0)+1 FROM raw_blocks`).Scan(&w.nextBlock); err != nil {
		return err
	}
	return w.conn.QueryRowContext(w.ctx, `SELECT coalesce(max(id),0)+1 FROM files`).Scan(&w.nextFile)
}

// Close rolls back anything not committed and releases the connection.
func (w *Writer) Close() error {
	ctx := context.WithoutCancel(w.ctx)
	if w.inTx {
		w.conn.ExecContext(ctx, "ROLLBACK")
		w.inTx = false
	}
	for _, st := range []*sql.Stmt{w.insBlock, w.insFile, w.insName, w.insFailure,
		w.insStr, w.insPrincipal, w.insKey, w.insAlias, w.insTarget, w.selFileBySHA, w.covUpsert, w.insDetail} {
		if st != nil {
			st.Close()
		}
	}
	for _, st := range w.insMany {
		st.Close()
	}
	if len(w.rawMany) > 0 {
		w.conn.Raw(func(any) error {
			for _, st := range w.rawMany {
				st.Close()
			}
			return nil
		})
	}
	return w.conn.Close()
}

func (w *Writer) exec(q string) error {
	_, err := w.conn.ExecContext(w.ctx, q)
	return err
}

func (w *Writer) begin() error {
	if w.inTx {
		return nil
	}
	if err := w.exec("BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin write transaction: %w", err)
	}
	w.inTx, w.txEvents, w.txStarted = true, 0, time.Now()
	if err := w.syncOthers(); err != nil {
		w.conn.ExecContext(context.WithoutCancel(w.ctx), "ROLLBACK")
		w.inTx = false
		return fmt.Errorf("begin write transaction: %w", err)
	}
	return nil
}

// syncOthers runs at the start of every write transaction, holding the
// write lock. If another connection (another ingest) has committed since
// this writer's last transaction, the row-id counters are read again and
// a bulk load's in-memory eventID set is abandoned: events may be written
// without the UNIQUE index on event_id only by the bulk load that dropped
// it, and only while its set is complete. Without a set, a missing index
// (a bulk load running elsewhere, or killed) is built before any event is
// written; what is committed is unique, so the build cannot fail on
// duplicates.
func (w *Writer) syncOthers() error {
	v, err := w.dataVersion()
	if err != nil {
		return err
	}
	if v != w.ver {
		if err := w.loadCounters(); err != nil {
			return err
		}
		w.dropIDs()
		w.ver = v
		w.othersWrote = true
	}
	if w.ids != nil {
		return nil
	}
	var n int
	if err := w.conn.QueryRowContext(w.ctx, `SELECT count(*) FROM sqlite_schema WHERE type='index' AND name=?`,
		uniqueIndex.name).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		if err := w.exec(uniqueIndex.sql); err != nil {
			return fmt.Errorf("build index %s: %w", uniqueIndex.name, err)
		}
	}
	return nil
}

func (w *Writer) dataVersion() (int64, error) {
	var v int64
	err := w.conn.QueryRowContext(w.ctx, "PRAGMA data_version").Scan(&v)
	return v, err
}

func (w *Writer) dropIDs() {
	if w.ids != nil {
		w.ids = nil
		w.fileIDs = nil
		debug.FreeOSMemory() // tens of MiB at a million events
	}
}

// loadIDs reads every stored eventID into a new set.
func (w *Writer) loadIDs() error {
	set := &idSet{uuids: make(map[[16]byte]struct{}, w.maxEvent+max(w.BulkEvents, 0)), texts: map[string]struct{}{}}
	rows, err := w.conn.QueryContext(w.ctx, `SELECT event_id FROM events`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var v any
		if err := rows.Scan(&v); err != nil {
			return err
		}
		switch v := v.(type) {
		case []byte:
			if len(v) != 16 {
				return fmt.Errorf("store: event_id blob of %d bytes", len(v))
			}
			set.uuids[[16]byte(v)] = struct{}{}
		case string:
			set.texts[v] = struct{}{}
		default:
			return fmt.Errorf("store: event_id of type %T", v)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	w.ids = set
	return nil
}

// Commit makes everything written so far durable. It is called on its own
// by CommitFile when the transaction is large or old, and by the ingest at
// the end; between files it is always safe.
func (w *Writer) Commit() error {
	if w.inFile {
		return errors.New("store: Commit inside a file")
	}
	if !w.inTx {
		return nil
	}
	if _, err := w.conn.ExecContext(context.WithoutCancel(w.ctx), "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	w.inTx = false
	return nil
}

// StartRun records an ingest run and returns its id.
func (w *Writer) StartRun(args []string) (int64, error) {
	res, err := w.conn.ExecContext(w.ctx, `INSERT INTO runs (started_at, args) VALUES (?, ?)`,
		time.Now().Unix(), strings.Join(args, " "))
	if err != nil {
		return 0, fmt.Errorf("record ingest run: %w", err)
	}
	w.run, err = res.LastInsertId()
	return w.run, err
}

// RunTotals are the counters of a finished run.
type RunTotals struct {
	FilesOK, FilesDup, FilesFailed int
	KMSNew, KMSDup, NonKMS         int
	Status                         string // done, cancelled, failed
}

// FinishRun commits and closes the run record.
func (w *Writer) FinishRun(t RunTotals) error {
	if err := w.Commit(); err != nil {
		return err
	}
	if w.run == 0 {
		return nil
	}
	_, err := w.conn.ExecContext(context.WithoutCancel(w.ctx), `UPDATE runs SET finished_at=?, files_ok=?, files_dup=?,
		files_failed=?, kms_new=?, kms_dup=?, non_kms=?, status=? WHERE id=?`,
		time.Now().Unix(), t.FilesOK, t.FilesDup, t.FilesFailed, t.KMSNew, t.KMSDup, t.NonKMS, t.Status, w.run)
	return err
}

// KnownSHA reports whether a file with this SHA-256 is already loaded
// (including files loaded earlier in the current, uncommitted transaction).
func (w *Writer) KnownSHA(sum [32]byte) (int64, bool, error) {
	var id int64
	err := w.selFileBySHA.QueryRowContext(w.ctx, sum[:]).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return id, err == nil, err
}

// BeginFile starts a file. With savepoint, the file's rows can be rolled
// back alone (AbortFile) and a file whose SHA-256 turns out to be loaded
// already is undone at CommitFile: the ingest uses it for files it streams,
// whose end it has not seen yet. Without, the caller has already parsed the
// whole file and checked its SHA-256, and saves SQLite the sub-journal
// (a copy of every page the file touches), which costs more than the inserts.
func (w *Writer) BeginFile(meta FileMeta, savepoint bool) error {
	if w.inFile {
		return errors.New("store: BeginFile inside a file")
	}
	if err := w.begin(); err != nil {
		return err
	}
	if savepoint {
		if err := w.exec("SAVEPOINT file"); err != nil {
			return fmt.Errorf("begin file %s: %w", meta.Path, err)
		}
	}
	w.inFile, w.savepoint, w.meta = true, savepoint, meta
	w.fileID = w.nextFile
	w.savedBlock = w.nextBlock
	w.fileBlock, w.fileNew = 0, 0
	w.kmsNew, w.kmsDup = 0, 0
	clear(w.newPerDay)
	w.undo = w.undo[:0]
	w.fileIDs = w.fileIDs[:0]
	return nil
}

// AddBatch stores one block and its records, skipping events already
// stored (same eventID). It returns how many were new.
func (w *Writer) AddBatch(b *Batch) (newEvents, dups int, err error) {
	if !w.inFile {
		return 0, 0, errors.New("store: AddBatch outside a file")
	}
	if len(b.Records) == 0 {
		return 0, 0, nil
	}
	blockID := w.nextBlock
	offs := make([]int, len(b.Records))
	if b.FileOffs != nil {
		if len(b.FileOffs) != len(b.Records) {
			return 0, 0, errors.New("store: batch with a file offset per record expected")
		}
		if w.fileBlock == 0 {
			w.fileBlock = w.nextBlock
			w.nextBlock++
		}
		blockID = w.fileBlock
		for i, o := range b.FileOffs {
			offs[i] = int(o)
		}
	} else {
		off := 0
		for i := range b.Records {
			offs[i] = off
			off += len(b.Records[i].Raw)
		}
	}
	if len(b.keys) != len(b.Records) {
		b.Prepare()
	}
	isNew := make([]bool, len(b.Records))
	// sel: the records to insert. During a bulk load, the ones whose
	// eventID is not in the set yet (duplicates are settled here, the
	// UNIQUE index being dropped); otherwise all, and INSERT OR IGNORE
	// tells which were new.
	sel := w.sel[:0]
	for i := range b.Records {
		if w.ids == nil {
			sel = append(sel, i)
			continue
		}
		k := b.keys[i]
		if w.ids.has(k) {
			continue
		}
		if !k.isID {
			k.text = strings.Clone(k.text) // may alias a record buffer
		}
		w.ids.add(k)
		w.fileIDs = append(w.fileIDs, k)
		sel = append(sel, i)
	}
	w.sel = sel
	// Alias changes and lifecycle events go one by one (their row id is
	// needed for the alias history and event_details); runs of other
	// records go in multi-row INSERTs, which cost a fraction of one
	// statement per row.
	for k := 0; k < len(sel); {
		i := sel[k]
		if oneByOne(&b.Records[i]) {
			if isNew[i], err = w.insertOne(&b.Records[i], &b.keys[i], blockID, offs[i]); err != nil {
				return 0, 0, fmt.Errorf("store event %s: %w", b.Records[i].EventID, err)
			}
			k++
			continue
		}
		j := k
		for j < len(sel) && j-k < multiRows && !oneByOne(&b.Records[sel[j]]) {
			j++
		}
		if err := w.insertMany(b.Records, b.keys, sel[k:j], blockID, offs, isNew); err != nil {
			return 0, 0, fmt.Errorf("store events: %w", err)
		}
		k = j
	}
	for i := range b.Records {
		r := &b.Records[i]
		if isNew[i] {
			newEvents++
			dk := DayKey{r.Account, r.Region, floorDiv(r.Time, 86400)}
			// A map key outlives the record buffer it may alias, so it is
			// cloned when added; and the map is never assigned to for an
			// existing key: Go then replaces the stored key with the new
			// one (string keys), which would alias the buffer again.
			if n := w.newPerDay[dk]; n != nil {
				*n++
			} else {
				dk.Account, dk.Region = strings.Clone(dk.Account), strings.Clone(dk.Region)
				one := 1
				w.newPerDay[dk] = &one
			}
		} else {
			dups++
		}
	}
	// A block whose records were all stored before holds nothing new:
	// skip it (re-ingesting the same events in another file adds no bytes).
	switch {
	case newEvents == 0:
	case b.FileOffs != nil:
		w.fileNew += newEvents // the file's block goes in at CommitFile
	default:
		if _, err := w.insBlock.ExecContext(w.ctx, blockID, w.fileID, CodecDeflate, b.RawSize, b.Block); err != nil {
			return 0, 0, fmt.Errorf("store raw block: %w", err)
		}
		w.nextBlock++
	}
	w.kmsNew += newEvents
	w.kmsDup += dups
	w.txEvents += len(b.Records)
	return newEvents, dups, nil
}

// oneByOne: records whose row id is needed (see AddBatch).
func oneByOne(r *cloudtrail.Record) bool { return aliasChange(r) || r.HasDetail() }

func aliasChange(r *cloudtrail.Record) bool {
	switch r.Name {
	case "CreateAlias", "UpdateAlias", "DeleteAlias":
		return r.AliasARN != "" && r.ErrorCode == ""
	}
	return false
}

// multiRows is the number of rows per multi-row INSERT (24 columns each,
// well under SQLite's 32766 bound parameters).
const multiRows = 32

const eventColumns = `(time, event_id, name, category, read_only, account, region,
		principal, invoked_by, source_ip, user_agent, key, key2, key_source, alias, error_code, error_message,
		block, off, len, valid_to, deletion_date, rotation_type, key_material)`

const nEventCols = 24

// manyStmt returns the prepared INSERT for n rows.
func (w *Writer) manyStmt(n int) (*sql.Stmt, error) {
	if st := w.insMany[n]; st != nil {
		return st, nil
	}
	st, err := w.conn.PrepareContext(w.ctx, manySQL(n))
	if err != nil {
		return nil, err
	}
	w.insMany[n] = st
	return st, nil
}

func manySQL(n int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", nEventCols), ",") + ")"
	return "INSERT OR IGNORE INTO events " + eventColumns + " VALUES " + strings.TrimSuffix(strings.Repeat(row+",", n), ",")
}

// execMany runs the INSERT of len(args)/nEventCols rows on the driver
// connection and returns how many rows it inserted.
func (w *Writer) execMany(args []any) (int64, error) {
	n := len(args) / nEventCols
	var affected int64
	err := w.conn.Raw(func(dc any) error {
		st := w.rawMany[n]
		if st == nil {
			pc, ok := dc.(driver.ConnPrepareContext)
			if !ok {
				return fmt.Errorf("the SQLite driver (%T) cannot prepare statements directly", dc)
			}
			s, err := pc.PrepareContext(w.ctx, manySQL(n))
			if err != nil {
				return err
			}
			st = s
			w.rawMany[n] = st
		}
		ec, ok := st.(driver.StmtExecContext)
		if !ok {
			return fmt.Errorf("the SQLite driver's statement (%T) cannot execute with a context", st)
		}
		nargs := w.nargs[:len(args)]
		for i, a := range args {
			nargs[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
		}
		res, err := ec.ExecContext(w.ctx, nargs)
		if err != nil {
			return err
		}
		affected, err = res.RowsAffected()
		return err
	})
	return affected, err
}

// insertMany inserts recs[idx[0]], recs[idx[1]], ... in one statement and
// sets isNew of those that were not stored yet.
func (w *Writer) insertMany(all []cloudtrail.Record, keys []eventKey, idx []int, block int64, offs []int, isNew []bool) error {
	args := w.margs[:len(idx)*nEventCols]
	for n, i := range idx {
		if _, _, err := w.fill(&all[i], &keys[i], block, offs[i], args[n*nEventCols:(n+1)*nEventCols]); err != nil {
			return fmt.Errorf("event %s: %w", all[i].EventID, err)
		}
	}
	n, err := w.execMany(args)
	if err != nil {
		return err
	}
	prev := w.maxEvent
	w.maxEvent += n
	if int(n) == len(idx) {
		for _, i := range idx {
			isNew[i] = true
		}
		return nil
	}
	if n == 0 {
		return nil
	}
	// Some were duplicates: the new rows are the ids after prev, in order
	// (rowids of an INTEGER PRIMARY KEY table grow from the maximum).
	rows, err := w.conn.QueryContext(w.ctx, `SELECT event_id FROM events WHERE id > ?`, prev)
	if err != nil {
		return err
	}
	defer rows.Close()
	inserted := map[string]bool{}
	for rows.Next() {
		var v any
		if err := rows.Scan(&v); err != nil {
			return err
		}
		inserted[EventIDString(v)] = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	// The first of several copies of an eventID in one statement is the
	// one inserted.
	for _, i := range idx {
		if id := all[i].EventID; inserted[id] {
			isNew[i] = true
			delete(inserted, id)
		}
	}
	return nil
}

// insertOne stores one record and, for a successful alias change, its
// place in the alias history.
func (w *Writer) insertOne(r *cloudtrail.Record, k *eventKey, block int64, off int) (bool, error) {
	al, _, err := w.fill(r, k, block, off, w.args)
	if err != nil {
		return false, err
	}
	st, err := w.manyStmt(1)
	if err != nil {
		return false, err
	}
	res, err := st.ExecContext(w.ctx, w.args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return false, err
	}
	w.maxEvent++
	var evID int64
	if r.HasDetail() || (al != 0 && aliasChange(r)) {
		if evID, err = res.LastInsertId(); err != nil {
			return true, err
		}
	}
	if r.HasDetail() {
		if _, err := w.insDetail.ExecContext(w.ctx, detailArgs(evID, &r.Detail)...); err != nil {
			return true, fmt.Errorf("store event details: %w", err)
		}
	}
	if al != 0 && aliasChange(r) {
		var target int64
		if r.AliasTarget != "" {
			if target, err = w.key(r.AliasTarget); err != nil {
				return true, err
			}
		}
		if _, err := w.insTarget.ExecContext(w.ctx, al, nullable(target), r.Time, sourceEvent, evID); err != nil {
			return true, err
		}
		w.dirtyAlias[al] = true
	}
	return true, nil
}

// fill writes the 24 column values of r into a.
func (w *Writer) fill(r *cloudtrail.Record, k *eventKey, block int64, off int, a []any) (alias, key int64, err error) {
	id := func(s string) any {
		if err != nil || s == "" {
			return nil
		}
		var v int64
		v, err = w.str(s)
		return v
	}
	a[0] = r.Time
	if k.isID {
		a[1] = k.uuid[:] // the batch outlives the statement; the driver copies it
	} else {
		a[1] = r.EventID
	}
	a[2] = id(r.Name)
	a[3] = int64(r.Category)
	if r.ReadOnly < 0 {
		a[4] = nil
	} else {
		a[4] = int64(r.ReadOnly)
	}
	a[5] = id(r.Account)
	a[6] = id(r.Region)
	var p int64
	if err == nil {
		p, err = w.principal(r)
	}
	a[7] = nullable(p)
	a[8] = id(r.InvokedBy)
	a[9] = id(r.SourceIP)
	a[10] = id(r.UserAgent)
	var k1, k2, al int64
	if err == nil && r.KeyARN != "" {
		k1, err = w.key(r.KeyARN)
	}
	if err == nil && r.KeyARN2 != "" {
		k2, err = w.key(r.KeyARN2)
	}
	if err == nil && r.AliasARN != "" {
		al, err = w.alias(r.AliasARN)
	}
	a[11] = nullable(k1)
	a[12] = nullable(k2)
	a[13] = int64(r.KeySource)
	a[14] = nullable(al)
	a[15] = id(r.ErrorCode)
	if r.ErrorMessage != "" {
		a[16] = r.ErrorMessage
	} else {
		a[16] = nil
	}
	a[17] = block
	a[18] = int64(off)
	a[19] = int64(len(r.Raw))
	a[20] = nullTime(r.ValidTo)
	a[21] = nullTime(r.DeletionDate)
	a[22] = id(r.RotationType)
	a[23] = id(r.KeyMaterialID)
	if al != 0 && k1 == 0 {
		w.dirtyAlias[al] = true // to be resolved through the alias history
	}
	return al, k1, err
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func nullable(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

func nullTime(t int64) any {
	if t == 0 {
		return nil
	}
	return t
}

// EventIDValue is how an eventID is stored: a canonical lower-case UUID as
// its 16 bytes (less than half the index space of the text), anything else
// as text. The two never compare equal, so uniqueness is preserved.
func EventIDValue(id string) any {
	u, ok := uuid16(id)
	if !ok {
		return id
	}
	return u[:]
}

// uuid16 parses a canonical lower-case UUID.
func uuid16(id string) (b [16]byte, ok bool) {
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
		return b, false
	}
	j := 0
	for i := 0; i < 36; i += 2 {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i--
			continue
		}
		hi, ok1 := lowerHex(id[i])
		lo, ok2 := lowerHex(id[i+1])
		if !ok1 || !ok2 {
			return b, false
		}
		b[j] = hi<<4 | lo
		j++
	}
	return b, true
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

const (
	sourceEvent     = 1
	sourceInventory = 2
)

// The dimension caches map a value to its row id. They are loaded whole
// when the writer starts, so a miss almost always means a new row; a value
// added inside a file that is then rolled back leaves the cache too (undo).

// upsert inserts a dimension row and returns its id, or the id of the row
// another writer added meanwhile (INSERT OR IGNORE then SELECT: cheaper
// than RETURNING through database/sql on the common path).
func (w *Writer) upsert(ins *sql.Stmt, sel string, args ...any) (int64, error) {
	res, err := ins.ExecContext(w.ctx, args...)
	if err != nil {
		return 0, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return 0, err
	} else if n == 1 {
		return res.LastInsertId()
	}
	var id int64
	err = w.conn.QueryRowContext(w.ctx, sel, args...).Scan(&id)
	return id, err
}

func (w *Writer) str(s string) (int64, error) {
	if v, ok := w.strs[s]; ok {
		return v, nil
	}
	s = strings.Clone(s) // s may alias a record buffer
	v, err := w.upsert(w.insStr, `SELECT id FROM strs WHERE s = ?`, s)
	if err != nil {
		return 0, err
	}
	w.strs[s] = v
	w.undo = append(w.undo, func() { delete(w.strs, s) })
	return v, nil
}

func (w *Writer) principal(r *cloudtrail.Record) (int64, error) {
	if r.PrincipalARN == "" && r.PrincipalType == "" && r.PrincipalAccount == "" {
		return 0, nil
	}
	k := principalKey{r.PrincipalARN, r.PrincipalType, r.PrincipalAccount}
	if v, ok := w.principals[k]; ok {
		return v, nil
	}
	k = principalKey{strings.Clone(k.arn), strings.Clone(k.typ), strings.Clone(k.account)}
	res, err := w.insPrincipal.ExecContext(w.ctx, k.arn, k.typ, k.account, strings.Clone(r.RoleARN))
	if err != nil {
		return 0, err
	}
	var v int64
	if n, _ := res.RowsAffected(); n == 1 {
		v, err = res.LastInsertId()
	} else {
		err = w.conn.QueryRowContext(w.ctx, `SELECT id FROM principals WHERE arn = ? AND type = ? AND account = ?`,
			k.arn, k.typ, k.account).Scan(&v)
	}
	if err != nil {
		return 0, err
	}
	w.principals[k] = v
	w.undo = append(w.undo, func() { delete(w.principals, k) })
	return v, nil
}

// arnParts splits arn:partition:service:region:account:resource.
func arnParts(arn string) (region, account, resource string) {
	p := strings.SplitN(arn, ":", 6)
	if len(p) < 6 {
		return "", "", arn
	}
	return p[3], p[4], p[5]
}

func (w *Writer) key(arn string) (int64, error) {
	if v, ok := w.keys[arn]; ok {
		return v, nil
	}
	arn = strings.Clone(arn)
	region, account, res := arnParts(arn)
	v, err := w.upsert(w.insKey, `SELECT id FROM keys WHERE arn = ?1`, arn, account, region, strings.TrimPrefix(res, "key/"))
	if err != nil {
		return 0, err
	}
	w.keys[arn] = v
	w.undo = append(w.undo, func() { delete(w.keys, arn) })
	return v, nil
}

func (w *Writer) alias(arn string) (int64, error) {
	if v, ok := w.aliases[arn]; ok {
		return v, nil
	}
	arn = strings.Clone(arn)
	region, account, res := arnParts(arn)
	v, err := w.upsert(w.insAlias, `SELECT id FROM aliases WHERE arn = ?1`, arn, account, region, res)
	if err != nil {
		return 0, err
	}
	w.aliases[arn] = v
	w.undo = append(w.undo, func() { delete(w.aliases, arn) })
	return v, nil
}

// loadCaches reads every dimension row into the caches.
func (w *Writer) loadCaches() error {
	load := func(q string, f func(rows *sql.Rows) error) error {
		rows, err := w.conn.QueryContext(w.ctx, q)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := f(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	var id int64
	var a, b, c string
	if err := load(`SELECT id, s FROM strs`, func(r *sql.Rows) error {
		err := r.Scan(&id, &a)
		w.strs[a] = id
		return err
	}); err != nil {
		return err
	}
	if err := load(`SELECT id, arn, type, account FROM principals`, func(r *sql.Rows) error {
		err := r.Scan(&id, &a, &b, &c)
		w.principals[principalKey{a, b, c}] = id
		return err
	}); err != nil {
		return err
	}
	if err := load(`SELECT id, arn FROM keys`, func(r *sql.Rows) error {
		err := r.Scan(&id, &a)
		w.keys[a] = id
		return err
	}); err != nil {
		return err
	}
	return load(`SELECT id, arn FROM aliases`, func(r *sql.Rows) error {
		err := r.Scan(&id, &a)
		w.aliases[a] = id
		return err
	})
}

// CommitFile ends a file. A file whose SHA-256 is already in the database
// is rolled back and only its name recorded.
func (w *Writer) CommitFile(end FileEnd) (FileResult, error) {
	if !w.inFile {
		return FileResult{}, errors.New("store: CommitFile outside a file")
	}
	now := time.Now().Unix()
	if !w.savepoint {
		// The caller checked the SHA-256 before writing.
	} else if id, dup, err := w.KnownSHA(end.SHA256); err != nil {
		return FileResult{}, w.abort(err)
	} else if dup {
		if err := w.rollbackFile(); err != nil {
			return FileResult{}, err
		}
		if _, err := w.insName.ExecContext(w.ctx, id, w.meta.Path, now); err != nil {
			return FileResult{}, fmt.Errorf("record file name: %w", err)
		}
		return FileResult{FileID: id, Duplicate: true}, nil
	}
	m := w.meta
	var first, last any
	if end.Records > 0 {
		first, last = end.FirstTime, end.LastTime
	}
	if w.fileNew > 0 {
		if end.Block == nil || end.BlockCodec == 0 {
			return FileResult{}, w.abort(errors.New("store: records point into the file's own block, but it was not given"))
		}
		if _, err := w.insBlock.ExecContext(w.ctx, w.fileBlock, w.fileID, end.BlockCodec, end.BlockSize, end.Block); err != nil {
			return FileResult{}, w.abort(fmt.Errorf("store raw block: %w", err))
		}
	}
	_, err := w.insFile.ExecContext(w.ctx, w.fileID, end.SHA256[:], m.Size, m.Path, end.Format, m.Compression,
		end.Records, w.kmsNew, w.kmsDup, end.NonKMS, first, last,
		nullStr(m.Account), nullStr(m.Region), nullStr(m.Day), now, nullable(w.run))
	if err == nil {
		_, err = w.insName.ExecContext(w.ctx, w.fileID, m.Path, now)
	}
	if err == nil {
		err = w.coverage(end)
	}
	if err != nil {
		return FileResult{}, w.abort(fmt.Errorf("record file: %w", err))
	}
	if w.savepoint {
		if err := w.exec("RELEASE file"); err != nil {
			return FileResult{}, w.abort(fmt.Errorf("release file: %w", err))
		}
	}
	w.inFile = false
	w.nextFile++
	res := FileResult{FileID: w.fileID, KMSNew: w.kmsNew, KMSDup: w.kmsDup}
	if w.txEvents >= w.MaxTxEvents || time.Since(w.txStarted) >= w.MaxTxAge {
		if err := w.Commit(); err != nil {
			return res, err
		}
	}
	return res, nil
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func dayString(d int64) string { return time.Unix(d*86400, 0).UTC().Format("2006-01-02") }

// coverage adds the file to the per-day counts: the delivery day of its S3
// path counts one file; each record counts on its own eventTime day.
func (w *Writer) coverage(end FileEnd) error {
	type row struct{ files, records, kmsRecords, kmsEvents int }
	rows := map[[3]string]*row{}
	get := func(a, r, d string) *row {
		k := [3]string{a, r, d}
		if rows[k] == nil {
			rows[k] = &row{}
		}
		return rows[k]
	}
	if w.meta.Account != "" && w.meta.Region != "" && w.meta.Day != "" {
		get(w.meta.Account, w.meta.Region, w.meta.Day).files++
	}
	for k, c := range end.Days {
		r := get(k.Account, k.Region, dayString(k.Day))
		r.records += c.Records
		r.kmsRecords += c.KMSRecords
	}
	for k, pn := range w.newPerDay {
		n := *pn
		get(k.Account, k.Region, dayString(k.Day)).kmsEvents += n
	}
	for k, r := range rows {
		if _, err := w.covUpsert.ExecContext(w.ctx, k[0], k[1], k[2], r.files, r.records, r.kmsRecords, r.kmsEvents); err != nil {
			return err
		}
	}
	return nil
}

// errNoSavepoint: a file written without a savepoint cannot be undone
// alone; the whole open transaction must go (the caller treats it as fatal
// and Close rolls back).
var errNoSavepoint = errors.New("store: file written without a savepoint cannot be rolled back alone")

func (w *Writer) rollbackFile() error {
	if !w.savepoint {
		w.inFile = false
		if _, err := w.conn.ExecContext(context.WithoutCancel(w.ctx), "ROLLBACK"); err == nil {
			w.inTx = false
		}
		w.resetCaches()
		return errNoSavepoint
	}
	if err := w.exec("ROLLBACK TO file"); err != nil {
		return fmt.Errorf("roll back file: %w", err)
	}
	if err := w.exec("RELEASE file"); err != nil {
		return fmt.Errorf("roll back file: %w", err)
	}
	for i := len(w.undo) - 1; i >= 0; i-- {
		w.undo[i]()
	}
	w.undo = w.undo[:0]
	if w.ids != nil {
		for _, k := range w.fileIDs {
			w.ids.del(k)
		}
	}
	w.fileIDs = w.fileIDs[:0]
	w.nextBlock = w.savedBlock
	w.inFile = false
	return nil
}

func (w *Writer) abort(err error) error {
	if rerr := w.rollbackFile(); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}

// AbortFile rolls the current file back and records why it failed. sum may
// be nil when the file could not be read to the end.
func (w *Writer) AbortFile(cause error, sum []byte) error {
	if w.inFile {
		if err := w.rollbackFile(); err != nil {
			return err
		}
	}
	return w.RecordFailure(w.meta, cause, sum)
}

// RecordFailure notes a file that could not be loaded.
func (w *Writer) RecordFailure(meta FileMeta, cause error, sum []byte) error {
	if err := w.begin(); err != nil {
		return err
	}
	var s any
	if len(sum) > 0 {
		s = sum
	}
	_, err := w.insFailure.ExecContext(w.ctx, nullable(w.run), meta.Path, meta.Size, s, cause.Error(), time.Now().Unix())
	return err
}

// RecordName notes that a file already loaded was seen under another name.
func (w *Writer) RecordName(fileID int64, path string) error {
	if err := w.begin(); err != nil {
		return err
	}
	_, err := w.insName.ExecContext(w.ctx, fileID, path, time.Now().Unix())
	return err
}

// AbortFileQuietly rolls the current file back without recording a failure
// (the run was cancelled: the file is not at fault and will load next time).
func (w *Writer) AbortFileQuietly() error {
	if !w.inFile {
		return nil
	}
	return w.rollbackFile()
}

// resetCaches forgets every cached id after a whole-transaction rollback.
func (w *Writer) resetCaches() {
	clear(w.strs)
	clear(w.principals)
	clear(w.keys)
	clear(w.aliases)
	w.undo = w.undo[:0]
	w.loadCounters()
	w.loadCaches()
	// The set held the rolled-back transaction's ids too: reload it from
	// what is committed (without the write lock, hence its version first).
	v, err := w.dataVersion()
	if err != nil {
		w.ver = -1 // unknown: the next begin reloads
	} else {
		w.ver = v
	}
	if w.ids != nil {
		w.dropIDs()
		if err != nil || w.loadIDs() != nil {
			w.dropIDs()
		}
	}
}

// EventCount is the number of stored events (a bulk-load heuristic).
func (w *Writer) EventCount() (int64, error) {
	var n int64
	err := w.conn.QueryRowContext(w.ctx, `SELECT coalesce(max(id),0) FROM events`).Scan(&n)
	return n, err
}

// DropIndexes starts a bulk load: the secondary indexes and the UNIQUE
// index on event_id go until BuildIndexes (or the next ingest) recreates
// them. Deduplication moves to memory: every stored eventID is loaded into
// a set, which the load extends; begin checks that no other connection
// writes meanwhile, and if one does, rebuilds the UNIQUE index before
// writing anything else. A load killed half-way leaves unique events
// without the index; the next writer builds it before its first event.
func (w *Writer) DropIndexes() error {
	if w.inFile {
		return errors.New("store: DropIndexes inside a file")
	}
	if w.inTx {
		if err := w.Commit(); err != nil {
			return err
		}
	}
	// Not begin: it would build the UNIQUE index a killed load left out.
	if err := w.exec("BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin write transaction: %w", err)
	}
	w.inTx, w.txEvents, w.txStarted = true, 0, time.Now()
	if err := w.loadCounters(); err != nil {
		return err
	}
	for _, ix := range allIndexes() {
		if err := w.exec("DROP INDEX IF EXISTS " + ix.name); err != nil {
			return fmt.Errorf("drop index %s: %w", ix.name, err)
		}
	}
	if err := w.loadIDs(); err != nil {
		return fmt.Errorf("read event ids: %w", err)
	}
	if err := w.Commit(); err != nil {
		w.dropIDs()
		return err
	}
	// Our own commits leave data_version as it is; anyone else's changes it.
	v, err := w.dataVersion()
	if err != nil {
		w.dropIDs()
		return err
	}
	w.ver = v
	return nil
}

// BuildIndexes creates the secondary indexes that are missing.
func (w *Writer) BuildIndexes() error {
	if w.inFile {
		return errors.New("store: BuildIndexes inside a file")
	}
	// Helper threads for the sorter measured slower under modernc.org/sqlite.
	// The sorter keeps up to cache_size in memory and, with temp_store=MEMORY,
	// its spilled runs too: for the build, a smaller cache and on-disk temp
	// runs keep the process under its memory target (the runs stay in the
	// OS page cache anyway).
	w.exec("PRAGMA threads = 0")
	w.exec("PRAGMA temp_store = FILE")
	w.exec("PRAGMA cache_size = -16384")
	defer func() {
		w.exec("PRAGMA temp_store = MEMORY")
		w.exec("PRAGMA cache_size = -49152")
	}()
	if err := w.begin(); err != nil {
		return err
	}
	// The set is no longer needed once the UNIQUE index is back; freeing
	// it first leaves its memory to the sorter.
	w.dropIDs()
	for _, ix := range allIndexes() {
		if err := w.exec(ix.sql); err != nil {
			return fmt.Errorf("build index %s: %w", ix.name, err)
		}
	}
	return w.Commit()
}
