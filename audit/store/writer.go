package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
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
	// PCA are the file's AWS Private CA records the key provenance join
	// needs (ceremonies.go), stored with the file.
	PCA []PCAEvent
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
	// MaxBulkIDs caps the in-memory eventID set of a bulk load (about 50
	// bytes an eventID): past it, the load commits, builds the UNIQUE index
	// and goes on deduplicating through it, the other indexes still left
	// for the end, so that the process's memory stays bounded whatever the
	// input (DefaultMaxBulkIDs).
	MaxBulkIDs int
	// baseLimit is the soft memory limit before the set raised it
	// (fitMemoryLimit); -1 when the set has not touched it.
	baseLimit int64

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
	lock       *runLock // held while the run is alive
	inFile     bool
	fileBlock  int64 // id reserved for the current file's own block (0: none yet)
	fileNew    int   // new events that point into it
	savepoint  bool
	meta       FileMeta
	fileID     int64
	kmsNew     int
	kmsDup     int
	newPerDay  map[DayKey]*int
	dimsLoaded bool // PreloadDims was called
	// dirtyAlias: aliases whose history changed, with the time from which
	// their events are resolved again (math.MinInt64: all of them);
	// pendingAlias: aliases with events whose key is not known yet (those
	// events are).
	dirtyAlias   map[int64]int64
	pendingAlias map[int64]bool
	args         []any

	// ids is set during a bulk load (DropIndexes): the eventIDs in the
	// table, so that duplicates are found in memory while the UNIQUE index
	// is dropped. It is complete as long as no other connection has
	// written since ver (PRAGMA data_version), which begin checks.
	ids     *idSet
	ver     int64
	fileIDs []eventKey // ids added by the current file (undone with it)
	sel     []int

	// The rollups of the events written (rollups.go): rollFile holds the
	// current file's changes to the groups (dropped if the file is rolled
	// back), rollTx the committed files' and the updates' of the open
	// transaction, written to the table just before it commits.
	rollFile, rollTx Rollups
	rollStmts        map[int]*sql.Stmt
}

// NewWriter takes the database's write side. Close it when done.
func (s *Store) NewWriter(ctx context.Context) (*Writer, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	w := &Writer{s: s, ctx: ctx, conn: conn,
		strs: map[string]int64{}, principals: map[principalKey]int64{},
		keys: map[string]int64{}, aliases: map[string]int64{},
		dirtyAlias: map[int64]int64{}, pendingAlias: map[int64]bool{}, newPerDay: map[DayKey]*int{},
		rollFile: Rollups{}, rollTx: Rollups{}, rollStmts: map[int]*sql.Stmt{},
		MaxTxEvents: 200000, MaxTxAge: 3 * time.Second, MaxBulkIDs: DefaultMaxBulkIDs, baseLimit: -1,
		args: make([]any, nEventCols), margs: make([]any, nEventCols*multiRows),
		insMany: map[int]*sql.Stmt{}, rawMany: map[int]driver.Stmt{}, nargs: make([]driver.NamedValue, nEventCols*multiRows),
	}
	prep := func(dst **sql.Stmt, q string) {
		if err != nil {
			return
		}
		*dst, err = conn.PrepareContext(ctx, q)
	}
	prep(&w.insBlock, `INSERT INTO raw_blocks (id, file, codec, size, data, src_offs) VALUES (?,?,?,?,?,?)`)
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

// Close rolls back anything not committed and releases the connection
// (and the run's lock, if FinishRun did not).
func (w *Writer) Close() error {
	defer w.lock.release()
	defer w.dropIDs() // and the memory limit back as it was
	ctx := context.WithoutCancel(w.ctx)
	if w.inTx {
		w.conn.ExecContext(ctx, "ROLLBACK")
		w.inTx = false
		w.rollReset()
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
	for _, st := range w.rollStmts {
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

// rollReset forgets the rollups of a transaction rolled back.
func (w *Writer) rollReset() {
	clear(w.rollFile)
	clear(w.rollTx)
}

// rollFlush writes the open transaction's rollups (before its COMMIT).
func (w *Writer) rollFlush() error {
	if err := writeRollups(w.ctx, w.conn, w.rollTx, w.rollStmts); err != nil {
		return err
	}
	clear(w.rollTx)
	return nil
}

// rollups is where a change to the groups goes now: the file's (undone
// with it) inside a file, else the transaction's.
func (w *Writer) rollups() Rollups {
	if w.inFile {
		return w.rollFile
	}
	return w.rollTx
}

// rollKey is the group of an event from its column values (fill's order).
func rollKey(a []any) RollupKey {
	n := func(v any) int64 {
		if i, ok := v.(int64); ok {
			return i
		}
		return 0
	}
	return RollupKey{Day: UnixDay(n(a[0])), Account: n(a[5]), Region: n(a[6]), Name: n(a[2]), Category: n(a[3]),
		Key: n(a[11]), Key2: n(a[12]), ErrorCode: n(a[15])}
}

// rollAdd counts a new event from its column values (fill's order).
func (w *Writer) rollAdd(a []any) {
	w.rollups()[rollKey(a)]++
}

// rollOut takes the stored events the condition selects out of their
// groups, before an update changes their columns; the update then adds
// them to their new groups (rollAdd, or rollups()[k] += n).
func (w *Writer) rollOut(where string, args ...any) error {
	if err := countEvents(w.ctx, w.conn, w.rollups(), -1, where, args...); err != nil {
		return fmt.Errorf("update the rollups: %w", err)
	}
	return nil
}

// rollMoveKey moves the events ids (stored) to the groups of key, before
// an update sets their key column to it. Events on key already stay.
func (w *Writer) rollMoveKey(ids []int64, key int64) error {
	moved := Rollups{}
	if err := countEvents(w.ctx, w.conn, moved, 1, `WHERE id IN `+InList(ids)+` AND coalesce(key, 0) <> ?`, key); err != nil {
		return fmt.Errorf("update the rollups: %w", err)
	}
	r := w.rollups()
	for k, n := range moved {
		r[k] -= n
		k.Key = key
		r[k] += n
	}
	return nil
}
