//! Topics a client subscribes to: parsing the protocol strings, the stream each one reads and
//! the JetStream filter subjects that replay it.

use crate::StreamKind;
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// Longest spacecraft id a topic accepts (the telemetry subject token).
pub const SPACECRAFT_ID_MAX: usize = 64;

/// One subscribable topic. Entity ids are canonical (lowercase hyphenated uuids), so
/// `mission:0191E5A4-…` and `mission:0191e5a4-…` are the same topic, named the second way in
/// frames.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Every mission (`mc.events.mission.>`).
    Missions,
    Mission(Uuid),
    /// Every agent (`mc.events.agent.>`).
    Agents,
    Agent(Uuid),
    /// Every comment (`mc.events.comment.>`).
    Comments,
    /// One spacecraft's telemetry (`mc.telemetry.<id>`).
    Telemetry(String),
    /// Every alarm (`mc.events.alarm.>`).
    Alarms,
    /// One task run (`mc.events.task_run.<id>`).
    TaskRun(Uuid),
    /// System notifications: spacecraft registrations and configuration changes
    /// (`mc.events.spacecraft.>`).
    System,
}

/// Why a topic string was refused; the message names the topic and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TopicError(pub String);

/// True for a spacecraft id: 1 to 64 of `A-Z a-z 0-9 - _`, starting alphanumeric.
pub fn valid_spacecraft_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= SPACECRAFT_ID_MAX
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn uuid_of(topic: &str, kind: &str, id: &str) -> Result<Uuid, TopicError> {
    Uuid::parse_str(id)
        .map_err(|_| TopicError(format!("topic {topic:?}: the {kind} id must be a uuid")))
}

impl Topic {
    /// Parse a protocol topic string.
    pub fn parse(input: &str) -> Result<Self, TopicError> {
        let shown: String = input.chars().take(80).collect();
        let (kind, id) = match input.split_once(':') {
            Some((kind, id)) => (kind, Some(id)),
            None => (input, None),
        };
        let topic = match (kind, id) {
            ("missions", None) => Self::Missions,
            ("agents", None) => Self::Agents,
            ("comments", None) => Self::Comments,
            ("alarms", None) => Self::Alarms,
            ("system", None) => Self::System,
            ("mission", Some(id)) => Self::Mission(uuid_of(&shown, "mission", id)?),
            ("agent", Some(id)) => Self::Agent(uuid_of(&shown, "agent", id)?),
            ("task-run", Some(id)) => Self::TaskRun(uuid_of(&shown, "task run", id)?),
            ("telemetry", Some(id)) if valid_spacecraft_id(id) => Self::Telemetry(id.to_owned()),
            ("telemetry", _) => {
                return Err(TopicError(format!(
                    "topic {shown:?}: telemetry topics are telemetry:<spacecraftId>, \
                     1-{SPACECRAFT_ID_MAX} of A-Z a-z 0-9 - _ starting alphanumeric"
                )))
            }
            ("missions" | "agents" | "comments" | "alarms" | "system", Some(_)) => {
                return Err(TopicError(format!("topic {shown:?}: {kind} takes no id")))
            }
            ("mission" | "agent" | "task-run", None) => {
                return Err(TopicError(format!(
                    "topic {shown:?}: {kind} needs an id ({kind}:<uuid>)"
                )))
            }
            _ => {
                return Err(TopicError(format!(
                    "unknown topic {shown:?}: expected missions, mission:<id>, agents, agent:<id>, \
                     comments, telemetry:<spacecraftId>, alarms, task-run:<id> or system"
                )))
            }
        };
        Ok(topic)
    }

    /// Parse a list, failing on the first bad topic.
    pub fn parse_all<S: AsRef<str>>(inputs: &[S]) -> Result<Vec<Self>, TopicError> {
        inputs.iter().map(|s| Self::parse(s.as_ref())).collect()
    }

    /// The stream whose positions this topic's frames carry.
    pub fn stream(&self) -> StreamKind {
        match self {
            Self::Telemetry(_) => StreamKind::Telemetry,
            _ => StreamKind::Events,
        }
    }

    /// The NATS filter subject that holds every message of this topic.
    pub fn subject(&self) -> String {
        match self {
            Self::Missions => "mc.events.mission.>".into(),
            Self::Mission(id) => format!("mc.events.mission.{id}"),
            Self::Agents => "mc.events.agent.>".into(),
            Self::Agent(id) => format!("mc.events.agent.{id}"),
            Self::Comments => "mc.events.comment.>".into(),
            Self::Telemetry(sc) => format!("mc.telemetry.{sc}"),
            Self::Alarms => "mc.events.alarm.>".into(),
            Self::TaskRun(id) => format!("mc.events.task_run.{id}"),
            Self::System => "mc.events.spacecraft.>".into(),
        }
    }

    /// The filter subjects as a list (one per topic today; a list keeps callers general).
    pub fn subjects(&self) -> Vec<String> {
        vec![self.subject()]
    }

    /// The wildcard topic that covers this one, if any (`mission:<id>` → `missions`).
    pub fn collection(&self) -> Option<Topic> {
        match self {
            Self::Mission(_) => Some(Self::Missions),
            Self::Agent(_) => Some(Self::Agents),
            _ => None,
        }
    }
}

/// The filter subjects replaying `topics`, without overlaps (JetStream refuses overlapping
/// filters): an entity topic whose collection is also asked for is left out.
pub fn filter_subjects(topics: &[Topic]) -> Vec<String> {
    let mut out: Vec<String> = topics
        .iter()
        .filter(|t| t.collection().is_none_or(|c| !topics.contains(&c)))
        .map(|t| t.subject())
        .collect();
    out.sort();
    out.dedup();
    out
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missions => f.write_str("missions"),
            Self::Mission(id) => write!(f, "mission:{id}"),
            Self::Agents => f.write_str("agents"),
            Self::Agent(id) => write!(f, "agent:{id}"),
            Self::Comments => f.write_str("comments"),
            Self::Telemetry(sc) => write!(f, "telemetry:{sc}"),
            Self::Alarms => f.write_str("alarms"),
            Self::TaskRun(id) => write!(f, "task-run:{id}"),
            Self::System => f.write_str("system"),
        }
    }
}

impl FromStr for Topic {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0191e5a4-1c1e-7cc0-8000-000000000001";

    #[test]
    fn every_protocol_topic_parses_and_prints_back() {
        for s in [
            "missions".to_owned(),
            format!("mission:{ID}"),
            "agents".into(),
            format!("agent:{ID}"),
            "comments".into(),
            "telemetry:SC-001".into(),
            "alarms".into(),
            format!("task-run:{ID}"),
            "system".into(),
        ] {
            assert_eq!(Topic::parse(&s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn ids_are_canonical() {
        let t = Topic::parse(&format!("mission:{}", ID.to_uppercase())).unwrap();
        assert_eq!(t.to_string(), format!("mission:{ID}"));
    }

    #[test]
    fn streams_and_subjects() {
        let m = Topic::parse(&format!("mission:{ID}")).unwrap();
        assert_eq!(m.stream(), StreamKind::Events);
        assert_eq!(m.subject(), format!("mc.events.mission.{ID}"));
        assert_eq!(Topic::Missions.subject(), "mc.events.mission.>");
        assert_eq!(Topic::Alarms.subject(), "mc.events.alarm.>");
        assert_eq!(Topic::System.subject(), "mc.events.spacecraft.>");
        let t = Topic::parse("telemetry:SC_9").unwrap();
        assert_eq!(t.stream(), StreamKind::Telemetry);
        assert_eq!(t.subjects(), ["mc.telemetry.SC_9"]);
        let run = Topic::parse(&format!("task-run:{ID}")).unwrap();
        assert_eq!(run.subject(), format!("mc.events.task_run.{ID}"));
    }

    #[test]
    fn bad_topics_say_what_is_wrong() {
        let err = |s: &str| Topic::parse(s).unwrap_err().0;
        assert!(err("weather").starts_with("unknown topic \"weather\""));
        assert!(err("").starts_with("unknown topic"));
        assert!(err("mission:nope").contains("must be a uuid"));
        assert!(err("mission").contains("needs an id"));
        assert!(err("missions:x").contains("takes no id"));
        assert!(err("telemetry:").contains("telemetry:<spacecraftId>"));
        assert!(err("telemetry:-SC").contains("starting alphanumeric"));
        assert!(err("telemetry:SC.1").contains("telemetry:<spacecraftId>"));
        assert!(err("telemetry:a>").contains("telemetry:<spacecraftId>"));
        assert!(err(&format!("telemetry:{}", "A".repeat(65))).contains("1-64"));
        assert!(Topic::parse(&format!("telemetry:{}", "A".repeat(64))).is_ok());
        // Long garbage is cut in the message.
        assert!(err(&"x".repeat(10_000)).len() < 400);
    }

    #[test]
    fn parse_all_fails_on_the_first_bad_one() {
        assert_eq!(Topic::parse_all(&["missions", "alarms"]).unwrap().len(), 2);
        assert!(Topic::parse_all(&["missions", "nope"]).is_err());
    }

    #[test]
    fn filter_subjects_do_not_overlap() {
        let one = Topic::parse(&format!("mission:{ID}")).unwrap();
        let agent = Topic::parse(&format!("agent:{ID}")).unwrap();
        let topics = [one.clone(), Topic::Missions, agent.clone(), Topic::Alarms];
        assert_eq!(
            filter_subjects(&topics),
            [
                "mc.events.agent.0191e5a4-1c1e-7cc0-8000-000000000001",
                "mc.events.alarm.>",
                "mc.events.mission.>",
            ]
        );
        assert_eq!(filter_subjects(&[one.clone(), one]).len(), 1);
    }
}
