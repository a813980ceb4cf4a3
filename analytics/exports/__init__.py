"""Exports for statisticians: one long table per CRF, the analysis dataset, a codebook and CDISC
ODM 1.3.2, de-identified (subject codes only, optional per-patient date shift), versioned and
logged. Plain Python: the API endpoints are thin wrappers around `analytics.exports.streams`.

- `forms`: the registry of exported forms (explicit columns, excluded fields with the reason),
  `export_rows`, `csv_stream`, `json_stream`.
- `deid`: the per-patient date offset.
- `version`: the data version (as-of time and an order-independent content hash).
- `codebook`, `dataset_columns`: the data dictionary.
- `odm`: the CDISC ODM 1.3.2 document.
- `streams`: complete, logged exports (what an endpoint returns).
"""
