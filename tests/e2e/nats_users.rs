//! The whole service on the project's own `nats/nats-server.conf` (users and accounts): the
//! service logs in as `mission-control`; an agent (`mc-agent`) needs a valid token for every
//! command and cannot touch the log; a producer publishes only its own spacecraft's telemetry.

use crate::helpers::{authorized, bearer_headers, config, issue_token_on, wait_ready};
use mc_api::Application;
use mc_eventlog::connect::NatsAuth;
use mc_test_support::{NatsServer, TestDb};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const SERVICE_PW: &str = "serviceE2ePw1";
const AGENT_PW: &str = "agentE2ePw2";
const SC_001_PW: &str = "producerE2ePw3";

async fn login(nats: &NatsServer, user: &str, password: &str) -> async_nats::Client {
    NatsAuth::UserPassword {
        user: user.into(),
        password: password.into(),
    }
    .apply(async_nats::ConnectOptions::new())
    .unwrap()
    .connect(nats.url())
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_and_producers_on_the_project_nats_config_get_only_what_they_may() {
    let conf =
        std::fs::read_to_string(mc_test_support::workspace_root().join("nats/nats-server.conf"))
            .unwrap();
    let nats = NatsServer::start_with_config(
        &conf,
        &[
            ("MC_NATS_SERVICE_PASSWORD", SERVICE_PW),
            ("MC_NATS_AGENT_PASSWORD", AGENT_PW),
            ("MC_NATS_PRODUCER_SC_001_PASSWORD", SC_001_PW),
            ("MC_NATS_PRODUCER_SC_002_PASSWORD", "producerE2ePw4"),
        ],
    )
    .await;
    let service = login(&nats, "mission-control", SERVICE_PW).await;
    let admin = issue_token_on(service.clone(), "admin", "admin", &[]).await;
    let operator = issue_token_on(service.clone(), "rover-7", "operator", &[]).await;
    let db = TestDb::new().await;
    let mut cfg = config(
        nats.url(),
        db.url().to_owned(),
        "127.0.0.1:0".parse().unwrap(),
    );
    cfg.nats_auth = NatsAuth::UserPassword {
        user: "mission-control".into(),
        password: SERVICE_PW.into(),
    };
    let app = Application::build(cfg).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    let _server = tokio::spawn(app.run(shutdown.clone()));
    let http = authorized(&admin);
    wait_ready(&http, &base).await;

    let events = async_nats::jetstream::new(service.clone());
    let head = || async {
        events
            .get_stream("MC_EVENTS")
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .state
            .last_sequence
    };
    let agent = login(&nats, "mc-agent", AGENT_PW).await;
    let register = |headers: async_nats::HeaderMap| {
        let agent = agent.clone();
        async move {
            let reply = agent
                .request_with_headers(
                    "mc.cmd.agent.register",
                    headers,
                    json!({"name": "rover-7"}).to_string().into(),
                )
                .await
                .unwrap();
            serde_json::from_slice::<Value>(&reply.payload).unwrap()
        }
    };
    // No token: refused, nothing appended.
    let before = head().await;
    let r = register(async_nats::HeaderMap::new()).await;
    assert_eq!(r["error"]["status"], 401, "{r}");
    assert_eq!(head().await, before);
    // The agent's own token: accepted, and the agent is the actor.
    let r = register(bearer_headers(&operator)).await;
    assert_eq!(r["ok"], true, "{r}");
    // The agent cannot write the log or read the KV itself.
    agent
        .publish("mc.events.agent.forged", "{}".into())
        .await
        .unwrap();
    agent.flush().await.unwrap();
    let after = head().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(head().await, after, "a client published into MC_EVENTS");
    assert!(async_nats::jetstream::new(agent.clone())
        .get_key_value("mc_names")
        .await
        .is_err());

    // A producer's snapshot for its own spacecraft is stored; one for another is not.
    let producer = login(&nats, "producer-SC-001", SC_001_PW).await;
    for sc in ["SC-002", "SC-001"] {
        let body = json!({"timestamp": 1_700_000_000_000i64, "parameters": {"t": sc}});
        producer
            .publish(format!("mc.telemetry.{sc}"), body.to_string().into())
            .await
            .unwrap();
    }
    producer.flush().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let latest = loop {
        let r: Value = http
            .get(format!(
                "{base}/api/v1/telemetry/latest?spacecraftId=SC-001"
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if r.to_string().contains("SC-001") && r.to_string().contains("\"t\"") {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "SC-001's snapshot never stored: {r}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(latest.to_string().contains("SC-001"), "{latest}");
    let telemetry = async_nats::jetstream::new(service.clone())
        .get_stream("MC_TELEMETRY")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages;
    assert_eq!(
        telemetry, 1,
        "only the producer's own spacecraft reached the stream"
    );
    shutdown.cancel();
}
