-- Budgets: agents' budgets (a task's is in `tasks.budget_nanos`) and why a run waits for an
-- operator when a step crossed one.

ALTER TABLE task_runs ADD COLUMN blocked_reason text NULL;

CREATE TABLE agent_budgets (
    agent_id     uuid   PRIMARY KEY,
    budget_nanos bigint NULL,
    position     bigint NOT NULL
);

GRANT SELECT, INSERT, UPDATE, DELETE ON agent_budgets TO mc_app;
CALL mc_hand_over();
