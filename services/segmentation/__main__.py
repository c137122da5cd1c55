from nudgelib.server import main
from services.segmentation.server import SPEC

main(SPEC)
