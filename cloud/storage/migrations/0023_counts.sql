-- Cycle counts (issue 8): a count's comparison is kept until it is confirmed (adjusted) or
-- cancelled; confirmation books the differences in the ledger with the count as reference.

CREATE TABLE cycle_counts (
    count_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    location_id   text NOT NULL REFERENCES locations,
    counted_at    timestamptz NOT NULL,
    counted_by    text NOT NULL,
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'confirmed', 'cancelled')),
    result        jsonb NOT NULL,
    confirmed_by  text,
    confirmed_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cycle_counts_location ON cycle_counts (location_id, counted_at DESC);
