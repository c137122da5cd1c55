from nudgelib.server import main
from services.delivery.server import SPEC

main(SPEC)
