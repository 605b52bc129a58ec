//! Catalog tables about the cluster as this session sees it: databases, the (single) role,
//! settings and the session's own backend.

use datafusion::common::Result;

use crate::pg_catalog::snapshot::{DEFAULT_TABLESPACE, SUPERUSER_OID, Snapshot, server_setting};
use crate::pg_catalog::table::{Row, row};

/// `pg_database.encoding` of UTF8, which `pg_encoding_to_char` turns back into `UTF8`.
pub(in crate::pg_catalog) const UTF8_ENCODING: i32 = 6;

pub(super) fn pg_database(snapshot: &Snapshot<'_>) -> Result<Vec<Row>> {
    let vars = snapshot.vars();
    let collate = vars.get("lc_collate");
    let ctype = vars.get("lc_ctype");
    Ok(snapshot
        .state()
        .databases
        .iter()
        .map(|d| {
            row! {
                "oid" => d.oid,
                "datname" => d.name.as_str(),
                "datdba" => SUPERUSER_OID,
                "encoding" => UTF8_ENCODING,
                "datlocprovider" => 'c',
                "datallowconn" => true,
                "datconnlimit" => -1,
                "dattablespace" => DEFAULT_TABLESPACE,
                "datcollate" => collate.clone(),
                "datctype" => ctype.clone(),
            }
        })
        .collect())
}

/// Basin has one role per session: the user it authenticated, with all rights.
pub(super) fn pg_roles(snapshot: &Snapshot<'_>) -> Result<Vec<Row>> {
    Ok(vec![row! {
        "rolname" => snapshot.user(),
        "rolsuper" => true,
        "rolinherit" => true,
        "rolcreaterole" => true,
        "rolcreatedb" => true,
        "rolcanlogin" => true,
        "rolreplication" => false,
        "rolconnlimit" => -1,
        "rolpassword" => "********",
        "rolbypassrls" => true,
        "oid" => SUPERUSER_OID,
    }])
}

pub(super) fn pg_authid(snapshot: &Snapshot<'_>) -> Result<Vec<Row>> {
    Ok(vec![row! {
        "oid" => SUPERUSER_OID,
        "rolname" => snapshot.user(),
        "rolsuper" => true,
        "rolinherit" => true,
        "rolcreaterole" => true,
        "rolcreatedb" => true,
        "rolcanlogin" => true,
        "rolbypassrls" => true,
        "rolconnlimit" => -1,
    }])
}

pub(super) fn pg_user(snapshot: &Snapshot<'_>) -> Result<Vec<Row>> {
    Ok(vec![row! {
        "usename" => snapshot.user(),
        "usesysid" => SUPERUSER_OID,
        "usecreatedb" => true,
        "usesuper" => true,
        "userepl" => false,
        "usebypassrls" => true,
        "passwd" => "********",
    }])
}

fn setting_type(value: &str) -> &'static str {
    if matches!(value, "on" | "off") {
        "bool"
    } else if value.parse::<i64>().is_ok() {
        "integer"
    } else {
        "string"
    }
}

pub(super) fn pg_settings(snapshot: &Snapshot<'_>) -> Result<Vec<Row>> {
    let defaults = crate::session::vars::default_settings();
    Ok(snapshot
        .settings()
        .into_iter()
        .map(|(name, setting)| {
            let default = defaults
                .get(&name)
                .cloned()
                .or_else(|| server_setting(&name).map(str::to_owned));
            let source = if default.as_deref() == Some(setting.as_str()) {
                "default"
            } else {
                "session"
            };
            row! {
                "vartype" => setting_type(&setting),
                "name" => name,
                "setting" => setting,
                "category" => "Ungrouped",
                "short_desc" => "",
                "context" => "user",
                "source" => source,
                "boot_val" => default.clone(),
                "reset_val" => default,
                "pending_restart" => false,
            }
        })
        .collect())
}

/// The session's own backend; Basin does not show other sessions yet.
pub(super) fn pg_stat_activity(snapshot: &Snapshot<'_>) -> Result<Vec<Row>> {
    let vars = snapshot.vars();
    let database_oid = snapshot
        .state()
        .databases
        .iter()
        .find(|d| d.name == vars.database)
        .map(|d| d.oid);
    Ok(vec![row! {
        "datid" => database_oid,
        "datname" => vars.database.as_str(),
        "pid" => vars.backend_pid,
        "leader_pid" => Option::<i32>::None,
        "usesysid" => SUPERUSER_OID,
        "usename" => vars.user.as_str(),
        "application_name" => vars.get("application_name"),
        "client_port" => Option::<i32>::None,
        "state" => "active",
        "backend_type" => "client backend",
    }])
}
