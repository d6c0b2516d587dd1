//! `TaskService`: the commands of tools, tasks and task runs, each with what its decision
//! needs fetched from the log first (the tool's definition, the task a run follows).

use crate::schema::{check_schema, validate_arguments};
use mc_commands::{CommandContext, CommandError, Executed, Handler};
use mc_domain::ids::{AgentId, TaskId, TaskRunId, ToolCallId};
use mc_domain::task::run::{RunCommand, RunSpec, TaskRun};
use mc_domain::task::{Task, TaskCommand, TaskDef, Tool, ToolCommand, ToolDef, ToolName};
use mc_domain::{Check, DomainError, FieldError};

#[derive(Clone)]
pub struct TaskService {
    handler: Handler,
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
