import sys
from pathlib import Path

TESTS = Path(__file__).parents[1]
sys.path.insert(0, str(Path(__file__).parent))  # hostile_helpers
sys.path.insert(0, str(TESTS / "run"))  # test_annotate's scripted annotator
sys.path.insert(0, str(TESTS / "analysis"))  # test_ensemble's user runs
