"""Campaign files: segments, campaigns and app settings as YAML documents (documents.py),
checked against a JSON schema generated from the protos (schema.py). Tooling: nothing a
service runs imports it.

    docs = load_documents(["examples/"])      # list[Document]; DocumentError names file:line: field
    text = dump_documents(docs)               # parse_documents(text) == docs
"""

from nudgetools.files.documents import (
    Document,
    DocumentError,
    Origin,
    Problem,
    Reference,
    document_data,
    dump_documents,
    files_of,
    from_message,
    load_documents,
    parse_documents,
    segment_references,
    with_segment_ids,
)
from nudgetools.files.schema import KEYED, KINDS, document_schema, spec_schema

__all__ = [
    "KEYED", "KINDS", "Document", "DocumentError", "Origin", "Problem", "Reference", "document_data",
    "document_schema", "dump_documents", "files_of", "from_message", "load_documents", "parse_documents",
    "segment_references", "spec_schema", "with_segment_ids",
]
