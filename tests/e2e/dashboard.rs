//! The operations dashboard in a real headless Chromium: it loads, shows a mission created
//! through the API within a second, shows an alarm raised by published telemetry and
//! acknowledges it with a click, and catches up after the server restarts without missing or
//! doubling an event.

use crate::browser::Browser;
use crate::helpers::TestApp;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const LIVE: &str = "return document.getElementById('link').dataset.state === 'live'";
const HAS_MISSION: &str = "return [...document.querySelectorAll('#missions tr')]\
    .filter(tr => tr.cells[0] && tr.cells[0].textContent === arguments[0]).length === 1";

/// Open the dashboard signed in with the test's admin token, and wait until it is live.
async fn open(app: &TestApp) -> Browser {
    let browser = Browser::start().await;
    browser.goto(&format!("{}/", app.base)).await;
    browser
        .eval(
            "localStorage.setItem('mc.token', arguments[0])",
            json!([app.token]),
        )
        .await;
    browser.goto(&format!("{}/", app.base)).await;
    browser
        .wait_for(
            "the relay connection",
            LIVE,
            json!([]),
            Duration::from_secs(10),
        )
        .await;
    browser
}

#[tokio::test]
async fn the_dashboard_shows_missions_live_and_acknowledges_an_alarm_with_a_click() {
    let app = TestApp::spawn().await;
    let browser = open(&app).await;

    let created = Instant::now();
    app.create("/missions", json!({"title": "Survey the crater"}))
        .await;
    browser
        .wait_for(
            "the new mission",
            HAS_MISSION,
            json!(["Survey the crater"]),
            Duration::from_secs(1).saturating_sub(created.elapsed()),
        )
        .await;

    // Telemetry out of limits raises an alarm; the dashboard lists it and acknowledges it.
    let (s, b) = app
        .post("/spacecraft", json!({"id": "SC-DASH", "name": "Dash"}))
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = app
        .put(
            "/spacecraft/SC-DASH/config",
            json!({"parameters": {"temp": {"warnHigh": 40, "critHigh": 60}}, "effectiveAt": 0}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    // Chart the spacecraft too.
    browser
        .wait_for(
            "the spacecraft in the list",
            "return [...document.querySelectorAll('#spacecraft option')].some(o => o.value === 'SC-DASH')",
            json!([]),
            Duration::from_secs(10),
        )
        .await;
    browser
        .eval(
            "const s = document.getElementById('spacecraft'); s.value = 'SC-DASH'; \
             s.dispatchEvent(new Event('change'));",
            json!([]),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for temp in [20, 30, 48] {
        let (s, b) = app
            .post(
                "/telemetry",
                json!({"spacecraftId": "SC-DASH", "timestamp": chrono::Utc::now().to_rfc3339(), "parameters": {"temp": temp}}),
            )
            .await;
        assert_eq!(s, 202, "{b}");
    }
    browser
        .wait_for(
            "the raised alarm",
            "return [...document.querySelectorAll('#alarms tr')].some(tr => tr.dataset.state === 'RAISED' && tr.textContent.includes('SC-DASH'))",
            json!([]),
            Duration::from_secs(10),
        )
        .await;
    browser
        .wait_for(
            "a chart of temp",
            "return !!document.querySelector('.chart[data-parameter=\"temp\"] canvas')",
            json!([]),
            Duration::from_secs(10),
        )
        .await;
    if let Ok(path) = std::env::var("MC_DASHBOARD_SCREENSHOT") {
        std::fs::write(path, browser.screenshot().await).unwrap();
    }
    browser
        .click("#alarms tr[data-state='RAISED'] button")
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, list) = app.get_json("/alarms?spacecraftId=SC-DASH").await;
        let alarm: &Value = &list["items"][0];
        if alarm["acknowledged"] == true {
            assert_eq!(alarm["acknowledgedBy"], "dashboard", "{alarm}");
            break;
        }
        assert!(Instant::now() < deadline, "not acknowledged: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    browser
        .wait_for(
            "the acknowledged state on the page",
            "return [...document.querySelectorAll('#alarms tr')].some(tr => tr.dataset.state === 'ACKNOWLEDGED')",
            json!([]),
            Duration::from_secs(5),
        )
        .await;
}

#[tokio::test]
async fn the_dashboard_catches_up_after_the_server_restarts() {
    let mut app = TestApp::spawn().await;
    let browser = open(&app).await;
    app.create("/missions", json!({"title": "before"})).await;
    browser
        .wait_for(
            "the first mission",
            HAS_MISSION,
            json!(["before"]),
            Duration::from_secs(5),
        )
        .await;

    // The server goes away; commands still reach the log (another instance would serve them).
    let addr = app.addr();
    app.stop().await;
    browser
        .wait_for(
            "the reconnecting state",
            "return document.getElementById('link').dataset.state === 'reconnecting'",
            json!([]),
            Duration::from_secs(10),
        )
        .await;
    let missions = mc_commands::MissionService::new(mc_commands::Handler::new(
        mc_eventlog::EventLog::new(app.nats.client().await),
    ));
    let titles = ["while down 1", "while down 2", "while down 3"];
    for title in titles {
        let ctx = mc_commands::CommandContext::new("test:dashboard", None);
        let new = mc_commands::NewMission {
            id: mc_domain::ids::MissionId::from_uuid(uuid::Uuid::now_v7()),
            title: mc_domain::values::Title::parse(title, "title").unwrap(),
            description: Default::default(),
            priority: Default::default(),
            metadata: Default::default(),
            agent_id: None,
        };
        missions.create(&ctx, new).await.unwrap();
    }

    app.start_on(addr).await;
    browser
        .wait_for("the relay again", LIVE, json!([]), Duration::from_secs(20))
        .await;
    app.create("/missions", json!({"title": "after"})).await;
    for title in titles.iter().chain(&["after", "before"]) {
        browser
            .wait_for(title, HAS_MISSION, json!([title]), Duration::from_secs(10))
            .await;
    }
    let rows = browser
        .eval(
            "return document.querySelectorAll('#missions tr').length",
            json!([]),
        )
        .await;
    assert_eq!(rows, 5, "every mission once");
}

#[tokio::test]
async fn open_mct_lists_a_spacecrafts_parameters_and_plots_realtime_values() {
    let app = TestApp::spawn_with(|c| {
        let dir = std::env::var_os("MC_OPENMCT_DIR").expect(
            "MC_OPENMCT_DIR: run scripts/openmct.sh and set it to the directory it prints \
             (scripts/dev.sh test does)",
        );
        c.openmct_dir = Some(dir.into());
    })
    .await;
    let (s, b) = app
        .post(
            "/spacecraft",
            json!({"id": "SC-OMCT", "name": "Open MCT probe"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = app
        .put(
            "/spacecraft/SC-OMCT/config",
            json!({"parameters": {"temp": {"warnHigh": 80}, "volts": {"warnLow": 20}}, "effectiveAt": 0}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let publish = |temp: f64| {
        app.post(
            "/telemetry",
            json!({"spacecraftId": "SC-OMCT", "timestamp": chrono::Utc::now().to_rfc3339(),
                   "parameters": {"temp": temp, "volts": 28}}),
        )
    };
    let (s, b) = publish(21.5).await;
    assert_eq!(s, 202, "{b}");
    let (_, latest) = app
        .get_json(&format!(
            "/telemetry/latest?spacecraftId=SC-OMCT&minPosition={}",
            b["position"]
        ))
        .await;
    assert_eq!(latest["parameters"]["temp"]["value"], 21.5, "{latest}");

    // Open MCT's own files come from MC_OPENMCT_DIR; nothing outside it.
    let anonymous = reqwest::Client::new();
    let r = anonymous
        .get(format!("{}/openmct/lib/openmct.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().len() > 100_000);
    for path in [
        "../../../../etc/passwd",
        "%2e%2e/%2e%2e/etc/passwd",
        ".hidden",
        "a//b",
    ] {
        let r = anonymous
            .get(format!("{}/openmct/lib/{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }

    let browser = Browser::start().await;
    browser.goto(&format!("{}/", app.base)).await;
    browser
        .eval(
            "localStorage.setItem('mc.token', arguments[0])",
            json!([app.token]),
        )
        .await;
    // The spacecraft's folder lists its parameters (the dictionary).
    browser
        .goto(&format!(
            "{}/openmct/#/browse/mc:root/mc:sc~SC-OMCT",
            app.base
        ))
        .await;
    browser
        .wait_for(
            "the parameters of SC-OMCT",
            "return document.body.textContent.includes('temp') && document.body.textContent.includes('volts')",
            json!([]),
            Duration::from_secs(20),
        )
        .await;
    // A realtime plot of one parameter shows the values as they are published.
    browser
        .goto(&format!(
            "{}/openmct/#/browse/mc:root/mc:sc~SC-OMCT/mc:p~SC-OMCT~temp?view=plot-single\
             &tc.mode=local&tc.timeSystem=utc&tc.startDelta=900000&tc.endDelta=0",
            app.base
        ))
        .await;
    browser
        .wait_for(
            "the plot",
            "return !!document.querySelector('.gl-plot, .c-plot')",
            json!([]),
            Duration::from_secs(20),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut value = 40.0;
    loop {
        value += 1.25;
        let (s, b) = publish(value).await;
        assert_eq!(s, 202, "{b}");
        let shown = browser
            .eval(
                "return document.body.textContent.includes(arguments[0])",
                json!([format!("{value}")]),
            )
            .await;
        if shown == Value::Bool(true) {
            if let Ok(path) = std::env::var("MC_OPENMCT_SCREENSHOT") {
                tokio::time::sleep(Duration::from_secs(2)).await;
                std::fs::write(path, browser.screenshot().await).unwrap();
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the plot never showed a realtime value"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
