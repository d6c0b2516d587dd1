//! NATS users and subject permissions, against a real nats-server running the project's own
//! `nats/nats-server.conf`: the service may do everything; a producer publishes only its own
//! spacecraft's telemetry; an agent only sends commands by request-reply; nobody else touches the
//! event log, dead letters, KV or the JetStream API; a wrong password is refused.

use async_nats::{Client, ConnectErrorKind, ConnectOptions, Event, Message, Subscriber};
use futures::StreamExt;
use mc_eventlog::connect::NatsAuth;
use mc_eventlog::streams::{provision, ProvisionOptions, NAMES_BUCKET, TELEMETRY};
use mc_test_support::NatsServer;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::timeout;

const SERVICE: (&str, &str) = ("mission-control", "serviceTestPw1");
const AGENT: (&str, &str) = ("mc-agent", "agentTestPw2");
const SC_001: (&str, &str) = ("producer-SC-001", "producerOneTestPw3");
const SC_002: (&str, &str) = ("producer-SC-002", "producerTwoTestPw4");

/// Long enough for anything that will arrive; a refused request fails after this.
const WAIT: Duration = Duration::from_secs(5);

/// The project's dev config, with test passwords in the environment it reads them from.
async fn project_server() -> NatsServer {
    let config =
        std::fs::read_to_string(mc_test_support::workspace_root().join("nats/nats-server.conf"))
            .expect("read nats/nats-server.conf");
    NatsServer::start_with_config(
        &config,
        &[
            ("MC_NATS_SERVICE_PASSWORD", SERVICE.1),
            ("MC_NATS_AGENT_PASSWORD", AGENT.1),
            ("MC_NATS_PRODUCER_SC_001_PASSWORD", SC_001.1),
            ("MC_NATS_PRODUCER_SC_002_PASSWORD", SC_002.1),
        ],
    )
    .await
}

/// A client logged in as `user`, and the events (server errors) its connection reports.
struct Conn {
    client: Client,
    events: mpsc::UnboundedReceiver<Event>,
}

async fn try_connect(
    server: &NatsServer,
    auth: &NatsAuth,
) -> Result<Conn, async_nats::ConnectError> {
    let (tx, events) = mpsc::unbounded_channel();
    let opts = ConnectOptions::new()
        .request_timeout(Some(Duration::from_secs(2)))
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(event);
            }
        });
    let opts = auth.apply(opts).expect("credentials apply");
    let client = opts.connect(server.url()).await?;
    Ok(Conn { client, events })
}

async fn connect(server: &NatsServer, (user, password): (&str, &str)) -> Conn {
    let auth = NatsAuth::UserPassword {
        user: user.into(),
        password: password.into(),
    };
    try_connect(server, &auth)
        .await
        .unwrap_or_else(|e| panic!("{user} cannot connect: {e}"))
}

impl Conn {
    /// Wait for the server's "Permissions Violation" error naming `subject`.
    async fn violation(&mut self, what: &str, subject: &str) {
        let wanted = format!("permissions violation for {what} to \"{subject}\"");
        let found = timeout(WAIT, async {
            while let Some(event) = self.events.recv().await {
                if let Event::ServerError(e) = &event {
                    if e.to_string()
                        .to_lowercase()
                        .contains(&wanted.to_lowercase())
                    {
                        return;
                    }
                }
            }
        })
        .await;
        assert!(found.is_ok(), "no error {wanted:?} reported to the client");
    }

    async fn publish(&self, subject: &str, body: &'static str) {
        self.client
            .publish(subject.to_owned(), body.into())
            .await
            .expect("publish");
        self.client.flush().await.expect("flush");
    }
}

/// The next message of `sub`, which must come within [`WAIT`].
async fn next(sub: &mut Subscriber) -> Message {
    timeout(WAIT, sub.next())
        .await
        .expect("message within the wait")
        .expect("subscription open")
}

/// A service-side subscriber to everything under `mc.>`, in place before anyone publishes.
async fn watch_all(service: &Conn) -> Subscriber {
    let sub = service.client.subscribe("mc.>").await.expect("subscribe");
    service.client.flush().await.expect("flush");
    sub
}

/// The service's connection with the streams and the names bucket provisioned.
async fn provisioned_service(server: &NatsServer) -> Conn {
    let service = connect(server, SERVICE).await;
    let js = async_nats::jetstream::new(service.client.clone());
    provision(&js, &ProvisionOptions::default())
        .await
        .expect("the service provisions streams and buckets");
    service
}

#[tokio::test]
async fn the_service_publishes_anywhere_and_uses_jetstream_and_kv() {
    let server = project_server().await;
    let service = provisioned_service(&server).await;
    let js = async_nats::jetstream::new(service.client.clone());
    for subject in [
        "mc.events.mission.m-1",
        "mc.dlq.test",
        "mc.telemetry.SC-999",
    ] {
        js.publish(subject, "x".into())
            .await
            .expect("publish")
            .await
            .unwrap_or_else(|e| panic!("no ack for {subject}: {e}"));
    }
    let kv = js.get_key_value(NAMES_BUCKET).await.expect("open bucket");
    kv.put("agent.616263", "owner".into())
        .await
        .expect("kv put");
    let value = kv.get("agent.616263").await.expect("kv get");
    assert_eq!(value.as_deref(), Some(&b"owner"[..]));
    let mut events = js.get_stream("MC_EVENTS").await.expect("stream info");
    assert_eq!(events.info().await.expect("info").state.messages, 1);
}

#[tokio::test]
async fn a_producer_publishes_only_its_own_spacecraft() {
    let server = project_server().await;
    let service = provisioned_service(&server).await;
    let mut all = watch_all(&service).await;
    let mut producer = connect(&server, SC_001).await;

    // Its own subject: delivered, and stored with a JetStream ack (in the producer's inbox).
    producer.publish("mc.telemetry.SC-001", "first").await;
    let m = next(&mut all).await;
    assert_eq!(
        (m.subject.as_str(), &m.payload[..]),
        ("mc.telemetry.SC-001", &b"first"[..])
    );
    let js = async_nats::jetstream::new(producer.client.clone());
    let ack = js
        .publish("mc.telemetry.SC-001", "acked".into())
        .await
        .expect("publish")
        .await
        .expect("a producer gets its JetStream ack");
    assert_eq!(ack.stream, TELEMETRY);
    assert_eq!(&next(&mut all).await.payload[..], b"acked");

    // Anything else: refused with an error to the producer, never delivered.
    for subject in [
        "mc.telemetry.SC-002",
        "mc.events.mission.x",
        "mc.dlq.telemetry",
        "mc.cmd.agent.register",
        "$KV.mc_names.agent.616263",
        "$JS.API.STREAM.NAMES",
    ] {
        producer.publish(subject, "forbidden").await;
        producer.violation("publish", subject).await;
    }
    // Messages from one connection arrive in order: the marker comes next, nothing before it.
    producer.publish("mc.telemetry.SC-001", "marker").await;
    let m = next(&mut all).await;
    assert_eq!(
        (m.subject.as_str(), &m.payload[..]),
        ("mc.telemetry.SC-001", &b"marker"[..]),
        "a refused publish was delivered"
    );

    // It cannot read the event log, the JetStream API or a KV bucket either.
    let _sub = producer
        .client
        .subscribe("mc.events.>")
        .await
        .expect("subscribe call");
    producer.violation("subscription", "mc.events.>").await;
    assert!(
        js.get_key_value(NAMES_BUCKET).await.is_err(),
        "a producer opened the names bucket"
    );
}

#[tokio::test]
async fn another_producer_cannot_publish_for_sc_001() {
    let server = project_server().await;
    let service = connect(&server, SERVICE).await;
    let mut all = watch_all(&service).await;
    let mut other = connect(&server, SC_002).await;
    other.publish("mc.telemetry.SC-001", "spoofed").await;
    other.violation("publish", "mc.telemetry.SC-001").await;
    other.publish("mc.telemetry.SC-002", "own").await;
    let m = next(&mut all).await;
    assert_eq!(
        (m.subject.as_str(), &m.payload[..]),
        ("mc.telemetry.SC-002", &b"own"[..])
    );
}

#[tokio::test]
async fn an_agent_only_sends_commands_by_request_reply() {
    let server = project_server().await;
    let service = provisioned_service(&server).await;
    let mut commands = service
        .client
        .subscribe("mc.cmd.>")
        .await
        .expect("subscribe");
    let mut all = watch_all(&service).await;
    let responder = service.client.clone();
    tokio::spawn(async move {
        while let Some(m) = commands.next().await {
            if let Some(reply) = m.reply {
                let _ = responder.publish(reply, "{\"ok\":true}".into()).await;
            }
        }
    });

    let mut agent = connect(&server, AGENT).await;
    let reply = agent
        .client
        .request("mc.cmd.agent.register", "{}".into())
        .await
        .expect("an agent gets the reply to its command");
    assert_eq!(&reply.payload[..], b"{\"ok\":true}");
    assert_eq!(
        next(&mut all).await.subject.as_str(),
        "mc.cmd.agent.register"
    );

    for subject in [
        "mc.events.agent.a-1",
        "mc.telemetry.SC-001",
        "mc.dlq.cmd",
        "$KV.mc_names.agent.616263",
        "$JS.API.DIRECT.GET.KV_mc_names",
    ] {
        agent.publish(subject, "forbidden").await;
        agent.violation("publish", subject).await;
    }
    agent.publish("mc.cmd.marker.x", "marker").await;
    let m = next(&mut all).await;
    assert_eq!(
        m.subject.as_str(),
        "mc.cmd.marker.x",
        "a refused publish was delivered"
    );

    let js = async_nats::jetstream::new(agent.client.clone());
    assert!(
        js.get_key_value(NAMES_BUCKET).await.is_err(),
        "an agent opened the names bucket"
    );
    assert!(
        js.get_stream("MC_EVENTS").await.is_err(),
        "an agent read the event log's info"
    );
    let _sub = agent
        .client
        .subscribe("$KV.mc_names.>")
        .await
        .expect("subscribe call");
    agent.violation("subscription", "$KV.mc_names.>").await;
}

#[tokio::test]
async fn a_wrong_password_an_unknown_user_or_no_credentials_are_refused() {
    let server = project_server().await;
    for auth in [
        NatsAuth::UserPassword {
            user: SERVICE.0.into(),
            password: AGENT.1.into(),
        },
        NatsAuth::UserPassword {
            user: "intruder".into(),
            password: SERVICE.1.into(),
        },
        NatsAuth::None,
    ] {
        let refused = try_connect(&server, &auth)
            .await
            .err()
            .unwrap_or_else(|| panic!("{auth:?} was let in"));
        assert_eq!(
            refused.kind(),
            ConnectErrorKind::AuthorizationViolation,
            "{auth:?}: {refused}"
        );
    }
}

/// A test-only nkey pair (seed and public key), made for this test and used nowhere else.
const TEST_SEED: &str = "SUAEMHPL2KO2LYRMU6Z4W5K4URFCKJHTCGHFAMPCJUQPEOV3KU6XYRAZNE";
const TEST_PUBLIC: &str = "UAIIX6IIAF7BCR7ROSHCL4CMV37TD4KPUE7SUIETFQNAKGMXB3N4YDS3";

#[tokio::test]
async fn an_nkey_user_logs_in_with_its_seed_file() {
    let config = format!(
        "jetstream {{\n  sync_interval: always\n}}\nauthorization {{\n  users: [ {{ nkey: {TEST_PUBLIC} }} ]\n}}\n"
    );
    let server = NatsServer::start_with_config(&config, &[]).await;
    let dir = std::env::temp_dir().join(format!("mc-nkey-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir(&dir).expect("temp dir");
    let seed = dir.join("service.nk");
    std::fs::write(&seed, format!("{TEST_SEED}\n")).expect("write seed");
    let conn = try_connect(&server, &NatsAuth::NkeySeedFile(seed.clone())).await;
    let refused = try_connect(&server, &NatsAuth::None).await.err();
    let _ = std::fs::remove_dir_all(&dir);
    let conn = conn.expect("the nkey user logs in");
    conn.client.flush().await.expect("flush");
    assert_eq!(
        refused.map(|e| e.kind()),
        Some(ConnectErrorKind::AuthorizationViolation)
    );
}

#[tokio::test]
async fn credentials_do_no_harm_on_a_server_without_users() {
    // The test servers and benchmarks run without authorization while the dev environment
    // exports the service's credentials: a server without users lets them in.
    let server = NatsServer::start().await;
    let conn = connect(&server, SERVICE).await;
    conn.client.flush().await.expect("flush");
}

#[tokio::test]
async fn a_reply_subject_cannot_smuggle_anything_into_the_event_log() {
    // A client names mc.events.<aggregate>.<id> as the reply subject of a command or of a
    // telemetry message. Were the service's answer or JetStream's ack delivered there, MC_EVENTS
    // (no delete, no purge) would hold a message that is not a commit, and that aggregate would
    // be corrupt for good. Across the account boundary the reply becomes a private _R_ subject.
    let server = project_server().await;
    let service = provisioned_service(&server).await;
    let mut events = service
        .client
        .subscribe("mc.events.>")
        .await
        .expect("subscribe");
    let mut commands = service
        .client
        .subscribe("mc.cmd.>")
        .await
        .expect("subscribe");
    service.client.flush().await.expect("flush");

    let agent = connect(&server, AGENT).await;
    agent
        .client
        .publish_with_reply("mc.cmd.agent.register", "mc.events.agent.a-1", "{}".into())
        .await
        .expect("publish");
    let command = next(&mut commands).await;
    let reply = command.reply.expect("the command has a reply subject");
    assert!(
        reply.starts_with("_R_."),
        "the service sees the client's reply subject {reply}"
    );
    service
        .client
        .publish(reply, "answer".into())
        .await
        .expect("reply");

    let producer = connect(&server, SC_001).await;
    producer
        .client
        .publish_with_reply("mc.telemetry.SC-001", "mc.events.mission.m-1", "{}".into())
        .await
        .expect("publish");
    producer.client.flush().await.expect("flush");
    let js = async_nats::jetstream::new(service.client.clone());
    let mut telemetry = js.get_stream(TELEMETRY).await.expect("stream");
    let stored = timeout(WAIT, async {
        while telemetry.info().await.expect("info").state.messages == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(stored.is_ok(), "the telemetry message was not stored");

    // The ack is sent once the message is stored; give both answers time to go astray.
    let astray = timeout(Duration::from_millis(500), events.next()).await;
    assert!(astray.is_err(), "delivered on mc.events: {astray:?}");
    let mut log = js.get_stream("MC_EVENTS").await.expect("stream");
    assert_eq!(log.info().await.expect("info").state.messages, 0);
}
