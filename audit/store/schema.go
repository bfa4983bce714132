package store

import (
	"context"
	"database/sql"
	"strings"
)

// migrations are applied in order; migrations[i] upgrades version i to i+1.
// A database records its version in schema_version; Open upgrades an older
// database in one transaction, so a failed upgrade leaves it as it was.
// Never edit a released migration: append a new one.
//
// The layout is documented column by column in docs/audit-ingest.md.
var migrations = []string{
	// v1: events, their raw evidence, provenance, dimensions, inventory.
	`
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version VALUES (0);

CREATE TABLE strs (
	id INTEGER PRIMARY KEY,
	s  TEXT NOT NULL UNIQUE
);

CREATE TABLE principals (
	id       INTEGER PRIMARY KEY,
	arn      TEXT NOT NULL,
	type     TEXT NOT NULL,
	account  TEXT NOT NULL,
	role_arn TEXT NOT NULL,
	UNIQUE (arn, type, account)
);
CREATE INDEX principals_role ON principals(role_arn) WHERE role_arn <> '';

CREATE TABLE keys (
	id      INTEGER PRIMARY KEY,
	arn     TEXT NOT NULL UNIQUE,
	account TEXT NOT NULL,
	region  TEXT NOT NULL,
	key_id  TEXT NOT NULL
);

CREATE TABLE aliases (
	id      INTEGER PRIMARY KEY,
	arn     TEXT NOT NULL UNIQUE,
	account TEXT NOT NULL,
	region  TEXT NOT NULL,
	name    TEXT NOT NULL
);
CREATE INDEX aliases_name ON aliases(name);

CREATE TABLE alias_targets (
	alias  INTEGER NOT NULL REFERENCES aliases(id),
	key    INTEGER REFERENCES keys(id),
	since  INTEGER NOT NULL,
	source INTEGER NOT NULL,
	event  INTEGER,
	UNIQUE (alias, since, source, key)
);

CREATE TABLE runs (
	id           INTEGER PRIMARY KEY,
	started_at   INTEGER NOT NULL,
	finished_at  INTEGER,
	args         TEXT NOT NULL,
	files_ok     INTEGER NOT NULL DEFAULT 0,
	files_dup    INTEGER NOT NULL DEFAULT 0,
	files_failed INTEGER NOT NULL DEFAULT 0,
	kms_new      INTEGER NOT NULL DEFAULT 0,
	kms_dup      INTEGER NOT NULL DEFAULT 0,
	non_kms      INTEGER NOT NULL DEFAULT 0,
	status       TEXT NOT NULL DEFAULT 'running'
);

CREATE TABLE files (
	id          INTEGER PRIMARY KEY,
	sha256      BLOB NOT NULL UNIQUE,
	size        INTEGER NOT NULL,
	path        TEXT NOT NULL,
	format      TEXT NOT NULL,
	compression TEXT NOT NULL,
	records     INTEGER NOT NULL,
	kms_new     INTEGER NOT NULL,
	kms_dup     INTEGER NOT NULL,
	non_kms     INTEGER NOT NULL,
	first_time  INTEGER,
	last_time   INTEGER,
	account     TEXT,
	region      TEXT,
	day         TEXT,
	ingested_at INTEGER NOT NULL,
	run         INTEGER REFERENCES runs(id)
);

CREATE TABLE file_names (
	file    INTEGER NOT NULL REFERENCES files(id),
	path    TEXT NOT NULL,
	seen_at INTEGER NOT NULL,
	PRIMARY KEY (file, path)
) WITHOUT ROWID;

CREATE TABLE failures (
	id     INTEGER PRIMARY KEY,
	run    INTEGER REFERENCES runs(id),
	path   TEXT NOT NULL,
	size   INTEGER,
	sha256 BLOB,
	error  TEXT NOT NULL,
	at     INTEGER NOT NULL
);

CREATE TABLE raw_blocks (
	id    INTEGER PRIMARY KEY,
	file  INTEGER NOT NULL REFERENCES files(id),
	codec INTEGER NOT NULL,
	size  INTEGER NOT NULL,
	data  BLOB NOT NULL
);

CREATE TABLE events (
	id            INTEGER PRIMARY KEY,
	time          INTEGER NOT NULL,
	event_id      BLOB NOT NULL UNIQUE,
	name          INTEGER NOT NULL,
	category      INTEGER NOT NULL,
	read_only     INTEGER,
	account       INTEGER,
	region        INTEGER,
	principal     INTEGER,
	invoked_by    INTEGER,
	source_ip     INTEGER,
	user_agent    INTEGER,
	key           INTEGER,
	key2          INTEGER,
	key_source    INTEGER NOT NULL,
	alias         INTEGER,
	error_code    INTEGER,
	error_message TEXT,
	block         INTEGER NOT NULL,
	off           INTEGER NOT NULL,
	len           INTEGER NOT NULL,
	valid_to      INTEGER,
	deletion_date INTEGER,
	rotation_type INTEGER,
	key_material  INTEGER
);
CREATE INDEX events_time           ON events(time);
CREATE INDEX events_key_time       ON events(key, time) WHERE key IS NOT NULL;
CREATE INDEX events_key2_time      ON events(key2, time) WHERE key2 IS NOT NULL;
CREATE INDEX events_principal_time ON events(principal, time);
CREATE INDEX events_name_time      ON events(name, time);
CREATE INDEX events_alias_time     ON events(alias, time) WHERE alias IS NOT NULL;

CREATE TABLE coverage (
	account     TEXT NOT NULL,
	region      TEXT NOT NULL,
	day         TEXT NOT NULL,
	files       INTEGER NOT NULL DEFAULT 0,
	records     INTEGER NOT NULL DEFAULT 0,
	kms_records INTEGER NOT NULL DEFAULT 0,
	kms_events  INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (account, region, day)
) WITHOUT ROWID;

CREATE TABLE inventory (
	key                  INTEGER PRIMARY KEY REFERENCES keys(id),
	as_of                INTEGER NOT NULL,
	meta_as_of           INTEGER,
	rotation_as_of       INTEGER,
	usage_as_of          INTEGER,
	file                 INTEGER REFERENCES files(id),
	key_spec             TEXT,
	key_usage            TEXT,
	origin               TEXT,
	manager              TEXT,
	state                TEXT,
	enabled              INTEGER,
	description          TEXT,
	created_at           INTEGER,
	deletion_date        INTEGER,
	valid_to             INTEGER,
	expiration_model     TEXT,
	multi_region         INTEGER,
	custom_key_store     TEXT,
	rotation_enabled     INTEGER,
	rotation_period_days INTEGER,
	next_rotation        INTEGER,
	last_used_at         INTEGER,
	last_used_operation  TEXT,
	json                 TEXT NOT NULL
);

-- A readable view for people using the sqlite3 shell.` + eventsView,
	// v2: failed calls get their own small index: "errors only" is the most
	// common review filter and errors are a few percent of events, so a
	// partial index answers it without scanning the time index.
	`
CREATE INDEX events_errors_time ON events(time) WHERE error_code IS NOT NULL;
`,
	// v3: eventID uniqueness moves from a column constraint (an automatic
	// index that can never be dropped) to the named UNIQUE index
	// event_id_unique, so that a bulk load can deduplicate in memory and
	// build it once at the end, like the other indexes, instead of
	// inserting a million random keys into a B-tree (the largest cost of
	// the load). The table is rebuilt as SQLite requires to drop a
	// constraint; same columns, same order, same row ids.
	`
DROP VIEW events_v;
CREATE TABLE events_v3 (
	id            INTEGER PRIMARY KEY,
	time          INTEGER NOT NULL,
	event_id      BLOB NOT NULL,
	name          INTEGER NOT NULL,
	category      INTEGER NOT NULL,
	read_only     INTEGER,
	account       INTEGER,
	region        INTEGER,
	principal     INTEGER,
	invoked_by    INTEGER,
	source_ip     INTEGER,
	user_agent    INTEGER,
	key           INTEGER,
	key2          INTEGER,
	key_source    INTEGER NOT NULL,
	alias         INTEGER,
	error_code    INTEGER,
	error_message TEXT,
	block         INTEGER NOT NULL,
	off           INTEGER NOT NULL,
	len           INTEGER NOT NULL,
	valid_to      INTEGER,
	deletion_date INTEGER,
	rotation_type INTEGER,
	key_material  INTEGER
);
INSERT INTO events_v3 SELECT id, time, event_id, name, category, read_only, account, region, principal,
	invoked_by, source_ip, user_agent, key, key2, key_source, alias, error_code, error_message,
	block, off, len, valid_to, deletion_date, rotation_type, key_material FROM events ORDER BY id;
DROP TABLE events;
ALTER TABLE events_v3 RENAME TO events;
CREATE UNIQUE INDEX event_id_unique ON events(event_id);
CREATE INDEX events_time           ON events(time);
CREATE INDEX events_key_time       ON events(key, time) WHERE key IS NOT NULL;
CREATE INDEX events_key2_time      ON events(key2, time) WHERE key2 IS NOT NULL;
CREATE INDEX events_principal_time ON events(principal, time);
CREATE INDEX events_name_time      ON events(name, time);
CREATE INDEX events_alias_time     ON events(alias, time) WHERE alias IS NOT NULL;
CREATE INDEX events_errors_time    ON events(time) WHERE error_code IS NOT NULL;
` + eventsView,
	// v4: event_details, what the key-lifecycle events (CreateKey,
	// EnableKeyRotation, ImportKeyMaterial, RotateKey, RotateKeyOnDemand)
	// say about their key beyond the events columns: one row per such
	// event, a few thousand in a million. The rotation report read these
	// from the raw evidence, decompressing a block per fact (1.6 s at a
	// million events). Events of a v3 database are filled in from their
	// raw records by backfillDetails, in the same transaction.
	`
CREATE TABLE event_details (
	event                INTEGER PRIMARY KEY,
	key_spec             TEXT,
	origin               TEXT,
	key_manager          TEXT,
	custom_key_store     TEXT,
	description          TEXT,
	multi_region         INTEGER,
	rotation_period_days INTEGER,
	import_type          TEXT,
	expiration_model     TEXT,
	key_material         TEXT
);
DROP VIEW events_v;
` + eventsViewV4,
	// v5: aggregates, KMS events counted per day, account, region, event,
	// key, principal, calling service and error by a query that ran
	// elsewhere (Athena over an organisation's trail, too large to copy),
	// with the provenance of every such query in aggregate_sources. The
	// events themselves are not in the database: no event id, no record.
	`
CREATE TABLE aggregate_sources (
	id              INTEGER PRIMARY KEY,
	kind            TEXT NOT NULL,
	query_id        TEXT NOT NULL,
	catalog         TEXT,
	database_name   TEXT,
	table_name      TEXT,
	workgroup       TEXT,
	output_location TEXT,
	query           TEXT NOT NULL,
	period_from     INTEGER NOT NULL,
	period_to       INTEGER NOT NULL,
	rows            INTEGER NOT NULL,
	events          INTEGER NOT NULL,
	result_sha256   BLOB NOT NULL,
	data_scanned    INTEGER,
	started_at      INTEGER NOT NULL,
	finished_at     INTEGER NOT NULL,
	run             INTEGER REFERENCES runs(id)
);

CREATE TABLE aggregates (
	source     INTEGER NOT NULL REFERENCES aggregate_sources(id),
	day        TEXT NOT NULL,
	account    TEXT NOT NULL,
	region     TEXT NOT NULL,
	name       INTEGER NOT NULL,
	category   INTEGER NOT NULL,
	key        INTEGER,
	principal  INTEGER,
	invoked_by INTEGER,
	error_code INTEGER,
	events     INTEGER NOT NULL,
	first_time INTEGER NOT NULL,
	last_time  INTEGER NOT NULL
);
CREATE INDEX aggregates_day ON aggregates(day);
`,
	// v6: an aggregate of ReEncrypt calls names the destination key too
	// (key is the source), so the usage report counts the calls for both
	// keys, as it does from the records; an aggregate of calls that named
	// only an alias keeps the alias, resolved through the alias history
	// when a report reads it, and the alias changes an aggregate counted
	// extend that history. Aggregates stored by v5 have both NULL: they
	// count for their source key, or for no key.
	`ALTER TABLE aggregates ADD COLUMN key2 INTEGER;
ALTER TABLE aggregates ADD COLUMN alias INTEGER;`,
	// v7: what a run left out and whether it is alive. A run records the
	// process that ran it (pid, host) and, at every commit, heartbeat_at:
	// a run found "running" whose process no longer holds its lock
	// (runlock.go) was interrupted there. run_notes names every entry a
	// run skipped (kind 'skipped': hidden, digest, unknown names, loops,
	// non-regular files) and every warning (kind 'warning'), so the
	// provenance of the evidence says what was not read and why.
	`ALTER TABLE runs ADD COLUMN pid INTEGER;
ALTER TABLE runs ADD COLUMN host TEXT;
ALTER TABLE runs ADD COLUMN heartbeat_at INTEGER;
ALTER TABLE runs ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN warnings INTEGER NOT NULL DEFAULT 0;
CREATE TABLE run_notes (
	run    INTEGER NOT NULL REFERENCES runs(id),
	kind   TEXT NOT NULL,
	path   TEXT NOT NULL,
	reason TEXT NOT NULL,
	detail TEXT
);
CREATE INDEX run_notes_run ON run_notes(run);`,
	// v8: conflicting records. events.fp is the fingerprint of what a
	// record states (cloudtrail.Record.Fingerprint: every field the ingest
	// extracts, not the record's bytes); a record whose eventID is stored
	// already but whose fingerprint differs is kept in conflicts (with its
	// file and offset) instead of being dropped as a duplicate. The ingest
	// settles each at its end (Writer.ResolveConflicts): of two different
	// records the event keeps the one with the smaller fingerprint, the
	// other stays in conflicts (state 1), whatever the order they came
	// in. Events stored before v8 have no fingerprint (NULL): a record
	// with their eventID is compared by re-reading theirs.
	// raw_blocks.src_offs is, for a DEFLATE block, where each record
	// starts in its file (so a record moved out of events keeps its
	// offset); NULL for a file kept whole (events.off is the offset).
	`ALTER TABLE events ADD COLUMN fp INTEGER;
ALTER TABLE raw_blocks ADD COLUMN src_offs BLOB;
CREATE TABLE conflicts (
	id       INTEGER PRIMARY KEY,
	event_id BLOB NOT NULL,
	file     INTEGER NOT NULL REFERENCES files(id),
	off      INTEGER,
	raw      BLOB NOT NULL,
	fp       INTEGER,
	state    INTEGER NOT NULL DEFAULT 0,
	run      INTEGER REFERENCES runs(id)
);
CREATE INDEX conflicts_event ON conflicts(event_id);`,
	// v9: key_materials, the key-material history of the inventory
	// (ListKeyRotations with all key material: each material's state,
	// import state, expiration and valid-to date, and the date and type of
	// the rotation that made it current). It dates rotations older than
	// the logs and states an imported key's material expiry; a later
	// snapshot updates a material, never erasing a rotation date. Filled
	// for an older database from the inventory's document fragments
	// (backfillMaterials).
	`CREATE TABLE key_materials (
	key              INTEGER NOT NULL REFERENCES keys(id),
	material_id      TEXT NOT NULL,
	as_of            INTEGER NOT NULL,
	file             INTEGER REFERENCES files(id),
	state            TEXT,
	import_state     TEXT,
	expiration_model TEXT,
	valid_to         INTEGER,
	rotation_date    INTEGER,
	rotation_type    TEXT,
	description      TEXT,
	PRIMARY KEY (key, material_id)
) WITHOUT ROWID;`,
	// Key provenance (ceremonies.go): ceremonies, the ceremonies whose
	// transcripts verified (chain, anchors, output files), one row per
	// final hash, with what the join to CloudTrail needs in columns and
	// the rest of what the ceremony produced in facts (JSON); pca_events,
	// the AWS Private CA records the join needs (the CSR fetched, the CA
	// certificate imported), kept with their raw record because the events
	// table holds KMS events only.
	`CREATE TABLE ceremonies (
	id                INTEGER PRIMARY KEY,
	final_hash        TEXT NOT NULL UNIQUE,
	ceremony_id       TEXT NOT NULL,
	kind              TEXT NOT NULL,
	title             TEXT,
	script_sha256     TEXT,
	binary_sha256     TEXT,
	binary_version    TEXT,
	started_at        INTEGER NOT NULL,
	ended_at          INTEGER NOT NULL,
	rehearsal         INTEGER NOT NULL,
	participants      TEXT NOT NULL,
	anchors           TEXT NOT NULL,
	entries           INTEGER NOT NULL,
	kms_key_arn       TEXT,
	ca_arn            TEXT,
	facts             TEXT NOT NULL,
	transcript_path   TEXT NOT NULL,
	transcript_sha256 BLOB NOT NULL,
	transcript_size   INTEGER NOT NULL,
	run               INTEGER REFERENCES runs(id),
	loaded_at         INTEGER NOT NULL
);
CREATE INDEX ceremonies_key ON ceremonies(kms_key_arn) WHERE kms_key_arn IS NOT NULL;
CREATE INDEX ceremonies_ca ON ceremonies(ca_arn) WHERE ca_arn IS NOT NULL;
CREATE TABLE pca_events (
	id         INTEGER PRIMARY KEY,
	event_id   TEXT NOT NULL UNIQUE,
	time       INTEGER NOT NULL,
	name       TEXT NOT NULL,
	ca_arn     TEXT,
	account    TEXT,
	region     TEXT,
	principal  TEXT,
	error_code TEXT,
	file       INTEGER REFERENCES files(id),
	raw        TEXT NOT NULL
);
CREATE INDEX pca_events_ca_time ON pca_events(ca_arn, time);`,
	// v11: rollups, the events counted per UTC day, account, region,
	// event name, category, key, second key, principal, calling service
	// and error, with each group's first and last event and its count per
	// UTC hour (rollups.go). The writer keeps them in the transaction of
	// the events; reports and charts read them instead of every event.
	// Filled for an older database from its events (backfillRollups).
	rollupsTable,
	// v12: the events naming an alias whose key is not known yet, indexed
	// apart: every ingest looks for them (Writer.markUnresolvedAliases),
	// and through events_alias_time that meant visiting every alias event
	// (9.5 of 15.7 CPU-seconds of adding one day to ten million events).
	// Almost always empty.
	unresolvedIndex.sql + ";",
}

// unresolvedIndex: see v12.
var unresolvedIndex = struct{ name, sql string }{"events_alias_unresolved",
	"CREATE INDEX IF NOT EXISTS events_alias_unresolved ON events(alias) WHERE alias IS NOT NULL AND key IS NULL"}

// migrationCode runs Go after the SQL of a migration, in its transaction:
// migrationCode[i] completes migrations[i].
var migrationCode = map[int]func(ctx context.Context, conn *sql.Conn) error{
	3:  backfillDetails,
	8:  backfillMaterials,
	10: backfillRollups, // v11
}

// eventsView is the events_v view of v1 (the migration's text ends with
// it), recreated by v3 (a view must go while its table is rebuilt).
const eventsView = `
CREATE VIEW events_v AS
SELECT e.id,
       datetime(e.time, 'unixepoch') AS time_utc,
       CASE WHEN typeof(e.event_id) = 'blob' THEN lower(
            substr(hex(e.event_id),1,8)||'-'||substr(hex(e.event_id),9,4)||'-'||substr(hex(e.event_id),13,4)||'-'||
            substr(hex(e.event_id),17,4)||'-'||substr(hex(e.event_id),21,12)) ELSE e.event_id END AS event_id,
       n.s AS event_name,
       CASE e.category WHEN 1 THEN 'data' WHEN 2 THEN 'service' ELSE 'management' END AS category,
       e.read_only,
       acc.s AS account, reg.s AS region,
       p.arn AS principal_arn, p.type AS principal_type, p.role_arn,
       inv.s AS invoked_by, ip.s AS source_ip, ua.s AS user_agent,
       k.arn AS key_arn, k2.arn AS key2_arn, e.key_source, a.arn AS alias_arn,
       ec.s AS error_code, e.error_message,
       datetime(e.valid_to, 'unixepoch') AS valid_to,
       datetime(e.deletion_date, 'unixepoch') AS deletion_date,
       rt.s AS rotation_type, km.s AS key_material_id
FROM events e
LEFT JOIN strs n ON n.id = e.name
LEFT JOIN strs acc ON acc.id = e.account
LEFT JOIN strs reg ON reg.id = e.region
LEFT JOIN principals p ON p.id = e.principal
LEFT JOIN strs inv ON inv.id = e.invoked_by
LEFT JOIN strs ip ON ip.id = e.source_ip
LEFT JOIN strs ua ON ua.id = e.user_agent
LEFT JOIN keys k ON k.id = e.key
LEFT JOIN keys k2 ON k2.id = e.key2
LEFT JOIN aliases a ON a.id = e.alias
LEFT JOIN strs ec ON ec.id = e.error_code
LEFT JOIN strs rt ON rt.id = e.rotation_type
LEFT JOIN strs km ON km.id = e.key_material;
`

// eventsViewV4 is events_v with the lifecycle details of v4.
var eventsViewV4 = strings.Replace(strings.Replace(eventsView,
	"rt.s AS rotation_type, km.s AS key_material_id\n",
	"rt.s AS rotation_type, km.s AS key_material_id,\n"+
		"       d.key_spec, d.origin, d.key_manager, d.custom_key_store, d.rotation_period_days,\n"+
		"       d.import_type, d.expiration_model, d.key_material AS detail_key_material\n", 1),
	"LEFT JOIN strs km ON km.id = e.key_material;",
	"LEFT JOIN strs km ON km.id = e.key_material\nLEFT JOIN event_details d ON d.event = e.id;", 1)

// uniqueIndex deduplicates events by eventID (v3). A bulk load drops it
// with the secondary indexes while it deduplicates in memory (see
// Writer.DropIndexes); any other writer that finds it missing builds it
// before writing a single event.
var uniqueIndex = struct{ name, sql string }{
	"event_id_unique", "CREATE UNIQUE INDEX IF NOT EXISTS event_id_unique ON events(event_id)"}

// secondaryIndexes are the events indexes the queries use, beyond the
// UNIQUE index on event_id that deduplication needs (uniqueIndex). A bulk load drops them
// and builds them once at the end (sorting once is far cheaper than a
// million random B-tree inserts); every ingest ends by creating any that are
// missing, so a load killed half-way is fully indexed after the next run.
// They must match the indexes the migrations create.
var secondaryIndexes = []struct{ name, sql string }{
	{"events_time", "CREATE INDEX IF NOT EXISTS events_time ON events(time)"},
	{"events_key_time", "CREATE INDEX IF NOT EXISTS events_key_time ON events(key, time) WHERE key IS NOT NULL"},
	{"events_key2_time", "CREATE INDEX IF NOT EXISTS events_key2_time ON events(key2, time) WHERE key2 IS NOT NULL"},
	{"events_principal_time", "CREATE INDEX IF NOT EXISTS events_principal_time ON events(principal, time)"},
	{"events_name_time", "CREATE INDEX IF NOT EXISTS events_name_time ON events(name, time)"},
	{"events_alias_time", "CREATE INDEX IF NOT EXISTS events_alias_time ON events(alias, time) WHERE alias IS NOT NULL"},
	{"events_errors_time", "CREATE INDEX IF NOT EXISTS events_errors_time ON events(time) WHERE error_code IS NOT NULL"},
	unresolvedIndex,
}

// SchemaVersion is the version this code writes.
var SchemaVersion = len(migrations)
