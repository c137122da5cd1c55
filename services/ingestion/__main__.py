from nudgelib.server import main
from services.ingestion.server import SPEC

main(SPEC)
