//! The `information_schema` views, with Postgres types and Postgres' spelling of them
//! (`character varying`, `timestamp without time zone`, `udt_name = int8`): BI tools read
//! these rather than `pg_catalog`.

use datafusion::common::Result;

use super::snapshot::{Attribute, Relation, Snapshot};
use super::table::{Row, TableSpec, row};
use super::types::{builtin_type, format_type, numeric_precision_scale};

fn empty(_: &Snapshot<'_>) -> Result<Vec<Row>> {
    Ok(Vec::new())
}

fn yes_no(value: bool) -> &'static str {
    if value { "YES" } else { "NO" }
}

fn table_type(relation: &Relation<'_>) -> &'static str {
    if relation.relkind == 'v' {
        "VIEW"
    } else {
        "BASE TABLE"
    }
}

fn schemata(snapshot: &Snapshot<'_>) -> Result<Vec<Row>> {
    Ok(snapshot
        .namespaces()
        .into_iter()
        .map(|n| {
            row! {
                "catalog_name" => snapshot.database(),
                "schema_name" => n.name,
                "schema_owner" => snapshot.user(),
            }
        })
        .collect())
}

/// Postgres' `information_schema` shows tables and views but not materialized views (their
/// `relkind` 'm' is not in the views' filters); clients list those from `pg_class`.
fn in_information_schema(relation: &Relation<'_>) -> bool {
    relation.relkind != 'm'
}

fn tables(snapshot: &Snapshot<'_>) -> Result<Vec<Row>> {
    Ok(snapshot
        .relations()
        .iter()
        .filter(|r| in_information_schema(r))
        .map(|r| {
            row! {
                "table_catalog" => snapshot.database(),
                "table_schema" => r.schema,
                "table_name" => r.name,
                "table_type" => table_type(r),
                "is_insertable_into" => yes_no(r.relkind == 'r' && !r.system),
                "is_typed" => "NO",
            }
        })
        .collect())
}

fn views(snapshot: &Snapshot<'_>) -> Result<Vec<Row>> {
    Ok(snapshot
        .relations()
        .iter()
        .filter(|r| r.relkind == 'v')
        .map(|r| {
            row! {
                "table_catalog" => snapshot.database(),
                "table_schema" => r.schema,
                "table_name" => r.name,
                "view_definition" => r.definition,
                "check_option" => "NONE",
                "is_updatable" => "NO",
                "is_insertable_into" => "NO",
                "is_trigger_updatable" => "NO",
                "is_trigger_deletable" => "NO",
                "is_trigger_insertable_into" => "NO",
            }
        })
        .collect())
}

/// The numeric facets of a column type, as `information_schema.columns` reports them:
/// (precision, radix, scale).
fn numeric_facets(type_oid: u32, typmod: i32) -> (Option<i32>, Option<i32>, Option<i32>) {
    match type_oid {
        21 => (Some(16), Some(2), Some(0)),
        23 => (Some(32), Some(2), Some(0)),
        20 => (Some(64), Some(2), Some(0)),
        700 => (Some(24), Some(2), None),
        701 => (Some(53), Some(2), None),
        1700 => match numeric_precision_scale(typmod) {
            Some((precision, scale)) => (Some(precision), Some(10), Some(scale)),
            None => (None, Some(10), None),
        },
        _ => (None, None, None),
    }
}

/// `character_maximum_length` and `character_octet_length`.
fn character_facets(type_oid: u32, typmod: i32) -> (Option<i32>, Option<i32>) {
    match type_oid {
        1042 | 1043 if typmod >= 4 => (Some(typmod - 4), Some((typmod - 4) * 4)),
        25 | 1042 | 1043 => (None, Some(1_073_741_824)),
        _ => (None, None),
    }
}

fn datetime_precision(type_oid: u32, typmod: i32) -> Option<i32> {
    match type_oid {
        1082 => Some(0),
        1083 | 1114 | 1184 | 1266 | 1186 => Some(if typmod >= 0 { typmod } else { 6 }),
        _ => None,
    }
}

fn column_row(
    snapshot: &Snapshot<'_>,
    relation: &Relation<'_>,
    attribute: &Attribute<'_>,
    position: i32,
) -> Row {
    let pg = builtin_type(attribute.type_oid);
    let data_type = match pg {
        Some(t) if t.is_array() => "ARRAY".to_owned(),
        _ => format_type(attribute.type_oid, None),
    };
    let (precision, radix, scale) = numeric_facets(attribute.type_oid, attribute.typmod);
    let (max_length, octet_length) = character_facets(attribute.type_oid, attribute.typmod);
    row! {
        "table_catalog" => snapshot.database(),
        "table_schema" => relation.schema,
        "table_name" => relation.name,
        "column_name" => attribute.name,
        "ordinal_position" => position,
        "is_nullable" => yes_no(!attribute.not_null),
        "data_type" => data_type,
        "character_maximum_length" => max_length,
        "character_octet_length" => octet_length,
        "numeric_precision" => precision,
        "numeric_precision_radix" => radix,
        "numeric_scale" => scale,
        "datetime_precision" => datetime_precision(attribute.type_oid, attribute.typmod),
        "udt_catalog" => snapshot.database(),
        "udt_schema" => "pg_catalog",
        "udt_name" => pg.map(|t| t.name),
        "dtd_identifier" => position.to_string(),
        "is_self_referencing" => "NO",
        "is_identity" => "NO",
        "identity_cycle" => "NO",
        "is_generated" => "NEVER",
        "is_updatable" => yes_no(relation.relkind == 'r' && !relation.system),
    }
}

fn columns(snapshot: &Snapshot<'_>) -> Result<Vec<Row>> {
    let relations = snapshot.relations();
    Ok(relations
        .iter()
        .filter(|r| in_information_schema(r))
        .flat_map(|r| {
            r.attributes()
                .into_iter()
                .zip(1..)
                .map(move |(a, position)| column_row(snapshot, r, &a, position))
        })
        .collect())
}

fn enabled_roles(snapshot: &Snapshot<'_>) -> Result<Vec<Row>> {
    Ok(vec![row! {"role_name" => snapshot.user()}])
}

fn character_sets(snapshot: &Snapshot<'_>) -> Result<Vec<Row>> {
    Ok(vec![row! {
        "character_set_name" => "UTF8",
        "character_repertoire" => "UCS",
        "form_of_use" => "UTF8",
        "default_collate_catalog" => snapshot.database(),
        "default_collate_schema" => "pg_catalog",
        "default_collate_name" => "default",
    }])
}

/// The views of `information_schema`, with PostgreSQL 16's columns and OIDs.
pub(super) const TABLES: &[TableSpec] = &[
    TableSpec {
        name: "applicable_roles",
        oid: 13236,
        relkind: 'v',
        rows: empty,
        columns: "grantee sql_identifier, role_name sql_identifier, is_grantable yes_or_no",
    },
    TableSpec {
        name: "attributes",
        oid: 13245,
        relkind: 'v',
        rows: empty,
        columns: "udt_catalog sql_identifier, udt_schema sql_identifier, udt_name sql_identifier, attribute_name sql_identifier, ordinal_position cardinal_number, attribute_default character_data, is_nullable yes_or_no, data_type character_data, character_maximum_length cardinal_number, character_octet_length cardinal_number, character_set_catalog sql_identifier, character_set_schema sql_identifier, character_set_name sql_identifier, collation_catalog sql_identifier, collation_schema sql_identifier, collation_name sql_identifier, numeric_precision cardinal_number, numeric_precision_radix cardinal_number, numeric_scale cardinal_number, datetime_precision cardinal_number, interval_type character_data, interval_precision cardinal_number, attribute_udt_catalog sql_identifier, attribute_udt_schema sql_identifier, attribute_udt_name sql_identifier, scope_catalog sql_identifier, scope_schema sql_identifier, scope_name sql_identifier, maximum_cardinality cardinal_number, dtd_identifier sql_identifier, is_derived_reference_attribute yes_or_no",
    },
    TableSpec {
        name: "character_sets",
        oid: 13250,
        relkind: 'v',
        rows: character_sets,
        columns: "character_set_catalog sql_identifier, character_set_schema sql_identifier, character_set_name sql_identifier, character_repertoire sql_identifier, form_of_use sql_identifier, default_collate_catalog sql_identifier, default_collate_schema sql_identifier, default_collate_name sql_identifier",
    },
    TableSpec {
        name: "check_constraints",
        oid: 13260,
        relkind: 'v',
        rows: empty,
        columns: "constraint_catalog sql_identifier, constraint_schema sql_identifier, constraint_name sql_identifier, check_clause character_data",
    },
    TableSpec {
        name: "column_privileges",
        oid: 13285,
        relkind: 'v',
        rows: empty,
        columns: "grantor sql_identifier, grantee sql_identifier, table_catalog sql_identifier, table_schema sql_identifier, table_name sql_identifier, column_name sql_identifier, privilege_type character_data, is_grantable yes_or_no",
    },
    TableSpec {
        name: "columns",
        oid: 13295,
        relkind: 'v',
        rows: columns,
        columns: "table_catalog sql_identifier, table_schema sql_identifier, table_name sql_identifier, column_name sql_identifier, ordinal_position cardinal_number, column_default character_data, is_nullable yes_or_no, data_type character_data, character_maximum_length cardinal_number, character_octet_length cardinal_number, numeric_precision cardinal_number, numeric_precision_radix cardinal_number, numeric_scale cardinal_number, datetime_precision cardinal_number, interval_type character_data, interval_precision cardinal_number, character_set_catalog sql_identifier, character_set_schema sql_identifier, character_set_name sql_identifier, collation_catalog sql_identifier, collation_schema sql_identifier, collation_name sql_identifier, domain_catalog sql_identifier, domain_schema sql_identifier, domain_name sql_identifier, udt_catalog sql_identifier, udt_schema sql_identifier, udt_name sql_identifier, scope_catalog sql_identifier, scope_schema sql_identifier, scope_name sql_identifier, maximum_cardinality cardinal_number, dtd_identifier sql_identifier, is_self_referencing yes_or_no, is_identity yes_or_no, identity_generation character_data, identity_start character_data, identity_increment character_data, identity_maximum character_data, identity_minimum character_data, identity_cycle yes_or_no, is_generated character_data, generation_expression character_data, is_updatable yes_or_no",
    },
    TableSpec {
        name: "constraint_column_usage",
        oid: 13300,
        relkind: 'v',
        rows: empty,
        columns: "table_catalog sql_identifier, table_schema sql_identifier, table_name sql_identifier, column_name sql_identifier, constraint_catalog sql_identifier, constraint_schema sql_identifier, constraint_name sql_identifier",
    },
    TableSpec {
        name: "domains",
        oid: 13320,
        relkind: 'v',
        rows: empty,
        columns: "domain_catalog sql_identifier, domain_schema sql_identifier, domain_name sql_identifier, data_type character_data, character_maximum_length cardinal_number, character_octet_length cardinal_number, character_set_catalog sql_identifier, character_set_schema sql_identifier, character_set_name sql_identifier, collation_catalog sql_identifier, collation_schema sql_identifier, collation_name sql_identifier, numeric_precision cardinal_number, numeric_precision_radix cardinal_number, numeric_scale cardinal_number, datetime_precision cardinal_number, interval_type character_data, interval_precision cardinal_number, domain_default character_data, udt_catalog sql_identifier, udt_schema sql_identifier, udt_name sql_identifier, scope_catalog sql_identifier, scope_schema sql_identifier, scope_name sql_identifier, maximum_cardinality cardinal_number, dtd_identifier sql_identifier",
    },
    TableSpec {
        name: "element_types",
        oid: 13493,
        relkind: 'v',
        rows: empty,
        columns: "object_catalog sql_identifier, object_schema sql_identifier, object_name sql_identifier, object_type character_data, collection_type_identifier sql_identifier, data_type character_data, character_maximum_length cardinal_number, character_octet_length cardinal_number, character_set_catalog sql_identifier, character_set_schema sql_identifier, character_set_name sql_identifier, collation_catalog sql_identifier, collation_schema sql_identifier, collation_name sql_identifier, numeric_precision cardinal_number, numeric_precision_radix cardinal_number, numeric_scale cardinal_number, datetime_precision cardinal_number, interval_type character_data, interval_precision cardinal_number, domain_default character_data, udt_catalog sql_identifier, udt_schema sql_identifier, udt_name sql_identifier, scope_catalog sql_identifier, scope_schema sql_identifier, scope_name sql_identifier, maximum_cardinality cardinal_number, dtd_identifier sql_identifier",
    },
    TableSpec {
        name: "enabled_roles",
        oid: 13325,
        relkind: 'v',
        rows: enabled_roles,
        columns: "role_name sql_identifier",
    },
    TableSpec {
        name: "key_column_usage",
        oid: 13329,
        relkind: 'v',
        rows: empty,
        columns: "constraint_catalog sql_identifier, constraint_schema sql_identifier, constraint_name sql_identifier, table_catalog sql_identifier, table_schema sql_identifier, table_name sql_identifier, column_name sql_identifier, ordinal_position cardinal_number, position_in_unique_constraint cardinal_number",
    },
    TableSpec {
        name: "parameters",
        oid: 13334,
        relkind: 'v',
        rows: empty,
        columns: "specific_catalog sql_identifier, specific_schema sql_identifier, specific_name sql_identifier, ordinal_position cardinal_number, parameter_mode character_data, is_result yes_or_no, as_locator yes_or_no, parameter_name sql_identifier, data_type character_data, character_maximum_length cardinal_number, character_octet_length cardinal_number, character_set_catalog sql_identifier, character_set_schema sql_identifier, character_set_name sql_identifier, collation_catalog sql_identifier, collation_schema sql_identifier, collation_name sql_identifier, numeric_precision cardinal_number, numeric_precision_radix cardinal_number, numeric_scale cardinal_number, datetime_precision cardinal_number, interval_type character_data, interval_precision cardinal_number, udt_catalog sql_identifier, udt_schema sql_identifier, udt_name sql_identifier, scope_catalog sql_identifier, scope_schema sql_identifier, scope_name sql_identifier, maximum_cardinality cardinal_number, dtd_identifier sql_identifier, parameter_default character_data",
    },
    TableSpec {
        name: "referential_constraints",
        oid: 13339,
        relkind: 'v',
        rows: empty,
        columns: "constraint_catalog sql_identifier, constraint_schema sql_identifier, constraint_name sql_identifier, unique_constraint_catalog sql_identifier, unique_constraint_schema sql_identifier, unique_constraint_name sql_identifier, match_option character_data, update_rule character_data, delete_rule character_data",
    },
    TableSpec {
        name: "routines",
        oid: 13377,
        relkind: 'v',
        rows: empty,
        columns: "specific_catalog sql_identifier, specific_schema sql_identifier, specific_name sql_identifier, routine_catalog sql_identifier, routine_schema sql_identifier, routine_name sql_identifier, routine_type character_data, module_catalog sql_identifier, module_schema sql_identifier, module_name sql_identifier, udt_catalog sql_identifier, udt_schema sql_identifier, udt_name sql_identifier, data_type character_data, character_maximum_length cardinal_number, character_octet_length cardinal_number, character_set_catalog sql_identifier, character_set_schema sql_identifier, character_set_name sql_identifier, collation_catalog sql_identifier, collation_schema sql_identifier, collation_name sql_identifier, numeric_precision cardinal_number, numeric_precision_radix cardinal_number, numeric_scale cardinal_number, datetime_precision cardinal_number, interval_type character_data, interval_precision cardinal_number, type_udt_catalog sql_identifier, type_udt_schema sql_identifier, type_udt_name sql_identifier, scope_catalog sql_identifier, scope_schema sql_identifier, scope_name sql_identifier, maximum_cardinality cardinal_number, dtd_identifier sql_identifier, routine_body character_data, routine_definition character_data, external_name character_data, external_language character_data, parameter_style character_data, is_deterministic yes_or_no, sql_data_access character_data, is_null_call yes_or_no, sql_path character_data, schema_level_routine yes_or_no, max_dynamic_result_sets cardinal_number, is_user_defined_cast yes_or_no, is_implicitly_invocable yes_or_no, security_type character_data, to_sql_specific_catalog sql_identifier, to_sql_specific_schema sql_identifier, to_sql_specific_name sql_identifier, as_locator yes_or_no, created time_stamp, last_altered time_stamp, new_savepoint_level yes_or_no, is_udt_dependent yes_or_no, result_cast_from_data_type character_data, result_cast_as_locator yes_or_no, result_cast_char_max_length cardinal_number, result_cast_char_octet_length cardinal_number, result_cast_char_set_catalog sql_identifier, result_cast_char_set_schema sql_identifier, result_cast_char_set_name sql_identifier, result_cast_collation_catalog sql_identifier, result_cast_collation_schema sql_identifier, result_cast_collation_name sql_identifier, result_cast_numeric_precision cardinal_number, result_cast_numeric_precision_radix cardinal_number, result_cast_numeric_scale cardinal_number, result_cast_datetime_precision cardinal_number, result_cast_interval_type character_data, result_cast_interval_precision cardinal_number, result_cast_type_udt_catalog sql_identifier, result_cast_type_udt_schema sql_identifier, result_cast_type_udt_name sql_identifier, result_cast_scope_catalog sql_identifier, result_cast_scope_schema sql_identifier, result_cast_scope_name sql_identifier, result_cast_maximum_cardinality cardinal_number, result_cast_dtd_identifier sql_identifier",
    },
    TableSpec {
        name: "schemata",
        oid: 13382,
        relkind: 'v',
        rows: schemata,
        columns: "catalog_name sql_identifier, schema_name sql_identifier, schema_owner sql_identifier, default_character_set_catalog sql_identifier, default_character_set_schema sql_identifier, default_character_set_name sql_identifier, sql_path character_data",
    },
    TableSpec {
        name: "sequences",
        oid: 13386,
        relkind: 'v',
        rows: empty,
        columns: "sequence_catalog sql_identifier, sequence_schema sql_identifier, sequence_name sql_identifier, data_type character_data, numeric_precision cardinal_number, numeric_precision_radix cardinal_number, numeric_scale cardinal_number, start_value character_data, minimum_value character_data, maximum_value character_data, increment character_data, cycle_option yes_or_no",
    },
    TableSpec {
        name: "table_constraints",
        oid: 13411,
        relkind: 'v',
        rows: empty,
        columns: "constraint_catalog sql_identifier, constraint_schema sql_identifier, constraint_name sql_identifier, table_catalog sql_identifier, table_schema sql_identifier, table_name sql_identifier, constraint_type character_data, is_deferrable yes_or_no, initially_deferred yes_or_no, enforced yes_or_no, nulls_distinct yes_or_no",
    },
    TableSpec {
        name: "table_privileges",
        oid: 13416,
        relkind: 'v',
        rows: empty,
        columns: "grantor sql_identifier, grantee sql_identifier, table_catalog sql_identifier, table_schema sql_identifier, table_name sql_identifier, privilege_type character_data, is_grantable yes_or_no, with_hierarchy yes_or_no",
    },
    TableSpec {
        name: "tables",
        oid: 13425,
        relkind: 'v',
        rows: tables,
        columns: "table_catalog sql_identifier, table_schema sql_identifier, table_name sql_identifier, table_type character_data, self_referencing_column_name sql_identifier, reference_generation character_data, user_defined_type_catalog sql_identifier, user_defined_type_schema sql_identifier, user_defined_type_name sql_identifier, is_insertable_into yes_or_no, is_typed yes_or_no, commit_action character_data",
    },
    TableSpec {
        name: "triggers",
        oid: 13440,
        relkind: 'v',
        rows: empty,
        columns: "trigger_catalog sql_identifier, trigger_schema sql_identifier, trigger_name sql_identifier, event_manipulation character_data, event_object_catalog sql_identifier, event_object_schema sql_identifier, event_object_table sql_identifier, action_order cardinal_number, action_condition character_data, action_statement character_data, action_orientation character_data, action_timing character_data, action_reference_old_table sql_identifier, action_reference_new_table sql_identifier, action_reference_old_row sql_identifier, action_reference_new_row sql_identifier, created time_stamp",
    },
    TableSpec {
        name: "views",
        oid: 13483,
        relkind: 'v',
        rows: views,
        columns: "table_catalog sql_identifier, table_schema sql_identifier, table_name sql_identifier, view_definition character_data, check_option character_data, is_updatable yes_or_no, is_insertable_into yes_or_no, is_trigger_updatable yes_or_no, is_trigger_deletable yes_or_no, is_trigger_insertable_into yes_or_no",
    },
];
