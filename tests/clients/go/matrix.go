// The Go part of the client matrix (tests/clients/test_go_matrix.py): lib/pq through
// database/sql and pgx v4 natively, against real PostgreSQL and against Basin, on the table
// matrix_data.py seeds. Built offline in GOPATH mode from Debian's golang-github-lib-pq-dev and
// golang-github-jackc-pgx-v4-dev (/usr/share/gocode).
//
// Usage: go run matrix.go DRIVER URL TARGET, DRIVER being "pq" or "pgx", TARGET "postgres" or
// "basin". Prints "N checks passed" and exits 0, or exits 1 at the first failed check.
package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"reflect"
	"time"

	"github.com/jackc/pgtype"
	"github.com/jackc/pgx/v4"
	"github.com/lib/pq"
)

var checks = 0

func check(ok bool, format string, args ...interface{}) {
	checks++
	if !ok {
		fmt.Printf("FAILED: "+format+"\n", args...)
		os.Exit(1)
	}
}

func must(err error, what string) {
	if err != nil {
		fmt.Printf("FAILED: %s: %v\n", what, err)
		os.Exit(1)
	}
}

func equal(want, got interface{}, what string) {
	check(reflect.DeepEqual(want, got), "%s: want %#v got %#v", what, want, got)
}

// matrix_data.VALUES.
var (
	txt   = "it's \"ünïcödé\", a\\b\ttab"
	bin   = []byte{0x00, 0x01, 0xfe, 0xff, '\'', '\\'}
	day   = time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)
	ts    = time.Date(2024, 2, 29, 13, 45, 30, 123456000, time.UTC)
	clock = (13*3600+45*60+30)*1000000 + 123456
	span  = ((2*60+3)*60+4)*1000000 + 500000
)

const echo = "SELECT CAST($1 AS SMALLINT), CAST($2 AS INTEGER), CAST($3 AS BIGINT), CAST($4 AS REAL), " +
	"CAST($5 AS DOUBLE PRECISION), CAST($6 AS NUMERIC(12,4)), CAST($7 AS TEXT), CAST($8 AS BOOLEAN), " +
	"CAST($9 AS BYTEA), CAST($10 AS DATE), CAST($11 AS TIME), CAST($12 AS TIMESTAMP), " +
	"CAST($13 AS TIMESTAMPTZ), CAST($14 AS INTERVAL), CAST($15 AS INTEGER[]), CAST($16 AS TEXT[]), " +
	"CAST($17 AS INTEGER)"

const columnsSQL = "SELECT column_name, data_type, is_nullable FROM information_schema.columns " +
	"WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position"

var wantColumns = []string{
	"id bigint NO", "i2 smallint YES", "i4 integer YES", "i8 bigint YES", "f4 real YES",
	"f8 double precision YES", "num numeric YES", "txt text YES", "flag boolean YES", "bin bytea YES",
	"day date YES", "ts timestamp without time zone YES", "tstz timestamp with time zone YES",
	"nothing integer YES",
}

const tablesSQL = "SELECT c.relname, c.relkind::text FROM pg_catalog.pg_class c " +
	"JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace " +
	"WHERE n.nspname = $1 AND c.relname LIKE $2 AND c.relkind IN ('r', 'v') ORDER BY c.relname"

func main() {
	driver, url, target := os.Args[1], os.Args[2], os.Args[3]
	_ = target
	switch driver {
	case "pq":
		runPq(url)
	case "pgx":
		runPgx(url)
	default:
		must(fmt.Errorf("unknown driver %q", driver), "arguments")
	}
	fmt.Printf("%s: %d checks passed\n", driver, checks)
}

func runPq(url string) {
	db, err := sql.Open("postgres", url+"?sslmode=disable&connect_timeout=10")
	must(err, "open")
	defer db.Close()
	must(db.Ping(), "ping")

	var version string
	must(db.QueryRow("SHOW server_version").Scan(&version), "server_version")
	check(version >= "15", "server_version %q", version)

	rows, err := db.Query(columnsSQL, "public", "matrix_types")
	must(err, "information_schema.columns")
	var columns []string
	for rows.Next() {
		var name, dataType, nullable string
		must(rows.Scan(&name, &dataType, &nullable), "scan column")
		columns = append(columns, name+" "+dataType+" "+nullable)
	}
	must(rows.Err(), "columns")
	equal(wantColumns, columns, "information_schema.columns")
	equal([]string{"matrix_types r", "matrix_view v"}, relations(db.Query(tablesSQL, "public", "matrix%")), "pg_class")

	// lib/pq sends every parameter as text with an unspecified type; the server infers it.
	var (
		i2      int16
		i4      int32
		i8      int64
		f4      float32
		f8      float64
		num     string
		text    string
		flag    bool
		bytea   []byte
		date    time.Time
		clockT  time.Time
		stamp   time.Time
		stampTz time.Time
		spanT   string
		ints    []sql.NullInt64
		texts   []sql.NullString
		nothing sql.NullInt32
	)
	row := db.QueryRow(echo, int16(-32768), int32(2147483647), int64(9007199254740993), float32(-1.5),
		3.141592653589793, "12345678.9010", txt, true, bin, day, "13:45:30.123456", ts, ts,
		"1 day 02:03:04.5", pq.Array([]sql.NullInt64{{Int64: 1, Valid: true}, {}, {Int64: -3, Valid: true}}),
		pq.Array([]sql.NullString{{String: "a", Valid: true}, {String: "b c", Valid: true}, {String: "d,\"e\"", Valid: true}, {}}),
		nil)
	must(row.Scan(&i2, &i4, &i8, &f4, &f8, &num, &text, &flag, &bytea, &date, &clockT, &stamp, &stampTz, &spanT,
		pq.Array(&ints), pq.Array(&texts), &nothing), "echo")
	equal([]interface{}{int16(-32768), int32(2147483647), int64(9007199254740993), float32(-1.5), 3.141592653589793,
		"12345678.9010", txt, true}, []interface{}{i2, i4, i8, f4, f8, num, text, flag}, "scalars")
	check(bytes.Equal(bin, bytea), "bytea %v", bytea)
	check(date.Equal(day), "date %v", date)
	equal([]int{13, 45, 30, 123456000}, []int{clockT.Hour(), clockT.Minute(), clockT.Second(), clockT.Nanosecond()}, "time")
	check(stamp.Equal(ts), "timestamp %v", stamp)
	check(stampTz.Equal(ts), "timestamptz %v", stampTz)
	equal("1 day 02:03:04.5", spanT, "interval")
	equal([]sql.NullInt64{{Int64: 1, Valid: true}, {}, {Int64: -3, Valid: true}}, ints, "int4[]")
	equal([]sql.NullString{{String: "a", Valid: true}, {String: "b c", Valid: true}, {String: "d,\"e\"", Valid: true}, {}}, texts, "text[]")
	check(!nothing.Valid, "NULL int")

	var id int64
	var txtCol sql.NullString
	must(db.QueryRow("SELECT id, txt FROM matrix_types WHERE num = $1 AND day = $2 AND bin = $3", "12345678.9010", day, bin).
		Scan(&id, &txtCol), "table by parameters")
	equal(int64(1), id, "table row id")
	equal(txt, txtCol.String, "table text")

	_, err = db.Query("SELECT * FROM go_no_such_table")
	pqErr, ok := err.(*pq.Error)
	check(ok && pqErr.Code == "42P01", "SQLSTATE 42P01, got %v", err)
}

func relations(rows interface {
	Next() bool
	Scan(...interface{}) error
	Err() error
}, err error) []string {
	must(err, "pg_class")
	var out []string
	for rows.Next() {
		var name string
		var kind string
		must(rows.Scan(&name, &kind), "scan relation")
		out = append(out, name+" "+kind)
	}
	must(rows.Err(), "relations")
	return out
}

func runPgx(url string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url+"?sslmode=disable&connect_timeout=10")
	must(err, "connect")
	defer conn.Close(ctx)
	check(conn.PgConn().ParameterStatus("server_version") >= "15", "server_version")

	rows, err := conn.Query(ctx, columnsSQL, "public", "matrix_types")
	must(err, "information_schema.columns")
	var columns []string
	for rows.Next() {
		var name, dataType, nullable string
		must(rows.Scan(&name, &dataType, &nullable), "scan column")
		columns = append(columns, name+" "+dataType+" "+nullable)
	}
	must(rows.Err(), "columns")
	equal(wantColumns, columns, "information_schema.columns")
	pgRows, err := conn.Query(ctx, tablesSQL, "public", "matrix%")
	equal([]string{"matrix_types r", "matrix_view v"}, relations(pgRows, err), "pg_class")

	// pgx prepares the statement, then encodes each parameter in binary by the type the server
	// described for it, and reads binary results.
	var numIn pgtype.Numeric
	must(numIn.Set("12345678.9010"), "numeric")
	var intsIn pgtype.Int4Array
	one, minusThree := int32(1), int32(-3)
	must(intsIn.Set([]*int32{&one, nil, &minusThree}), "int4[]")
	var textsIn pgtype.TextArray
	a, bc, de := "a", "b c", "d,\"e\""
	must(textsIn.Set([]*string{&a, &bc, &de, nil}), "text[]")
	var (
		i2      int16
		i4      int32
		i8      int64
		f4      float32
		f8      float64
		num     pgtype.Numeric
		text    string
		flag    bool
		bytea   []byte
		date    time.Time
		clockT  pgtype.Time
		stamp   time.Time
		stampTz time.Time
		spanT   pgtype.Interval
		ints    pgtype.Int4Array
		texts   pgtype.TextArray
		nothing *int32
	)
	for round := 0; round < 2; round++ {
		err := conn.QueryRow(ctx, echo, int16(-32768), int32(2147483647), int64(9007199254740993), float32(-1.5),
			3.141592653589793, &numIn, txt, true, bin, day, pgtype.Time{Microseconds: int64(clock), Status: pgtype.Present},
			ts, ts, pgtype.Interval{Days: 1, Microseconds: int64(span), Status: pgtype.Present}, &intsIn, &textsIn, nil).
			Scan(&i2, &i4, &i8, &f4, &f8, &num, &text, &flag, &bytea, &date, &clockT, &stamp, &stampTz, &spanT,
				&ints, &texts, &nothing)
		must(err, "echo")
		equal([]interface{}{int16(-32768), int32(2147483647), int64(9007199254740993), float32(-1.5), 3.141592653589793,
			txt, true}, []interface{}{i2, i4, i8, f4, f8, text, flag}, "scalars")
		// Binary numeric keeps the scale: 123456789010e-4.
		equal("123456789010e-4", fmt.Sprintf("%se%d", num.Int.String(), num.Exp), "numeric")
		check(bytes.Equal(bin, bytea), "bytea %v", bytea)
		check(date.Equal(day), "date %v", date)
		equal(int64(clock), clockT.Microseconds, "time")
		check(stamp.Equal(ts), "timestamp %v", stamp)
		check(stampTz.Equal(ts), "timestamptz %v", stampTz)
		equal([]interface{}{int32(0), int32(1), int64(span)}, []interface{}{spanT.Months, spanT.Days, spanT.Microseconds}, "interval")
		var gotInts []*int32
		must(ints.AssignTo(&gotInts), "int4[] assign")
		check(len(gotInts) == 3 && *gotInts[0] == 1 && gotInts[1] == nil && *gotInts[2] == -3, "int4[] %v", ints)
		var gotTexts []*string
		must(texts.AssignTo(&gotTexts), "text[] assign")
		check(len(gotTexts) == 4 && *gotTexts[0] == "a" && *gotTexts[1] == "b c" && *gotTexts[2] == "d,\"e\"" && gotTexts[3] == nil,
			"text[] %v", texts)
		check(nothing == nil, "NULL int")
	}

	var id int64
	var txtCol *string
	must(conn.QueryRow(ctx, "SELECT id, txt FROM matrix_types WHERE num = $1 AND day = $2 AND bin = $3", &numIn, day, bin).
		Scan(&id, &txtCol), "table by parameters")
	equal(int64(1), id, "table row id")
	check(txtCol != nil && *txtCol == txt, "table text")

	batch := &pgx.Batch{}
	batch.Queue("SELECT count(*) FROM matrix_types WHERE id = $1", int64(2))
	batch.Queue("SELECT txt FROM matrix_view WHERE id = $1", int64(1))
	results := conn.SendBatch(ctx, batch)
	var count int64
	must(results.QueryRow().Scan(&count), "batch count")
	equal(int64(1), count, "batch count")
	var viewText string
	must(results.QueryRow().Scan(&viewText), "batch view")
	equal(txt, viewText, "batch view text")
	must(results.Close(), "batch close")

	_, err = conn.Exec(ctx, "SELECT * FROM go_no_such_table")
	check(err != nil && pgconnCode(err) == "42P01", "SQLSTATE 42P01, got %v", err)
	var alive int32
	must(conn.QueryRow(ctx, "SELECT 1").Scan(&alive), "connection usable after an error")
}

func pgconnCode(err error) string {
	var coded interface{ SQLState() string }
	if c, ok := err.(interface{ SQLState() string }); ok {
		coded = c
		return coded.SQLState()
	}
	return ""
}
