from nudgelib.server import main
from services.decision.server import SPEC

main(SPEC)
