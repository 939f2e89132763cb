-- Receiving (issue 8): a passage looks up only the open ASNs that announce what it read, by GS1
-- key (asn_items_key, migration 0022) or by GTIN (this index).

CREATE INDEX asn_items_gtin ON asn_items (gtin) WHERE gtin IS NOT NULL;
