//! Budgets: how much LLM spend a task's runs or an agent's runs may reach together, and the
//! decision whether a step crosses one. The task's budget is part of the `Task` aggregate; an
//! agent's is the [`AgentBudget`] aggregate (keyed by the agent id). Spend comes from the
//! caller (the usage read model): a budget is a limit checked as steps are recorded, not a
//! reservation.

use super::Usd;
use crate::aggregate::Aggregate;
use crate::error::DomainError;

/// An agent's budget (`None`: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AgentBudget(pub Option<Usd>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetAgentBudget(pub Option<Usd>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentBudgetSet(pub Option<Usd>);

impl Aggregate for AgentBudget {
    const TYPE: &'static str = "agent_budget";
    type Command = SetAgentBudget;
    type Event = AgentBudgetSet;

    fn decide(&self, c: &SetAgentBudget) -> Result<Vec<AgentBudgetSet>, DomainError> {
        Ok(if self.0 == c.0 {
            vec![]
        } else {
            vec![AgentBudgetSet(c.0)]
        })
    }

    fn evolve(self, e: &AgentBudgetSet) -> Self {
        Self(e.0)
    }
}

/// Which budget a step crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Task,
    Agent,
}

impl Scope {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Task => "task",
            Self::Agent => "agent",
        }
    }
}

/// A crossed budget: whose, the limit and the spend with the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crossed {
    pub scope: Scope,
    pub budget: Usd,
    pub spent: Usd,
}

/// The first budget that `spent_before + cost` passes: the task's, then the agent's.
pub fn crossed(cost: Usd, task: (Option<Usd>, Usd), agent: (Option<Usd>, Usd)) -> Option<Crossed> {
    [(Scope::Task, task), (Scope::Agent, agent)]
        .into_iter()
        .find_map(|(scope, (budget, before))| {
            let budget = budget?;
            let spent = Usd::from_nanos(before.nanos().saturating_add(cost.nanos()));
            (spent > budget).then_some(Crossed {
                scope,
                budget,
                spent,
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(n: u64) -> Usd {
        Usd::from_nanos(n)
    }

    #[test]
    fn a_step_crosses_a_budget_when_the_spend_with_it_passes_the_limit() {
        assert_eq!(
            crossed(usd(5), (Some(usd(10)), usd(5)), (None, usd(0))),
            None,
            "reaching is fine"
        );
        let c = crossed(usd(6), (Some(usd(10)), usd(5)), (Some(usd(100)), usd(0))).unwrap();
        assert_eq!((c.scope, c.spent), (Scope::Task, usd(11)));
        let c = crossed(usd(1), (None, usd(50)), (Some(usd(20)), usd(20))).unwrap();
        assert_eq!((c.scope, c.budget), (Scope::Agent, usd(20)));
        assert_eq!(crossed(usd(1), (None, usd(0)), (None, usd(0))), None);
        // A budget set again unchanged changes nothing.
        let b = AgentBudget::default().evolve(&AgentBudgetSet(Some(usd(3))));
        assert!(b.decide(&SetAgentBudget(Some(usd(3)))).unwrap().is_empty());
        assert_eq!(
            b.decide(&SetAgentBudget(None)).unwrap(),
            [AgentBudgetSet(None)]
        );
    }
}
