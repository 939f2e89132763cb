-- A gateway's name for people ("Back office gateway"), shown by the dashboard and the API instead
-- of its id; NULL until one is given (`coldtrace cloud gateway name`).
ALTER TABLE gateways
    ADD COLUMN name text CHECK (name IS NULL OR (length(btrim(name)) BETWEEN 1 AND 200));
