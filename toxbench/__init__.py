"""toxbench: benchmark toxicity detectors from records, and fine-tune new ones."""

__version__ = "0.1.0"
