-- The edge agent's software version, from the User-Agent of its batches (protocols/agent.py);
-- shown on the admin pages' gateway list. NULL: the gateway never said (older agents).
ALTER TABLE gateways
    ADD COLUMN software_version    text,
    ADD COLUMN software_version_at timestamptz;
