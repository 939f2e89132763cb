-- Replenishment lead times per site and product (issue 18, part 5): how long from ordering to
-- having the goods usable at the site, for the safety stock and reorder point of the site
-- figures. A product without a row here uses the lead time measured from its received
-- transfers, else the site's, else the default (docs/transfers.md, Figures).

CREATE TABLE replenishment_lead_times (
    site_id     text NOT NULL REFERENCES sites,
    gtin        char(14) NOT NULL REFERENCES products,
    lead_time   interval NOT NULL
                CHECK (lead_time > interval '0' AND lead_time <= interval '365 days'),
    set_by      text NOT NULL,
    set_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, gtin)
);
