//! Optimistic concurrency and unique names under concurrent requests.

use crate::helpers::TestApp;
use futures::future::join_all;
use serde_json::json;

#[tokio::test]
async fn twenty_patches_with_one_if_match_exactly_one_wins() {
    let app = TestApp::spawn().await;
    let (_, created) = app.create_agent(json!({"name": "contended"})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let requests = (0..20).map(|i| {
        app.http
            .patch(app.url(&format!("/agents/{id}")))
            .header("if-match", "\"1\"")
            .json(&json!({"description": format!("writer {i}")}))
            .send()
    });
    let statuses: Vec<u16> = join_all(requests)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 409 || **s == 412).count();
    assert_eq!((ok, refused), (1, 19), "{statuses:?}");

    // The log holds exactly one update.
    let log = mc_eventlog::EventLog::new(app.nats.client().await);
    let commits = log.load("agent", &id).await.unwrap();
    assert_eq!(commits.len(), 2);
}

#[tokio::test]
async fn concurrent_registrations_of_one_name_exactly_one_succeeds() {
    let app = TestApp::spawn().await;
    let requests = (0..12).map(|i| {
        // Same name, different case and padding: one name.
        let name = if i % 2 == 0 { "Rover" } else { " rover " };
        app.create_agent(json!({"name": name}))
    });
    let results = join_all(requests).await;
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let taken = results
        .iter()
        .filter(|(s, b)| *s == 409 && b["code"] == "name-taken")
        .count();
    assert_eq!((created, taken), (1, 11), "{results:?}");
}

#[tokio::test]
async fn patches_without_if_match_all_land_by_retrying() {
    let app = TestApp::spawn().await;
    let (_, created) = app.create_agent(json!({"name": "busy-bee"})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let requests = (0..8).map(|i| {
        app.http
            .patch(app.url(&format!("/agents/{id}")))
            .json(&json!({"metadata": {"writer": i}}))
            .send()
    });
    let statuses: Vec<u16> = join_all(requests)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let log = mc_eventlog::EventLog::new(app.nats.client().await);
    let versions: Vec<u64> = log
        .load("agent", &id)
        .await
        .unwrap()
        .iter()
        .flat_map(|c| c.commit.events.iter().map(|e| e.aggregate_version))
        .collect();
    assert_eq!(
        versions,
        (1..=9).collect::<Vec<_>>(),
        "versions are dense and ordered"
    );
}

#[tokio::test]
async fn creating_an_existing_aggregate_is_refused_even_though_creation_skips_the_load() {
    use mc_commands::{CommandContext, CommandError, Handler, MissionService, NewMission};
    use mc_domain::ids::MissionId;
    use mc_domain::values::{Metadata, MissionDescription, Title};
    let app = TestApp::spawn().await;
    let service = MissionService::new(Handler::new(mc_eventlog::EventLog::new(
        app.nats.client().await,
    )));
    let mission = NewMission {
        id: MissionId::from_uuid(uuid::Uuid::now_v7()),
        title: Title::parse("twice", "title").unwrap(),
        description: MissionDescription::default(),
        priority: Default::default(),
        metadata: Metadata::default(),
        agent_id: None,
    };
    let first = service
        .create(&CommandContext::new("test", None), mission.clone())
        .await
        .unwrap();
    assert_eq!(first.version, 1);
    let again = service
        .create(&CommandContext::new("test", None), mission)
        .await
        .unwrap_err();
    assert!(
        matches!(
            again,
            CommandError::Domain(mc_domain::DomainError::AlreadyExists { .. })
        ),
        "{again:?}"
    );
}
