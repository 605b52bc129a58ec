import java.math.BigDecimal;
import java.sql.Array;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Types;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import org.postgresql.util.PGInterval;

/**
 * The pgjdbc part of the client matrix (tests/clients/test_jdbc_matrix.py): the same program runs
 * against real PostgreSQL and against Basin, on the table matrix_data.py seeds (matrix_types and
 * the view matrix_view). It covers DatabaseMetaData (getTables, getColumns, getPrimaryKeys,
 * getTypeInfo, getSchemas), a PreparedStatement with a parameter of every type set through the
 * typed setters, ResultSetMetaData of the echo query and of the table, and reading the table
 * through typed getters.
 *
 * <p>Usage: java -cp postgresql.jar:. JdbcMatrix HOST PORT TARGET, TARGET being "postgres" or
 * "basin" (where Basin differs on purpose, docs/clients.md says so). Exits non-zero on the first
 * failed check.
 */
public final class JdbcMatrix {
    private static int checks = 0;

    private static void check(boolean condition, String what) {
        checks++;
        if (!condition) {
            throw new AssertionError("check failed: " + what);
        }
    }

    private static void equal(Object expected, Object actual, String what) {
        check(expected == null ? actual == null : expected.equals(actual),
                what + ": expected <" + expected + "> got <" + actual + ">");
    }

    // The table's columns as matrix_data.py creates them: name, java.sql.Types, pgjdbc type name.
    private static final String[][] TABLE_COLUMNS = {
        {"id", "int8"}, {"i2", "int2"}, {"i4", "int4"}, {"i8", "int8"}, {"f4", "float4"},
        {"f8", "float8"}, {"num", "numeric"}, {"txt", "text"}, {"flag", "bool"}, {"bin", "bytea"},
        {"day", "date"}, {"ts", "timestamp"}, {"tstz", "timestamptz"}, {"nothing", "int4"},
    };
    private static final Map<String, Integer> SQL_TYPES = new HashMap<>();

    static {
        SQL_TYPES.put("int2", Types.SMALLINT);
        SQL_TYPES.put("int4", Types.INTEGER);
        SQL_TYPES.put("int8", Types.BIGINT);
        SQL_TYPES.put("float4", Types.REAL);
        SQL_TYPES.put("float8", Types.DOUBLE);
        SQL_TYPES.put("numeric", Types.NUMERIC);
        SQL_TYPES.put("text", Types.VARCHAR);
        SQL_TYPES.put("bool", Types.BIT);
        SQL_TYPES.put("bytea", Types.BINARY);
        SQL_TYPES.put("date", Types.DATE);
        SQL_TYPES.put("time", Types.TIME);
        SQL_TYPES.put("timestamp", Types.TIMESTAMP);
        SQL_TYPES.put("timestamptz", Types.TIMESTAMP);
        SQL_TYPES.put("interval", Types.OTHER);
        SQL_TYPES.put("_int4", Types.ARRAY);
        SQL_TYPES.put("_text", Types.ARRAY);
    }

    // The values of matrix_data.VALUES, as pgjdbc represents them.
    private static final short I2 = -32768;
    private static final int I4 = 2147483647;
    private static final long I8 = 9007199254740993L;
    private static final float F4 = -1.5f;
    private static final double F8 = 3.141592653589793;
    private static final BigDecimal NUM = new BigDecimal("12345678.9010");
    private static final String TXT = "it's \"\u00fcn\u00efc\u00f6d\u00e9\", a\\b\ttab";
    private static final byte[] BIN = {0x00, 0x01, (byte) 0xfe, (byte) 0xff, '\'', '\\'};
    private static final LocalDate DAY = LocalDate.of(2024, 2, 29);
    private static final LocalTime CLOCK = LocalTime.of(13, 45, 30, 123456000);
    private static final LocalDateTime TS = LocalDateTime.of(2024, 2, 29, 13, 45, 30, 123456000);
    private static final OffsetDateTime TSTZ = OffsetDateTime.of(TS, ZoneOffset.UTC);

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/basin";
        boolean basin = args[2].equals("basin");
        Properties props = new Properties();
        props.setProperty("user", "basin");
        props.setProperty("connectTimeout", "10");
        props.setProperty("socketTimeout", "60");
        try (Connection conn = DriverManager.getConnection(url, props)) {
            conn.setAutoCommit(true);
            metadata(conn.getMetaData(), basin);
            echoEveryType(conn);
            readTable(conn);
        }
        System.out.println("JdbcMatrix: " + checks + " checks passed");
    }

    private static void metadata(DatabaseMetaData meta, boolean basin) throws SQLException {
        equal("PostgreSQL", meta.getDatabaseProductName(), "product name");
        check(meta.getDatabaseMajorVersion() >= 15, "major version " + meta.getDatabaseMajorVersion());
        equal("basin", meta.getUserName(), "user name");

        Set<String> schemas = new HashSet<>();
        try (ResultSet rs = meta.getSchemas()) {
            while (rs.next()) {
                schemas.add(rs.getString("TABLE_SCHEM"));
            }
        }
        check(schemas.containsAll(List.of("public", "pg_catalog", "information_schema")), "getSchemas " + schemas);

        Map<String, String> kinds = new HashMap<>();
        try (ResultSet rs = meta.getTables(null, "public", "matrix_%", new String[] {"TABLE", "VIEW"})) {
            while (rs.next()) {
                equal("public", rs.getString("TABLE_SCHEM"), "getTables schema");
                kinds.put(rs.getString("TABLE_NAME"), rs.getString("TABLE_TYPE"));
            }
        }
        equal(Map.of("matrix_types", "TABLE", "matrix_view", "VIEW"), kinds, "getTables matrix_%");
        try (ResultSet rs = meta.getTables(null, "public", "matrix_%", new String[] {"VIEW"})) {
            check(rs.next() && rs.getString("TABLE_NAME").equals("matrix_view") && !rs.next(), "getTables VIEW only");
        }

        List<String> columns = new ArrayList<>();
        try (ResultSet rs = meta.getColumns(null, "public", "matrix_types", "%")) {
            while (rs.next()) {
                String name = rs.getString("COLUMN_NAME");
                String typeName = rs.getString("TYPE_NAME");
                int position = rs.getInt("ORDINAL_POSITION");
                columns.add(name);
                String[] want = TABLE_COLUMNS[position - 1];
                equal(want[0], name, "getColumns name at " + position);
                equal(want[1], typeName, "getColumns TYPE_NAME of " + name);
                equal(SQL_TYPES.get(want[1]), rs.getInt("DATA_TYPE"), "getColumns DATA_TYPE of " + name);
                int nullable = rs.getInt("NULLABLE");
                equal(name.equals("id") ? DatabaseMetaData.columnNoNulls : DatabaseMetaData.columnNullable,
                        nullable, "getColumns NULLABLE of " + name);
                equal(name.equals("id") ? "NO" : "YES", rs.getString("IS_NULLABLE"), "IS_NULLABLE of " + name);
                if (name.equals("num")) {
                    equal(12, rs.getInt("COLUMN_SIZE"), "numeric COLUMN_SIZE");
                    equal(4, rs.getInt("DECIMAL_DIGITS"), "numeric DECIMAL_DIGITS");
                }
                if (name.equals("i4")) {
                    equal(10, rs.getInt("COLUMN_SIZE"), "int4 COLUMN_SIZE");
                }
                equal("NO", rs.getString("IS_AUTOINCREMENT"), "IS_AUTOINCREMENT of " + name);
            }
        }
        equal(TABLE_COLUMNS.length, columns.size(), "getColumns count " + columns);
        List<String> viewColumns = new ArrayList<>();
        try (ResultSet rs = meta.getColumns(null, "public", "matrix_view", null)) {
            while (rs.next()) {
                viewColumns.add(rs.getString("COLUMN_NAME") + ":" + rs.getString("TYPE_NAME"));
            }
        }
        equal(List.of("id:int8", "txt:text", "num:numeric"), viewColumns, "getColumns of the view");

        // Basin keeps no constraints (docs/clients.md): the primary key is accepted, not kept.
        List<String> keys = new ArrayList<>();
        try (ResultSet rs = meta.getPrimaryKeys(null, "public", "matrix_types")) {
            while (rs.next()) {
                keys.add(rs.getString("COLUMN_NAME") + "#" + rs.getInt("KEY_SEQ"));
            }
        }
        equal(basin ? List.of() : List.of("id#1"), keys, "getPrimaryKeys");
        try (ResultSet rs = meta.getImportedKeys(null, "public", "matrix_types")) {
            check(!rs.next(), "no foreign keys");
        }
        try (ResultSet rs = meta.getIndexInfo(null, "public", "matrix_types", false, true)) {
            int indexes = 0;
            while (rs.next()) {
                indexes++;
            }
            equal(basin ? 0 : 1, indexes, "getIndexInfo (the primary key's index)");
        }

        Map<String, Integer> typeInfo = new HashMap<>();
        try (ResultSet rs = meta.getTypeInfo()) {
            while (rs.next()) {
                typeInfo.put(rs.getString("TYPE_NAME"), rs.getInt("DATA_TYPE"));
            }
        }
        for (String type : List.of("int2", "int4", "int8", "float4", "float8", "numeric", "text", "bool",
                "bytea", "date", "time", "timestamp", "timestamptz", "interval", "_int4", "_text", "varchar")) {
            equal(SQL_TYPES.getOrDefault(type, Types.VARCHAR), typeInfo.get(type), "getTypeInfo " + type);
        }
    }

    private static final String ECHO = "SELECT CAST(? AS SMALLINT) AS i2, CAST(? AS INTEGER) AS i4, "
            + "CAST(? AS BIGINT) AS i8, CAST(? AS REAL) AS f4, CAST(? AS DOUBLE PRECISION) AS f8, "
            + "CAST(? AS NUMERIC(12,4)) AS num, CAST(? AS TEXT) AS txt, CAST(? AS BOOLEAN) AS flag, "
            + "CAST(? AS BYTEA) AS bin, CAST(? AS DATE) AS day, CAST(? AS TIME) AS clock, "
            + "CAST(? AS TIMESTAMP) AS ts, CAST(? AS TIMESTAMPTZ) AS tstz, CAST(? AS INTERVAL) AS span, "
            + "CAST(? AS INTEGER[]) AS ints, CAST(? AS TEXT[]) AS texts, CAST(? AS INTEGER) AS nothing";
    private static final String[] ECHO_TYPES = {
        "int2", "int4", "int8", "float4", "float8", "numeric", "text", "bool", "bytea", "date", "time",
        "timestamp", "timestamptz", "interval", "_int4", "_text", "int4",
    };

    private static void echoEveryType(Connection conn) throws SQLException {
        // From the 5th execution on pgjdbc uses a named server-side statement and binary results
        // for the types it knows, so the rounds cover both paths.
        try (PreparedStatement ps = conn.prepareStatement(ECHO)) {
            for (int round = 0; round < 6; round++) {
                ps.setShort(1, I2);
                ps.setInt(2, I4);
                ps.setLong(3, I8);
                ps.setFloat(4, F4);
                ps.setDouble(5, F8);
                ps.setBigDecimal(6, NUM);
                ps.setString(7, TXT);
                ps.setBoolean(8, true);
                ps.setBytes(9, BIN);
                ps.setObject(10, DAY);
                ps.setObject(11, CLOCK);
                ps.setObject(12, TS);
                ps.setObject(13, TSTZ);
                ps.setObject(14, new PGInterval(0, 0, 1, 2, 3, 4.5));
                ps.setArray(15, conn.createArrayOf("int4", new Integer[] {1, null, -3}));
                ps.setArray(16, conn.createArrayOf("text", new String[] {"a", "b c", "d,\"e\"", null}));
                ps.setNull(17, Types.INTEGER);
                String where = "round " + round + ": ";
                try (ResultSet rs = ps.executeQuery()) {
                    ResultSetMetaData md = rs.getMetaData();
                    equal(ECHO_TYPES.length, md.getColumnCount(), where + "column count");
                    for (int i = 1; i <= ECHO_TYPES.length; i++) {
                        equal(ECHO_TYPES[i - 1], md.getColumnTypeName(i), where + "type name of " + md.getColumnLabel(i));
                        equal(SQL_TYPES.get(ECHO_TYPES[i - 1]), md.getColumnType(i), where + "type of " + md.getColumnLabel(i));
                    }
                    equal("num", md.getColumnLabel(6), where + "label");
                    equal(12, md.getPrecision(6), where + "numeric precision");
                    equal(4, md.getScale(6), where + "numeric scale");
                    check(rs.next(), where + "one row");
                    equal(I2, rs.getShort("i2"), where + "int2");
                    equal(I4, rs.getInt("i4"), where + "int4");
                    equal(I8, rs.getLong("i8"), where + "int8");
                    equal(F4, rs.getFloat("f4"), where + "float4");
                    equal(F8, rs.getDouble("f8"), where + "float8");
                    equal(NUM, rs.getBigDecimal("num"), where + "numeric");
                    equal(TXT, rs.getString("txt"), where + "text");
                    equal(true, rs.getBoolean("flag"), where + "bool");
                    check(Arrays.equals(BIN, rs.getBytes("bin")), where + "bytea " + Arrays.toString(rs.getBytes("bin")));
                    equal(DAY, rs.getObject("day", LocalDate.class), where + "date");
                    equal(CLOCK, rs.getObject("clock", LocalTime.class), where + "time");
                    equal(TS, rs.getObject("ts", LocalDateTime.class), where + "timestamp");
                    equal(TSTZ, rs.getObject("tstz", OffsetDateTime.class), where + "timestamptz");
                    PGInterval span = (PGInterval) rs.getObject("span");
                    equal(List.of(0, 0, 1, 2, 3), List.of(span.getYears(), span.getMonths(), span.getDays(),
                            span.getHours(), span.getMinutes()), where + "interval fields " + span);
                    equal(4.5, span.getSeconds(), where + "interval seconds");
                    Array ints = rs.getArray("ints");
                    equal("int4", ints.getBaseTypeName(), where + "int4[] base type");
                    equal(Arrays.asList(1, null, -3), Arrays.asList((Object[]) ints.getArray()), where + "int4[]");
                    equal(Arrays.asList("a", "b c", "d,\"e\"", null),
                            Arrays.asList((Object[]) rs.getArray("texts").getArray()), where + "text[]");
                    equal(0, rs.getInt("nothing"), where + "NULL int");
                    check(rs.wasNull(), where + "wasNull");
                    check(!rs.next(), where + "only one row");
                }
            }
        }
    }

    private static void readTable(Connection conn) throws SQLException {
        String sql = "SELECT * FROM matrix_types WHERE id = ? OR num > ? ORDER BY id";
        try (PreparedStatement ps = conn.prepareStatement(sql)) {
            ps.setLong(1, 2);
            ps.setBigDecimal(2, new BigDecimal("1000.5"));
            try (ResultSet rs = ps.executeQuery()) {
                ResultSetMetaData md = rs.getMetaData();
                equal(TABLE_COLUMNS.length, md.getColumnCount(), "table column count");
                for (int i = 1; i <= TABLE_COLUMNS.length; i++) {
                    equal(TABLE_COLUMNS[i - 1][0], md.getColumnName(i), "column name " + i);
                    equal(TABLE_COLUMNS[i - 1][1], md.getColumnTypeName(i), "column type " + i);
                    // pgjdbc finds these by the table OID and column number of the row description.
                    equal("matrix_types", md.getTableName(i), "base table of " + md.getColumnName(i));
                    equal(i == 1 ? ResultSetMetaData.columnNoNulls : ResultSetMetaData.columnNullable,
                            md.isNullable(i), "isNullable of " + md.getColumnName(i));
                }
                equal(12, md.getPrecision(7), "numeric(12,4) precision");
                equal(4, md.getScale(7), "numeric(12,4) scale");
                check(rs.next(), "row 1");
                equal(1L, rs.getLong("id"), "id 1");
                equal(I8, rs.getLong("i8"), "table int8");
                equal(NUM, rs.getBigDecimal("num"), "table numeric");
                equal(TXT, rs.getString("txt"), "table text");
                check(Arrays.equals(BIN, rs.getBytes("bin")), "table bytea");
                equal(TS, rs.getObject("ts", LocalDateTime.class), "table timestamp");
                equal(TSTZ, rs.getObject("tstz", OffsetDateTime.class), "table timestamptz");
                check(rs.next(), "row 2");
                equal(2L, rs.getLong("id"), "id 2");
                check(rs.getString("txt") == null && rs.getObject("day") == null && rs.getBytes("bin") == null,
                        "NULL row");
                check(!rs.next(), "two rows");
            }
        }
        try (PreparedStatement ps = conn.prepareStatement("SELECT txt, num FROM matrix_view WHERE id = ?")) {
            ps.setInt(1, 1);
            try (ResultSet rs = ps.executeQuery()) {
                check(rs.next(), "view row");
                equal(TXT, rs.getString(1), "view text");
                equal(NUM, rs.getBigDecimal(2), "view numeric");
            }
        }
    }
}
