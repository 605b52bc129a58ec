"""A statement that returned is durable: SIGKILL the whole server right after it, restart on the
same data directory, and the rows are there."""

import psycopg


def test_acknowledged_writes_survive_kill9(basin):
    conn = psycopg.connect(basin.dsn, autocommit=True)
    conn.execute("CREATE TABLE k9 AS SELECT g.n AS id, 'row' AS note FROM generate_series(1, 1000) AS g(n)")
    conn.execute("INSERT INTO k9 VALUES (%s, %s)", (5000, "last"))
    basin.stop(kill9=True)  # no graceful shutdown, the client still connected
    conn.close()
    basin.start()

    with basin.connect() as after:
        assert after.execute("SELECT count(*), sum(id), min(note), max(note) FROM k9").fetchone() == (
            1001,
            500500 + 5000,
            "last",
            "row",
        )


def test_acknowledged_ddl_survives_kill9(basin):
    with basin.connect() as conn:
        conn.execute("CREATE TABLE k9_kept (id INT)")
        conn.execute("INSERT INTO k9_kept VALUES (1), (2)")
        conn.execute("CREATE VIEW k9_view AS SELECT sum(id) AS total FROM k9_kept")
        conn.execute("CREATE TABLE k9_dropped (id INT)")
        conn.execute("DROP TABLE k9_dropped")
        basin.stop(kill9=True)
    basin.start()

    with basin.connect() as after:
        assert after.execute("SELECT total FROM k9_view").fetchone() == (3,)
        tables = {
            name
            for (name,) in after.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            ).fetchall()
        }
        assert {"k9", "k9_kept", "k9_view"} <= tables
        assert "k9_dropped" not in tables
