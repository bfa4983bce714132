package usage

import (
	"database/sql"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/store"
)

// Loading what the pass needs: the keys in scope with their aliases and
// inventory, the principals and the identities they fold into, and the
// strings the report names.

// strIDs resolves strings to their ids in the strs table and remembers
// them.
func (b *builder) strIDs(names ...string) (map[string]int64, error) {
	m, err := store.StrIDs(b.ctx, b.db, names)
	for s, id := range m {
		b.strs[id] = s
	}
	return m, err
}

func (b *builder) loadKeys() error {
	sc := b.o.Scope
	rows, err := b.db.QueryContext(b.ctx, `SELECT k.id, k.arn, k.account, k.region, i.as_of, i.last_used_at, i.last_used_operation
		FROM keys k LEFT JOIN inventory i ON i.key = k.id ORDER BY k.id`)
	if err != nil {
		return fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	b.keys = map[int64]*keyInfo{}
	b.dig.Section("keys")
	for rows.Next() {
		k := &keyInfo{}
		var asOf, last sql.NullInt64
		var op sql.NullString
		if err := rows.Scan(&k.id, &k.arn, &k.account, &k.region, &asOf, &last, &op); err != nil {
			return fmt.Errorf("list keys: %w", err)
		}
		k.inScope = (sc.Account == "" || k.account == sc.Account) && (sc.Region == "" || k.region == sc.Region) &&
			(sc.KeyARN == "" || k.arn == sc.KeyARN || strings.HasSuffix(k.arn, "/"+sc.KeyARN))
		k.hasInv, k.invAsOf, k.invLast, k.invOp = asOf.Valid, asOf.Int64, last.Int64, op.String
		b.dig.Row(k.id, k.arn, k.account, k.region, asOf.Int64, last.Int64, op.String)
		b.keys[k.id] = k
		b.keyList = append(b.keyList, k)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	byARN := map[string]*keyInfo{}
	for _, k := range b.keyList {
		byARN[k.arn] = k
	}
	return report.AttachAliases(b.ctx, b.st, b.dig, func(keyARN, alias string) bool {
		k := byARN[keyARN]
		if k != nil {
			k.aliases = append(k.aliases, alias)
		}
		return k != nil
	})
}

// loadPrincipals folds principals into identities: an assumed-role
// session counts as its role (a role has thousands of sessions), a
// principal with no ARN (an AWS service) as the service that called.
func (b *builder) loadPrincipals() error {
	rows, err := b.db.QueryContext(b.ctx, `SELECT id, arn, type, account, role_arn FROM principals ORDER BY id`)
	if err != nil {
		return fmt.Errorf("list principals: %w", err)
	}
	defer rows.Close()
	b.princ = map[int64]*pinfo{}
	b.dig.Section("principals")
	for rows.Next() {
		var id int64
		var arn, typ, acc, role string
		if err := rows.Scan(&id, &arn, &typ, &acc, &role); err != nil {
			return err
		}
		b.dig.Row(id, arn, typ, acc, role)
		p := &pinfo{ident: -1, typ: typ, acc: acc}
		switch {
		case role != "":
			p.ident = b.identity(role, "IAM role", acc)
		case arn != "":
			p.ident = b.identity(arn, typ, acc)
		}
		b.princ[id] = p
	}
	return rows.Err()
}

func (b *builder) identity(name, typ, acc string) int32 {
	if i, ok := b.identIx[name]; ok {
		return i
	}
	i := int32(len(b.idents))
	b.idents = append(b.idents, &ident{name: name, typ: typ, account: acc, keys: map[int64]bool{}, firstSeen: -1})
	b.identIx[name] = i
	return i
}

func (b *builder) identOf(principal, invoked int64) int32 {
	p := b.princ[principal]
	if p != nil && p.ident >= 0 {
		return p.ident
	}
	k := [2]int64{principal, invoked}
	if i, ok := b.byInv[k]; ok {
		return i
	}
	name := "unknown principal"
	typ, acc := "", ""
	if p != nil {
		typ, acc = p.typ, p.acc
	}
	if invoked != 0 {
		name = "\x00" + strconv.FormatInt(invoked, 10) // the service's name, resolved later
	} else if p != nil && p.typ != "" {
		name = p.typ + " (account " + p.acc + ")"
	}
	i := b.identity(name+"\x01"+typ, typ, acc)
	b.byInv[k] = i
	return i
}

// resolveStrs reads the strings behind the ids the aggregation used.
func (b *builder) resolveStrs() error {
	want := map[int64]bool{}
	note := func(id int64) {
		if _, ok := b.strs[id]; !ok && id != 0 {
			want[id] = true
		}
	}
	for _, a := range b.allAggs() {
		for op := range a.ops {
			note(op / 4)
		}
		for s := range a.svcs {
			note(s)
		}
		for e := range a.errs {
			note(e)
		}
	}
	for _, r := range b.admin {
		note(r.name)
		note(r.err)
		note(r.invoked)
	}
	for k := range b.byInv {
		note(k[1])
	}
	var ids []int64
	for id := range want {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	b.dig.Section("strings")
	if err := store.StrsByID(b.ctx, b.db, ids, func(id int64, s string) {
		b.strs[id] = s
		b.dig.Row(id, s)
	}); err != nil {
		return err
	}
	// Name the identities known only by their invoking service.
	for k, i := range b.byInv {
		id := b.idents[i]
		if strings.HasPrefix(id.name, "\x00") {
			svc := b.strs[k[1]]
			id.name = svc
			if id.typ != "" {
				id.name = svc + " (" + id.typ + ")"
			}
		} else {
			id.name = strings.SplitN(id.name, "\x01", 2)[0]
		}
	}
	return nil
}
