"""Session records and traces: the per-request recorder, the record, the writer process, the reader."""
