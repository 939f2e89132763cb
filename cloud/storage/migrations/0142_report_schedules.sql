-- Scheduled reports (issue 17.4): a site's daily, weekly or monthly report, e-mailed (or, on a
-- channel that carries no attachment, linked) through one of the site's alarm channels.
-- Each period is made once: a delivery row per (schedule, period) names the archived report
-- and records the sending, retried until it succeeds or its attempts run out.

CREATE TABLE report_schedules (
    schedule_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id      text NOT NULL REFERENCES sites,
    kind         text NOT NULL CHECK (kind IN ('unit', 'mkt', 'calibration')),
    frequency    text NOT NULL CHECK (frequency IN ('daily', 'weekly', 'monthly')),
    location_id  text REFERENCES locations,
    format       text NOT NULL CHECK (format IN ('pdf', 'csv')),
    channel      text NOT NULL,            -- an alarm channel's name at the site
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    disabled_at  timestamptz,
    CHECK ((kind = 'unit') = (location_id IS NOT NULL))
);

CREATE TABLE report_deliveries (
    schedule_id  bigint NOT NULL REFERENCES report_schedules,
    period_start timestamptz NOT NULL,
    period_end   timestamptz NOT NULL,
    report_id    bigint NOT NULL REFERENCES report_archive,
    attempts     integer NOT NULL DEFAULT 0,
    sent_at      timestamptz,
    last_error   text,
    PRIMARY KEY (schedule_id, period_end)
);
CREATE INDEX report_deliveries_unsent ON report_deliveries (schedule_id) WHERE sent_at IS NULL;
