-- Sensor calibration (issue 17.5): one row per calibration of a sensor (date, certificate,
-- offset found, result, next due). A correction is a new row, never an edit: rows are
-- append-only, and every write is also in the audit log.

CREATE TABLE sensor_calibrations (
    calibration_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sensor_id       text NOT NULL,
    calibrated_on   date NOT NULL,
    certificate_ref text NOT NULL CHECK (length(certificate_ref) BETWEEN 1 AND 200),
    result          text NOT NULL CHECK (result IN ('pass', 'adjusted', 'fail')),
    offset_c        float8 CHECK (offset_c BETWEEN -50 AND 50),   -- reference minus sensor, °C
    uncertainty_c   float8 CHECK (uncertainty_c BETWEEN 0 AND 50),
    next_due        date NOT NULL CHECK (next_due > calibrated_on),
    note            text,
    recorded_by     text NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sensor_calibrations_sensor ON sensor_calibrations (sensor_id, calibrated_on DESC,
                                                               calibration_id DESC);

CREATE FUNCTION sensor_calibrations_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'sensor_calibrations is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER sensor_calibrations_no_update BEFORE UPDATE OR DELETE ON sensor_calibrations
    FOR EACH ROW EXECUTE FUNCTION sensor_calibrations_append_only();
CREATE TRIGGER sensor_calibrations_no_truncate BEFORE TRUNCATE ON sensor_calibrations
    FOR EACH STATEMENT EXECUTE FUNCTION sensor_calibrations_append_only();
ALTER TABLE sensor_calibrations ENABLE ALWAYS TRIGGER sensor_calibrations_no_update;
ALTER TABLE sensor_calibrations ENABLE ALWAYS TRIGGER sensor_calibrations_no_truncate;
