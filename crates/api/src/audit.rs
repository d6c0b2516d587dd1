//! Audit routes: `GET /api/v1/events` (filtered keyset pages of the archive, or a streamed
//! NDJSON/CSV export of every match) and `GET /api/v1/audit/verify` (recompute the hash chain).

use crate::auth::Routes;
use crate::extract::{QueryParams, DEFAULT_LIMIT, MAX_LIMIT};
use crate::problem::ApiError;
use crate::read;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use axum::Json;
use futures::{StreamExt, TryStreamExt};
use mc_domain::FieldError;
use mc_projections::archive;
use mc_projections::audit::{self, Verification};
use mc_projections::events::{self as model, Cursor, EventRow, Filter};
use std::collections::HashMap;

pub fn routes(r: Routes) -> Routes {
    r.get("/events", events).get("/audit/verify", verify)
}

/// `{"holds": true, "count", "headHash"}` or `{"holds": false, "firstBrokenPosition", …}`.
async fn verify(State(state): State<AppState>) -> Result<Json<Verification>, ApiError> {
    Ok(Json(audit::verify(&state.pool, |_| {}).await?))
}

/// How the answer is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `{"items": [...], "nextCursor": …}`, one page.
    Page,
    /// Every match, one JSON object per line, streamed.
    Ndjson,
    /// Every match as CSV with a header row, streamed.
    Csv,
}

impl Format {
    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "json" => Ok(Self::Page),
            "ndjson" => Ok(Self::Ndjson),
            "csv" => Ok(Self::Csv),
            _ => Err("must be json, ndjson or csv".into()),
        }
    }

    /// From `Accept` when no `format` parameter is given.
    fn from_accept(headers: &HeaderMap) -> Self {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if accept.contains("application/x-ndjson") || accept.contains("application/ndjson") {
            Self::Ndjson
        } else if accept.contains("text/csv") {
            Self::Csv
        } else {
            Self::Page
        }
    }
}

/// `[a-z][a-z0-9<extra>]{0,max-1}`: aggregate and event type names.
fn name_param(
    max: usize,
    extra: &'static str,
    what: &'static str,
) -> impl Fn(&str) -> Result<String, String> {
    move |s| {
        let ok = s.len() <= max
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || extra.contains(c));
        ok.then(|| s.to_owned())
            .ok_or_else(|| format!("must be {what}"))
    }
}

/// Free text compared exactly (an aggregate id, an actor): no control characters, bounded.
fn text_param(max: usize) -> impl Fn(&str) -> Result<String, String> {
    move |s| {
        if s.chars().count() > max {
            Err(format!("must be at most {max} characters"))
        } else if s.chars().any(char::is_control) {
            Err("must not contain control characters".into())
        } else {
            Ok(s.to_owned())
        }
    }
}

/// The query of `GET /events`, parsed with every field error collected.
struct EventsQuery {
    filter: Filter,
    after: Option<Cursor>,
    limit: Option<u64>,
    format: Format,
    min_position: Option<u64>,
}

fn parse_query(
    params: HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<EventsQuery, ApiError> {
    let mut q = QueryParams::new(params);
    let position =
        |q: &mut QueryParams, name: &str| q.u64(name, 0, i64::MAX as u64).map(|v| v as i64);
    let filter = Filter {
        aggregate_type: q.parse(
            "aggregate",
            name_param(32, "-_", "an aggregate type such as mission or task_run"),
        ),
        aggregate_id: q.parse("id", text_param(128)),
        actor: q.parse("actor", text_param(256)),
        event_type: q.parse(
            "type",
            name_param(64, "._-", "an event type such as mission.created"),
        ),
        from: q.time("from"),
        to: q.time("to"),
        from_position: position(&mut q, "fromPosition"),
        to_position: position(&mut q, "toPosition"),
    };
    if let (Some(f), Some(t)) = (filter.from, filter.to) {
        if f > t {
            q.errors
                .push(FieldError::new("to", "must not be before from"));
        }
    }
    if let (Some(f), Some(t)) = (filter.from_position, filter.to_position) {
        if f > t {
            q.errors.push(FieldError::new(
                "toPosition",
                "must not be below fromPosition",
            ));
        }
    }
    let format = q
        .parse("format", Format::parse)
        .unwrap_or_else(|| Format::from_accept(headers));
    // A page is at most MAX_LIMIT rows; an export is everything unless limited.
    let limit = match format {
        Format::Page => Some(q.u64("limit", 1, MAX_LIMIT).unwrap_or(DEFAULT_LIMIT)),
        Format::Ndjson | Format::Csv => q.u64("limit", 1, i64::MAX as u64),
    };
    let after = q.parse("cursor", |s| {
        Cursor::parse(s).ok_or_else(|| "is not a cursor returned by this API".to_owned())
    });
    let min_position = q.min_position();
    q.finish()?;
    Ok(EventsQuery {
        filter,
        after,
        limit,
        format,
        min_position,
    })
}

/// `GET /events?aggregate=&id=&actor=&type=&from=&to=&fromPosition=&toPosition=&limit=&cursor=`
/// with `format=ndjson|csv` (or the matching `Accept`) for a streamed export.
pub(crate) async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = parse_query(params, &headers)?;
    let freshness = read::wait(&state, archive::NAME, query.min_position).await?;
    if query.format == Format::Page {
        let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
        let rows = model::page(&state.pool, &query.filter, query.after, limit as i64 + 1).await?;
        let (items, next) = split_page(rows, limit as usize);
        let body = serde_json::json!({"items": items, "nextCursor": next});
        return Ok(freshness.wrap(Json(body)));
    }
    let format = query.format;
    let rows = model::export(state.pool.clone(), query.filter, query.after, query.limit);
    let lines = rows
        .map_ok(move |row| match format {
            Format::Csv => csv_row(&row),
            _ => ndjson_row(&row),
        })
        // One body chunk per up to 256 rows instead of one per row.
        .ready_chunks(256)
        .map(|chunk| {
            let mut out = Vec::new();
            for line in chunk {
                out.extend_from_slice(&line?);
            }
            Ok::<_, sqlx::Error>(Bytes::from(out))
        })
        .inspect_err(
            |e| tracing::error!(error = %e, "event export failed midway: the response is cut off"),
        );
    let (content_type, body) = match format {
        Format::Csv => (
            "text/csv; charset=utf-8",
            Body::from_stream(
                futures::stream::once(async { Ok(Bytes::from_static(CSV_HEADER.as_bytes())) })
                    .chain(lines),
            ),
        ),
        _ => ("application/x-ndjson", Body::from_stream(lines)),
    };
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(freshness.wrap(response))
}

/// The first `limit` rows and the cursor of the last one when more rows were fetched.
fn split_page(mut rows: Vec<EventRow>, limit: usize) -> (Vec<EventRow>, Option<String>) {
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(|r| Cursor::of(r).to_string());
        (rows, next)
    } else {
        (rows, None)
    }
}

fn ndjson_row(row: &EventRow) -> Vec<u8> {
    let mut line = serde_json::to_vec(row).unwrap_or_default();
    line.push(b'\n');
    line
}

const CSV_HEADER: &str = "position,eventIndex,eventId,occurredAt,aggregateType,aggregateId,\
aggregateVersion,type,schemaVersion,actor,correlationId,causationId,commandId,payload\r\n";

fn csv_row(row: &EventRow) -> Vec<u8> {
    let cells = [
        row.position.to_string(),
        row.event_index.to_string(),
        row.event_id.to_string(),
        row.occurred_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        row.aggregate_type.clone(),
        row.aggregate_id.clone(),
        row.aggregate_version.to_string(),
        row.event_type.clone(),
        row.schema_version.to_string(),
        row.actor.clone().unwrap_or_default(),
        row.correlation_id.clone().unwrap_or_default(),
        row.causation_id.clone().unwrap_or_default(),
        row.command_id.to_string(),
        row.payload.to_string(),
    ];
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line.into_bytes()
}

/// RFC 4180 quoting; a cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab or
/// carriage return first) is prefixed with `'` (OWASP's CSV injection advice).
fn csv_cell(cell: &str) -> String {
    let guarded = if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("-1"), "'-1");
    }

    #[test]
    fn format_comes_from_the_parameter_then_accept() {
        let mut h = HeaderMap::new();
        assert_eq!(Format::from_accept(&h), Format::Page);
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/x-ndjson"),
        );
        assert_eq!(Format::from_accept(&h), Format::Ndjson);
        h.insert(header::ACCEPT, HeaderValue::from_static("text/csv, */*"));
        assert_eq!(Format::from_accept(&h), Format::Csv);
        let q = parse_query([("format".to_owned(), "ndjson".to_owned())].into(), &h).unwrap();
        assert_eq!(q.format, Format::Ndjson);
        assert_eq!(q.limit, None, "an export is unlimited unless asked");
    }

    fn field_errors(params: &[(&str, &str)]) -> Vec<String> {
        let params = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        match parse_query(params, &HeaderMap::new()) {
            Err(ApiError::Validation(errors)) => errors.into_iter().map(|e| e.field).collect(),
            Err(other) => panic!("expected field errors, got {other:?}"),
            Ok(_) => Vec::new(),
        }
    }

    #[test]
    fn bad_filters_name_their_field() {
        assert_eq!(field_errors(&[("aggregate", "Mission")]), ["aggregate"]);
        assert_eq!(field_errors(&[("aggregate", "mission\0")]), ["aggregate"]);
        assert_eq!(field_errors(&[("id", "a\u{0}b")]), ["id"]);
        assert_eq!(field_errors(&[("actor", &"x".repeat(257))]), ["actor"]);
        assert_eq!(field_errors(&[("type", "mission created")]), ["type"]);
        assert_eq!(field_errors(&[("from", "yesterday")]), ["from"]);
        assert_eq!(
            field_errors(&[
                ("from", "2026-01-02T00:00:00Z"),
                ("to", "2026-01-01T00:00:00Z")
            ]),
            ["to"]
        );
        assert_eq!(
            field_errors(&[("fromPosition", "9"), ("toPosition", "3")]),
            ["toPosition"]
        );
        assert_eq!(field_errors(&[("fromPosition", "-1")]), ["fromPosition"]);
        assert_eq!(field_errors(&[("limit", "501")]), ["limit"]);
        assert_eq!(field_errors(&[("cursor", "abc")]), ["cursor"]);
        assert_eq!(field_errors(&[("format", "xml")]), ["format"]);
        assert!(field_errors(&[
            ("aggregate", "mission"),
            ("type", "mission.created"),
            ("limit", "500")
        ])
        .is_empty());
    }
}
