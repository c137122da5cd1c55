"""`python -m nudgetools.files`: prints the JSON schema of a campaign-file document (for an
editor's YAML language server, say)."""

import json

from nudgetools.files.schema import document_schema

print(json.dumps(document_schema(), indent=2))
