import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # hostile_helpers
sys.path.insert(0, str(Path(__file__).parents[1] / "run"))  # test_annotate's scripted annotator
