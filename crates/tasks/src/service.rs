//! `TaskService`: the commands of tools, tasks and task runs, each with what its decision
//! needs fetched from the log first (the tool's definition, the task a run follows).

use crate::schema::{check_schema, validate_arguments};
use mc_commands::{CommandContext, CommandError, Executed, Handler};
use mc_domain::ids::{AgentId, TaskId, TaskRunId, ToolCallId};
use mc_domain::task::budget::{self, AgentBudget, Crossed, SetAgentBudget};
use mc_domain::task::pricing::{PriceList, Rates, SetPrice, Tokens, ANY_MODEL};
use mc_domain::task::run::{LlmCall, RunCommand, RunSpec, TaskRun};
use mc_domain::task::{Task, TaskCommand, TaskDef, Tool, ToolCommand, ToolDef, ToolName, Usd};
use mc_domain::{Check, DomainError, FieldError};

#[derive(Clone)]
pub struct TaskService {
    handler: Handler,
}

/// What a run's task and agent spent so far, from the usage read model.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spent {
    pub task: Usd,
    pub agent: Usd,
}

/// A run to create: the task it follows and the agent that runs it.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub task: TaskId,
    pub agent: Option<AgentId>,
}

impl TaskService {
    pub fn new(handler: Handler) -> Self {
        Self { handler }
    }

    /// Register or redefine a tool; its schema must compile.
    pub async fn define_tool(
        &self,
        ctx: &CommandContext,
        name: &ToolName,
        def: ToolDef,
    ) -> Result<Executed<Tool>, CommandError> {
        check_schema(&def.schema).map_err(|e| DomainError::Validation(vec![e]))?;
        self.handler
            .execute::<Tool>(ctx, name.as_str(), Check::Any, &ToolCommand::Define(def))
            .await
    }

    /// The tool as registered now (`None`: never registered).
    async fn tool(&self, name: &ToolName) -> Result<Option<ToolDef>, CommandError> {
        let (root, _) = self.handler.load::<Tool>(name.as_str(), true).await?;
        Ok(match root.state() {
            Tool::Defined(def) => Some(def.clone()),
            Tool::Absent => None,
        })
    }

    /// Define a task; every tool it allows must be registered.
    pub async fn create_task(
        &self,
        ctx: &CommandContext,
        id: TaskId,
        def: TaskDef,
    ) -> Result<Executed<Task>, CommandError> {
        let mut errors = Vec::new();
        for (i, tool) in def.allowed_tools.iter().enumerate() {
            if self.tool(tool).await?.is_none() {
                errors.push(FieldError::new(
                    format!("allowedTools[{i}]"),
                    format!("no tool {tool} is registered"),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(DomainError::Validation(errors).into());
        }
        self.handler
            .execute::<Task>(ctx, &id.to_string(), Check::Any, &TaskCommand::Create(def))
            .await
    }

    /// Queue a run of a task, with the task's tools, policy and budget as they are now.
    pub async fn create_run(
        &self,
        ctx: &CommandContext,
        id: TaskRunId,
        new: NewRun,
    ) -> Result<Executed<TaskRun>, CommandError> {
        let (task, _) = self
            .handler
            .load::<Task>(&new.task.to_string(), false)
            .await?;
        let Task::Defined(def) = task.state() else {
            return Err(
                DomainError::field("taskId", format!("no task {} exists", new.task)).into(),
            );
        };
        let spec = RunSpec {
            task: new.task,
            agent: new.agent,
            allowed_tools: def.allowed_tools.clone(),
            safe_mutate: def.safe_mutate,
            budget: def.budget,
        };
        self.run(ctx, id, Check::Any, RunCommand::Create(spec))
            .await
    }

    /// Request a tool call: the tool must be registered and the arguments satisfy its schema;
    /// the run then decides (allowed tool, policy).
    pub async fn request_tool_call(
        &self,
        ctx: &CommandContext,
        run: TaskRunId,
        call: ToolCallId,
        tool: ToolName,
        arguments: serde_json::Value,
    ) -> Result<Executed<TaskRun>, CommandError> {
        let def = self
            .tool(&tool)
            .await?
            .ok_or_else(|| DomainError::field("tool", format!("no tool {tool} is registered")))?;
        validate_arguments(&def.schema, &arguments).map_err(DomainError::Validation)?;
        let command = RunCommand::RequestToolCall {
            call,
            tool,
            arguments,
            risk: def.risk,
        };
        self.run(ctx, run, Check::Any, command).await
    }

    /// Set or correct a price (see `PriceList`).
    pub async fn set_price(
        &self,
        ctx: &CommandContext,
        price: SetPrice,
    ) -> Result<Executed<PriceList>, CommandError> {
        let id = PriceList::id(&price.provider, &price.model).to_string();
        self.handler
            .execute::<PriceList>(ctx, &id, Check::Any, &price)
            .await
    }

    /// Write the seed price table ([`crate::seed::PRICES`]); a seed price already there is left
    /// alone, one replaced by a different price at the same start too (never overwritten).
    /// Returns (written, already there or kept).
    pub async fn seed_prices(&self, actor: &str) -> Result<(usize, usize), CommandError> {
        let (mut written, mut kept) = (0, 0);
        for &(provider, model, input, output, cached, reasoning) in crate::seed::PRICES {
            let rates = Rates::parse(input, output, Some(cached), Some(reasoning))
                .map_err(DomainError::Validation)?;
            let price = SetPrice {
                provider: provider.into(),
                model: model.into(),
                from_ms: crate::seed::SEED_FROM_MS,
                rates,
                correction: false,
            };
            let ctx = CommandContext::new(actor, None);
            match self.set_price(&ctx, price).await {
                Ok(done) if done.position.is_some() => written += 1,
                Ok(_) | Err(CommandError::Domain(DomainError::Validation(_))) => kept += 1,
                Err(e) => return Err(e),
            }
        }
        Ok((written, kept))
    }

    /// The price of `provider`/`model` in force at `at_ms` (the model's own, else the
    /// provider's `*` price): its start and rates.
    async fn price_at(
        &self,
        provider: &str,
        model: &str,
        at_ms: i64,
    ) -> Result<Option<(i64, Rates)>, CommandError> {
        for m in [model, ANY_MODEL] {
            let id = PriceList::id(provider, m).to_string();
            let (list, _) = self.handler.load::<PriceList>(&id, true).await?;
            if let Some(e) = list.state().at(at_ms) {
                return Ok(Some((e.from_ms, e.rates)));
            }
        }
        Ok(None)
    }

    /// The spec of run `id` (its task, agent, …) as created; `None`: no such run.
    pub async fn run_spec(&self, id: TaskRunId) -> Result<Option<RunSpec>, CommandError> {
        let (root, _) = self.handler.load::<TaskRun>(&id.to_string(), false).await?;
        Ok(root.state().0.as_ref().map(|r| r.spec.clone()))
    }

    /// The task's budget now (`None`: no limit, or no such task).
    pub async fn task_budget_now(&self, task: TaskId) -> Result<Option<Usd>, CommandError> {
        let (root, _) = self.handler.load::<Task>(&task.to_string(), false).await?;
        Ok(match root.state() {
            Task::Defined(def) => def.budget,
            Task::Absent => None,
        })
    }

    /// The agent's budget now (`None`: no limit).
    pub async fn agent_budget(&self, agent: AgentId) -> Result<Option<Usd>, CommandError> {
        let (root, _) = self
            .handler
            .load::<AgentBudget>(&agent.to_string(), false)
            .await?;
        Ok(root.state().0)
    }

    /// Set (or lift, `None`) a task's budget.
    pub async fn set_task_budget(
        &self,
        ctx: &CommandContext,
        task: TaskId,
        budget: Option<Usd>,
    ) -> Result<Executed<Task>, CommandError> {
        self.handler
            .execute::<Task>(
                ctx,
                &task.to_string(),
                Check::Any,
                &TaskCommand::SetBudget(budget),
            )
            .await
    }

    /// Set (or lift, `None`) an agent's budget.
    pub async fn set_agent_budget(
        &self,
        ctx: &CommandContext,
        agent: AgentId,
        budget: Option<Usd>,
    ) -> Result<Executed<AgentBudget>, CommandError> {
        self.handler
            .execute::<AgentBudget>(ctx, &agent.to_string(), Check::Any, &SetAgentBudget(budget))
            .await
    }

    /// Record an LLM step of a run, priced now with the price in force. When the step takes
    /// the spend of the run's task or agent past its budget, the run is blocked in the same
    /// commit (it waits for an operator) and the crossed budget is returned.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_llm_call(
        &self,
        ctx: &CommandContext,
        run: TaskRunId,
        provider: String,
        model: String,
        tokens: Tokens,
        latency_ms: u64,
        finish_reason: String,
        spent: Spent,
    ) -> Result<(Executed<TaskRun>, Option<Usd>, Option<Crossed>), CommandError> {
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let price = self.price_at(&provider, &model, at_ms).await?;
        let call = LlmCall {
            provider,
            model,
            tokens,
            latency_ms,
            finish_reason,
            at_ms,
            cost: price.map(|(_, rates)| tokens.cost(&rates)),
            price_from_ms: price.map(|(from, _)| from),
        };
        let cost = call.cost;
        let (root, _) = self
            .handler
            .load::<TaskRun>(&run.to_string(), false)
            .await?;
        let crossed = match (root.state().0.as_ref(), cost) {
            (Some(r), Some(cost)) if !r.budget_approved => {
                let task_budget = self.task_budget_now(r.spec.task).await?;
                let agent_budget = match r.spec.agent {
                    Some(a) => self.agent_budget(a).await?,
                    None => None,
                };
                budget::crossed(cost, (task_budget, spent.task), (agent_budget, spent.agent))
            }
            _ => None,
        };
        let mut commands = vec![RunCommand::RecordLlmCall(call)];
        if let Some(c) = &crossed {
            commands.push(RunCommand::BlockForBudget {
                reason: format!(
                    "{} budget ${:.6} passed: ${:.6} spent with this step",
                    c.scope.as_str(),
                    c.budget.as_f64(),
                    c.spent.as_f64()
                ),
            });
        }
        let done = self
            .handler
            .execute_all::<TaskRun>(ctx, &run.to_string(), Check::Any, &commands)
            .await?;
        Ok((done, cost, crossed))
    }

    /// Whether run `id` exists in the log (read models may not have it yet).
    pub async fn run_exists(&self, id: TaskRunId) -> Result<bool, CommandError> {
        let (root, _) = self.handler.load::<TaskRun>(&id.to_string(), false).await?;
        Ok(root.state().0.is_some())
    }

    /// Any other run command (approvals, results, logs, artifacts, the end of the run).
    pub async fn run(
        &self,
        ctx: &CommandContext,
        id: TaskRunId,
        check: Check,
        command: RunCommand,
    ) -> Result<Executed<TaskRun>, CommandError> {
        self.handler
            .execute::<TaskRun>(ctx, &id.to_string(), check, &command)
            .await
    }
}
