//! Huashi's clearing: the ledger, statements and the index (filled in by issues 5 and 6).
