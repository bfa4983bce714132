package rotation

import (
	"bytes"
	"compress/flate"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strconv"
	"sync"

	"github.com/keyceremony/keyceremony/audit/store"
)

// A few facts the rotation report needs are only in the original record
// (the store keeps no column for them): the key spec, origin and manager
// in CreateKey, rotationPeriodInDays in EnableKeyRotation, importType and
// expirationModel in ImportKeyMaterial, the current key material id of a
// RotateKey. The report reads the raw record of the few events that decide
// a fact, never all of them: grouped by evidence block, each block
// decompressed once and only as far as the last record needed, on every
// core. (A column for each would spare the decompression; see
// docs/audit-reports.md, "Store changes requested".)

// detail is what the raw record says.
type detail struct {
	KeySpec, Origin, KeyManager, CustomKeyStore, Description string
	MultiRegion                                              *bool
	RotationPeriodDays                                       int
	ImportType, ExpirationModel                              string
	KeyMaterialID                                            string
}

type rawReq struct {
	row        int64 // events.id
	block, off int64
	n          int64
	out        *detail
}

// readDetails fills every request's detail from its raw record.
func readDetails(ctx context.Context, db *sql.DB, reqs []*rawReq) error {
	if len(reqs) == 0 {
		return nil
	}
	sort.Slice(reqs, func(i, j int) bool {
		if reqs[i].block != reqs[j].block {
			return reqs[i].block < reqs[j].block
		}
		return reqs[i].off < reqs[j].off
	})
	var groups [][]*rawReq
	for i := 0; i < len(reqs); {
		j := i
		for j < len(reqs) && reqs[j].block == reqs[i].block {
			j++
		}
		groups = append(groups, reqs[i:j])
		i = j
	}
	workers := min(runtime.GOMAXPROCS(0), 4, len(groups))
	ch := make(chan []*rawReq)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := newBlockReader(ctx, db)
			if err != nil {
				errs <- err
				for range ch {
				}
				return
			}
			defer r.close()
			for g := range ch {
				if err := r.read(g); err != nil {
					errs <- err
					for range ch {
					}
					return
				}
			}
		}()
	}
	for _, g := range groups {
		if ctx.Err() != nil {
			break
		}
		ch <- g
	}
	close(ch)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

// blockReader decompresses evidence blocks on its own connection, reusing
// its buffers: a report may read thousands of blocks.
type blockReader struct {
	ctx  context.Context
	conn *sql.Conn
	stmt *sql.Stmt
	zr   io.ReadCloser
	src  bytes.Reader
	buf  []byte
}

func newBlockReader(ctx context.Context, db *sql.DB) (*blockReader, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("open a database connection: %w", err)
	}
	// Each block is read once: a small page cache keeps the report's
	// memory low (the pool's default is 64 MiB per connection). Restored
	// in close.
	if _, err := conn.ExecContext(ctx, "PRAGMA cache_size=-2048"); err != nil {
		conn.Close()
		return nil, err
	}
	stmt, err := conn.PrepareContext(ctx, `SELECT codec, size, data FROM raw_blocks WHERE id = ?`)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &blockReader{ctx: ctx, conn: conn, stmt: stmt}, nil
}

func (r *blockReader) close() {
	r.stmt.Close()
	r.conn.ExecContext(context.WithoutCancel(r.ctx), "PRAGMA cache_size=-65536")
	r.conn.Close()
}

func (r *blockReader) read(g []*rawReq) error {
	block := g[0].block
	end := int64(0)
	for _, q := range g {
		end = max(end, q.off+q.n)
	}
	rows, err := r.stmt.QueryContext(r.ctx, block)
	if err != nil {
		return fmt.Errorf("read evidence block %d: %w", block, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read evidence block %d: %w", block, err)
		}
		return fmt.Errorf("evidence block %d is missing (database damaged?)", block)
	}
	var codec, size int64
	var comp sql.RawBytes // valid until the next Next: decompressed before that
	if err := rows.Scan(&codec, &size, &comp); err != nil {
		return fmt.Errorf("read evidence block %d: %w", block, err)
	}
	if codec != store.CodecDeflate {
		return fmt.Errorf("evidence block %d: unknown codec %d", block, codec)
	}
	if end > size {
		return fmt.Errorf("evidence block %d: record beyond the block (database damaged?)", block)
	}
	r.src.Reset(comp)
	if r.zr == nil {
		r.zr = flate.NewReader(&r.src)
	} else if err := r.zr.(flate.Resetter).Reset(&r.src, nil); err != nil {
		return err
	}
	if int64(cap(r.buf)) < end {
		r.buf = make([]byte, end, max(end, 256<<10))
	}
	r.buf = r.buf[:end]
	// Only as far as the last record needed: DEFLATE cannot seek, but it
	// can stop.
	if _, err := io.ReadFull(r.zr, r.buf); err != nil {
		return fmt.Errorf("evidence block %d: %w", block, err)
	}
	for _, q := range g {
		parseDetail(r.buf[q.off:q.off+q.n], q.out)
	}
	return nil
}

// parseDetail reads the few fields it knows; anything it cannot read
// stays empty ("not established"), never guessed.
func parseDetail(raw []byte, d *detail) {
	var rec struct {
		RequestParameters   json.RawMessage `json:"requestParameters"`
		ResponseElements    json.RawMessage `json:"responseElements"`
		ServiceEventDetails json.RawMessage `json:"serviceEventDetails"`
		AdditionalEventData json.RawMessage `json:"additionalEventData"`
	}
	if json.Unmarshal(raw, &rec) != nil {
		return
	}
	var req struct {
		KeySpec               string          `json:"keySpec"`
		CustomerMasterKeySpec string          `json:"customerMasterKeySpec"`
		Origin                string          `json:"origin"`
		CustomKeyStoreID      string          `json:"customKeyStoreId"`
		Description           string          `json:"description"`
		MultiRegion           *bool           `json:"multiRegion"`
		RotationPeriodInDays  json.RawMessage `json:"rotationPeriodInDays"`
		ImportType            string          `json:"importType"`
		ExpirationModel       string          `json:"expirationModel"`
		KeyMaterialID         string          `json:"keyMaterialId"`
	}
	unmarshalEmbedded(rec.RequestParameters, &req)
	var resp struct {
		KeyMetadata *struct {
			KeySpec               string `json:"keySpec"`
			CustomerMasterKeySpec string `json:"customerMasterKeySpec"`
			Origin                string `json:"origin"`
			KeyManager            string `json:"keyManager"`
			CustomKeyStoreID      string `json:"customKeyStoreId"`
			Description           string `json:"description"`
			MultiRegion           *bool  `json:"multiRegion"`
		} `json:"keyMetadata"`
		KeyMaterialID string `json:"keyMaterialId"`
	}
	unmarshalEmbedded(rec.ResponseElements, &resp)
	var sed struct {
		CurrentKeyMaterialID string `json:"currentKeyMaterialId"`
		KeyMaterialID        string `json:"keyMaterialId"`
		KeyOrigin            string `json:"keyOrigin"`
	}
	unmarshalEmbedded(rec.ServiceEventDetails, &sed)

	first := func(v ...string) string {
		for _, s := range v {
			if s != "" {
				return s
			}
		}
		return ""
	}
	if m := resp.KeyMetadata; m != nil {
		d.KeySpec = first(m.KeySpec, m.CustomerMasterKeySpec)
		d.Origin, d.KeyManager, d.CustomKeyStore, d.Description, d.MultiRegion = m.Origin, m.KeyManager, m.CustomKeyStoreID, m.Description, m.MultiRegion
	}
	// A CreateKey request states what was asked; KMS's defaults fill the
	// rest (SYMMETRIC_DEFAULT, AWS_KMS) only when the call succeeded and
	// the response said nothing, which the caller decides.
	d.KeySpec = first(d.KeySpec, req.KeySpec, req.CustomerMasterKeySpec)
	d.Origin = first(d.Origin, req.Origin, sed.KeyOrigin)
	d.CustomKeyStore = first(d.CustomKeyStore, req.CustomKeyStoreID)
	d.Description = first(d.Description, req.Description)
	if d.MultiRegion == nil {
		d.MultiRegion = req.MultiRegion
	}
	if len(req.RotationPeriodInDays) > 0 {
		s := string(bytes.Trim(req.RotationPeriodInDays, `"`))
		if n, err := strconv.Atoi(s); err == nil {
			d.RotationPeriodDays = n
		}
	}
	d.ImportType, d.ExpirationModel = req.ImportType, req.ExpirationModel
	d.KeyMaterialID = first(sed.CurrentKeyMaterialID, sed.KeyMaterialID, resp.KeyMaterialID, req.KeyMaterialID)
}

// unmarshalEmbedded accepts an object or, as Athena exports write them, a
// JSON string holding the object.
func unmarshalEmbedded(raw json.RawMessage, v any) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] == 'n' {
		return
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return
		}
		raw = json.RawMessage(s)
	}
	json.Unmarshal(raw, v)
}
