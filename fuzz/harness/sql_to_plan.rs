//! Fuzz entry for SQL text to a logical plan: DataFusion's parser with the PostgreSQL dialect,
//! then planning in a session built by Basin's own `basin_catalog::session::session_builder`
//! (Basin's function bounds and options), over two in-memory tables. Nothing is executed.
//! Builds DataFusion with instrumentation, so it is in the long tier only
//! (`scripts/fuzz.sh --long`, feature `sql`).

use std::sync::{Arc, OnceLock};

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::execution::context::SessionContext;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::sql::parser::DFParser;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;

/// Longer statements add little and slow the parser's recursion-limited paths.
const MAX_SQL: usize = 4096;

fn context() -> &'static SessionContext {
    static CONTEXT: OnceLock<SessionContext> = OnceLock::new();
    CONTEXT.get_or_init(|| {
        // Basin's options, but an in-memory catalog instead of Basin's (which needs storage).
        let config = basin_catalog::session::session_config("basin", 2)
            .with_create_default_catalog_and_schema(true);
        let state =
            basin_catalog::session::session_builder(config, Arc::new(RuntimeEnv::default()))
                .build();
        let context = SessionContext::new_with_state(state);
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
            Field::new("c", DataType::Float64, true),
        ]));
        for name in ["t", "u"] {
            let table = MemTable::try_new(Arc::clone(&schema), vec![vec![]]).expect("a table");
            context
                .register_table(name, Arc::new(table))
                .expect("register a table");
        }
        context
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime")
    })
}

pub(crate) fn run(input: &[u8]) {
    if input.len() > MAX_SQL {
        return;
    }
    let sql = String::from_utf8_lossy(input);
    let Ok(statements) = DFParser::parse_sql_with_dialect(&sql, &PostgreSqlDialect {}) else {
        return;
    };
    let state = context().state();
    runtime().block_on(async {
        for statement in statements {
            let _ = state.statement_to_plan(statement).await;
        }
    });
}
