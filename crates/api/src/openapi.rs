//! The OpenAPI 3.1 document (`GET /api/v1/openapi.json`) and its docs page (`GET /docs`).
//!
//! The document is assembled from the router's own route table (every method and path the
//! router serves, so a route cannot be missing), the permission table (the role each needs,
//! the bearer scheme), the request body types' schemas derived by `utoipa` from the very
//! structs the handlers deserialize, and one table of summaries and query parameters
//! ([`routes::DOCS`]) that a test keeps complete.

mod routes;

use crate::auth::Routes;
use crate::state::AppState;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use mc_auth::table::Access;
use routes::Doc;
use serde::Serialize;
use std::sync::OnceLock;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathItem,
    PathsBuilder, Ref, RefOr, Required, ResponseBuilder, Schema,
};
use utoipa::{PartialSchema, ToSchema};

pub fn routes(r: Routes) -> Routes {
    r.get("/openapi.json", document)
}

pub fn docs_routes(r: Routes) -> Routes {
    r.get("/docs", docs_page)
}

/// An `application/problem+json` error (RFC 9457) as every error of the API answers it.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
struct Problem {
    /// `/problems/<code>`.
    r#type: String,
    title: String,
    status: u16,
    /// Stable machine-readable code (`validation`, `not-found`, `conflict`, …).
    code: String,
    detail: Option<String>,
    /// On validation errors: every field at fault.
    errors: Option<Vec<FieldError>>,
    /// On 403: the role the route needs.
    required_role: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
struct FieldError {
    field: String,
    message: String,
}

/// What a command answers: the aggregate, its new version (also the `ETag`) and the log
/// position of the commit (`null` when nothing changed).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
struct CommandResult {
    id: String,
    version: u64,
    position: Option<u64>,
}

/// A keyset page: `items` and the `cursor` of the next page (`null` on the last).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Page {
    items: Vec<serde_json::Value>,
    next_cursor: Option<String>,
}

/// The schema of `T` as a component: registers it (and what it refers to) and returns a
/// reference to it.
fn component<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) -> RefOr<Schema> {
    let name = T::name().into_owned();
    T::schemas(schemas);
    schemas.push((name.clone(), T::schema()));
    RefOr::Ref(Ref::from_schema_name(name))
}

fn method(m: &axum::http::Method) -> Option<HttpMethod> {
    Some(match m.as_str() {
        "GET" => HttpMethod::Get,
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        "PATCH" => HttpMethod::Patch,
        "DELETE" => HttpMethod::Delete,
        _ => return None,
    })
}

/// The errors every protected route may answer.
const ERRORS: &[(&str, &str)] = &[
    ("400", "malformed request (JSON, header)"),
    (
        "401",
        "missing or invalid credentials (`WWW-Authenticate: Bearer`)",
    ),
    ("403", "the caller's role is below the route's"),
    ("404", "unknown resource"),
    (
        "409",
        "conflict: a stale version, an illegal transition, a taken name",
    ),
    ("412", "`If-Match` does not match the current version"),
    ("422", "validation: every field at fault in `errors`"),
    ("429", "past the per-principal write limit (`Retry-After`)"),
    (
        "503",
        "a dependency (NATS, PostgreSQL) is unavailable (`Retry-After`)",
    ),
];

/// The document of the routes `table` (method and full path), built once per process.
pub fn build(table: &[crate::Route]) -> OpenApi {
    let mut schemas = Vec::new();
    let problem = component::<Problem>(&mut schemas);
    let command = component::<CommandResult>(&mut schemas);
    let page = component::<Page>(&mut schemas);
    let mut paths = PathsBuilder::new();
    let mut tags = std::collections::BTreeSet::new();
    for route in table {
        let Some(http) = method(&route.method) else {
            continue;
        };
        let doc = routes::find(route.method.as_str(), &route.path);
        let access = mc_auth::table::http(route.method.as_str(), &route.path);
        let mut op = OperationBuilder::new().operation_id(Some(format!(
            "{}{}",
            route.method.as_str().to_lowercase(),
            route.path.replace(['/', '{', '}', '-', '.'], "_")
        )));
        let (tag, summary) = doc.map_or(("other", ""), |d| (d.tag, d.summary));
        tags.insert(tag);
        op = op.tag(tag).summary(Some(summary.to_owned()));
        let role = match access {
            Some(Access::Open) => {
                op = op.security(SecurityRequirement::default());
                "none (open)".to_owned()
            }
            Some(Access::Needs(role)) => {
                op = op.security(SecurityRequirement::new("bearer", Vec::<String>::new()));
                role.as_str().to_owned()
            }
            None => "no rule".to_owned(),
        };
        op = op.description(Some(format!("Role needed: **{role}**.")));
        for segment in route.path.split('/') {
            if let Some(name) = segment
                .strip_prefix('{')
                .and_then(|s| s.strip_suffix('}'))
                .map(|s| s.trim_start_matches('*'))
            {
                op = op.parameter(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .schema(Some(String::schema())),
                );
            }
        }
        if let Some(d) = doc {
            for (name, what) in d.query {
                op = op.parameter(
                    ParameterBuilder::new()
                        .name(*name)
                        .parameter_in(ParameterIn::Query)
                        .required(Required::False)
                        .description(Some(*what))
                        .schema(Some(String::schema())),
                );
            }
            if let Some(body) = d.body {
                let schema = body(&mut schemas);
                op = op.request_body(Some(
                    RequestBodyBuilder::new()
                        .required(Some(Required::True))
                        .content(
                            "application/json",
                            ContentBuilder::new().schema(Some(schema)).build(),
                        )
                        .build(),
                ));
            }
        }
        let (status, response) = success(doc, &command, &page, &mut schemas);
        op = op.response(status, response);
        if !matches!(access, Some(Access::Open)) {
            for (status, what) in ERRORS {
                op = op.response(
                    *status,
                    ResponseBuilder::new().description(*what).content(
                        "application/problem+json",
                        ContentBuilder::new().schema(Some(problem.clone())).build(),
                    ),
                );
            }
        }
        paths = paths.path(oas_path(&route.path), PathItem::new(http, op));
    }
    let components = schemas
        .into_iter()
        .fold(ComponentsBuilder::new(), |c, (name, schema)| {
            c.schema(name, schema)
        })
        .security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token `mc_<id>_<secret>` (`mission-control tokens create`) or a \
                         JWT of the configured OIDC issuer. WebSocket and SSE routes also take \
                         `?access_token=`.",
                    ))
                    .build(),
            ),
        )
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Mission Control")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Event-sourced mission operations: missions, agents, spacecraft, telemetry, \
                     alarms, task runs, audit, backups. Errors are `application/problem+json`; \
                     commands answer the aggregate `version` (`ETag`) and the log `position`; \
                     every query takes `minPosition` to read its own writes.",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components))
        .tags(Some(
            tags.into_iter().map(|t| TagBuilder::new().name(t).build()),
        ))
        .build()
}

/// A router path as an OpenAPI path template (`{*rest}` → `{rest}`).
pub(crate) fn oas_path(path: &str) -> String {
    path.replace("{*", "{")
}

/// The success answer of a route.
fn success(
    doc: Option<&Doc>,
    command: &RefOr<Schema>,
    page: &RefOr<Schema>,
    schemas: &mut Vec<(String, RefOr<Schema>)>,
) -> (&'static str, utoipa::openapi::Response) {
    let json = |what: &str, schema: RefOr<Schema>| {
        ResponseBuilder::new()
            .description(what)
            .content(
                "application/json",
                ContentBuilder::new().schema(Some(schema)).build(),
            )
            .build()
    };
    match doc.map(|d| d.answer) {
        Some(routes::Answer::Created) => ("201", json("created", command.clone())),
        Some(routes::Answer::Command) => ("200", json("done", command.clone())),
        Some(routes::Answer::Accepted) => (
            "202",
            json("accepted: a job runs", serde_json::Value::schema()),
        ),
        Some(routes::Answer::Page) => ("200", json("a page", page.clone())),
        Some(routes::Answer::Stream(content)) => (
            "200",
            ResponseBuilder::new()
                .description("a stream")
                .content(content, ContentBuilder::new().build())
                .build(),
        ),
        Some(routes::Answer::One(row)) => ("200", json("the row", row(schemas))),
        Some(routes::Answer::List(row)) => {
            let page = ObjectBuilder::new()
                .property("items", ArrayBuilder::new().items(row(schemas)))
                .required("items")
                .property(
                    "nextCursor",
                    ObjectBuilder::new()
                        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                        .description(Some("the cursor of the next page; null on the last")),
                )
                .required("nextCursor");
            ("200", json("a page", page.into()))
        }
        Some(routes::Answer::Json) | None => ("200", json("ok", serde_json::Value::schema())),
    }
}

fn document_json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        build(&crate::route_table())
            .to_json()
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    })
}

async fn document(_: axum::extract::State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
        .into_response()
}

async fn docs_page(_: axum::extract::State<AppState>) -> Html<&'static str> {
    Html(include_str!("openapi/docs.html"))
}

#[cfg(test)]
mod tests;
