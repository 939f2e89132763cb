-- The dashboard's change check reads max(alarms.updated_at) every few seconds: an index keeps
-- that a lookup however many alarms accumulate. A delivery's outcome touches its alarm's row.
CREATE INDEX alarms_updated ON alarms (updated_at);
