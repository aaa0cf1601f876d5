"""JSON Schemas (draft 2020-12) of the documents a user writes."""
