package cloudtrailgen

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// world is the fixed cast: keys, aliases and principals per account/region.
type world struct {
	cfg   Config
	areas map[string]*area // account+"/"+region
	mid   time.Time        // when alias/rotating switches key
}

type area struct {
	account, region string
	keys            []string // key ARNs: [0..n-3] symmetric, n-2 asymmetric, n-1 EXTERNAL
	aliases         []string // alias names, aliases[i] -> keys[i]
	rotatingBefore  string
	rotatingAfter   string
	users           []string
	roles           []string
}

func newWorld(cfg Config) *world {
	w := &world{cfg: cfg, areas: map[string]*area{}}
	w.mid = cfg.Start.Add(time.Duration(cfg.Days) * 12 * time.Hour)
	rng := rand.New(rand.NewPCG(cfg.Seed, 0xC0FFEE))
	for _, acct := range cfg.Accounts {
		for _, region := range cfg.Regions {
			a := &area{account: acct, region: region}
			for i := 0; i < cfg.KeysPerRegion; i++ {
				id := uuid(rng)
				if i == 0 && len(cfg.Regions) > 1 {
					id = "mrk-" + hex32(rng)
				}
				a.keys = append(a.keys, "arn:aws:kms:"+region+":"+acct+":key/"+id)
				a.aliases = append(a.aliases, "alias/app-"+strconv.Itoa(i))
			}
			a.rotatingBefore = a.keys[0]
			a.rotatingAfter = a.keys[1%len(a.keys)]
			a.users = []string{"alice", "bob", "carol", "ci-deployer", "security-officer"}
			a.roles = []string{"AppServer", "BatchJob", "DataPipeline", "Admin", "LambdaExec"}
			w.areas[acct+"/"+region] = a
		}
	}
	return w
}

func (w *world) allKeys() []string {
	var ks []string
	for _, acct := range w.cfg.Accounts {
		for _, region := range w.cfg.Regions {
			ks = append(ks, w.areas[acct+"/"+region].keys...)
		}
	}
	return ks
}

func (w *world) finalAliases() map[string]string {
	m := map[string]string{}
	for _, a := range w.areas {
		p := "arn:aws:kms:" + a.region + ":" + a.account + ":"
		for i, al := range a.aliases {
			m[p+al] = a.keys[i]
		}
		m[p+"alias/rotating"] = a.rotatingAfter
	}
	return m
}

func uuid(rng *rand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func hex32(rng *rand.Rand) string {
	return fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64())
}

type slotGen struct {
	w       *world
	s       *slot
	a       *area
	rng     *rand.Rand
	kmsRecs [][]byte
}

func (w *world) slotGen(s *slot) *slotGen {
	return &slotGen{w: w, s: s, a: w.areas[s.account+"/"+s.region], rng: rngFor(w.cfg.Seed, s.idx)}
}

// file appends one log file's JSON and returns the counts it holds.
func (g *slotGen) file(buf []byte) (out []byte, kms, noise, errs int) {
	cfg := g.w.cfg
	nNoise := int(float64(g.s.nKMS)*cfg.NoiseRatio + g.rng.Float64())
	if g.s.noKMS {
		avg := float64(cfg.KMSEvents) / float64(cfg.Days*int(24*time.Hour/cfg.FileInterval)*len(cfg.Accounts)*len(cfg.Regions))
		nNoise = int(avg*2*cfg.NoiseRatio + g.rng.Float64())
		if nNoise == 0 {
			nNoise = 1 // an empty trail still delivers a file now and then
		}
	}
	buf = append(buf, `{"Records":[`...)
	total := g.s.nKMS + nNoise
	noiseLeft := nNoise
	kmsLeft := g.s.nKMS
	var offs [][2]int
	first := true
	special := g.specialEvents()
	for i := 0; i < total; i++ {
		if !first {
			buf = append(buf, ',')
		}
		first = false
		start := len(buf)
		isNoise := noiseLeft > 0 && (kmsLeft == 0 || g.rng.IntN(total-i) < noiseLeft)
		if isNoise {
			noiseLeft--
			buf = g.noise(buf)
			noise++
			continue
		}
		kmsLeft--
		var failed bool
		if len(special) > 0 {
			buf, failed = special[0](buf)
			special = special[1:]
		} else {
			buf, failed = g.kms(buf)
		}
		if failed {
			errs++
		}
		kms++
		offs = append(offs, [2]int{start, len(buf)})
	}
	buf = append(buf, "]}"...)
	for _, o := range offs {
		g.kmsRecs = append(g.kmsRecs, buf[o[0]:o[1]])
	}
	return buf, kms, noise, errs
}

// specialEvents are placed once per area: CreateAlias for alias/rotating at
// the start and UpdateAlias to the second key at the middle of the range.
func (g *slotGen) specialEvents() []func([]byte) ([]byte, bool) {
	var sp []func([]byte) ([]byte, bool)
	if g.s.nKMS == 0 {
		return nil
	}
	iv := g.w.cfg.FileInterval
	if g.s.start.Equal(g.w.cfg.Start) {
		sp = append(sp, func(b []byte) ([]byte, bool) {
			return g.aliasEvent(b, "CreateAlias", g.a.rotatingBefore, g.s.start.Add(time.Second)), false
		})
	}
	if !g.w.mid.Before(g.s.start) && g.w.mid.Before(g.s.start.Add(iv)) {
		sp = append(sp, func(b []byte) ([]byte, bool) {
			return g.aliasEvent(b, "UpdateAlias", g.a.rotatingAfter, g.w.mid), false
		})
	}
	return sp
}

func (g *slotGen) when() time.Time {
	return g.s.start.Add(time.Duration(g.rng.Int64N(int64(g.w.cfg.FileInterval))))
}

var userAgents = []string{
	"aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0-18-amd64 exe/x86_64.debian.12 prompt/off command/kms.decrypt",
	"aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64 api/kms#1.35.3",
	"Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
	"aws-sdk-java/2.25.16 Linux/5.10.213-201.855.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/legacy",
	"console.amazonaws.com",
}

var services = []string{"s3.amazonaws.com", "ebs.amazonaws.com", "rds.amazonaws.com", "secretsmanager.amazonaws.com", "lambda.amazonaws.com", "dynamodb.amazonaws.com"}

type principal struct {
	json      []byte
	ip, agent string
}

// stable derives fixed identifiers (principal ids, access keys, key
// material ids) from a name, so the same principal looks the same in every
// record as it does in real logs.
func stable(parts ...string) *rand.Rand {
	h := uint64(14695981039346656037)
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			h = (h ^ uint64(p[i])) * 1099511628211
		}
		h = (h ^ 0xff) * 1099511628211
	}
	return rand.New(rand.NewPCG(h, h>>7))
}

func (g *slotGen) principal(t time.Time) principal {
	a, rng := g.a, g.rng
	acct := a.account
	switch x := rng.IntN(100); {
	case x < 25:
		u := a.users[rng.IntN(len(a.users))]
		id := stable(acct, u)
		j := `{"type":"IAMUser","principalId":"AIDA` + upperID(id, 17) + `","arn":"arn:aws:iam::` + acct + `:user/` + u +
			`","accountId":"` + acct + `","accessKeyId":"AKIA` + upperID(id, 16) + `","userName":"` + u + `"}`
		return principal{[]byte(j), ip(rng), userAgents[stable(u).IntN(len(userAgents))]}
	case x < 75:
		role := a.roles[rng.IntN(len(a.roles))]
		rid := "AROA" + upperID(stable(acct, role), 17)
		n := rng.IntN(12)
		sid := stable(acct, role, strconv.Itoa(n), g.s.start.Format("2006010215"))
		sess := "i-0" + hex(sid, 16)
		if n%3 == 0 {
			sess = "session-" + strconv.Itoa(n)
		}
		j := `{"type":"AssumedRole","principalId":"` + rid + `:` + sess + `","arn":"arn:aws:sts::` + acct + `:assumed-role/` + role + `/` + sess +
			`","accountId":"` + acct + `","accessKeyId":"ASIA` + upperID(sid, 16) + `","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"` + rid +
			`","arn":"arn:aws:iam::` + acct + `:role/` + role + `","accountId":"` + acct + `","userName":"` + role +
			`"},"attributes":{"creationDate":"` + g.s.start.Add(-time.Duration(sid.IntN(3600))*time.Second).Format("2006-01-02T15:04:05Z") + `","mfaAuthenticated":"false"}}`
		if rng.IntN(4) == 0 {
			svc := services[rng.IntN(len(services))]
			j += `,"invokedBy":"` + svc + `"}`
			return principal{[]byte(j), svc, svc}
		}
		j += `}`
		return principal{[]byte(j), ip(rng), userAgents[stable(role).IntN(len(userAgents))]}
	default:
		svc := services[rng.IntN(len(services))]
		return principal{[]byte(`{"type":"AWSService","invokedBy":"` + svc + `"}`), svc, svc}
	}
}

func ip(rng *rand.Rand) string {
	nets := []string{"203.0.113.", "198.51.100.", "192.0.2.", "10.20.30."}
	return nets[rng.IntN(len(nets))] + strconv.Itoa(1+rng.IntN(60))
}

func upperID(rng *rand.Rand, n int) string {
	const al = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, n)
	for i := range b {
		b[i] = al[rng.IntN(len(al))]
	}
	return string(b)
}

func hex(rng *rand.Rand, n int) string {
	const al = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = al[rng.IntN(16)]
	}
	return string(b)
}

// ev is one record under construction.
type ev struct {
	name      string
	t         time.Time
	p         principal
	req       string // JSON or "null"
	resp      string // JSON or "null"
	add       string // additionalEventData JSON or ""
	resources []string
	readOnly  bool
	service   bool
	errCode   string
	errMsg    string
	old       bool // an older record without the newer fields
	sed       string
}

func (g *slotGen) emit(b []byte, e *ev) []byte {
	a, rng := g.a, g.rng
	ver := "1.11"
	if e.old {
		ver = "1.08"
	}
	b = append(b, `{"eventVersion":"`...)
	b = append(b, ver...)
	b = append(b, `","userIdentity":`...)
	if e.service {
		b = append(b, `{"accountId":"`+a.account+`","invokedBy":"AWS Internal"}`...)
	} else {
		b = append(b, e.p.json...)
	}
	b = append(b, `,"eventTime":"`...)
	b = e.t.UTC().AppendFormat(b, "2006-01-02T15:04:05Z")
	b = append(b, `","eventSource":"kms.amazonaws.com","eventName":"`...)
	b = append(b, e.name...)
	b = append(b, `","awsRegion":"`...)
	b = append(b, a.region...)
	b = append(b, `","sourceIPAddress":"`...)
	if e.service {
		b = append(b, `AWS Internal","userAgent":"AWS Internal"`...)
	} else {
		b = append(b, e.p.ip...)
		b = append(b, `","userAgent":"`...)
		b = append(b, e.p.agent...)
		b = append(b, '"')
	}
	if e.errCode != "" {
		b = append(b, `,"errorCode":"`...)
		b = append(b, e.errCode...)
		b = append(b, `","errorMessage":"`...)
		b = append(b, e.errMsg...)
		b = append(b, '"')
	}
	b = append(b, `,"requestParameters":`...)
	b = append(b, e.req...)
	b = append(b, `,"responseElements":`...)
	b = append(b, e.resp...)
	if e.add != "" && !e.old {
		b = append(b, `,"additionalEventData":`...)
		b = append(b, e.add...)
	}
	if !e.service {
		b = append(b, `,"requestID":"`...)
		b = append(b, uuid(rng)...)
		b = append(b, '"')
	}
	b = append(b, `,"eventID":"`...)
	b = append(b, uuid(rng)...)
	b = append(b, `","readOnly":`...)
	b = strconv.AppendBool(b, e.readOnly)
	if len(e.resources) > 0 {
		b = append(b, `,"resources":[`...)
		for i, r := range e.resources {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"accountId":"`+a.account+`","type":"AWS::KMS::Key","ARN":"`...)
			b = append(b, r...)
			b = append(b, `"}`...)
		}
		b = append(b, ']')
	}
	if e.service {
		b = append(b, `,"eventType":"AwsServiceEvent"`...)
	} else {
		b = append(b, `,"eventType":"AwsApiCall"`...)
	}
	if !e.old {
		b = append(b, `,"managementEvent":true`...)
	}
	b = append(b, `,"recipientAccountId":"`...)
	b = append(b, a.account...)
	b = append(b, '"')
	if e.sed != "" {
		b = append(b, `,"serviceEventDetails":`...)
		b = append(b, e.sed...)
	}
	if !e.old {
		b = append(b, `,"eventCategory":"Management"`...)
		if !e.service && e.p.ip != e.p.agent {
			b = append(b, `,"tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"kms.`...)
			b = append(b, a.region...)
			b = append(b, `.amazonaws.com"}`...)
		}
	}
	return append(b, '}')
}

func keyID(arn string) string {
	for i := len(arn) - 1; i >= 0; i-- {
		if arn[i] == '/' {
			return arn[i+1:]
		}
	}
	return arn
}

func (g *slotGen) ctx() string {
	rng := g.rng
	switch rng.IntN(3) {
	case 0:
		return `{"aws:s3:arn":"arn:aws:s3:::example-bucket-` + strconv.Itoa(rng.IntN(20)) + `/data/` + hex(rng, 12) + `.parquet"}`
	case 1:
		return `{"SecretARN":"arn:aws:secretsmanager:` + g.a.region + `:` + g.a.account + `:secret:app/db-` + upperID(rng, 6) + `","SecretVersionId":"` + uuid(rng) + `"}`
	}
	return `{"Department":"Engineering","Project":"P` + strconv.Itoa(rng.IntN(50)) + `"}`
}

func material(key string) string { return hex(stable(key, "material"), 64) }

// kms appends one random KMS record; failed reports an errorCode.
func (g *slotGen) kms(b []byte) ([]byte, bool) {
	a, rng := g.a, g.rng
	t := g.when()
	e := &ev{t: t, p: g.principal(t), readOnly: true, resp: "null", old: rng.IntN(10) == 0}
	sym := a.keys[rng.IntN(len(a.keys)-2)]
	asym := a.keys[len(a.keys)-2]
	ext := a.keys[len(a.keys)-1]
	failed := rng.Float64() < g.w.cfg.ErrorRatio
	x := rng.IntN(1000)
	switch {
	case x < 350: // Decrypt: the key is not in the request, only in resources
		e.name = "Decrypt"
		e.req = `{"encryptionAlgorithm":"SYMMETRIC_DEFAULT","encryptionContext":` + g.ctx() + `}`
		e.resources = []string{sym}
		e.add = `{"keyMaterialId":"` + material(sym) + `"}`
	case x < 600:
		e.name = "GenerateDataKey"
		i := rng.IntN(len(a.keys) - 2)
		ref := a.keys[i]
		if rng.IntN(2) == 0 {
			ref = a.aliases[i]
		}
		e.req = `{"keyId":"` + ref + `","keySpec":"AES_256","encryptionContext":` + g.ctx() + `}`
		e.resources = []string{a.keys[i]}
		e.add = `{"keyMaterialId":"` + material(a.keys[i]) + `"}`
	case x < 700:
		e.name = "Encrypt"
		e.req = `{"keyId":"` + keyID(sym) + `","encryptionAlgorithm":"SYMMETRIC_DEFAULT","encryptionContext":` + g.ctx() + `}`
		e.resources = []string{sym}
		e.add = `{"keyMaterialId":"` + material(sym) + `"}`
	case x < 720:
		e.name = "ReEncrypt"
		dst := a.keys[rng.IntN(len(a.keys)-2)]
		e.req = `{"sourceEncryptionAlgorithm":"SYMMETRIC_DEFAULT","destinationKeyId":"` + keyID(dst) + `","destinationEncryptionAlgorithm":"SYMMETRIC_DEFAULT"}`
		e.resources = []string{sym, dst}
		e.add = `{"sourceKeyMaterialId":"` + material(sym) + `","destinationKeyMaterialId":"` + material(dst) + `"}`
	case x < 750:
		e.name = []string{"Sign", "Verify"}[rng.IntN(2)]
		e.req = `{"keyId":"` + asym + `","messageType":"DIGEST","signingAlgorithm":"ECDSA_SHA_256"}`
		e.resources = []string{asym}
	case x < 760:
		e.name = "GenerateMac"
		e.req = `{"keyId":"` + keyID(sym) + `","macAlgorithm":"HMAC_SHA_256"}`
		e.resources = []string{sym}
	case x < 840:
		e.name = "DescribeKey"
		e.req = `{"keyId":"` + a.aliases[rng.IntN(len(a.aliases))] + `"}`
		e.resources = []string{sym}
	case x < 860:
		e.name = "ListAliases"
		e.req = "null"
	case x < 870:
		e.name = "ListKeys"
		e.req = "null"
	case x < 890:
		e.name = "GetKeyRotationStatus"
		e.req = `{"keyId":"` + sym + `"}`
		e.resources = []string{sym}
	case x < 920:
		e.name = "CreateGrant"
		e.readOnly = false
		e.req = `{"keyId":"` + sym + `","granteePrincipal":"` + services[rng.IntN(len(services))] + `","operations":["Decrypt","GenerateDataKey"]}`
		e.resp = `{"grantId":"` + hex(rng, 64) + `"}`
		e.resources = []string{sym}
	case x < 930:
		e.name = "RetireGrant"
		e.readOnly = false
		e.req = `{"keyId":"` + sym + `","grantId":"` + hex(rng, 64) + `"}`
		e.resources = []string{sym}
	case x < 940:
		e.name = "GetKeyPolicy"
		e.req = `{"keyId":"` + sym + `","policyName":"default"}`
		e.resources = []string{sym}
	case x < 945:
		e.name = "CreateKey"
		e.readOnly = false
		id := uuid(rng)
		arn := "arn:aws:kms:" + a.region + ":" + a.account + ":key/" + id
		e.req = `{"description":"","origin":"AWS_KMS","bypassPolicyLockoutSafetyCheck":false,"keySpec":"SYMMETRIC_DEFAULT","keyUsage":"ENCRYPT_DECRYPT"}`
		e.resp = `{"keyMetadata":{"AWSAccountId":"` + a.account + `","keyId":"` + id + `","arn":"` + arn + `","creationDate":"` + t.Format("Jan 2, 2006, 3:04:05 PM") +
			`","enabled":true,"description":"","keyUsage":"ENCRYPT_DECRYPT","keyState":"Enabled","origin":"AWS_KMS","keyManager":"CUSTOMER","keySpec":"SYMMETRIC_DEFAULT","encryptionAlgorithms":["SYMMETRIC_DEFAULT"],"multiRegion":false}}`
		e.resources = []string{arn}
	case x < 950:
		e.name = "ImportKeyMaterial"
		e.readOnly = false
		e.req = `{"keyId":"` + keyID(ext) + `","validTo":"` + t.AddDate(0, 6, 0).Format("Jan 2, 2006 3:04:05 PM") + `","expirationModel":"KEY_MATERIAL_EXPIRES"}`
		e.resp = `{"keyId":"` + ext + `"}`
		e.resources = []string{ext}
	case x < 953:
		e.name = "ScheduleKeyDeletion"
		e.readOnly = false
		e.req = `{"pendingWindowInDays":30,"keyId":"` + keyID(sym) + `"}`
		e.resp = `{"keyId":"` + sym + `","keyState":"PendingDeletion","deletionDate":"` + t.AddDate(0, 0, 30).Format("Jan 2, 2006 15:04:05 PM") + `"}`
		e.resources = []string{sym}
	case x < 956:
		e.name = "CancelKeyDeletion"
		e.readOnly = false
		e.req = `{"keyId":"` + sym + `"}`
		e.resp = `{"keyId":"` + sym + `"}`
		e.resources = []string{sym}
	case x < 962:
		e.name = "PutKeyPolicy"
		e.readOnly = false
		e.req = `{"keyId":"` + keyID(sym) + `","policyName":"default","bypassPolicyLockoutSafetyCheck":false,"policy":"{\n  \"Version\" : \"2012-10-17\",\n  \"Statement\" : [ {\n    \"Sid\" : \"Enable IAM policies\",\n    \"Effect\" : \"Allow\"\n  } ]\n}"}`
		e.resources = []string{sym}
	case x < 970:
		e.name = "RotateKey"
		e.service = true
		e.req, e.readOnly = "null", false
		rt := "AUTOMATIC"
		if rng.IntN(4) == 0 {
			rt = "ON_DEMAND"
		}
		e.sed = `{"rotationType":"` + rt + `","keyId":"` + keyID(sym) + `"}`
		e.resources = []string{sym}
		failed = false
	case x < 973:
		e.name = "DeleteExpiredKeyMaterial"
		e.service = true
		e.req, e.readOnly = "null", false
		e.sed = `{"keyId":"` + keyID(ext) + `","keyMaterialId":"` + material(ext) + `"}`
		e.resources = []string{ext}
		failed = false
	default:
		// A denied call through alias/rotating: no resources, so only the
		// alias history can tell which key was meant.
		e.name = "Decrypt"
		e.req = `{"keyId":"alias/rotating","encryptionAlgorithm":"SYMMETRIC_DEFAULT"}`
		e.errCode = "AccessDenied"
		e.errMsg = "User: " + "arn:aws:iam::" + a.account + ":user/bob is not authorized to perform: kms:Decrypt because no identity-based policy allows the kms:Decrypt action"
		return g.emit(b, e), true
	}
	if failed && !e.service {
		switch rng.IntN(4) {
		case 0:
			e.errCode, e.errMsg = "AccessDenied", "User is not authorized to perform: kms:"+e.name+" on this resource because no resource-based policy allows the kms:"+e.name+" action"
		case 1:
			e.errCode, e.errMsg = "IncorrectKeyException", "The key ID in the request does not identify a CMK that can perform this operation."
		case 2:
			e.errCode, e.errMsg = "DisabledException", sym+" is disabled."
		default:
			e.errCode, e.errMsg = "ThrottlingException", "Rate exceeded"
		}
		e.resp, e.add = "null", ""
	}
	return g.emit(b, e), failed && !e.service
}

func (g *slotGen) aliasEvent(b []byte, name, target string, t time.Time) []byte {
	a := g.a
	e := &ev{name: name, t: t, p: g.principal(t), resp: `{"keyId":"` + target + `"}`}
	aliasARN := "arn:aws:kms:" + a.region + ":" + a.account + ":alias/rotating"
	e.req = `{"aliasName":"alias/rotating","targetKeyId":"` + keyID(target) + `"}`
	e.resources = []string{target, aliasARN}
	return g.emit(b, e)
}

// noise appends one non-KMS record.
func (g *slotGen) noise(b []byte) []byte {
	a, rng := g.a, g.rng
	t := g.when()
	p := g.principal(t)
	type n struct{ src, name, req string }
	opts := []n{
		{"ec2.amazonaws.com", "DescribeInstances", `{"instancesSet":{},"filterSet":{}}`},
		{"sts.amazonaws.com", "AssumeRole", `{"roleArn":"arn:aws:iam::` + a.account + `:role/AppServer","roleSessionName":"i-0` + hex(rng, 16) + `"}`},
		{"s3.amazonaws.com", "GetBucketEncryption", `{"bucketName":"example-bucket-` + strconv.Itoa(rng.IntN(20)) + `","Host":"example-bucket.s3.amazonaws.com","encryption":""}`},
		{"iam.amazonaws.com", "ListRoles", `null`},
		{"secretsmanager.amazonaws.com", "GetSecretValue", `{"secretId":"app/db-` + upperID(rng, 6) + `"}`},
	}
	o := opts[rng.IntN(len(opts))]
	b = append(b, `{"eventVersion":"1.09","userIdentity":`...)
	b = append(b, p.json...)
	b = append(b, `,"eventTime":"`...)
	b = t.UTC().AppendFormat(b, "2006-01-02T15:04:05Z")
	b = append(b, `","eventSource":"`+o.src+`","eventName":"`+o.name+`","awsRegion":"`+a.region+`","sourceIPAddress":"`+p.ip+`","userAgent":"`+p.agent+`","requestParameters":`+o.req+`,"responseElements":null,"requestID":"`...)
	b = append(b, uuid(rng)...)
	b = append(b, `","eventID":"`...)
	b = append(b, uuid(rng)...)
	b = append(b, `","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"`+a.account+`","eventCategory":"Management"}`...)
	return b
}
