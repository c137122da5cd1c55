from nudgelib.server import main
from services.ingestion.server import spec
from services.ingestion.settings import load_or_exit

# Ingestion's own settings are checked before anything starts, like the shared ones.
main(spec(load_or_exit()))
