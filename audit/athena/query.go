package athena

import (
	"strconv"
	"strings"
	"time"
)

// The two queries over the CloudTrail table: the period's KMS records, or
// their counts per day, account, region, event, key, principal, service
// and error.

func (o *Options) from() string {
	return `"` + o.Database + `"."` + o.Table + `"`
}

func (o *Options) where() string {
	w := "eventsource = 'kms.amazonaws.com' AND eventtime >= '" + o.From.Format(time.RFC3339) +
		"' AND eventtime < '" + o.To.Format(time.RFC3339) + "'"
	if o.Where != "" {
		w += " AND (" + o.Where + ")"
	}
	return w
}

// recordCols are the columns of a records query, by result name, and the
// SQL that reads them from the CloudTrail table. Struct columns are read
// field by field (their text form in results is not JSON), and resources
// as a JSON array of maps (a map casts to a JSON object on every Athena
// engine version).
var recordCols = [][2]string{
	{"eventid", "eventid"}, {"eventtime", "eventtime"}, {"eventversion", "eventversion"}, {"eventsource", "eventsource"},
	{"eventname", "eventname"}, {"eventtype", "eventtype"}, {"awsregion", "awsregion"}, {"recipientaccountid", "recipientaccountid"},
	{"sourceipaddress", "sourceipaddress"}, {"useragent", "useragent"}, {"errorcode", "errorcode"}, {"errormessage", "errormessage"},
	{"readonly", "readonly"}, {"requestid", "requestid"}, {"apiversion", "apiversion"}, {"sharedeventid", "sharedeventid"},
	{"vpcendpointid", "vpcendpointid"},
	{"ui_type", "useridentity.type"}, {"ui_principalid", "useridentity.principalid"}, {"ui_arn", "useridentity.arn"},
	{"ui_accountid", "useridentity.accountid"}, {"ui_invokedby", "useridentity.invokedby"}, {"ui_accesskeyid", "useridentity.accesskeyid"},
	{"ui_username", "useridentity.username"}, {"ui_issuer_arn", "useridentity.sessioncontext.sessionissuer.arn"},
	{"requestparameters", "requestparameters"}, {"responseelements", "responseelements"},
	{"additionaleventdata", "additionaleventdata"}, {"serviceeventdetails", "serviceeventdetails"},
	{"resources_json", "json_format(CAST(transform(resources, r -> MAP(ARRAY['ARN', 'accountId', 'type'], ARRAY[r.arn, r.accountid, r.type])) AS JSON))"},
}

// recordIx is the position of each records column.
var recordIx = func() map[string]int {
	m := map[string]int{}
	for i, c := range recordCols {
		m[c[0]] = i
	}
	return m
}()

// aggCols are the group columns of an aggregates query. The key is the
// first key ARN CloudTrail lists in resources, else what the request,
// response or service details name; the principal is the role of an
// assumed-role session (sessions fold into their role, as the usage
// report counts them), else the caller's ARN.
var aggCols = [][2]string{
	{"day", "substr(eventtime, 1, 10)"},
	{"account", "coalesce(recipientaccountid, useridentity.accountid)"},
	{"region", "awsregion"}, {"eventname", "eventname"}, {"eventtype", "eventtype"},
	{"key_ref", "coalesce(element_at(filter(transform(resources, r -> r.arn), a -> a LIKE 'arn:%:key/%'), 1), " +
		"json_extract_scalar(requestparameters, '$.keyId'), json_extract_scalar(responseelements, '$.keyMetadata.arn'), " +
		"json_extract_scalar(serviceeventdetails, '$.keyId'))"},
	{"principal", "coalesce(useridentity.sessioncontext.sessionissuer.arn, useridentity.arn)"},
	{"ui_type", "useridentity.type"}, {"ui_accountid", "useridentity.accountid"},
	{"ui_issuer_arn", "useridentity.sessioncontext.sessionissuer.arn"},
	{"ui_invokedby", "useridentity.invokedby"}, {"errorcode", "errorcode"},
	// A ReEncrypt names two keys, source then destination: the usage
	// report counts it for both, as it does from the records.
	{"key2_ref", "CASE WHEN eventname = 'ReEncrypt' THEN coalesce(" +
		"element_at(filter(transform(resources, r -> r.arn), a -> a LIKE 'arn:%:key/%'), 2), " +
		"json_extract_scalar(requestparameters, '$.destinationKeyId')) END"},
	// An alias change names the alias and its new target: the history
	// that resolves the calls which named only an alias (key_ref is then
	// the alias).
	{"alias_ref", "CASE WHEN eventname IN ('CreateAlias', 'UpdateAlias', 'DeleteAlias') THEN json_extract_scalar(requestparameters, '$.aliasName') END"},
	{"alias_target", "CASE WHEN eventname IN ('CreateAlias', 'UpdateAlias') THEN json_extract_scalar(requestparameters, '$.targetKeyId') END"},
}

// aggMeasures follow the group columns.
// Events count distinct eventIDs: the table shows an event CloudTrail
// delivered twice twice (the ingest keeps one).
var aggMeasures = [][2]string{{"events", "count(DISTINCT eventid)"}, {"first_time", "min(eventtime)"}, {"last_time", "max(eventtime)"}}

func selectList(cols [][2]string) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = c[1] + " AS " + c[0]
	}
	return strings.Join(parts, ",\n  ")
}

// RecordsQuery is the SQL of a records run.
func RecordsQuery(o Options) (string, error) {
	if err := o.check(); err != nil {
		return "", err
	}
	return "SELECT " + selectList(recordCols) + "\nFROM " + o.from() + "\nWHERE " + o.where(), nil
}

// AggregatesQuery is the SQL of an aggregates run.
func AggregatesQuery(o Options) (string, error) {
	if err := o.check(); err != nil {
		return "", err
	}
	groups := make([]string, len(aggCols))
	for i := range aggCols {
		groups[i] = strconv.Itoa(i + 1)
	}
	return "SELECT " + selectList(append(append([][2]string{}, aggCols...), aggMeasures...)) + "\nFROM " + o.from() +
		"\nWHERE " + o.where() + "\nGROUP BY " + strings.Join(groups, ", "), nil
}

// Check refuses bad names, dates, locations and conditions: callers run it
// before they connect, so a mistake costs no network call.
func Check(o Options) error {
	var err error
	if o.Aggregate {
		_, err = AggregatesQuery(o)
	} else {
		_, err = RecordsQuery(o)
	}
	return err
}
