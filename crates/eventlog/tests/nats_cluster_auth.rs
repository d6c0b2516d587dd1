//! The compose cluster's configs (`nats/cluster/n*.conf`) with logins: three real nats-servers
//! on loopback form the cluster through routes that log in, R3 streams work, the users'
//! permissions hold on every node, and a server without the route password cannot join. Also
//! that the users and permissions are the same in every config of the project.

use async_nats::{ConnectOptions, Event};
use futures::StreamExt;
use mc_eventlog::connect::NatsAuth;
use mc_eventlog::streams::{provision, ProvisionOptions, TELEMETRY};
use mc_test_support::{free_port, workspace_root, NatsServer};
use std::time::Duration;
use tokio::time::timeout;

const ROUTE_PASSWORD: &str = "routeTestPw0";
const PASSWORDS: [(&str, &str); 4] = [
    ("MC_NATS_SERVICE_PASSWORD", "serviceTestPw1"),
    ("MC_NATS_AGENT_PASSWORD", "agentTestPw2"),
    ("MC_NATS_PRODUCER_SC_001_PASSWORD", "producerOneTestPw3"),
    ("MC_NATS_PRODUCER_SC_002_PASSWORD", "producerTwoTestPw4"),
];
const WAIT: Duration = Duration::from_secs(20);

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `nats/cluster/n<node>.conf` for loopback: its route port instead of 6222, the store from the
/// command line instead of /data.
fn render(node: usize, route_port: u16) -> String {
    let text = read(&format!("nats/cluster/n{node}.conf"));
    let mut out = String::new();
    let mut replaced = (false, false);
    for line in text.lines() {
        if line.trim() == "store_dir: /data" {
            replaced.0 = true;
            continue;
        }
        if line.trim() == "listen: 0.0.0.0:6222" {
            replaced.1 = true;
            out.push_str(&format!("  listen: 127.0.0.1:{route_port}\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    assert_eq!(replaced, (true, true), "n{node}.conf changed shape");
    out
}

fn route_url(password: &str, port: u16) -> String {
    format!("nats://route:{password}@127.0.0.1:{port}")
}

/// The environment of a node: the users' passwords, the route password and the three routes.
fn node_env(route_password: &str, route_ports: [u16; 3]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = PASSWORDS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    env.push(("MC_NATS_ROUTE_PASSWORD".into(), route_password.into()));
    for (i, port) in route_ports.iter().enumerate() {
        env.push((
            format!("MC_NATS_ROUTE_{}", i + 1),
            route_url(route_password, *port),
        ));
    }
    env
}

fn configured(node: usize, route_ports: [u16; 3], route_password: &str) -> NatsServer {
    let env = node_env(route_password, route_ports);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    NatsServer::configured(&render(node, route_ports[node - 1]), &env)
}

async fn login(server: &NatsServer, user: &str, password: &str) -> async_nats::Client {
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let opts = NatsAuth::UserPassword {
        user: user.into(),
        password: password.into(),
    }
    .apply(ConnectOptions::new().event_callback(move |e| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(e);
        }
    }))
    .expect("apply");
    let client = opts.connect(server.url()).await.expect("connect");
    // Surface permission errors in the test output (the assertions below do the checking).
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            if matches!(e, Event::ServerError(_)) {
                eprintln!("{e}");
            }
        }
    });
    client
}

/// Three nodes with route logins, each healthy (the JetStream meta group has a leader: routes
/// work). A cluster that does not form (a port another test process took meanwhile, or no
/// leader within 20 s on a loaded machine) is stopped and started again on fresh ports.
async fn cluster() -> ([u16; 3], Vec<NatsServer>) {
    let mut last_failure = String::new();
    for _ in 0..3 {
        let route_ports = [free_port(), free_port(), free_port()];
        let mut nodes: Vec<NatsServer> = (1..=3)
            .map(|n| configured(n, route_ports, ROUTE_PASSWORD))
            .collect();
        for node in &mut nodes {
            node.launch();
        }
        let mut formed = true;
        for node in &mut nodes {
            if let Err(failure) = node.wait_ready().await {
                last_failure = failure.to_string();
                formed = false;
                break;
            }
        }
        if formed {
            return (route_ports, nodes);
        }
    }
    panic!("the cluster did not form in 3 attempts; the last:\n{last_failure}");
}

#[tokio::test]
async fn the_cluster_forms_with_route_logins_and_enforces_permissions_on_every_node() {
    let (route_ports, nodes) = cluster().await;

    let service = login(&nodes[0], "mission-control", PASSWORDS[0].1).await;
    let js = async_nats::jetstream::new(service.clone());
    // Creating R3 streams needs every node's vote: on a busy 2-core machine a request may time
    // out while the group settles, so retry (provisioning is idempotent) within a deadline.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let options = ProvisionOptions {
        replicas: 3,
        ..Default::default()
    };
    while let Err(e) = provision(&js, &options).await {
        assert!(
            std::time::Instant::now() < deadline,
            "R3 streams over authenticated routes: {e}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut telemetry = service
        .subscribe("mc.telemetry.>")
        .await
        .expect("subscribe");
    let mut commands = service.subscribe("mc.cmd.>").await.expect("subscribe");
    service.flush().await.expect("flush");
    let responder = service.clone();
    tokio::spawn(async move {
        while let Some(m) = commands.next().await {
            if let Some(reply) = m.reply {
                let _ = responder.publish(reply, "done".into()).await;
            }
        }
    });

    // A producer on node 2: its own spacecraft is acknowledged (R3), another's is refused.
    let producer = login(&nodes[1], "producer-SC-001", PASSWORDS[2].1).await;
    // The service's interest reaches node 2 over the routes a moment after it subscribed: probe
    // until it does (probes are skipped below).
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        producer
            .publish("mc.telemetry.SC-001", "probe".into())
            .await
            .expect("publish");
        producer.flush().await.expect("flush");
        if let Ok(Some(_)) = timeout(Duration::from_millis(250), telemetry.next()).await {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the service's interest never reached node 2"
        );
    }
    let pjs = async_nats::jetstream::new(producer.clone());
    let ack = pjs
        .publish("mc.telemetry.SC-001", "own".into())
        .await
        .expect("publish")
        .await
        .expect("ack through the cluster");
    assert_eq!(ack.stream, TELEMETRY);
    producer
        .publish("mc.telemetry.SC-002", "spoofed".into())
        .await
        .expect("publish");
    producer
        .publish("mc.telemetry.SC-001", "marker".into())
        .await
        .expect("publish");
    producer.flush().await.expect("flush");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let m = timeout(WAIT, telemetry.next())
            .await
            .expect("telemetry arrives")
            .expect("open");
        if m.payload.as_ref() == b"probe" {
            continue;
        }
        seen.push(format!(
            "{} {}",
            m.subject,
            String::from_utf8_lossy(&m.payload)
        ));
    }
    assert_eq!(
        seen,
        ["mc.telemetry.SC-001 own", "mc.telemetry.SC-001 marker"]
    );

    // An agent on node 3 reaches the service on node 1 by request-reply, and nothing else.
    let agent = login(&nodes[2], "mc-agent", PASSWORDS[1].1).await;
    // The service's interest reaches node 3 over the routes a moment after it subscribed:
    // "no responders" until then.
    let deadline = std::time::Instant::now() + WAIT;
    let reply = loop {
        match agent.request("mc.cmd.agent.register", "{}".into()).await {
            Ok(reply) => break reply,
            Err(e)
                if e.kind() == async_nats::RequestErrorKind::NoResponders
                    && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("command reply across the cluster: {e}"),
        }
    };
    assert_eq!(&reply.payload[..], b"done");
    let ajs = async_nats::jetstream::context::ContextBuilder::new()
        .timeout(Duration::from_secs(1))
        .build(agent.clone());
    assert!(
        ajs.get_stream("MC_EVENTS").await.is_err(),
        "an agent read MC_EVENTS"
    );

    // A server that does not know the route password is not let in as a route.
    let mut rogue = configured(
        1,
        [free_port(), route_ports[1], route_ports[2]],
        "wrongRoutePw9",
    );
    rogue.launch();
    let refused = timeout(WAIT, async {
        loop {
            if rogue
                .log()
                .to_lowercase()
                .contains("authorization violation")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        refused.is_ok(),
        "the rogue route was not refused:\n{}",
        rogue.log()
    );
    let routez: serde_json::Value =
        serde_json::from_str(&nodes[1].monitor("/routez")).expect("routez json");
    let mut peers: Vec<&str> = routez["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .filter_map(|r| r["remote_name"].as_str())
        .collect();
    peers.sort_unstable();
    peers.dedup();
    assert_eq!(peers, ["n1", "n3"], "node 2's routes: {routez}");
    // The route password is not written to the servers' logs.
    for node in &nodes {
        assert!(
            !node.log().contains(ROUTE_PASSWORD),
            "route password in a log"
        );
    }
}

/// From the "Users and subject permissions" heading to the end of the file.
fn users_section(text: &str) -> &str {
    let at = text
        .find("# ---- Users and subject permissions")
        .expect("users section");
    &text[at..]
}

#[test]
fn every_config_has_the_same_users_and_permissions() {
    let dev = read("nats/nats-server.conf");
    for node in 1..=3 {
        let text = read(&format!("nats/cluster/n{node}.conf"));
        assert_eq!(
            users_section(&text),
            users_section(&dev),
            "nats/cluster/n{node}.conf differs from nats/nats-server.conf"
        );
        assert!(text.contains("sync_interval: always"), "n{node}.conf");
    }
    assert!(dev.contains("sync_interval: always"));
}
