-- When each maintenance job runs next (owner: cloud jobs, issue 23). Every service process runs
-- the scheduler; a job runs only when its row says it is due, and the process that runs it moves
-- next_run_at forward under the row lock, so N processes run a job once per interval, not N times.
CREATE TABLE job_schedule (
    name             text PRIMARY KEY,
    next_run_at      timestamptz NOT NULL DEFAULT '-infinity',
    runs             bigint NOT NULL DEFAULT 0,
    last_started_at  timestamptz,
    last_finished_at timestamptz,
    last_error       text
);
