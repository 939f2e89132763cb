-- The unit history chart marks QA releases and rejects of stock at the unit in the range shown:
-- a small partial index keeps that a range lookup however long the ledger grows (a year's chart
-- would otherwise scan every ledger entry on each zoom).
CREATE INDEX ledger_entries_dispositions ON ledger_entries (effective_at)
    WHERE movement IN ('release', 'reject');
