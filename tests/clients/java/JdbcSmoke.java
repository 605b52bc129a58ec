import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.Date;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

/**
 * pgjdbc against Basin: PreparedStatement with int, text and date parameters (executed often
 * enough that pgjdbc switches to a named server-side statement), and DatabaseMetaData.getTables.
 * Usage: java -cp postgresql.jar:. JdbcSmoke HOST PORT. Exits non-zero on the first failure.
 */
public final class JdbcSmoke {
    private static int checks = 0;

    private static void check(boolean condition, String what) {
        checks++;
        if (!condition) {
            throw new AssertionError("check failed: " + what);
        }
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/basin";
        Properties props = new Properties();
        props.setProperty("user", "basin");
        props.setProperty("connectTimeout", "10");
        props.setProperty("socketTimeout", "60");
        try (Connection conn = DriverManager.getConnection(url, props)) {
            conn.setAutoCommit(true);
            try (Statement st = conn.createStatement()) {
                st.execute("CREATE TABLE jdbc_items (id INT, name VARCHAR, day DATE)");
                int inserted = st.executeUpdate(
                        "INSERT INTO jdbc_items VALUES (1, 'one', DATE '2024-01-01'), "
                                + "(2, 'two', DATE '2024-02-01'), (3, 'three', DATE '2024-03-01')");
                check(inserted == 3, "INSERT reports 3 rows, got " + inserted);
            }

            // pgjdbc uses a named server-side statement from the 5th execution on (prepareThreshold).
            String sql = "SELECT id, name, day FROM jdbc_items WHERE id >= ? AND name <> ? AND day <= ? ORDER BY id";
            try (PreparedStatement ps = conn.prepareStatement(sql)) {
                for (int round = 0; round < 7; round++) {
                    ps.setInt(1, 2);
                    ps.setString(2, "three");
                    ps.setDate(3, Date.valueOf("2024-12-31"));
                    List<String> rows = new ArrayList<>();
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) {
                            rows.add(rs.getInt(1) + "|" + rs.getString(2) + "|" + rs.getDate(3));
                        }
                    }
                    check(rows.equals(List.of("2|two|2024-02-01")), "round " + round + " rows " + rows);
                }
            }

            try (PreparedStatement ps = conn.prepareStatement("SELECT ?::int + 1, ?::text || 'x', ?::date")) {
                ps.setInt(1, 41);
                ps.setString(2, "abc");
                ps.setDate(3, Date.valueOf("2000-02-29"));
                try (ResultSet rs = ps.executeQuery()) {
                    check(rs.next(), "one row");
                    check(rs.getInt(1) == 42, "int param");
                    check("abcx".equals(rs.getString(2)), "text param");
                    check(Date.valueOf("2000-02-29").equals(rs.getDate(3)), "date param");
                    check(!rs.next(), "only one row");
                }
            }

            try (PreparedStatement ps = conn.prepareStatement("INSERT INTO jdbc_items VALUES (?, ?, ?)")) {
                ps.setInt(1, 4);
                ps.setString(2, "four");
                ps.setDate(3, Date.valueOf("2024-04-01"));
                check(ps.executeUpdate() == 1, "prepared INSERT reports 1 row");
            }

            try (Statement st = conn.createStatement()) {
                try {
                    st.executeQuery("SELECT * FROM jdbc_no_such_table");
                    check(false, "query on a missing table must fail");
                } catch (SQLException e) {
                    check("42P01".equals(e.getSQLState()), "SQLSTATE 42P01, got " + e.getSQLState());
                }
                try (ResultSet rs = st.executeQuery("SELECT count(*) FROM jdbc_items")) {
                    check(rs.next() && rs.getLong(1) == 4, "connection usable after error, 4 rows");
                }
            }

            DatabaseMetaData meta = conn.getMetaData();
            check(meta.getDatabaseProductName().equals("PostgreSQL"), "product " + meta.getDatabaseProductName());
            List<String> tables = new ArrayList<>();
            try (ResultSet rs = meta.getTables(null, "public", "%", new String[] {"TABLE"})) {
                while (rs.next()) {
                    tables.add(rs.getString("TABLE_SCHEM") + "." + rs.getString("TABLE_NAME"));
                }
            }
            check(tables.contains("public.jdbc_items"), "getTables lists public.jdbc_items: " + tables);
            try (ResultSet rs = meta.getColumns(null, "public", "jdbc_items", "%")) {
                List<String> columns = new ArrayList<>();
                while (rs.next()) {
                    columns.add(rs.getString("COLUMN_NAME"));
                }
                check(columns.equals(List.of("id", "name", "day")), "getColumns " + columns);
            }
        }
        System.out.println("JdbcSmoke: " + checks + " checks passed");
    }
}
