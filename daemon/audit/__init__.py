"""The audit trail: what pvlog did to its records, kept so that it cannot be quietly edited."""
