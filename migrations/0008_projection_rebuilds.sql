-- Blue/green rebuilds. `projection_versions` is the version of the code that built each live
-- read model; a higher version in code rebuilds it at start. `projection_rebuilds` holds the
-- rebuilds in progress: the shadow schema being filled (its checkpoint is `<name>@rebuild`),
-- so a killed rebuild resumes where it stopped.
CREATE TABLE projection_versions (
    name       text        PRIMARY KEY,
    version    integer     NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projection_rebuilds (
    name        text        PRIMARY KEY,
    version     integer     NOT NULL,
    schema_name text        NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    target      bigint      NOT NULL
);

GRANT SELECT, INSERT, UPDATE, DELETE ON projection_versions, projection_rebuilds TO mc_app;
