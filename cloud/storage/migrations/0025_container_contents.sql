-- Receiving (issue 8): the untagged quantities a logistic unit was received with, so that the
-- container leaving through a door issues them too. Keyed by the container's GS1 key.

CREATE TABLE container_contents (
    container_key text NOT NULL,            -- "(00)<sscc>"
    lot_id        bigint NOT NULL REFERENCES lots,
    quantity      integer NOT NULL CHECK (quantity > 0),
    received_at   timestamptz NOT NULL,
    PRIMARY KEY (container_key, lot_id)
);
