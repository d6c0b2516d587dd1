//! The API description served by a running server, without credentials.

use crate::helpers::TestApp;
use serde_json::Value;

#[tokio::test]
async fn the_openapi_document_and_the_docs_page_are_served_openly() {
    let app = TestApp::spawn().await;
    let anonymous = reqwest::Client::new();
    let r = anonymous
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert_eq!(operations, mc_api::route_table().len());
    assert!(doc["paths"]["/openmct/lib/{path}"]["get"].is_object());
    let r = anonymous
        .get(format!("{}/docs", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = r.text().await.unwrap();
    assert!(
        page.contains("/api/v1/openapi.json"),
        "the page loads the document"
    );
    assert!(!page.contains("https://"), "no asset from anywhere else");
}
