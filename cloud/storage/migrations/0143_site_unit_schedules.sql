-- A scheduled temperature record may cover every storage unit of its site (no location_id):
-- one document with a part per unit. Other kinds still name no unit.
ALTER TABLE report_schedules DROP CONSTRAINT report_schedules_check;
ALTER TABLE report_schedules ADD CONSTRAINT report_schedules_unit_only
    CHECK (kind = 'unit' OR location_id IS NULL);
